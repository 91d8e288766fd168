/**
 * The forward pass of a Llama-family decoder (Llama 2/3, Mistral, Qwen2, Phi-3), for T new tokens at once:
 * prefill passes the whole prompt, decode passes one token. Read top to bottom, as llama2.c's run.c.
 */
import { fail } from '../errors.js';
import { type Kernels, matmulAny, referenceKernels } from '../kernels/kernels.js';
import { widen } from '../kernels/reference.js';
import type { ModelConfig, Projection } from './config.js';
import type { KVCache } from './kv-cache.js';
import { RopeTable } from './rope.js';
import type { Tensor } from '../kernels/tensor.js';
import type { Linear, ModelWeights } from './weights.js';

/**
 * Every projection of every layer goes through this function, so that sparsity (which inputs to keep) and
 * faster kernels plug in beside the model instead of inside it. x: [tokens, in], y: [tokens, out].
 */
export type LinearFn = (
  layer: number,
  proj: Projection,
  lin: Linear,
  x: Float32Array,
  tokens: number,
  y: Float32Array,
) => void;

export interface ForwardOptions {
  /** Return logits of the last token only (generation) instead of every token (scoring). */
  lastOnly?: boolean;
  /** Called with the residual stream after the embedding (0), after each layer, and after the final norm. */
  onHidden?: (index: number, states: Float32Array) => void;
}

/** Scratch buffers sized for T tokens, reused across calls (run.c's RunState). */
class RunState {
  tokens = 0;
  x: Float32Array = new Float32Array(0);
  h: Float32Array = new Float32Array(0);
  q: Float32Array = new Float32Array(0);
  k: Float32Array = new Float32Array(0);
  v: Float32Array = new Float32Array(0);
  att: Float32Array = new Float32Array(0);
  gate: Float32Array = new Float32Array(0);
  up: Float32Array = new Float32Array(0);
  out: Float32Array = new Float32Array(0);

  logits: Float32Array = new Float32Array(0);

  constructor(private readonly kernels: Kernels) {}

  ensure(cfg: ModelConfig, needed: number): void {
    if (needed <= this.tokens) return;
    // Powers of two: buffers are never freed in the kernels' memory, so growth must stay rare.
    const tokens = 2 ** Math.ceil(Math.log2(Math.max(needed, 1)));
    const f32 = (n: number) => this.kernels.f32(tokens * n);
    const qDim = cfg.numHeads * cfg.headDim;
    const kvDim = cfg.numKvHeads * cfg.headDim;
    this.tokens = tokens;
    this.x = f32(cfg.hiddenSize);
    this.h = f32(cfg.hiddenSize);
    this.q = f32(qDim);
    this.k = f32(kvDim);
    this.v = f32(kvDim);
    this.att = f32(qDim);
    this.gate = f32(cfg.intermediateSize);
    this.up = f32(cfg.intermediateSize);
    this.out = f32(cfg.hiddenSize);
  }

  /** Logits of every token are only needed for scoring; sized on demand. */
  logitsFor(cfg: ModelConfig, rows: number): Float32Array {
    if (this.logits.length < rows * cfg.vocabSize) {
      this.logits = this.kernels.f32(2 ** Math.ceil(Math.log2(rows)) * cfg.vocabSize);
    }
    return this.logits;
  }
}

export class Transformer {
  /** The kernels' matmul: what every projection is when no sparsity is passed (see LinearFn). */
  readonly dense: LinearFn;
  private readonly rope: RopeTable;
  private readonly state: RunState;

  constructor(
    readonly cfg: ModelConfig,
    readonly weights: ModelWeights,
    readonly kernels: Kernels = referenceKernels,
  ) {
    this.rope = new RopeTable(cfg.rope, (n) => kernels.f32(n));
    this.state = new RunState(kernels);
    this.dense = (_layer, _proj, lin, x, tokens, y) => matmulAny(kernels, lin.weight, x, tokens, y, lin.bias);
  }

  /**
   * Runs `ids` at positions cache.length.. with every projection through `linear`, and appends their keys and
   * values to the cache.
   */
  forward(
    ids: readonly number[],
    cache: KVCache,
    opts: ForwardOptions = {},
    linear: LinearFn = this.dense,
  ): Float32Array {
    const { cfg, weights: w, state: s, kernels } = this;
    const T = ids.length;
    const start = cache.length;
    const d = cfg.hiddenSize;
    if (T === 0) fail('forward needs at least one token');
    if (start + T > cfg.maxPositions) {
      fail(`sequence of ${start + T} tokens exceeds the context window of ${cfg.maxPositions}`);
    }
    this.prepare(T, cache, start);
    for (let t = 0; t < T; t++) {
      const id = ids[t]!;
      if (!Number.isInteger(id) || id < 0 || id >= cfg.vocabSize)
        fail(`token id ${id} is outside the vocabulary`);
      widen(w.embed, id * d, s.x.subarray(t * d, (t + 1) * d));
    }
    opts.onHidden?.(0, s.x.slice(0, T * d));
    for (let l = 0; l < cfg.numLayers; l++) {
      this.block(l, T, start, cache, linear);
      if (opts.onHidden && l < cfg.numLayers - 1) opts.onHidden(l + 1, s.x.slice(0, T * d));
    }
    cache.length = start + T;

    kernels.rmsnorm(s.h, s.x, w.finalNorm, cfg.rmsNormEps, T);
    opts.onHidden?.(cfg.numLayers, s.h.slice(0, T * d));
    const rows = opts.lastOnly ? 1 : T;
    const logits = s.logitsFor(cfg, rows);
    matmulAny(kernels, w.lmHead.weight, s.h.subarray((T - rows) * d, T * d), rows, logits, w.lmHead.bias);
    return logits.slice(0, rows * cfg.vocabSize);
  }

  /**
   * One block alone on the residual stream `input` ([T, d], positions 0..T-1), with a fresh cache: what greedy
   * allocation compares dense and sparse outputs on.
   */
  runBlock(layer: number, input: Float32Array, cache: KVCache, linear: LinearFn = this.dense): Float32Array {
    const T = input.length / this.cfg.hiddenSize;
    cache.truncate(0);
    this.prepare(T, cache, 0);
    this.state.x.set(input);
    this.block(layer, T, 0, cache, linear);
    return this.state.x.slice(0, input.length);
  }

  private prepare(T: number, cache: KVCache, start: number): void {
    this.state.ensure(this.cfg, T);
    cache.reserve(start + T);
    this.rope.ensure(start + T);
  }

  /** Block `l` on the T tokens of the residual stream s.x, at positions start..start+T-1. */
  private block(l: number, T: number, start: number, cache: KVCache, linear: LinearFn): void {
    const { cfg, state: s, kernels } = this;
    const layer = this.weights.layers[l]!;
    const p = layer.proj;
    const kvDim = cfg.numKvHeads * cfg.headDim;

    // Attention: x += o(attention(rope(q(h)), rope(k(h)), v(h))), h = rmsnorm(x).
    kernels.rmsnorm(s.h, s.x, layer.attnNorm, cfg.rmsNormEps, T);
    linear(l, 'q', p.q, s.h, T, s.q);
    linear(l, 'k', p.k, s.h, T, s.k);
    linear(l, 'v', p.v, s.h, T, s.v);
    const { cos, sin } = this.rope;
    kernels.rope(s.q, T, cfg.numHeads, cfg.headDim, cfg.rope.rotaryDim, cos, sin, start);
    kernels.rope(s.k, T, cfg.numKvHeads, cfg.headDim, cfg.rope.rotaryDim, cos, sin, start);
    cache.keys[l]!.set(s.k.subarray(0, T * kvDim), start * kvDim);
    cache.values[l]!.set(s.v.subarray(0, T * kvDim), start * kvDim);
    kernels.attention(
      s.att,
      s.q,
      cache.keys[l]!,
      cache.values[l]!,
      T,
      start,
      cfg.numHeads,
      cfg.numKvHeads,
      cfg.headDim,
      cfg.slidingWindow,
    );
    linear(l, 'o', p.o, s.att, T, s.out);
    this.addResidual(layer.attnShortcut, T);

    // Feed-forward (SwiGLU): x += down(silu(gate(h)) * up(h)), h = rmsnorm(x).
    kernels.rmsnorm(s.h, s.x, layer.mlpNorm, cfg.rmsNormEps, T);
    linear(l, 'gate', p.gate, s.h, T, s.gate);
    linear(l, 'up', p.up, s.h, T, s.up);
    kernels.swiglu(s.gate, s.up, T * cfg.intermediateSize);
    linear(l, 'down', p.down, s.gate, T, s.out);
    this.addResidual(layer.mlpShortcut, T);
  }

  /**
   * x += out. With the orthogonal transform the residual stream changes basis between blocks, so x is first
   * multiplied by the block's shortcut rotation (a d x d matrix).
   */
  private addResidual(shortcut: Tensor | undefined, tokens: number): void {
    const { state: s, kernels } = this;
    const n = tokens * this.cfg.hiddenSize;
    if (shortcut) {
      kernels.matmul(shortcut, s.x, tokens, s.h);
      s.x.set(s.h.subarray(0, n));
    }
    kernels.addInPlace(s.x, s.out, n);
  }
}
