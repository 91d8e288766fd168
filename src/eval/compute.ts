/**
 * Compute per token of a sparse model, from what the run measured:
 *
 *   GFLOPs/token = 2 * sum_{layer, proj} params(layer.proj) * kept(layer.proj) / total(layer.proj)   (projections)
 *                + 4 * layers * heads * headDim * avgContext                                        (QK^T and AV)
 *                + 2 * vocab * hidden                                                               (lm_head)
 *                + extra (the orthogonal transform's shortcut products, when applied)
 *
 * all over 1e9. kept / total are applyWina's counts per "layer.proj" key (inputs kept over inputs seen: the share
 * of the matrix's columns read; CATS counts rows of up), 1 for a dense projection. avgContext is the mean number of
 * keys each scored or generated position attended to. One multiply-add = 2 FLOPs; norms, RoPE, softmax, SwiGLU
 * and biases (O(hidden) per token) and the embedding lookup are left out. Achieved sparsity is the same
 * parameter-weighted share, 1 - sum params * kept / total / sum params (applyWina's achieved()).
 */
import type { Model } from '../model/model.js';
import type { Usage } from './scoring.js';

/** Inputs kept and seen per "layer.proj" key, as plain records (cacheable). */
export interface KeptCounts {
  kept: Record<string, number>;
  total: Record<string, number>;
}

/** Parameters of every projection matrix, by "layer.proj". */
export function projectionSizes(model: Model): Map<string, number> {
  const sizes = new Map<string, number>();
  model.transformer.weights.layers.forEach((layer, l) => {
    for (const [p, lin] of Object.entries(layer.proj))
      sizes.set(`${l}.${p}`, lin.weight.shape[0]! * lin.weight.shape[1]!);
  });
  return sizes;
}

function keptFraction(counts: KeptCounts, key: string): number {
  const total = counts.total[key];
  return total ? (counts.kept[key] ?? 0) / total : 1;
}

export function achievedSparsity(sizes: Map<string, number>, counts: KeptCounts): number {
  let all = 0;
  let read = 0;
  for (const [key, size] of sizes) {
    if (!counts.total[key]) continue;
    all += size;
    read += size * keptFraction(counts, key);
  }
  return all ? 1 - read / all : 0;
}

export interface ComputeShape {
  sizes: Map<string, number>;
  layers: number;
  heads: number;
  headDim: number;
  vocab: number;
  hidden: number;
  /** FLOPs per token added by the orthogonal transform (0 without it). */
  extraFlops: number;
}

export function computeShape(model: Model, extraFlops = 0): ComputeShape {
  const c = model.config;
  return {
    sizes: projectionSizes(model),
    layers: c.numLayers,
    heads: c.numHeads,
    headDim: c.headDim,
    vocab: c.vocabSize,
    hidden: c.hiddenSize,
    extraFlops,
  };
}

export function gflopsPerToken(shape: ComputeShape, counts: KeptCounts, usage: Usage): number {
  let matrices = 0;
  for (const [key, size] of shape.sizes) matrices += size * keptFraction(counts, key);
  const avgContext = usage.tokens ? usage.attended / usage.tokens : 0;
  const attention = 4 * shape.layers * shape.heads * shape.headDim * avgContext;
  return (2 * matrices + attention + 2 * shape.vocab * shape.hidden + shape.extraFlops) / 1e9;
}

export function addCounts(a: KeptCounts, b: KeptCounts): KeptCounts {
  const out: KeptCounts = { kept: { ...a.kept }, total: { ...a.total } };
  for (const [k, v] of Object.entries(b.kept)) out.kept[k] = (out.kept[k] ?? 0) + v;
  for (const [k, v] of Object.entries(b.total)) out.total[k] = (out.total[k] ?? 0) + v;
  return out;
}
