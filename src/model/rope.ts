import type { RopeConfig } from './config.js';

const f32 = Math.fround;

/**
 * Inverse frequencies of each rotated channel pair, with the checkpoint's scaling rule applied. Computed in
 * float32 steps as transformers does (even for float64 models), so angles agree with the reference exactly.
 */
export function inverseFrequencies(rope: RopeConfig, contextLength: number): Float32Array {
  const half = rope.rotaryDim / 2;
  const inv = new Float32Array(half);
  for (let i = 0; i < half; i++) inv[i] = f32(1 / f32(f32(rope.theta) ** f32((2 * i) / rope.rotaryDim)));
  if (rope.type === 'linear') {
    for (let i = 0; i < half; i++) inv[i]! /= rope.factor!;
  } else if (rope.type === 'llama3') {
    // Llama 3.1: long wavelengths are slowed by `factor`, short ones kept, the band between interpolated.
    const { factor, lowFreqFactor, highFreqFactor, originalMaxPositions } = rope as Required<RopeConfig>;
    const lowWavelen = originalMaxPositions / lowFreqFactor;
    const highWavelen = originalMaxPositions / highFreqFactor;
    for (let i = 0; i < half; i++) {
      const wavelen = (2 * Math.PI) / inv[i]!;
      if (wavelen > lowWavelen) inv[i]! /= factor;
      else if (wavelen >= highWavelen) {
        const smooth = (originalMaxPositions / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
        inv[i] = (1 - smooth) * (inv[i]! / factor) + smooth * inv[i]!;
      }
    }
  } else if (rope.type === 'longrope') {
    // Phi-3 long context: per-channel rescaling, the long set once the context passes the original length.
    const factors = contextLength > rope.originalMaxPositions! ? rope.longFactor! : rope.shortFactor!;
    for (let i = 0; i < half; i++) inv[i]! /= factors[i]!;
  }
  return inv;
}

/** cos and sin of position * frequency for positions [0, capacity), rotaryDim/2 values per position. */
export class RopeTable {
  cos: Float32Array = new Float32Array(0);
  sin: Float32Array = new Float32Array(0);
  private capacity = 0;
  private longContext = false;

  constructor(
    private readonly rope: RopeConfig,
    /** Where the tables live (the kernels' memory). */
    private readonly f32: (n: number) => Float32Array = (n) => new Float32Array(n),
  ) {}

  /** Makes the table cover positions below `end`. */
  ensure(end: number): void {
    const long = this.rope.type === 'longrope' && end > this.rope.originalMaxPositions!;
    if (end <= this.capacity && long === this.longContext) return;
    const capacity = Math.max(end, 2 * this.capacity, 64);
    const inv = inverseFrequencies(this.rope, end);
    const scale = this.rope.type === 'longrope' ? this.rope.attentionFactor! : 1;
    const half = inv.length;
    // Both tables are allocated before anything changes: when memory runs out the old tables stay in force.
    const cos = this.f32(capacity * half);
    const sin = this.f32(capacity * half);
    for (let p = 0; p < capacity; p++) {
      for (let i = 0; i < half; i++) {
        const angle = f32(p * inv[i]!);
        cos[p * half + i] = f32(Math.cos(angle)) * scale;
        sin[p * half + i] = f32(Math.sin(angle)) * scale;
      }
    }
    this.cos = cos;
    this.sin = sin;
    this.capacity = capacity;
    this.longContext = long;
  }
}

/**
 * A q / k weight from rotate-adjacent-pairs order (llama.cpp, llama2.c) to Hugging Face's rotate-halves: row
 * h*hd + 2i + j moves to h*hd + j*hd/2 + i, as HF's conversion script permutes them. Rows are `rowBytes` long.
 */
export function pairsToHalves(src: Uint8Array, dst: Uint8Array, heads: number, rowBytes: number): void {
  const headDim = src.length / rowBytes / heads;
  const half = headDim / 2;
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        const from = (h * headDim + 2 * i + j) * rowBytes;
        const to = (h * headDim + j * half + i) * rowBytes;
        dst.set(src.subarray(from, from + rowBytes), to);
      }
    }
  }
}
