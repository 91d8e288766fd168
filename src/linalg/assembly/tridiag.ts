// Householder reduction of a symmetric A (n x n, float64, row-major, row stride ld, both triangles stored) to
// tridiagonal T = Q^T A Q, Q = H_0 H_1 ... H_{n-3}, H_k = I - tau_k v_k v_k^T acting on indices k+1..n-1
// (LAPACK's dsytd2, lower variant). v_k is kept in row k of A (A[k, k+1..n), v_k[0] = 1): that row is never
// read again. This unblocked form finishes what panel.ts's blocked one leaves: a block that fits in cache.
//
// Each step is one pass over the trailing block: trdUpdate applies step k's rank-2 update A -= v w^T + w v^T
// to a row and, while the row is in registers, takes its dot product with the next reflector (step k+1's
// matrix-vector product), so the block is read and written once per step instead of read twice and written
// once. Both triangles are kept: every row of the block is then contiguous and independent (threads split
// rows with no reduction), at twice the arithmetic of a one-triangle update, which the memory traffic hides.
import { axpyNeg, dot, fma2, fnma2, hsum2 } from './simd';


@inline
function at(a: usize, ld: i32, i: i32, j: i32): usize {
  return a + ((<usize>i * <usize>ld + <usize>j) << 3);
}

// The reflector taking x = A[k, k+1..n) (column k below the diagonal, by symmetry) to beta e_1: v overwrites
// x, beta goes to e[k], tau to tau[k] (tau = 0 and v = e_1 when x is already a multiple of e_1).
export function trdHouse(a: usize, ld: i32, n: i32, k: i32, tau: usize, e: usize): void {
  const m = n - k - 1;
  const x = at(a, ld, k, k + 1);
  const alpha = load<f64>(x);
  let scale: f64 = 0;
  for (let i = 1; i < m; i++) scale = max(scale, abs(load<f64>(x + ((<usize>i) << 3))));
  const tk = tau + ((<usize>k) << 3);
  const ek = e + ((<usize>k) << 3);
  if (scale == 0) {
    store<f64>(tk, 0);
    store<f64>(ek, alpha);
    store<f64>(x, 1);
    return;
  }
  // ||x[1..m)|| scaled so that squares neither overflow nor underflow.
  const inv = 1 / scale;
  let ss: f64 = 0;
  for (let i = 1; i < m; i++) {
    const t = load<f64>(x + ((<usize>i) << 3)) * inv;
    ss += t * t;
  }
  const xnorm = scale * Math.sqrt(ss);
  const beta = -copysign<f64>(Math.hypot(alpha, xnorm), alpha);
  store<f64>(tk, (beta - alpha) / beta);
  store<f64>(ek, beta);
  const s = 1 / (alpha - beta);
  store<f64>(x, 1);
  for (let i = 1; i < m; i++) {
    const p = x + ((<usize>i) << 3);
    store<f64>(p, load<f64>(p) * s);
  }
}

// p[u] = tau[k] * dot(A[k+1+u, k+1..n), v_k) for rows u in [begin, end): the first step's product.
export function trdSymv(
  begin: i32,
  end: i32,
  _slot: i32,
  a: usize,
  ld: i32,
  n: i32,
  k: i32,
  p: usize,
  tau: usize,
): void {
  const m = n - k - 1;
  const v = at(a, ld, k, k + 1);
  const t = load<f64>(tau + ((<usize>k) << 3));
  for (let u = begin; u < end; u++) {
    store<f64>(p + ((<usize>u) << 3), t * dot(at(a, ld, k + 1 + u, k + 1), v, m));
  }
}

// Serial part of step k, given p = tau_k A_22 v_k: w = p - (tau_k / 2)(p . v_k) v_k, the updated row k+1 (its
// diagonal is d[k+1]), and from it the next reflector v_{k+1} (stored over that row).
export function trdStep(
  a: usize,
  ld: i32,
  n: i32,
  k: i32,
  p: usize,
  w: usize,
  tau: usize,
  d: usize,
  e: usize,
): void {
  const m = n - k - 1;
  const v = at(a, ld, k, k + 1);
  const half = 0.5 * load<f64>(tau + ((<usize>k) << 3)) * dot(p, v, m);
  for (let i = 0; i < m; i++) {
    const o = (<usize>i) << 3;
    store<f64>(w + o, load<f64>(p + o) - half * load<f64>(v + o));
  }
  // Row k+1 of the block: A[k+1, k+1..n) -= v[0] w + w[0] v with v[0] = 1.
  const r = at(a, ld, k + 1, k + 1);
  axpyNeg(1, w, r, m);
  axpyNeg(load<f64>(w), v, r, m);
  store<f64>(d + ((<usize>(k + 1)) << 3), load<f64>(r));
  trdHouse(a, ld, n, k + 1, tau, e);
}

// One row of the fused update: row -= vi * ws + wi * vs over len columns; returns dot(updated row, vn).
@inline
function updateRow(row: usize, vi: f64, wi: f64, vs: usize, ws: usize, vn: usize, len: i32): f64 {
  const vv = f64x2.splat(vi);
  const wv = f64x2.splat(wi);
  let s0 = f64x2.splat(0);
  let j = 0;
  for (; j + 2 <= len; j += 2) {
    const o = (<usize>j) << 3;
    const x = fnma2(wv, v128.load(vs + o), fnma2(vv, v128.load(ws + o), v128.load(row + o)));
    v128.store(row + o, x);
    s0 = fma2(x, v128.load(vn + o), s0);
  }
  let s = hsum2(s0);
  if (j < len) {
    const o = (<usize>j) << 3;
    const x = load<f64>(row + o) - vi * load<f64>(ws + o) - wi * load<f64>(vs + o);
    store<f64>(row + o, x);
    s += x * load<f64>(vn + o);
  }
  return s;
}

// Two rows at once: the three shared vectors are loaded once per pair.
@inline
function updateRows2(
  r0: usize,
  r1: usize,
  v0: f64,
  w0: f64,
  v1: f64,
  w1: f64,
  vs: usize,
  ws: usize,
  vn: usize,
  len: i32,
  p: usize,
  t: f64,
): void {
  const va = f64x2.splat(v0);
  const wa = f64x2.splat(w0);
  const vb = f64x2.splat(v1);
  const wb = f64x2.splat(w1);
  let s0 = f64x2.splat(0);
  let s1 = f64x2.splat(0);
  let j = 0;
  for (; j + 2 <= len; j += 2) {
    const o = (<usize>j) << 3;
    const vj = v128.load(vs + o);
    const wj = v128.load(ws + o);
    const nj = v128.load(vn + o);
    const x0 = fnma2(wa, vj, fnma2(va, wj, v128.load(r0 + o)));
    const x1 = fnma2(wb, vj, fnma2(vb, wj, v128.load(r1 + o)));
    v128.store(r0 + o, x0);
    v128.store(r1 + o, x1);
    s0 = fma2(x0, nj, s0);
    s1 = fma2(x1, nj, s1);
  }
  let d0 = hsum2(s0);
  let d1 = hsum2(s1);
  if (j < len) {
    const o = (<usize>j) << 3;
    const vj = load<f64>(vs + o);
    const wj = load<f64>(ws + o);
    const nj = load<f64>(vn + o);
    const x0 = load<f64>(r0 + o) - v0 * wj - w0 * vj;
    const x1 = load<f64>(r1 + o) - v1 * wj - w1 * vj;
    store<f64>(r0 + o, x0);
    store<f64>(r1 + o, x1);
    d0 += x0 * nj;
    d1 += x1 * nj;
  }
  store<f64>(p, t * d0);
  store<f64>(p, t * d1, 8);
}

// Step k's rank-2 update of rows k+2+u, u in [begin, end), over columns k+2..n, fused with step k+1's product:
// p[u] = tau[k+1] * dot(updated row, v_{k+1}). (Column k+1 of these rows is not updated: it is never read
// again, row k+1 holds it.) p may be overwritten: trdStep has consumed it into w.
export function trdUpdate(
  begin: i32,
  end: i32,
  _slot: i32,
  a: usize,
  ld: i32,
  n: i32,
  k: i32,
  w: usize,
  p: usize,
  tau: usize,
): void {
  const len = n - k - 2;
  const v = at(a, ld, k, k + 1);
  const vs = v + 8;
  const ws = w + 8;
  const vn = at(a, ld, k + 1, k + 2);
  const t = load<f64>(tau + ((<usize>(k + 1)) << 3));
  let u = begin;
  for (; u + 2 <= end; u += 2) {
    const o = (<usize>(u + 1)) << 3;
    updateRows2(
      at(a, ld, k + 2 + u, k + 2),
      at(a, ld, k + 3 + u, k + 2),
      load<f64>(vs - 8 + o),
      load<f64>(ws - 8 + o),
      load<f64>(vs + o),
      load<f64>(ws + o),
      vs,
      ws,
      vn,
      len,
      p + ((<usize>u) << 3),
      t,
    );
  }
  if (u < end) {
    const o = (<usize>u) << 3;
    const s = updateRow(at(a, ld, k + 2 + u, k + 2), load<f64>(vs + o), load<f64>(ws + o), vs, ws, vn, len);
    store<f64>(p + o, t * s);
  }
}
