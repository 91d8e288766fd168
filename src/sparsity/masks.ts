/**
 * Mask modes. Top-k and threshold selection are kernels (`selectTopK`, `selectThreshold`); the adaptive mask,
 * which sorts, is plain TypeScript. Kept indices come out in ascending order.
 */

export type MaskMode = 'topk' | 'threshold' | 'adaptive';

export interface AdaptiveOptions {
  /** Largest share of the score mass sum(score_i^2) that may be dropped. */
  tolerance: number;
  minSparsity: number;
  maxSparsity: number;
}

function sortedDescending(scores: Float64Array, d: number): number[] {
  return Array.from({ length: d }, (_, i) => i).sort((a, b) => scores[b]! - scores[a]! || a - b);
}

function writeAscending(indices: number[], kept: Int32Array): number {
  indices.sort((a, b) => a - b);
  kept.set(indices);
  return indices.length;
}

/**
 * The fewest inputs whose dropped score mass stays within the tolerance, with the sparsity clamped to
 * [minSparsity, maxSparsity]: easy tokens get sparser, hard ones denser.
 */
export function keepAdaptive(scores: Float64Array, d: number, o: AdaptiveOptions, kept: Int32Array): number {
  const order = sortedDescending(scores, d);
  let total = 0;
  for (let i = 0; i < d; i++) total += scores[i]! * scores[i]!;
  const allowed = o.tolerance * total;
  // Drop from the smallest score up while the dropped mass stays within the tolerance.
  let dropped = 0;
  let drop = 0;
  while (drop < d && dropped + scores[order[d - 1 - drop]!]! ** 2 <= allowed) {
    dropped += scores[order[d - 1 - drop]!]! ** 2;
    drop++;
  }
  const minDrop = Math.ceil(d * o.minSparsity);
  const maxDrop = Math.floor(d * o.maxSparsity);
  drop = Math.min(Math.max(drop, minDrop), maxDrop);
  return writeAscending(order.slice(0, d - drop), kept);
}
