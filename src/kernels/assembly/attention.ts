// Causal grouped-query attention of T new queries over the KV cache. Chunks of query heads [begin, end) run on
// any thread. Positions are the outer loop, so each thread sweeps the cache rows in order (one row holds every
// KV head of a position) instead of striding through them once per head; heads go four at a time.
import { exp4, hsum4, madd } from './simd';

// Lane r = dot(q_r, k_r) for four heads (heads sharing a KV head pass the same k).
@inline
function dot4(
  q0: usize,
  q1: usize,
  q2: usize,
  q3: usize,
  k0: usize,
  k1: usize,
  k2: usize,
  k3: usize,
  n: i32,
): v128 {
  let a0 = f32x4.splat(0);
  let a1 = f32x4.splat(0);
  let a2 = f32x4.splat(0);
  let a3 = f32x4.splat(0);
  const vecEnd = n & ~3;
  for (let i = 0; i < vecEnd; i += 4) {
    const off = (<usize>i) << 2;
    a0 = madd(v128.load(q0 + off), v128.load(k0 + off), a0);
    a1 = madd(v128.load(q1 + off), v128.load(k1 + off), a1);
    a2 = madd(v128.load(q2 + off), v128.load(k2 + off), a2);
    a3 = madd(v128.load(q3 + off), v128.load(k3 + off), a3);
  }
  let s = hsum4(a0, a1, a2, a3);
  for (let i = vecEnd; i < n; i++) {
    const off = (<usize>i) << 2;
    s = madd(lanes(q0 + off, q1 + off, q2 + off, q3 + off), lanes(k0 + off, k1 + off, k2 + off, k3 + off), s);
  }
  return s;
}


@inline
function lanes(p0: usize, p1: usize, p2: usize, p3: usize): v128 {
  const v = f32x4.replace_lane(f32x4.splat(load<f32>(p0)), 1, load<f32>(p1));
  return f32x4.replace_lane(f32x4.replace_lane(v, 2, load<f32>(p2)), 3, load<f32>(p3));
}

// out_r += w[r] * v_r for four heads.
@inline
function axpy4(
  o0: usize,
  o1: usize,
  o2: usize,
  o3: usize,
  v0: usize,
  v1: usize,
  v2: usize,
  v3: usize,
  w: v128,
  n: i32,
): void {
  const w0 = i32x4.shuffle(w, w, 0, 0, 0, 0);
  const w1 = i32x4.shuffle(w, w, 1, 1, 1, 1);
  const w2 = i32x4.shuffle(w, w, 2, 2, 2, 2);
  const w3 = i32x4.shuffle(w, w, 3, 3, 3, 3);
  const vecEnd = n & ~3;
  for (let i = 0; i < vecEnd; i += 4) {
    const off = (<usize>i) << 2;
    v128.store(o0 + off, madd(w0, v128.load(v0 + off), v128.load(o0 + off)));
    v128.store(o1 + off, madd(w1, v128.load(v1 + off), v128.load(o1 + off)));
    v128.store(o2 + off, madd(w2, v128.load(v2 + off), v128.load(o2 + off)));
    v128.store(o3 + off, madd(w3, v128.load(v3 + off), v128.load(o3 + off)));
  }
  for (let i = vecEnd; i < n; i++) {
    const off = (<usize>i) << 2;
    store<f32>(o0 + off, load<f32>(o0 + off) + f32x4.extract_lane(w, 0) * load<f32>(v0 + off));
    store<f32>(o1 + off, load<f32>(o1 + off) + f32x4.extract_lane(w, 1) * load<f32>(v1 + off));
    store<f32>(o2 + off, load<f32>(o2 + off) + f32x4.extract_lane(w, 2) * load<f32>(v2 + off));
    store<f32>(o3 + off, load<f32>(o3 + off) + f32x4.extract_lane(w, 3) * load<f32>(v3 + off));
  }
}

// scores[0..n) <- softmax(scores).
@inline
function softmax(scores: usize, n: i32): void {
  let m = <f32>-Infinity;
  for (let p = 0; p < n; p++) m = max(m, load<f32>(scores + ((<usize>p) << 2)));
  const mv = f32x4.splat(m);
  let sum = f32x4.splat(0);
  const vecEnd = n & ~3;
  for (let p = 0; p < vecEnd; p += 4) {
    const off = (<usize>p) << 2;
    const e = exp4(f32x4.sub(v128.load(scores + off), mv));
    v128.store(scores + off, e);
    sum = f32x4.add(sum, e);
  }
  let total =
    f32x4.extract_lane(sum, 0) +
    f32x4.extract_lane(sum, 1) +
    (f32x4.extract_lane(sum, 2) + f32x4.extract_lane(sum, 3));
  for (let p = vecEnd; p < n; p++) {
    const off = (<usize>p) << 2;
    const e = f32x4.extract_lane(exp4(f32x4.splat(load<f32>(scores + off) - m)), 0);
    store<f32>(scores + off, e);
    total += e;
  }
  const inv = <f32>1 / total;
  for (let p = 0; p < n; p++) {
    const off = (<usize>p) << 2;
    store<f32>(scores + off, load<f32>(scores + off) * inv);
  }
}

/**
 * Scratch: one row of scores (positions floats) per query head, then one spare head output that runs of fewer
 * than four heads write their unused lanes to. Chunks use the rows of their own heads, so they share it.
 */
export function attentionScratchBytes(heads: i32, positions: i32, headDim: i32): usize {
  return (<usize>heads * <usize>positions + <usize>headDim) << 2;
}

export function attention(
  begin: i32,
  end: i32,
  _slot: i32,
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
): void {
  const group = heads / kvHeads;
  const kvStride = (<usize>(kvHeads * headDim)) << 2;
  const headBytes = (<usize>headDim) << 2;
  const scale = f32x4.splat(<f32>(1.0 / Math.sqrt(<f64>headDim)));
  // Rows of a fixed length: chunks on other threads may be at another token (another n) meanwhile.
  const rowBytes = (<usize>(startPos + tokens)) << 2;
  const spare = scratch + <usize>heads * rowBytes;
  for (let t = 0; t < tokens; t++) {
    const pos = startPos + t;
    const first = window > 0 ? max(0, pos - window + 1) : 0;
    const n = pos - first + 1;
    const qt = q + <usize>(t * heads) * headBytes;
    const ot = out + <usize>(t * heads) * headBytes;
    for (let p = 0; p < n; p++) {
      const kRow = kCache + <usize>(first + p) * kvStride;
      for (let h = begin; h < end; h += 4) {
        const h1 = min(h + 1, end - 1);
        const h2 = min(h + 2, end - 1);
        const h3 = min(h + 3, end - 1);
        const s = f32x4.mul(
          dot4(
            qt + <usize>h * headBytes,
            qt + <usize>h1 * headBytes,
            qt + <usize>h2 * headBytes,
            qt + <usize>h3 * headBytes,
            kRow + <usize>(h / group) * headBytes,
            kRow + <usize>(h1 / group) * headBytes,
            kRow + <usize>(h2 / group) * headBytes,
            kRow + <usize>(h3 / group) * headBytes,
            headDim,
          ),
          scale,
        );
        // Lanes past `end` repeat the last head: storing them again is harmless.
        const at = scratch + ((<usize>p) << 2);
        store<f32>(at + <usize>h * rowBytes, f32x4.extract_lane(s, 0));
        store<f32>(at + <usize>h1 * rowBytes, f32x4.extract_lane(s, 1));
        store<f32>(at + <usize>h2 * rowBytes, f32x4.extract_lane(s, 2));
        store<f32>(at + <usize>h3 * rowBytes, f32x4.extract_lane(s, 3));
      }
    }
    for (let h = begin; h < end; h++) {
      softmax(scratch + <usize>h * rowBytes, n);
      memory.fill(ot + <usize>h * headBytes, 0, headBytes);
    }
    for (let p = 0; p < n; p++) {
      const vRow = vCache + <usize>(first + p) * kvStride;
      for (let h = begin; h < end; h += 4) {
        const h1 = min(h + 1, end - 1);
        const h2 = min(h + 2, end - 1);
        const h3 = min(h + 3, end - 1);
        const at = scratch + ((<usize>p) << 2);
        const w = lanes(
          at + <usize>h * rowBytes,
          at + <usize>h1 * rowBytes,
          at + <usize>h2 * rowBytes,
          at + <usize>h3 * rowBytes,
        );
        axpy4(
          ot + <usize>h * headBytes,
          h + 1 < end ? ot + <usize>h1 * headBytes : spare,
          h + 2 < end ? ot + <usize>h2 * headBytes : spare,
          h + 3 < end ? ot + <usize>h3 * headBytes : spare,
          vRow + <usize>(h / group) * headBytes,
          vRow + <usize>(h1 / group) * headBytes,
          vRow + <usize>(h2 / group) * headBytes,
          vRow + <usize>(h3 / group) * headBytes,
          w,
          headDim,
        );
      }
    }
  }
}
