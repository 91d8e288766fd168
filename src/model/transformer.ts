/**
 * The forward pass of a Llama-family decoder (Llama 2/3, Mistral, Qwen2, Phi-3), for T new tokens at once:
 * prefill passes the whole prompt, decode passes one token. Read top to bottom, as llama2.c's run.c.
 */
import { fail } from '../io/errors.js';
import * as ref from '../kernels/reference.js';
import type { ModelConfig, Projection } from './config.js';
import type { KVCache } from './kv-cache.js';
import { RopeTable } from './rope.js';
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

export const denseLinear: LinearFn = (_layer, _proj, lin, x, tokens, y) =>
  ref.matmul(lin.weight, x, tokens, y, lin.bias);

export interface ForwardOptions {
  /** Return logits of the last token only (generation) instead of every token (scoring). */
  lastOnly?: boolean;
  /** Called with the residual stream after the embedding (0), after each layer, and after the final norm. */
  onHidden?: (index: number, states: Float32Array) => void;
}

/** Scratch buffers sized for T tokens, reused across calls (run.c's RunState). */
class RunState {
  tokens = 0;
  x = new Float32Array(0);
  h = new Float32Array(0);
  q = new Float32Array(0);
  k = new Float32Array(0);
  v = new Float32Array(0);
  att = new Float32Array(0);
  gate = new Float32Array(0);
  up = new Float32Array(0);
  out = new Float32Array(0);

  ensure(cfg: ModelConfig, tokens: number): void {
    if (tokens <= this.tokens) return;
    const qDim = cfg.numHeads * cfg.headDim;
    const kvDim = cfg.numKvHeads * cfg.headDim;
    const ff = cfg.intermediateSize;
    this.tokens = tokens;
    this.x = new Float32Array(tokens * cfg.hiddenSize);
    this.h = new Float32Array(tokens * cfg.hiddenSize);
    this.q = new Float32Array(tokens * qDim);
    this.k = new Float32Array(tokens * kvDim);
    this.v = new Float32Array(tokens * kvDim);
    this.att = new Float32Array(tokens * qDim);
    this.gate = new Float32Array(tokens * ff);
    this.up = new Float32Array(tokens * ff);
    this.out = new Float32Array(tokens * cfg.hiddenSize);
  }
}

export class Transformer {
  linear: LinearFn = denseLinear;
  private readonly rope: RopeTable;
  private readonly state = new RunState();

  constructor(
    readonly cfg: ModelConfig,
    readonly weights: ModelWeights,
  ) {
    this.rope = new RopeTable(cfg.rope);
  }

  /** Runs `ids` at positions cache.length.. and appends their keys and values to the cache. */
  forward(ids: readonly number[], cache: KVCache, opts: ForwardOptions = {}): Float32Array {
    const { cfg, weights: w, state: s } = this;
    const T = ids.length;
    const start = cache.length;
    const d = cfg.hiddenSize;
    const kvDim = cfg.numKvHeads * cfg.headDim;
    if (T === 0) fail('forward needs at least one token');
    if (start + T > cfg.maxPositions) {
      fail(`sequence of ${start + T} tokens exceeds the context window of ${cfg.maxPositions}`);
    }
    s.ensure(cfg, T);
    cache.reserve(start + T);
    this.rope.ensure(start + T);

    for (let t = 0; t < T; t++) {
      const id = ids[t]!;
      if (!Number.isInteger(id) || id < 0 || id >= cfg.vocabSize)
        fail(`token id ${id} is outside the vocabulary`);
      ref.widen(w.embed, id * d, s.x.subarray(t * d, (t + 1) * d));
    }
    opts.onHidden?.(0, s.x.slice(0, T * d));

    for (let l = 0; l < cfg.numLayers; l++) {
      const layer = w.layers[l]!;
      const p = layer.proj;
      // Attention: x += o(attention(rope(q(h)), rope(k(h)), v(h))), h = rmsnorm(x).
      ref.rmsnorm(s.h, s.x, layer.attnNorm, cfg.rmsNormEps, T);
      this.linear(l, 'q', p.q, s.h, T, s.q);
      this.linear(l, 'k', p.k, s.h, T, s.k);
      this.linear(l, 'v', p.v, s.h, T, s.v);
      const { cos, sin } = this.rope;
      ref.rope(s.q, T, cfg.numHeads, cfg.headDim, cfg.rope.rotaryDim, cos, sin, start);
      ref.rope(s.k, T, cfg.numKvHeads, cfg.headDim, cfg.rope.rotaryDim, cos, sin, start);
      cache.keys[l]!.set(s.k.subarray(0, T * kvDim), start * kvDim);
      cache.values[l]!.set(s.v.subarray(0, T * kvDim), start * kvDim);
      ref.attention(
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
      this.linear(l, 'o', p.o, s.att, T, s.out);
      ref.addInPlace(s.x, s.out, T * d);

      // Feed-forward (SwiGLU): x += down(silu(gate(h)) * up(h)), h = rmsnorm(x).
      ref.rmsnorm(s.h, s.x, layer.mlpNorm, cfg.rmsNormEps, T);
      this.linear(l, 'gate', p.gate, s.h, T, s.gate);
      this.linear(l, 'up', p.up, s.h, T, s.up);
      ref.swiglu(s.gate, s.up, T * cfg.intermediateSize);
      this.linear(l, 'down', p.down, s.gate, T, s.out);
      ref.addInPlace(s.x, s.out, T * d);
      if (opts.onHidden && l < cfg.numLayers - 1) opts.onHidden(l + 1, s.x.slice(0, T * d));
    }
    cache.length = start + T;

    ref.rmsnorm(s.h, s.x, w.finalNorm, cfg.rmsNormEps, T);
    opts.onHidden?.(cfg.numLayers, s.h.slice(0, T * d));
    const rows = opts.lastOnly ? 1 : T;
    const logits = new Float32Array(rows * cfg.vocabSize);
    ref.matmul(w.lmHead.weight, s.h.subarray((T - rows) * d, T * d), rows, logits, w.lmHead.bias);
    return logits;
  }
}
