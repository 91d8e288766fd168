/**
 * Plain TypeScript kernels: the reference every faster kernel is tested against, and the fallback where
 * WebAssembly is unavailable. Activations are F32; weights stay in their stored dtype and are widened row by row.
 */
import type { Tensor } from './tensor.js';
import { FORMATS, formatOf } from './formats.js';
import { quantizeXReference } from './q8.js';

/** Writes elements [start, start + out.length) of a weight tensor into `out` as F32. */
export function widen(t: Tensor, start: number, out: Float32Array): void {
  FORMATS[t.dtype].widen(t, start, out);
}

/**
 * Y[t, o] = sum_i W[o, i] X[t, i] (+ bias[o]) for T tokens. W is [out, in] row-major; each row is widened once
 * and used for every token, so prefill reads the weights once.
 */
export function matmul(
  w: Tensor,
  x: Float32Array,
  tokens: number,
  y: Float32Array,
  bias?: Float32Array,
): void {
  const [outDim, inDim] = w.shape as [number, number];
  const rowDot = formatOf(w.dtype).quantizesX?.rowDot;
  if (tokens === 1 && rowDot) {
    const xq = quantizeXReference(x);
    for (let o = 0; o < outDim; o++) y[o] = rowDot(w, o, xq) + (bias ? bias[o]! : 0);
    return;
  }
  const row = new (x.constructor as Float32ArrayConstructor)(inDim);
  for (let o = 0; o < outDim; o++) {
    widen(w, o * inDim, row);
    const b = bias ? bias[o]! : 0;
    for (let t = 0; t < tokens; t++) {
      const xo = t * inDim;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      let i = 0;
      for (; i + 3 < inDim; i += 4) {
        s0 += row[i]! * x[xo + i]!;
        s1 += row[i + 1]! * x[xo + i + 1]!;
        s2 += row[i + 2]! * x[xo + i + 2]!;
        s3 += row[i + 3]! * x[xo + i + 3]!;
      }
      for (; i < inDim; i++) s0 += row[i]! * x[xo + i]!;
      y[t * outDim + o] = s0 + s1 + (s2 + s3) + b;
    }
  }
}

/** out[t] = x[t] / rms(x[t]) * weight, for T rows of length d. */
export function rmsnorm(
  out: Float32Array,
  x: Float32Array,
  weight: Float32Array,
  eps: number,
  tokens: number,
): void {
  const d = weight.length;
  for (let t = 0; t < tokens; t++) {
    const o = t * d;
    let ss = 0;
    for (let i = 0; i < d; i++) ss += x[o + i]! * x[o + i]!;
    const scale = 1 / Math.sqrt(ss / d + eps);
    for (let i = 0; i < d; i++) out[o + i] = x[o + i]! * scale * weight[i]!;
  }
}

/**
 * Rotary embedding in the Hugging Face convention (rotate halves): for each head, element i pairs with
 * i + rotaryDim/2. `cos`/`sin` hold rotaryDim/2 values per position.
 */
export function rope(
  x: Float32Array,
  tokens: number,
  heads: number,
  headDim: number,
  rotaryDim: number,
  cos: Float32Array,
  sin: Float32Array,
  startPos: number,
): void {
  const half = rotaryDim / 2;
  for (let t = 0; t < tokens; t++) {
    const table = (startPos + t) * half;
    for (let h = 0; h < heads; h++) {
      const base = (t * heads + h) * headDim;
      for (let i = 0; i < half; i++) {
        const c = cos[table + i]!;
        const s = sin[table + i]!;
        const a = x[base + i]!;
        const b = x[base + i + half]!;
        x[base + i] = a * c - b * s;
        x[base + i + half] = b * c + a * s;
      }
    }
  }
}

/**
 * Causal attention of T new queries (positions startPos..startPos+T-1) over the cached keys and values
 * (positions 0..startPos+T-1). Grouped-query: query head h reads KV head floor(h / (heads / kvHeads)).
 * `window` > 0 limits each query to the last `window` positions (Mistral's sliding window).
 */
export function attention(
  out: Float32Array,
  q: Float32Array,
  kCache: Float32Array,
  vCache: Float32Array,
  tokens: number,
  startPos: number,
  heads: number,
  kvHeads: number,
  headDim: number,
  window: number,
): void {
  const group = heads / kvHeads;
  const kvStride = kvHeads * headDim;
  const scale = 1 / Math.sqrt(headDim);
  const scores = new Float64Array(startPos + tokens);
  for (let t = 0; t < tokens; t++) {
    const pos = startPos + t;
    const first = window > 0 ? Math.max(0, pos - window + 1) : 0;
    for (let h = 0; h < heads; h++) {
      const qo = (t * heads + h) * headDim;
      const kvo = Math.floor(h / group) * headDim;
      let max = Number.NEGATIVE_INFINITY;
      for (let p = first; p <= pos; p++) {
        const ko = p * kvStride + kvo;
        let s = 0;
        for (let i = 0; i < headDim; i++) s += q[qo + i]! * kCache[ko + i]!;
        s *= scale;
        scores[p] = s;
        if (s > max) max = s;
      }
      let sum = 0;
      for (let p = first; p <= pos; p++) {
        const e = Math.exp(scores[p]! - max);
        scores[p] = e;
        sum += e;
      }
      const oo = (t * heads + h) * headDim;
      out.fill(0, oo, oo + headDim);
      for (let p = first; p <= pos; p++) {
        const weight = scores[p]! / sum;
        const vo = p * kvStride + kvo;
        for (let i = 0; i < headDim; i++) out[oo + i] += weight * vCache[vo + i]!;
      }
    }
  }
}

/** gate <- silu(gate) * up, in place (SwiGLU). */
export function swiglu(gate: Float32Array, up: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) {
    const g = gate[i]!;
    gate[i] = (g / (1 + Math.exp(-g))) * up[i]!;
  }
}

/** x += y over the first n elements (residual connections). */
export function addInPlace(x: Float32Array, y: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) x[i] += y[i]!;
}

/** The input-major copy [in, out] of a weight [out, in]: each input channel's weights contiguous. */
export function toInputMajor(w: Tensor): Tensor {
  const own = formatOf(w.dtype).inputMajor;
  if (own) return own(w, (n) => new Uint8Array(n));
  const [outDim, inDim] = w.shape as [number, number];
  const src = w.data;
  const format = FORMATS[w.dtype];
  const data = format.view(new Uint8Array(src.length * format.bytes));
  for (let o = 0; o < outDim; o++) {
    for (let i = 0; i < inDim; i++) data[i * outDim + o] = src[o * inDim + i]!;
  }
  return { dtype: w.dtype, shape: [inDim, outDim], data };
}

/**
 * Column-sparse y = sum over kept[0..count) of x[i] * WT[i, :] (+ bias) on the input-major WT [in, out]:
 * only the kept inputs' weights are read. Accumulates in double.
 */
export function sparseMatvec(
  wT: Tensor,
  x: Float32Array,
  kept: Int32Array,
  count: number,
  y: Float32Array,
  bias?: Float32Array,
): void {
  const outDim = wT.shape[1]!;
  const quantized = formatOf(wT.dtype).quantizesX?.sparse;
  if (quantized) {
    quantized(wT, quantizeXReference(x), kept, count, y);
    if (bias) for (let o = 0; o < outDim; o++) y[o] += bias[o]!;
    return;
  }
  const acc = new Float64Array(outDim);
  const row = new Float32Array(outDim);
  for (let j = 0; j < count; j++) {
    const i = kept[j]!;
    widen(wT, i * outDim, row);
    const xi = x[i]!;
    for (let o = 0; o < outDim; o++) acc[o] += xi * row[o]!;
  }
  for (let o = 0; o < outDim; o++) y[o] = acc[o]! + (bias ? bias[o]! : 0);
}

/**
 * Y[t, o] = sum_i X[t, i] WT[i, o] (+ bias[o]) on the input-major layout WT [in, out]: the dense product of
 * several tokens where weights are stored for column-sparse decode. Accumulates in double.
 */
export function matmulInputMajor(
  wT: Tensor,
  x: Float32Array,
  tokens: number,
  y: Float32Array,
  bias?: Float32Array,
): void {
  const [inDim, outDim] = wT.shape as [number, number];
  const acc = new Float64Array(tokens * outDim);
  const row = new Float32Array(outDim);
  for (let i = 0; i < inDim; i++) {
    widen(wT, i * outDim, row);
    for (let t = 0; t < tokens; t++) {
      const xi = x[t * inDim + i]!;
      for (let o = 0; o < outDim; o++) acc[t * outDim + o] += xi * row[o]!;
    }
  }
  for (let t = 0; t < tokens; t++) {
    for (let o = 0; o < outDim; o++) y[t * outDim + o] = acc[t * outDim + o]! + (bias ? bias[o]! : 0);
  }
}

/**
 * Row-gather y[rows[j]] = W[rows[j], :] . x (+ bias) for j < count on row-major W [out, in], every other y zero:
 * only the listed rows' weights are read (CATS's up_proj). Accumulates in double.
 */
export function gatherMatvec(
  w: Tensor,
  x: Float32Array,
  rows: Int32Array,
  count: number,
  y: Float32Array,
  bias?: Float32Array,
): void {
  const [outDim, inDim] = w.shape as [number, number];
  const row = new Float32Array(inDim);
  y.fill(0, 0, outDim);
  const rowDot = formatOf(w.dtype).quantizesX?.rowDot;
  const xq = rowDot ? quantizeXReference(x) : undefined;
  for (let j = 0; j < count; j++) {
    const o = rows[j]!;
    if (rowDot) {
      y[o] = rowDot(w, o, xq!) + (bias ? bias[o]! : 0);
      continue;
    }
    widen(w, o * inDim, row);
    let acc = 0;
    for (let i = 0; i < inDim; i++) acc += row[i]! * x[i]!;
    y[o] = acc + (bias ? bias[o]! : 0);
  }
}

/** score_i = |x_i| * norms_i (|x_i| without norms), in double. */
function selectionScores(x: Float32Array, norms: Float32Array | Float64Array | undefined): Float64Array {
  const scores = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) scores[i] = Math.abs(x[i]!) * (norms ? norms[i]! : 1);
  return scores;
}

/**
 * Keeps the k inputs with the highest scores (ties to the lower index, as a stable sort), writing their
 * indices in ascending order to `kept`; returns how many (k clamped to [0, x.length]).
 */
export function selectTopK(
  x: Float32Array,
  norms: Float32Array | Float64Array | undefined,
  k: number,
  kept: Int32Array,
): number {
  const scores = selectionScores(x, norms);
  const keep = Math.max(0, Math.min(x.length, Math.floor(k)));
  const order = Array.from(scores.keys()).sort((a, b) => scores[b]! - scores[a]! || a - b);
  kept.set(order.slice(0, keep).sort((a, b) => a - b));
  return keep;
}

/** Keeps every input whose score exceeds `threshold`, indices ascending in `kept`; returns how many. */
export function selectThreshold(
  x: Float32Array,
  norms: Float32Array | Float64Array | undefined,
  threshold: number,
  kept: Int32Array,
): number {
  const scores = selectionScores(x, norms);
  let n = 0;
  for (let i = 0; i < scores.length; i++) if (scores[i]! > threshold) kept[n++] = i;
  return n;
}

/** Which inputs a masked row keeps: the `topK` highest scores, or those above `threshold`. */
export type MaskRule = { topK: number } | { threshold: number };

/**
 * Prefill's masked inputs, row by row (`tokens` rows of x.length / tokens): out's row keeps the inputs that
 * selectTopK or selectThreshold keeps and is zero elsewhere; counts[t] = how many row t kept.
 */
export function maskRows(
  x: Float32Array,
  tokens: number,
  norms: Float32Array | Float64Array | undefined,
  rule: MaskRule,
  out: Float32Array,
  counts: Int32Array,
): void {
  const d = x.length / tokens;
  const kept = new Int32Array(d);
  for (let t = 0; t < tokens; t++) {
    const row = x.subarray(t * d, (t + 1) * d);
    const n =
      'topK' in rule
        ? selectTopK(row, norms, rule.topK, kept)
        : selectThreshold(row, norms, rule.threshold, kept);
    out.fill(0, t * d, (t + 1) * d);
    for (let j = 0; j < n; j++) out[t * d + kept[j]!] = row[kept[j]!]!;
    counts[t] = n;
  }
}
