/**
 * applyWina(model, config): every projection keeps, per token, the inputs with the largest scores and skips the
 * rest. Installed as the model's LinearFn, beside the forward pass.
 */
import type { Tensor } from '../io/tensor.js';
import { inputMajorView, type Kernels, matmulAny } from '../kernels/kernels.js';
import type { Projection } from '../model/config.js';
import type { Model } from '../model/model.js';
import type { LinearFn } from '../model/transformer.js';
import { type SparsityConfig, sparsityOf, validateSparsityConfig } from './config.js';
import * as ref from '../kernels/reference.js';
import type { MaskRule } from '../kernels/reference.js';
import { keepAdaptive } from './masks.js';
import { computeScores, scoreNorms } from './scores.js';

/** Inputs kept and seen, counted per layer and projection (achieved sparsity is measured, not assumed). */
export class SparsityStats {
  readonly kept = new Map<string, number>();
  readonly total = new Map<string, number>();

  add(layer: number, proj: Projection, kept: number, total: number): void {
    const key = `${layer}.${proj}`;
    this.kept.set(key, (this.kept.get(key) ?? 0) + kept);
    this.total.set(key, (this.total.get(key) ?? 0) + total);
  }

  /** 1 - kept / total over the counted projections, optionally weighted per key (e.g. by matrix size). */
  achieved(weight: (key: string) => number = () => 1): number {
    let kept = 0;
    let total = 0;
    for (const [key, t] of this.total) {
      const w = weight(key) / t;
      total += t * w;
      kept += this.kept.get(key)! * w;
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
  /** Achieved sparsity weighted by each matrix's parameter count: the share of weight reads skipped. */
  achieved(): number;
  /** Restores dense projections. */
  remove(): void;
}

const normCopies = new WeakMap<Kernels, WeakMap<Float64Array, Float64Array>>();

/** A copy of column norms in the kernels' memory, made once per kernels and norms. */
function inKernels(kernels: Kernels, norms: Float64Array): Float64Array {
  let copies = normCopies.get(kernels);
  if (!copies) normCopies.set(kernels, (copies = new WeakMap()));
  let copy = copies.get(norms);
  if (!copy) {
    const bytes = kernels.alloc(norms.length * 8);
    copy = new Float64Array(bytes.buffer, bytes.byteOffset, norms.length);
    copy.set(norms);
    copies.set(norms, copy);
  }
  return copy;
}

const inputMajorCopies = new WeakMap<Kernels, WeakMap<Tensor, Tensor>>();

/** The input-major form of a weight: the weight itself when loaded so, else a copy made once. */
function inputMajor(kernels: Kernels, w: Tensor): Tensor {
  if (w.layout === 'input-major') return inputMajorView(w);
  let copies = inputMajorCopies.get(kernels);
  if (!copies) inputMajorCopies.set(kernels, (copies = new WeakMap()));
  let t = copies.get(w);
  if (!t) copies.set(w, (t = kernels.toInputMajor(w)));
  return t;
}

/**
 * `stats`: count into these instead of fresh ones (WINA-AMP installs one config per cluster and counts them all
 * together).
 */
export function applyWina(
  model: Model,
  config: SparsityConfig,
  opts: { stats?: SparsityStats } = {},
): AppliedSparsity {
  const cfg = model.config;
  validateSparsityConfig(config, cfg.numLayers);
  const transformer = model.transformer;
  const dense = transformer.linear;
  const kernels = transformer.kernels;
  const stats = opts.stats ?? new SparsityStats();
  const norms = scoreNorms(model, config.method);
  const mask = config.mask ?? 'topk';
  const prefill = config.prefill ?? 'all';

  let masked = kernels.f32(0);
  let scores = new Float64Array(0);
  // CATS: the mask found on silu(gate) of the current layer, per token, reused by up and down.
  let catsMask: Int32Array[] = [];
  let catsCounts: number[] = [];
  // Decode's SiLU(gate) row and kept list, in the kernels' memory so the selection runs there.
  let catsAct = kernels.f32(0);
  let catsKept = kernels.i32(0);
  // CATS prefill: every token's SiLU(gate) row with the dropped entries zeroed (in the kernels), and the kept count.
  let catsRows: { masked: Float32Array; kept: number } | undefined;
  let catsActRows = kernels.f32(0);
  let catsMaskedRows = kernels.f32(0);

  // Decode reads only the kept inputs' weights: input-major copies, selection and matvec in the kernels' memory.
  const keptList = kernels.i32(Math.max(cfg.hiddenSize, cfg.intermediateSize, cfg.numHeads * cfg.headDim));
  const kernelNorms = new Map<string, Float64Array>();
  for (const [key, n] of norms) kernelNorms.set(key, inKernels(kernels, n));
  const keep = (layer: number, proj: Projection, row: Float32Array, s: number, out: Int32Array): number => {
    const d = row.length;
    if (mask === 'adaptive') {
      if (scores.length < d) scores = new Float64Array(d);
      computeScores(row, norms.get(`${layer}.${proj}`), scores);
      return keepAdaptive(scores, d, config.adaptive!, out);
    }
    // O(d) selection in the kernels when the row lives there (CATS's SiLU(gate) rows under the paper's or no
    // sparse prefill do not).
    const inKernelMemory = out === keptList || out === catsKept;
    const select = inKernelMemory ? kernels : ref;
    const n = inKernelMemory ? kernelNorms.get(`${layer}.${proj}`) : norms.get(`${layer}.${proj}`);
    if (mask === 'threshold') return select.selectThreshold(row, n, config.thresholds![layer]![proj]!, out);
    return select.selectTopK(row, n, Math.floor(d * (1 - s)), out);
  };

  /** What prefill's maskRows keeps of a d-wide row of `proj` (top-k and threshold masks). */
  const maskRule = (layer: number, proj: Projection, d: number, s: number): MaskRule =>
    mask === 'threshold'
      ? { threshold: config.thresholds![layer]![proj]! }
      : { topK: Math.floor(d * (1 - s)) };
  let keptCounts = kernels.i32(0);
  /** Dense matmul over x with the dropped inputs zeroed: the exact semantics of skipping their columns. */
  const maskedMatmul: LinearFn = (layer, proj, lin, x, tokens, y) => {
    const d = lin.weight.shape[1]!;
    if (masked.length < tokens * d) masked = kernels.f32(tokens * d);
    const s = sparsityOf(config, layer, proj);
    let total = 0;
    if (mask !== 'adaptive' && !(proj === 'down' && config.method === 'cats')) {
      // Every token's selection and masking in one parallel kernel call.
      if (keptCounts.length < tokens) keptCounts = kernels.i32(tokens);
      const counts = keptCounts.subarray(0, tokens);
      const rule = maskRule(layer, proj, d, s);
      kernels.maskRows(
        x.subarray(0, tokens * d),
        tokens,
        kernelNorms.get(`${layer}.${proj}`),
        rule,
        masked,
        counts,
      );
      for (let t = 0; t < tokens; t++) total += counts[t]!;
    } else {
      masked.fill(0, 0, tokens * d);
      for (let t = 0; t < tokens; t++) {
        const row = x.subarray(t * d, (t + 1) * d);
        const n =
          proj === 'down' && config.method === 'cats' ? copyCats(t) : keep(layer, proj, row, s, keptList);
        for (let j = 0; j < n; j++) masked[t * d + keptList[j]!] = row[keptList[j]!]!;
        total += n;
      }
    }
    stats.add(layer, proj, total, d * tokens);
    matmulAny(kernels, lin.weight, masked, tokens, y, lin.bias);
  };

  const copyCats = (t: number): number => {
    keptList.set(catsMask[t]!.subarray(0, catsCounts[t]!));
    return catsCounts[t]!;
  };

  const sparseDecode: LinearFn = (layer, proj, lin, x, _tokens, y) => {
    const [outDim, d] = lin.weight.shape as [number, number];
    const row = x.subarray(0, d);
    const key = `${layer}.${proj}`;
    let n: number;
    if (config.method === 'cats') {
      keptList.set(catsMask[0]!.subarray(0, catsCounts[0]!));
      n = catsCounts[0]!;
    } else if (mask === 'threshold') {
      n = kernels.selectThreshold(row, kernelNorms.get(key), config.thresholds![layer]![proj]!, keptList);
    } else {
      n = kernels.selectTopK(
        row,
        kernelNorms.get(key),
        Math.floor(d * (1 - sparsityOf(config, layer, proj))),
        keptList,
      );
    }
    stats.add(layer, proj, n, d);
    kernels.sparseMatvec(inputMajor(kernels, lin.weight), row, keptList, n, y.subarray(0, outDim), lin.bias);
  };

  const sparse: LinearFn = (layer, proj, lin, x, tokens, y) => {
    const d = lin.weight.shape[1]!;
    const denseTokens =
      tokens === 1 || prefill === 'all' ? 0 : prefill === 'none' ? tokens : Math.ceil(tokens / 100);
    // Adaptive masks choose their own sparsity per token; the others need a sparsity above zero to act.
    const s = mask === 'adaptive' && config.method !== 'dense' ? 1 : sparsityOf(config, layer, proj);
    if (config.method === 'cats' && proj === 'gate') {
      dense(layer, proj, lin, x, tokens, y);
      findCatsMask(layer, y, tokens, lin.weight.shape[0]!, sparsityOf(config, layer, 'up'), denseTokens);
      stats.add(layer, proj, d * tokens, d * tokens);
      return;
    }
    if (
      config.method === 'cats' &&
      proj === 'up' &&
      s > 0 &&
      tokens === 1 &&
      lin.weight.layout !== 'input-major'
    ) {
      // Decode reads only the up_proj rows the mask keeps; the others would be multiplied by zero.
      const [outDim, d] = lin.weight.shape as [number, number];
      const n = copyCats(0);
      kernels.gatherMatvec(lin.weight, x.subarray(0, d), keptList, n, y.subarray(0, outDim), lin.bias);
      stats.add(layer, proj, n, outDim);
      return;
    }
    if (s === 0 || denseTokens === tokens || (config.method === 'cats' && proj === 'up')) {
      dense(layer, proj, lin, x, tokens, y);
      if (config.method === 'cats' && proj === 'up' && s > 0) {
        // Counted in rows of up read (its saving), not inputs.
        const kept = catsRows
          ? zeroOutsideCatsRows(y, catsRows)
          : zeroOutsideCats(y, tokens, lin.weight.shape[0]!);
        stats.add(layer, proj, kept, lin.weight.shape[0]! * tokens);
      } else stats.add(layer, proj, d * tokens, d * tokens);
      return;
    }
    if (config.method === 'cats' && proj === 'down' && catsRows) {
      // up is zero outside the mask, so down's input is masked already: the dense product is the masked one.
      dense(layer, proj, lin, x, tokens, y);
      stats.add(layer, proj, catsRows.kept, d * tokens);
      return;
    }
    if (tokens === 1 && mask !== 'adaptive') {
      sparseDecode(layer, proj, lin, x, tokens, y);
      return;
    }
    if (denseTokens > 0) {
      // The paper's prefill: the first 1% of the prompt stays dense.
      const split = denseTokens * d;
      const outDim = lin.weight.shape[0]!;
      dense(layer, proj, lin, x.subarray(0, split), denseTokens, y.subarray(0, denseTokens * outDim));
      stats.add(layer, proj, split, split);
      maskedMatmul(
        layer,
        proj,
        lin,
        x.subarray(split),
        tokens - denseTokens,
        y.subarray(denseTokens * outDim),
      );
      return;
    }
    maskedMatmul(layer, proj, lin, x, tokens, y);
  };

  const findCatsMask = (
    layer: number,
    gate: Float32Array,
    tokens: number,
    ff: number,
    s: number,
    denseTokens: number,
  ) => {
    catsMask = [];
    catsCounts = [];
    catsRows = undefined;
    if (tokens > 1 && s > 0 && mask !== 'adaptive' && denseTokens === 0) {
      const n = tokens * ff;
      if (catsActRows.length < n) [catsActRows, catsMaskedRows] = [kernels.f32(n), kernels.f32(n)];
      if (keptCounts.length < tokens) keptCounts = kernels.i32(tokens);
      const act = catsActRows.subarray(0, n);
      for (let i = 0; i < n; i++) act[i] = gate[i]! / (1 + Math.exp(-gate[i]!));
      const rule = maskRule(layer, 'up', ff, s);
      const counts = keptCounts.subarray(0, tokens);
      kernels.maskRows(act, tokens, kernelNorms.get(`${layer}.up`), rule, catsMaskedRows, counts);
      catsRows = { masked: catsMaskedRows.subarray(0, n), kept: counts.reduce((a, b) => a + b, 0) };
      return;
    }
    if (tokens === 1 && s > 0) {
      if (catsAct.length < ff) [catsAct, catsKept] = [kernels.f32(ff), kernels.i32(ff)];
      const act = catsAct.subarray(0, ff);
      for (let i = 0; i < ff; i++) act[i] = gate[i]! / (1 + Math.exp(-gate[i]!));
      catsCounts.push(keep(layer, 'up', act, s, catsKept));
      catsMask.push(catsKept);
      return;
    }
    const act = new Float32Array(ff);
    for (let t = 0; t < tokens; t++) {
      for (let i = 0; i < ff; i++) {
        const g = gate[t * ff + i]!;
        act[i] = g / (1 + Math.exp(-g));
      }
      const out = new Int32Array(ff);
      catsCounts.push(s > 0 ? keep(layer, 'up', act, s, out) : ff);
      if (s === 0) out.set(Array.from({ length: ff }, (_, i) => i));
      catsMask.push(out);
    }
  };

  /**
   * CATS skips up's rows outside the mask (their product with silu(gate) would be dropped anyway). Returns the
   * rows kept over all tokens.
   */
  const zeroOutsideCats = (y: Float32Array, tokens: number, ff: number): number => {
    for (let t = 0; t < tokens; t++) {
      const row = y.subarray(t * ff, (t + 1) * ff);
      const keepRow = new Uint8Array(ff);
      for (let j = 0; j < catsCounts[t]!; j++) keepRow[catsMask[t]![j]!] = 1;
      for (let i = 0; i < ff; i++) if (!keepRow[i]) row[i] = 0;
    }
    return catsCounts.reduce((a, b) => a + b, 0);
  };

  /** The same from the masked rows: a kept entry that is exactly zero zeroes up too, with the same product. */
  const zeroOutsideCatsRows = (y: Float32Array, rows: { masked: Float32Array; kept: number }): number => {
    const masked = rows.masked;
    for (let i = 0; i < masked.length; i++) if (masked[i] === 0) y[i] = 0;
    return rows.kept;
  };

  const sizes = new Map<string, number>();
  transformer.weights.layers.forEach((layer, l) => {
    for (const [p, lin] of Object.entries(layer.proj)) sizes.set(`${l}.${p}`, lin.weight.data.length);
  });
  transformer.linear = sparse;
  return {
    config,
    stats,
    achieved: () => stats.achieved((key) => sizes.get(key) ?? 0),
    remove: () => {
      transformer.linear = dense;
    },
  };
}
