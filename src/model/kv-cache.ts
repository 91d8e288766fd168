import { WinaError } from '../errors.js';
import type { ModelConfig } from './config.js';

/** The memory for a KV cache of the capacity asked for could not be allocated; the cache is as it was. */
export class KVCacheMemoryError extends WinaError {}

/**
 * Recycles KV-cache rows. The kernels' memory is a bump allocator that never frees, so caches return their
 * arrays here: explicitly with `release()`, or when a cache nobody released is garbage-collected.
 */
export class KVPool {
  private readonly free = new Map<number, Float32Array[]>();
  private readonly unreleased = new FinalizationRegistry<Float32Array[]>((arrays) => this.put(arrays));

  constructor(private readonly f32: (n: number) => Float32Array = (n) => new Float32Array(n)) {}

  take(size: number): Float32Array {
    return this.free.get(size)?.pop() ?? this.f32(size);
  }

  put(arrays: Float32Array[]): void {
    for (const a of arrays) {
      let list = this.free.get(a.length);
      if (!list) this.free.set(a.length, (list = []));
      list.push(a);
    }
  }

  track(cache: KVCache, arrays: Float32Array[]): void {
    this.unreleased.unregister(cache);
    this.unreleased.register(cache, arrays, cache);
  }

  untrack(cache: KVCache): void {
    this.unreleased.unregister(cache);
  }
}

/**
 * Keys and values of every past position, per layer, as [position, kvHeads * headDim] F32 rows. All layers' rows
 * are views of one block, allocated at once: a capacity that does not fit fails before anything is taken.
 */
export class KVCache {
  keys: Float32Array[] = [];
  values: Float32Array[] = [];
  private block: Float32Array | undefined;
  /** Number of positions written. */
  length = 0;
  private capacity = 0;
  private readonly rowSize: number;

  constructor(
    private readonly cfg: ModelConfig,
    initialCapacity = 64,
    /** Where rows come from and go back to (the kernels' memory). */
    private readonly pool: KVPool = new KVPool(),
  ) {
    this.rowSize = cfg.numKvHeads * cfg.headDim;
    this.grow(initialCapacity);
  }

  /** Makes room for positions below `end`, doubling so long generations reallocate rarely. */
  reserve(end: number): void {
    if (end > this.capacity) this.grow(Math.max(end, 2 * this.capacity));
  }

  /** Capacities are powers of two (up to the context window), so released blocks fit the next cache. */
  private grow(wanted: number): void {
    const capacity = Math.min(2 ** Math.ceil(Math.log2(Math.max(wanted, 16))), this.cfg.maxPositions);
    const layerSize = capacity * this.rowSize;
    const layers = this.cfg.numLayers;
    let block: Float32Array;
    try {
      block = this.pool.take(2 * layers * layerSize);
    } catch (e) {
      if (!(e instanceof WinaError || e instanceof RangeError)) throw e;
      const gib = ((2 * layers * layerSize * 4) / 2 ** 30).toFixed(1);
      throw new KVCacheMemoryError(
        `not enough memory for a KV cache of ${capacity} positions (${gib} GiB of keys and values)`,
      );
    }
    const used = this.length * this.rowSize;
    const view = (i: number) => block.subarray(i * layerSize, (i + 1) * layerSize);
    const keys = Array.from({ length: layers }, (_, l) => view(2 * l));
    const values = Array.from({ length: layers }, (_, l) => view(2 * l + 1));
    for (let l = 0; l < layers && used > 0; l++) {
      keys[l]!.set(this.keys[l]!.subarray(0, used));
      values[l]!.set(this.values[l]!.subarray(0, used));
    }
    if (this.block) this.pool.put([this.block]);
    this.block = block;
    this.keys = keys;
    this.values = values;
    this.capacity = capacity;
    this.pool.track(this, [block]);
  }

  /** Forgets positions from `length` on (e.g. to reuse a shared prompt prefix). */
  truncate(length: number): void {
    this.length = Math.min(this.length, length);
  }

  /** Gives the rows back for the next cache; this cache must not be used afterwards. */
  release(): void {
    this.pool.untrack(this);
    if (this.block) this.pool.put([this.block]);
    this.block = undefined;
    this.keys = [];
    this.values = [];
    this.capacity = 0;
    this.length = 0;
  }

  bytes(): number {
    return 2 * this.cfg.numLayers * this.capacity * this.rowSize * 4;
  }
}
