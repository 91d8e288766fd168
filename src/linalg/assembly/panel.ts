// Blocked Householder tridiagonalisation (LAPACK's dlatrd + dsyr2k; its lower variant in column-major is the
// upper triangle here, so every vector is a contiguous row): a panel of nb reflectors is formed reading the
// trailing matrix once per reflector (a symmetric matrix-vector product over the upper triangle), and the
// trailing matrix is updated once per panel (A -= V W^T + W V^T as a product with 2 nb terms). Against the
// fused one-step update (tridiag.ts) this reads half the matrix per step and writes it 1/nb as often; the
// fused update takes over once the trailing block fits in cache.
//
// v_p (reflector p) is row p of A from column p+1 on (v_p[p+1] = 1); w_p is row p - k0 of W [nb, ldw].
import { axpyNeg, dot, dots42, fma2, hsum2 } from './simd';


@inline
function at(a: usize, ld: i32, i: i32, j: i32): usize {
  return a + ((<usize>i * <usize>ld + <usize>j) << 3);
}

// Row j brought up to date with the panel's earlier reflectors: A[j, j..n) -= sum over p in [k0, j) of
// v_p[j] w_p[j..n) + w_p[j] v_p[j..n).
export function panelRow(a: usize, ld: i32, n: i32, k0: i32, j: i32, wb: usize, ldw: i32): void {
  const r = at(a, ld, j, j);
  const m = n - j;
  for (let p = k0; p < j; p++) {
    const vp = at(a, ld, p, j);
    const wp = at(wb, ldw, p - k0, j);
    axpyNeg(load<f64>(vp), wp, r, m);
    axpyNeg(load<f64>(wp), vp, r, m);
  }
}

// y += (upper-triangle row r of A, mirrored) * x for one row: y[r] += A[r, r..n) . x[r..n) and
// y[r+1..n) += A[r, r+1..n) x[r]. row = &A[r, r], xs = &x[r], ys = &y[r], len = n - r.
@inline
function symvRow(row: usize, xs: usize, ys: usize, len: i32): void {
  const xr = load<f64>(xs);
  const xv = f64x2.splat(xr);
  let acc = load<f64>(row) * xr;
  let s0 = f64x2.splat(0);
  let s1 = f64x2.splat(0);
  let t = 1;
  for (; t + 4 <= len; t += 4) {
    const o = (<usize>t) << 3;
    const a0 = v128.load(row + o);
    const a1 = v128.load(row + o, 16);
    s0 = fma2(a0, v128.load(xs + o), s0);
    s1 = fma2(a1, v128.load(xs + o, 16), s1);
    v128.store(ys + o, fma2(a0, xv, v128.load(ys + o)));
    v128.store(ys + o, fma2(a1, xv, v128.load(ys + o, 16)), 16);
  }
  for (; t < len; t++) {
    const o = (<usize>t) << 3;
    const av = load<f64>(row + o);
    acc += av * load<f64>(xs + o);
    store<f64>(ys + o, load<f64>(ys + o) + av * xr);
  }
  store<f64>(ys, load<f64>(ys) + acc + hsum2(f64x2.add(s0, s1)));
}

// Chunk `slot`'s share of y = A[j+1.., j+1..] v_j into its own partial y (ypart + slot * ldy, indexed by
// global row). Unit u is rows j+1+u and n-1-u, a long and a short row of the triangle.
export function panelSymv(
  begin: i32,
  end: i32,
  slot: i32,
  a: usize,
  ld: i32,
  n: i32,
  j: i32,
  ypart: usize,
  ldy: i32,
): void {
  const y = ypart + ((<usize>slot * <usize>ldy) << 3);
  const first = j + 1;
  memory.fill(y + ((<usize>first) << 3), 0, (<usize>(n - first)) << 3);
  // x[r] = v_j[r] = A[j, r], so &x[r] = &A[j, r].
  for (let u = begin; u < end; u++) {
    const r1 = first + u;
    const r2 = n - 1 - u;
    symvRow(at(a, ld, r1, r1), at(a, ld, j, r1), y + ((<usize>r1) << 3), n - r1);
    if (r2 > r1) symvRow(at(a, ld, r2, r2), at(a, ld, j, r2), y + ((<usize>r2) << 3), n - r2);
  }
}

// w_j from the partial products: w = sum of partials - V (W^T v) - W (V^T v) over the panel's earlier
// reflectors, then w = tau w, w += (-tau/2)(w . v) v.
export function panelW(
  a: usize,
  ld: i32,
  n: i32,
  k0: i32,
  j: i32,
  wb: usize,
  ldw: i32,
  ypart: usize,
  ldy: i32,
  chunks: i32,
  tau: usize,
): void {
  const first = j + 1;
  const m = n - first;
  const x = at(a, ld, j, first);
  const w = at(wb, ldw, j - k0, first);
  memory.copy(w, ypart + ((<usize>first) << 3), (<usize>m) << 3);
  for (let c = 1; c < chunks; c++) {
    const y = ypart + ((<usize>c * <usize>ldy + <usize>first) << 3);
    axpyNeg(-1, y, w, m);
  }
  for (let p = k0; p < j; p++) {
    const vp = at(a, ld, p, first);
    const wp = at(wb, ldw, p - k0, first);
    const t1 = dot(wp, x, m);
    const t2 = dot(vp, x, m);
    axpyNeg(t1, vp, w, m);
    axpyNeg(t2, wp, w, m);
  }
  const t = load<f64>(tau + ((<usize>j) << 3));
  for (let i = 0; i < m; i++) {
    const o = w + ((<usize>i) << 3);
    store<f64>(o, load<f64>(o) * t);
  }
  axpyNeg(0.5 * t * dot(w, x, m), x, w, m);
}

// Operands of the trailing update, for rows r in [rb, n4): p[r - rb] = (v_k0[r], .., v_k1-1[r], w_k0[r], ..)
// and q[r - rb] = (w.., v..), zero outside [k1, n), so that A[r, s] -= p_r . q_s.
export function panelPack(
  a: usize,
  ld: i32,
  n: i32,
  k0: i32,
  nb: i32,
  wb: usize,
  ldw: i32,
  rb: i32,
  n4: i32,
  p: usize,
  q: usize,
): void {
  const k1 = k0 + nb;
  const kk = nb << 1;
  for (let r = rb; r < n4; r++) {
    const pr = p + ((<usize>(r - rb) * <usize>kk) << 3);
    const qr = q + ((<usize>(r - rb) * <usize>kk) << 3);
    if (r < k1 || r >= n) {
      memory.fill(pr, 0, (<usize>kk) << 3);
      memory.fill(qr, 0, (<usize>kk) << 3);
      continue;
    }
    for (let i = 0; i < nb; i++) {
      const v = load<f64>(at(a, ld, k0 + i, r));
      const w = load<f64>(at(wb, ldw, i, r));
      store<f64>(pr + ((<usize>i) << 3), v);
      store<f64>(pr + ((<usize>(i + nb)) << 3), w);
      store<f64>(qr + ((<usize>i) << 3), w);
      store<f64>(qr + ((<usize>(i + nb)) << 3), v);
    }
  }
}

// The trailing update on the upper triangle (4 x 4 diagonal blocks whole, their lower halves unused) of rows
// and columns [rb, n4); unit u is row groups u and groups - 1 - u.
export function panelUpdate(
  begin: i32,
  end: i32,
  _slot: i32,
  a: usize,
  ld: i32,
  rb: i32,
  n4: i32,
  p: usize,
  q: usize,
  kk: i32,
): void {
  const groups = (n4 - rb) >> 2;
  const opBytes = (<usize>kk) << 3;
  const ldb = (<usize>ld) << 3;
  for (let u = begin; u < end; u++) {
    for (let pass = 0; pass < 2; pass++) {
      const grp = pass == 0 ? u : groups - 1 - u;
      if (pass == 1 && grp == u) break;
      const i0 = grp << 2;
      const x0 = p + <usize>i0 * opBytes;
      for (let j0 = i0; j0 < n4 - rb; j0 += 2) {
        const y0 = q + <usize>j0 * opBytes;
        dots42(
          x0,
          x0 + opBytes,
          x0 + 2 * opBytes,
          x0 + 3 * opBytes,
          y0,
          y0 + opBytes,
          kk,
          at(a, ld, rb + i0, rb + j0),
          ldb,
          -1,
        );
      }
    }
  }
}

// A[i, j] = A[j, i] for k0 <= j < i < n: the unblocked steps read whole rows.
export function mirrorBlock(a: usize, ld: i32, k0: i32, n: i32): void {
  for (let i = k0 + 1; i < n; i++) {
    for (let j = k0; j < i; j++) store<f64>(at(a, ld, i, j), load<f64>(at(a, ld, j, i)));
  }
}

// ||A[k.., k..]||_F^2 from the upper triangle (off-diagonal elements counted twice).
export function trailingNorm2(a: usize, ld: i32, k: i32, n: i32): f64 {
  let diag: f64 = 0;
  let off: f64 = 0;
  for (let i = k; i < n; i++) {
    const row = at(a, ld, i, i);
    const x = load<f64>(row);
    diag += x * x;
    let s0 = f64x2.splat(0);
    const len = n - i - 1;
    let j = 0;
    for (; j + 2 <= len; j += 2) {
      const v = v128.load(row + 8 + ((<usize>j) << 3));
      s0 = fma2(v, v, s0);
    }
    off += hsum2(s0);
    if (j < len) {
      const v = load<f64>(row + 8 + ((<usize>j) << 3));
      off += v * v;
    }
  }
  return diag + 2 * off;
}
