// Causal grouped-query attention of T new queries over the KV cache; threads split the query heads
// [begin, end). Each thread keeps its softmax scores at scratch + thread * stride.
import { exp4, hsum } from './simd';

@inline
function dot(a: usize, b: usize, n: i32): f32 {
  let s = f32x4.splat(0);
  const vecEnd = n & ~3;
  for (let i = 0; i < vecEnd; i += 4) {
    const off = <usize>i << 2;
    s = f32x4.add(s, f32x4.mul(v128.load(a + off), v128.load(b + off)));
  }
  let r = hsum(s);
  for (let i = vecEnd; i < n; i++) r += load<f32>(a + (<usize>i << 2)) * load<f32>(b + (<usize>i << 2));
  return r;
}

// out += w * v over n elements.
@inline
function axpy(out: usize, v: usize, w: f32, n: i32): void {
  const ws = f32x4.splat(w);
  const vecEnd = n & ~3;
  for (let i = 0; i < vecEnd; i += 4) {
    const off = <usize>i << 2;
    v128.store(out + off, f32x4.add(v128.load(out + off), f32x4.mul(ws, v128.load(v + off))));
  }
  for (let i = vecEnd; i < n; i++) {
    const off = <usize>i << 2;
    store<f32>(out + off, load<f32>(out + off) + w * load<f32>(v + off));
  }
}

// scores[0..n) <- exp(scores - max); returns their sum.
@inline
function expShifted(scores: usize, n: i32, max: f32): f32 {
  const m = f32x4.splat(max);
  let sum = f32x4.splat(0);
  const vecEnd = n & ~3;
  for (let i = 0; i < vecEnd; i += 4) {
    const off = <usize>i << 2;
    const e = exp4(f32x4.sub(v128.load(scores + off), m));
    v128.store(scores + off, e);
    sum = f32x4.add(sum, e);
  }
  let s = hsum(sum);
  for (let i = vecEnd; i < n; i++) {
    const off = <usize>i << 2;
    const e = f32x4.extract_lane(exp4(f32x4.splat(load<f32>(scores + off) - max)), 0);
    store<f32>(scores + off, e);
    s += e;
  }
  return s;
}

export function attention(
  begin: i32,
  end: i32,
  thread: i32,
  out: usize,
  q: usize,
  kCache: usize,
  vCache: usize,
  tokens: i32,
  startPos: i32,
  heads: i32,
  kvHeads: i32,
  headDim: i32,
  window: i32,
  scratch: usize,
  stride: usize,
): void {
  const scores = scratch + <usize>thread * stride;
  const group = heads / kvHeads;
  const kvStride = <usize>(kvHeads * headDim) << 2;
  const headBytes = <usize>headDim << 2;
  const scale = <f32>(1.0 / Math.sqrt(<f64>headDim));
  for (let t = 0; t < tokens; t++) {
    const pos = startPos + t;
    const first = window > 0 ? max(0, pos - window + 1) : 0;
    const n = pos - first + 1;
    for (let h = begin; h < end; h++) {
      const qh = q + <usize>(t * heads + h) * headBytes;
      const kvOff = <usize>(h / group) * headBytes;
      let maxScore = <f32>-Infinity;
      for (let p = 0; p < n; p++) {
        const s = dot(qh, kCache + <usize>(first + p) * kvStride + kvOff, headDim) * scale;
        store<f32>(scores + (<usize>p << 2), s);
        maxScore = max(maxScore, s);
      }
      const inv = <f32>1 / expShifted(scores, n, maxScore);
      const oh = out + <usize>(t * heads + h) * headBytes;
      memory.fill(oh, 0, headBytes);
      for (let p = 0; p < n; p++) {
        axpy(oh, vCache + <usize>(first + p) * kvStride + kvOff, load<f32>(scores + (<usize>p << 2)) * inv, headDim);
      }
    }
  }
}

/** Bytes of score scratch each thread needs for queries up to position positions - 1. */
export function attentionScratchBytes(positions: i32): usize {
  return ((<usize>positions << 2) + 63) & ~63;
}
