/**
 * applyWina(model, config): the model seen through sparse projections. Every projection keeps, per token, the
 * inputs with the largest scores and skips the rest; the returned view carries that LinearFn, the model itself
 * stays dense. CATS has its own LinearFn (it masks up and down by SiLU(gate)); WINA, TEAL and the paper's WINA
 * share the general one.
 */
import type { Tensor } from '../kernels/tensor.js';
import { inputMajorView, type Kernels, matmulAny } from '../kernels/kernels.js';
import type { Projection } from '../model/config.js';
import { Model, type Projections } from '../model/model.js';
import type { Linear } from '../model/weights.js';
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

/** A model seen through sparse projections; `stats` counts what they kept. */
export class SparseModel extends Model {
  private readonly sizes = new Map<string, number>();

  constructor(
    base: Model,
    projections: Projections,
    /** Read on every call: the server changes its sparsities between requests. */
    readonly sparsity: SparsityConfig,
    readonly stats: SparsityStats,
  ) {
    super(base.transformer, base.tokenizer, base.info, { ...projections, of: base });
    base.transformer.weights.layers.forEach((layer, l) => {
      for (const [p, lin] of Object.entries(layer.proj)) this.sizes.set(`${l}.${p}`, lin.weight.data.length);
    });
  }

  /** Achieved sparsity weighted by each matrix's parameter count: the share of weight reads skipped. */
  achieved(): number {
    return this.stats.achieved((key) => this.sizes.get(key) ?? 0);
  }
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
 * `stats`: count into these instead of fresh ones (WINA-AMP applies one config per cluster and counts them all
 * together).
 */
export function applyWina(
  model: Model,
  config: SparsityConfig,
  opts: { stats?: SparsityStats } = {},
): SparseModel {
  validateSparsityConfig(config, model.config.numLayers);
  const stats = opts.stats ?? new SparsityStats();
  const skip = new InputSkipper(model, config, stats);
  const linear = config.method === 'cats' ? catsLinear(skip) : generalLinear(skip);
  return new SparseModel(model, { linear }, config, stats);
}

/** WINA, TEAL, the paper's WINA (and dense): every projection skips its own low-scoring inputs. */
function generalLinear(skip: InputSkipper): LinearFn {
  const { config } = skip;
  return (layer, proj, lin, x, tokens, y) => {
    // Adaptive masks choose their own sparsity per token; the others need a sparsity above zero to act.
    const s = skip.adaptive && config.method !== 'dense' ? 1 : sparsityOf(config, layer, proj);
    const denseTokens = skip.denseTokens(tokens);
    if (s === 0 || denseTokens === tokens) return skip.dense(layer, proj, lin, x, tokens, y);
    if (tokens === 1 && !skip.adaptive) {
      const d = lin.weight.shape[1]!;
      const n = skip.selectDecode(layer, proj, x.subarray(0, d));
      return skip.sparseMatvec(layer, proj, lin, x, n, y);
    }
    skip.prefill(layer, proj, lin, x, tokens, y, denseTokens);
  };
}

/**
 * CATS: the inputs of down are SiLU(gate), so its mask (top-k or threshold on |SiLU(gate)|) is found once from
 * gate's output; up skips the rows outside it (their product would be dropped) and down the columns. Attention
 * stays dense (sparsityOf is 0 there).
 */
function catsLinear(skip: InputSkipper): LinearFn {
  const { config, kernels } = skip;
  // The mask of the current layer per token, found on gate and reused by up and down.
  let masks: Int32Array[] = [];
  let counts: number[] = [];
  // Decode's SiLU(gate) row and kept list, in the kernels' memory so the selection runs there.
  let act1 = kernels.f32(0);
  let kept1 = kernels.i32(0);
  // Prefill: every token's SiLU(gate) row with the dropped entries zeroed (in the kernels), and the kept count.
  let rows: { masked: Float32Array; kept: number } | undefined;
  let actRows = kernels.f32(0);
  let maskedRows = kernels.f32(0);

  const findMask = (layer: number, gate: Float32Array, tokens: number, ff: number, denseTokens: number) => {
    const s = sparsityOf(config, layer, 'up');
    masks = [];
    counts = [];
    rows = undefined;
    if (tokens > 1 && s > 0 && !skip.adaptive && denseTokens === 0) {
      const n = tokens * ff;
      if (actRows.length < n) [actRows, maskedRows] = [kernels.f32(n), kernels.f32(n)];
      const act = actRows.subarray(0, n);
      for (let i = 0; i < n; i++) act[i] = gate[i]! / (1 + Math.exp(-gate[i]!));
      const kept = skip.maskRows(layer, 'up', act, tokens, ff, s, maskedRows);
      rows = { masked: maskedRows.subarray(0, n), kept };
      return;
    }
    if (tokens === 1 && s > 0) {
      if (act1.length < ff) [act1, kept1] = [kernels.f32(ff), kernels.i32(ff)];
      const act = act1.subarray(0, ff);
      for (let i = 0; i < ff; i++) act[i] = gate[i]! / (1 + Math.exp(-gate[i]!));
      counts.push(skip.keep(layer, 'up', act, s, kept1, true));
      masks.push(kept1);
      return;
    }
    const act = new Float32Array(ff);
    for (let t = 0; t < tokens; t++) {
      for (let i = 0; i < ff; i++) {
        const g = gate[t * ff + i]!;
        act[i] = g / (1 + Math.exp(-g));
      }
      const out = new Int32Array(ff);
      // The paper's prefill: its first tokens keep every row.
      const all = s === 0 || t < denseTokens;
      counts.push(all ? ff : skip.keep(layer, 'up', act, s, out, false));
      if (all) out.set(Array.from({ length: ff }, (_, i) => i));
      masks.push(out);
    }
  };

  /** Token t's mask into the kept list; its length. */
  const useMask = (t: number): number => {
    skip.keptList.set(masks[t]!.subarray(0, counts[t]!));
    return counts[t]!;
  };

  /** Zeroes up's rows outside the mask; the rows kept over all tokens. */
  const zeroOutsideMask = (y: Float32Array, tokens: number, ff: number): number => {
    if (rows) {
      // From the masked rows: a kept entry that is exactly zero zeroes up too, with the same product.
      const masked = rows.masked;
      for (let i = 0; i < masked.length; i++) if (masked[i] === 0) y[i] = 0;
      return rows.kept;
    }
    for (let t = 0; t < tokens; t++) {
      const row = y.subarray(t * ff, (t + 1) * ff);
      const keepRow = new Uint8Array(ff);
      for (let j = 0; j < counts[t]!; j++) keepRow[masks[t]![j]!] = 1;
      for (let i = 0; i < ff; i++) if (!keepRow[i]) row[i] = 0;
    }
    return counts.reduce((a, b) => a + b, 0);
  };

  return (layer, proj, lin, x, tokens, y) => {
    const [outDim, d] = lin.weight.shape as [number, number];
    const denseTokens = skip.denseTokens(tokens);
    if (proj === 'gate') {
      skip.kernelsDense(lin, x, tokens, y);
      findMask(layer, y, tokens, outDim, denseTokens);
      skip.stats.add(layer, proj, d * tokens, d * tokens);
      return;
    }
    const s = skip.adaptive ? 1 : sparsityOf(config, layer, proj);
    if (s === 0 || denseTokens === tokens) return skip.dense(layer, proj, lin, x, tokens, y);
    if (proj === 'up') {
      if (tokens === 1 && lin.weight.layout !== 'input-major') {
        // Decode reads only the rows the mask keeps.
        const n = useMask(0);
        kernels.gatherMatvec(lin.weight, x.subarray(0, d), skip.keptList, n, y.subarray(0, outDim), lin.bias);
        skip.stats.add(layer, proj, n, outDim);
        return;
      }
      skip.kernelsDense(lin, x, tokens, y);
      // Counted in rows of up read (its saving), not inputs.
      skip.stats.add(layer, proj, zeroOutsideMask(y, tokens, outDim), outDim * tokens);
      return;
    }
    // down
    if (rows) {
      // up is zero outside the mask, so down's input is masked already: the dense product is the masked one.
      skip.kernelsDense(lin, x, tokens, y);
      skip.stats.add(layer, proj, rows.kept, d * tokens);
      return;
    }
    if (tokens === 1 && !skip.adaptive) return skip.sparseMatvec(layer, proj, lin, x, useMask(0), y);
    skip.prefill(layer, proj, lin, x, tokens, y, denseTokens, useMask);
  };
}

/** What both sparse LinearFns share: the config and counts, selection in the kernels, masked and sparse products. */
class InputSkipper {
  readonly kernels: Kernels;
  readonly adaptive: boolean;
  private readonly mask: NonNullable<SparsityConfig['mask']>;
  private readonly prefillPolicy: NonNullable<SparsityConfig['prefill']>;
  private readonly norms: Map<string, Float64Array>;
  private readonly kernelNorms = new Map<string, Float64Array>();
  /** Kept inputs of the current row, in the kernels' memory so selection and the sparse matvec run there. */
  readonly keptList: Int32Array;
  private scores = new Float64Array(0);
  private masked: Float32Array;
  private keptCounts: Int32Array;

  constructor(
    model: Model,
    readonly config: SparsityConfig,
    readonly stats: SparsityStats,
  ) {
    const cfg = model.config;
    this.kernels = model.transformer.kernels;
    this.mask = config.mask ?? 'topk';
    this.adaptive = this.mask === 'adaptive';
    this.prefillPolicy = config.prefill ?? 'all';
    this.norms = scoreNorms(model, config.method);
    for (const [key, n] of this.norms) this.kernelNorms.set(key, inKernels(this.kernels, n));
    this.keptList = this.kernels.i32(
      Math.max(cfg.hiddenSize, cfg.intermediateSize, cfg.numHeads * cfg.headDim),
    );
    this.masked = this.kernels.f32(0);
    this.keptCounts = this.kernels.i32(0);
  }

  /** Prompt tokens the prefill policy keeps dense: none, all, or the paper's first 1%. */
  denseTokens(tokens: number): number {
    if (tokens === 1 || this.prefillPolicy === 'all') return 0;
    return this.prefillPolicy === 'none' ? tokens : Math.ceil(tokens / 100);
  }

  kernelsDense(lin: Linear, x: Float32Array, tokens: number, y: Float32Array): void {
    matmulAny(this.kernels, lin.weight, x, tokens, y, lin.bias);
  }

  /** The dense product, counted as every input kept. */
  dense(
    layer: number,
    proj: Projection,
    lin: Linear,
    x: Float32Array,
    tokens: number,
    y: Float32Array,
  ): void {
    this.kernelsDense(lin, x, tokens, y);
    const d = lin.weight.shape[1]!;
    this.stats.add(layer, proj, d * tokens, d * tokens);
  }

  /**
   * The kept inputs of one row into `out`: adaptive masks score in TypeScript; top-k and threshold select in
   * O(d), in the kernels when row and `out` live there (`inKernels`), else in the reference.
   */
  keep(
    layer: number,
    proj: Projection,
    row: Float32Array,
    s: number,
    out: Int32Array,
    inKernels: boolean,
  ): number {
    const d = row.length;
    const key = `${layer}.${proj}`;
    if (this.adaptive) {
      if (this.scores.length < d) this.scores = new Float64Array(d);
      computeScores(row, this.norms.get(key), this.scores);
      return keepAdaptive(this.scores, d, this.config.adaptive!, out);
    }
    const select = inKernels ? this.kernels : ref;
    const n = inKernels ? this.kernelNorms.get(key) : this.norms.get(key);
    if (this.mask === 'threshold')
      return select.selectThreshold(row, n, this.config.thresholds![layer]![proj]!, out);
    return select.selectTopK(row, n, Math.floor(d * (1 - s)), out);
  }

  /** Decode's selection of a row in the kernels' memory into keptList. */
  selectDecode(layer: number, proj: Projection, row: Float32Array): number {
    return this.keep(layer, proj, row, sparsityOf(this.config, layer, proj), this.keptList, true);
  }

  /** Decode: the column-sparse matvec over keptList's first n inputs, reading only their weights. */
  sparseMatvec(
    layer: number,
    proj: Projection,
    lin: Linear,
    x: Float32Array,
    n: number,
    y: Float32Array,
  ): void {
    const [outDim, d] = lin.weight.shape as [number, number];
    this.stats.add(layer, proj, n, d);
    const w = inputMajor(this.kernels, lin.weight);
    this.kernels.sparseMatvec(w, x.subarray(0, d), this.keptList, n, y.subarray(0, outDim), lin.bias);
  }

  /** Every token's row of `x` masked in one parallel kernel call (top-k / threshold); the inputs kept in all. */
  maskRows(
    layer: number,
    proj: Projection,
    x: Float32Array,
    tokens: number,
    d: number,
    s: number,
    out: Float32Array,
  ): number {
    if (this.keptCounts.length < tokens) this.keptCounts = this.kernels.i32(tokens);
    const counts = this.keptCounts.subarray(0, tokens);
    const rule: MaskRule =
      this.mask === 'threshold'
        ? { threshold: this.config.thresholds![layer]![proj]! }
        : { topK: Math.floor(d * (1 - s)) };
    this.kernels.maskRows(
      x.subarray(0, tokens * d),
      tokens,
      this.kernelNorms.get(`${layer}.${proj}`),
      rule,
      out,
      counts,
    );
    let kept = 0;
    for (let t = 0; t < tokens; t++) kept += counts[t]!;
    return kept;
  }

  /**
   * A prompt: its first `denseTokens` dense (the paper's prefill), the rest through the dense matmul over x with
   * the dropped inputs zeroed (the exact semantics of skipping their columns, one pass over the weights).
   * `maskOf(t)`: token t's kept inputs into keptList, for masks found elsewhere (CATS); otherwise each row is
   * selected here.
   */
  prefill(
    layer: number,
    proj: Projection,
    lin: Linear,
    x: Float32Array,
    tokens: number,
    y: Float32Array,
    denseTokens: number,
    maskOf?: (t: number) => number,
  ): void {
    const [outDim, d] = lin.weight.shape as [number, number];
    if (denseTokens > 0) {
      const split = denseTokens * d;
      this.dense(layer, proj, lin, x.subarray(0, split), denseTokens, y.subarray(0, denseTokens * outDim));
    }
    const rest = tokens - denseTokens;
    const from = x.subarray(denseTokens * d, tokens * d);
    if (this.masked.length < rest * d) this.masked = this.kernels.f32(rest * d);
    const masked = this.masked;
    const s = sparsityOf(this.config, layer, proj);
    let kept = 0;
    if (!this.adaptive && !maskOf) kept = this.maskRows(layer, proj, from, rest, d, s, masked);
    else {
      masked.fill(0, 0, rest * d);
      for (let t = 0; t < rest; t++) {
        const row = from.subarray(t * d, (t + 1) * d);
        const n = maskOf ? maskOf(denseTokens + t) : this.keep(layer, proj, row, s, this.keptList, true);
        for (let j = 0; j < n; j++) masked[t * d + this.keptList[j]!] = row[this.keptList[j]!]!;
        kept += n;
      }
    }
    this.stats.add(layer, proj, kept, d * rest);
    this.kernelsDense(lin, masked, rest, y.subarray(denseTokens * outDim));
  }
}
