/**
 * applyWina(model, config): every projection keeps, per token, the k inputs with the largest scores and skips
 * the rest. Installed as the model's LinearFn, beside the forward pass.
 */
import type { Projection } from '../model/config.js';
import type { Model } from '../model/model.js';
import type { LinearFn } from '../model/transformer.js';
import { type SparsityConfig, sparsityOf, validateSparsityConfig, WEIGHTED } from './config.js';
import { columnNorms, selectTopK, stackedNorms } from './scores.js';

/** Inputs kept and seen, counted per layer and projection (achieved sparsity is measured, not assumed). */
export class SparsityStats {
  readonly kept = new Map<string, number>();
  readonly total = new Map<string, number>();

  add(layer: number, proj: Projection, kept: number, total: number): void {
    const key = `${layer}.${proj}`;
    this.kept.set(key, (this.kept.get(key) ?? 0) + kept);
    this.total.set(key, (this.total.get(key) ?? 0) + total);
  }

  /** 1 - kept / total over everything counted (inputs, not weighted by matrix size). */
  achieved(): number {
    let kept = 0;
    let total = 0;
    for (const [key, t] of this.total) {
      total += t;
      kept += this.kept.get(key)!;
    }
    return total ? 1 - kept / total : 0;
  }

  reset(): void {
    this.kept.clear();
    this.total.clear();
  }
}

export interface AppliedSparsity {
  config: SparsityConfig;
  stats: SparsityStats;
  /** Restores dense projections. */
  remove(): void;
}

export function applyWina(model: Model, config: SparsityConfig): AppliedSparsity {
  const cfg = model.config;
  validateSparsityConfig(config, cfg.numLayers);
  const transformer = model.transformer;
  const dense = transformer.linear;
  const kernels = transformer.kernels;
  const stats = new SparsityStats();

  // WINA's per-input weights: ||W[:, i]||, of the fused matrix where the checkpoint fuses (one mask for it).
  const norms = new Map<string, Float64Array>();
  const weighted = WEIGHTED[config.method];
  transformer.weights.layers.forEach((layer, l) => {
    const own = (p: Projection) => columnNorms(layer.proj[p].weight);
    for (const proj of Object.keys(layer.proj) as Projection[]) {
      const group = model.info.fused.find((g) => g.includes(proj));
      if (!(group ?? [proj]).some(weighted)) continue;
      norms.set(`${l}.${proj}`, group ? stackedNorms(group.map(own)) : own(proj));
    }
  });

  const prefillSparse = (config.prefill ?? 'all') === 'all';
  let masked = kernels.f32(0);
  let kept = new Int32Array(0);

  const sparse: LinearFn = (layer, proj, lin, x, tokens, y) => {
    const s = sparsityOf(config, layer, proj);
    const d = lin.weight.shape[1]!;
    if (s === 0 || (tokens > 1 && !prefillSparse)) {
      dense(layer, proj, lin, x, tokens, y);
      stats.add(layer, proj, d * tokens, d * tokens);
      return;
    }
    const k = Math.floor(d * (1 - s));
    if (masked.length < tokens * d) masked = kernels.f32(tokens * d);
    if (kept.length < d) kept = new Int32Array(d);
    masked.fill(0, 0, tokens * d);
    const scoreNorms = norms.get(`${layer}.${proj}`);
    for (let t = 0; t < tokens; t++) {
      const row = x.subarray(t * d, (t + 1) * d);
      const n = selectTopK(row, scoreNorms, k, kept);
      for (let j = 0; j < n; j++) masked[t * d + kept[j]!] = row[kept[j]!]!;
    }
    stats.add(layer, proj, k * tokens, d * tokens);
    kernels.matmul(lin.weight, masked, tokens, y, lin.bias);
  };

  transformer.linear = sparse;
  return {
    config,
    stats,
    remove: () => {
      transformer.linear = dense;
    },
  };
}
