import type { ModelConfig } from './config.js';

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

/** Keys and values of every past position, per layer, as [position, kvHeads * headDim] F32 rows. */
export class KVCache {
  keys: Float32Array[] = [];
  values: Float32Array[] = [];
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

  /** Capacities are powers of two (up to the context window), so released rows fit the next cache. */
  private grow(wanted: number): void {
    const capacity = Math.min(2 ** Math.ceil(Math.log2(Math.max(wanted, 16))), this.cfg.maxPositions);
    const size = capacity * this.rowSize;
    const old = [...this.keys, ...this.values];
    const copy = (from: Float32Array | undefined) => {
      const next = this.pool.take(size);
      if (from) next.set(from.subarray(0, this.length * this.rowSize));
      return next;
    };
    this.keys = Array.from({ length: this.cfg.numLayers }, (_, l) => copy(this.keys[l]));
    this.values = Array.from({ length: this.cfg.numLayers }, (_, l) => copy(this.values[l]));
    this.capacity = capacity;
    this.pool.put(old);
    this.pool.track(this, [...this.keys, ...this.values]);
  }

  /** Forgets positions from `length` on (e.g. to reuse a shared prompt prefix). */
  truncate(length: number): void {
    this.length = Math.min(this.length, length);
  }

  /** Gives the rows back for the next cache; this cache must not be used afterwards. */
  release(): void {
    this.pool.untrack(this);
    this.pool.put([...this.keys, ...this.values]);
    this.keys = [];
    this.values = [];
    this.capacity = 0;
    this.length = 0;
  }

  bytes(): number {
    return 2 * this.cfg.numLayers * this.capacity * this.rowSize * 4;
  }
}
