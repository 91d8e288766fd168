import type { ModelConfig } from './config.js';

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
    /** Where rows live (the kernels' memory). */
    private readonly f32: (n: number) => Float32Array = (n) => new Float32Array(n),
  ) {
    this.rowSize = cfg.numKvHeads * cfg.headDim;
    this.grow(Math.min(initialCapacity, cfg.maxPositions));
  }

  /** Makes room for positions below `end`, doubling so long generations reallocate rarely. */
  reserve(end: number): void {
    if (end > this.capacity) this.grow(Math.min(Math.max(end, 2 * this.capacity), this.cfg.maxPositions));
  }

  private grow(capacity: number): void {
    const size = capacity * this.rowSize;
    const copy = (old: Float32Array | undefined) => {
      const next = this.f32(size);
      if (old) next.set(old.subarray(0, this.length * this.rowSize));
      return next;
    };
    this.keys = Array.from({ length: this.cfg.numLayers }, (_, l) => copy(this.keys[l]));
    this.values = Array.from({ length: this.cfg.numLayers }, (_, l) => copy(this.values[l]));
    this.capacity = capacity;
  }

  /** Forgets positions from `length` on (e.g. to reuse a shared prompt prefix). */
  truncate(length: number): void {
    this.length = Math.min(this.length, length);
  }

  bytes(): number {
    return 2 * this.cfg.numLayers * this.capacity * this.rowSize * 4;
  }
}
