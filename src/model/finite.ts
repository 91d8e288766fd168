/**
 * NaN or Inf logits: a checkpoint with NaN / Inf weights, or a config that makes the arithmetic overflow. Sampling
 * would turn them into token 0 repeated, so generation and scoring stop with one line naming the likely cause.
 */
import { WinaError } from '../errors.js';
import type { Tensor } from '../kernels/tensor.js';
import { FORMATS } from '../kernels/formats.js';
import { PROJECTIONS } from './config.js';
import type { ModelWeights } from './weights.js';

/** The model, not the request, is at fault: a server answers it with a 500. */
export class NonFiniteLogitsError extends WinaError {}

/** Throws when any logit is NaN or +-Inf; only then are the weights scanned to name the cause. */
export function checkFiniteLogits(logits: Float32Array, weights: ModelWeights): Float32Array {
  for (let i = 0; i < logits.length; i++) {
    if (!Number.isFinite(logits[i]!)) {
      const bad = firstNonFiniteWeight(weights);
      throw new NonFiniteLogitsError(
        bad
          ? `the model computed non-finite logits (NaN or Inf): weight ${bad} holds NaN or Inf values; the checkpoint is corrupt`
          : 'the model computed non-finite logits (NaN or Inf) although every weight is finite: check the config (rms_norm_eps, rope settings) and the checkpoint',
      );
    }
  }
  return logits;
}

/** The name of the first weight with a NaN or Inf in it, or undefined. */
export function firstNonFiniteWeight(w: ModelWeights): string | undefined {
  const vector = (data: Float32Array): Tensor => ({ dtype: 'F32', shape: [data.length], data });
  const checks: [string, Tensor][] = [['embed_tokens', w.embed]];
  w.layers.forEach((layer, l) => {
    checks.push([`layers.${l}.input_layernorm`, vector(layer.attnNorm)]);
    checks.push([`layers.${l}.post_attention_layernorm`, vector(layer.mlpNorm)]);
    for (const p of PROJECTIONS) {
      const { weight, bias } = layer.proj[p];
      checks.push([`layers.${l}.${p}_proj`, weight]);
      if (bias) checks.push([`layers.${l}.${p}_proj.bias`, vector(bias)]);
    }
    for (const [name, t] of [
      ['attn_shortcut', layer.attnShortcut],
      ['mlp_shortcut', layer.mlpShortcut],
    ] as const) {
      if (t) checks.push([`layers.${l}.${name}`, t]);
    }
  });
  checks.push(['norm', vector(w.finalNorm)], ['lm_head', w.lmHead.weight]);
  if (w.lmHead.bias) checks.push(['lm_head.bias', vector(w.lmHead.bias)]);
  return checks.find(([, t]) => FORMATS[t.dtype].hasNonFinite(t))?.[0];
}
