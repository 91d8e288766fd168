import { widen } from '../kernels/reference.js';
import type { Tensor } from '../kernels/tensor.js';
import type { Projection } from '../model/config.js';
import type { Model } from '../model/model.js';
import { type Method, WEIGHTED } from './config.js';

const normCache = new WeakMap<Tensor, Float64Array>();

/** ||W[:, i]||_2 for every input i of a [out, in] weight: WINA's per-input weight (cached per tensor). */
export function columnNorms(w: Tensor): Float64Array {
  let norms = normCache.get(w);
  if (!norms) normCache.set(w, (norms = computeColumnNorms(w)));
  return norms;
}

function computeColumnNorms(w: Tensor): Float64Array {
  if (w.layout === 'input-major') {
    // Stored transposed: a column of W is a contiguous row.
    const [outDim, inDim] = w.shape as [number, number];
    const norms = new Float64Array(inDim);
    const row = new Float32Array(outDim);
    for (let i = 0; i < inDim; i++) {
      widen(w, i * outDim, row);
      let s = 0;
      for (let o = 0; o < outDim; o++) s += row[o]! * row[o]!;
      norms[i] = Math.sqrt(s);
    }
    return norms;
  }
  const [outDim, inDim] = w.shape as [number, number];
  const sums = new Float64Array(inDim);
  const row = new Float32Array(inDim);
  for (let o = 0; o < outDim; o++) {
    widen(w, o * inDim, row);
    for (let i = 0; i < inDim; i++) sums[i] += row[i]! * row[i]!;
  }
  return sums.map(Math.sqrt);
}

/** Norms of a fused matrix (Phi-3's qkv) from its parts: the parts stack rows, so squared norms add. */
export function stackedNorms(parts: Float64Array[]): Float64Array {
  const out = new Float64Array(parts[0]!.length);
  for (let i = 0; i < out.length; i++) {
    let s = 0;
    for (const p of parts) s += p[i]! * p[i]!;
    out[i] = Math.sqrt(s);
  }
  return out;
}

/**
 * WINA's per-input weights ||W[:, i]|| for every (layer, projection) the method weighs, keyed "layer.proj";
 * a fused matrix (Phi-3) gives one set of norms to all its parts, as they share one mask.
 */
export function scoreNorms(model: Model, method: Method): Map<string, Float64Array> {
  const norms = new Map<string, Float64Array>();
  const weighted = WEIGHTED[method];
  model.transformer.weights.layers.forEach((layer, l) => {
    const own = (p: Projection) => columnNorms(layer.proj[p].weight);
    for (const proj of Object.keys(layer.proj) as Projection[]) {
      const group = model.info.fused.find((g) => g.includes(proj));
      if (!(group ?? [proj]).some(weighted)) continue;
      norms.set(`${l}.${proj}`, group ? stackedNorms(group.map(own)) : own(proj));
    }
  });
  return norms;
}

/** score_i = |x_i| * norm_i (norm absent: |x_i|). */
export function computeScores(x: Float32Array, norms: Float64Array | undefined, out: Float64Array): void {
  for (let i = 0; i < x.length; i++) out[i] = Math.abs(x[i]!) * (norms ? norms[i]! : 1);
}
