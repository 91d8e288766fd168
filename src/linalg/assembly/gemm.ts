// Matrix products for the orthogonal transform. All operands are padded by the host so that no kernel has a
// tail: rows to multiples of 4, the summed dimension to a multiple of 4 (zeros add nothing).
import { dots42, fma4, hsum4 } from './simd';

// dst[c, r] = src[r, c] * g[c] (g = 0: no scale) as float64 for columns c in [begin, end): src is float32
// [rows, cols], dst [cols, ld]. The product of two float32 is exact in float64.
export function transposeScale(
  begin: i32,
  end: i32,
  _slot: i32,
  src: usize,
  g: usize,
  rows: i32,
  cols: i32,
  dst: usize,
  ld: i32,
): void {
  const srcRow = (<usize>cols) << 2;
  const dstRow = (<usize>ld) << 3;
  for (let c0 = begin; c0 < end; c0 += 8) {
    const c1 = min(end, c0 + 8);
    for (let r = 0; r < rows; r++) {
      const s = src + <usize>r * srcRow;
      const d = dst + ((<usize>r) << 3);
      for (let c = c0; c < c1; c++) {
        let x = <f64>load<f32>(s + ((<usize>c) << 2));
        if (g) x *= <f64>load<f32>(g + ((<usize>c) << 2));
        store<f64>(d + <usize>c * dstRow, x);
      }
    }
  }
}

// The upper triangle (4 x 4 diagonal blocks whole) of G += xt xt^T for xt [n4, kk] (kk even), G [n4, n4].
// Unit u covers row groups u and groups - 1 - u (a long and a short row of the triangle), so equal ranges
// of units are equal work.
export function gramF64(begin: i32, end: i32, _slot: i32, xt: usize, n4: i32, kk: i32, g: usize): void {
  const groups = n4 >> 2;
  const rowBytes = (<usize>kk) << 3;
  const ldb = (<usize>n4) << 3;
  for (let u = begin; u < end; u++) {
    for (let pass = 0; pass < 2; pass++) {
      const grp = pass == 0 ? u : groups - 1 - u;
      if (pass == 1 && grp == u) break;
      const i0 = grp << 2;
      const x0 = xt + <usize>i0 * rowBytes;
      for (let j0 = i0; j0 < n4; j0 += 2) {
        const y0 = xt + <usize>j0 * rowBytes;
        dots42(
          x0,
          x0 + rowBytes,
          x0 + 2 * rowBytes,
          x0 + 3 * rowBytes,
          y0,
          y0 + rowBytes,
          kk,
          g + <usize>i0 * ldb + ((<usize>j0) << 3),
          ldb,
          1,
        );
      }
    }
  }
}

// G's lower triangle from its upper one.
export function mirrorLower(g: usize, n: i32): void {
  const row = (<usize>n) << 3;
  for (let i = 1; i < n; i++) {
    for (let j = 0; j < i; j++)
      store<f64>(g + <usize>i * row + ((<usize>j) << 3), load<f64>(g + <usize>j * row + ((<usize>i) << 3)));
  }
}

const T_BLOCK = 64;

// C[t, o] = sum_i A[t, i] B[o, i] in float32, for output columns o in [begin, end) (multiples of 4): A
// [tRows (even), kk (multiple of 4)], B [outputs (multiple of 4), kk], C [tRows, ldc]. Four rows of B and two
// of A per inner loop (eight accumulators); A is taken in blocks of 64 rows that stay in cache while B
// streams past.
export function gemmF32(
  begin: i32,
  end: i32,
  _slot: i32,
  a: usize,
  b: usize,
  c: usize,
  tRows: i32,
  kk: i32,
  ldc: i32,
): void {
  const rowBytes = (<usize>kk) << 2;
  const cBytes = (<usize>ldc) << 2;
  for (let t0 = 0; t0 < tRows; t0 += T_BLOCK) {
    const t1 = min(tRows, t0 + T_BLOCK);
    for (let o = begin; o < end; o += 4) {
      const b0 = b + <usize>o * rowBytes;
      const b1 = b0 + rowBytes;
      const b2 = b1 + rowBytes;
      const b3 = b2 + rowBytes;
      for (let t = t0; t < t1; t += 2) {
        const xa = a + <usize>t * rowBytes;
        const xb = xa + rowBytes;
        let a0 = f32x4.splat(0);
        let a1 = f32x4.splat(0);
        let a2 = f32x4.splat(0);
        let a3 = f32x4.splat(0);
        let c0 = f32x4.splat(0);
        let c1 = f32x4.splat(0);
        let c2 = f32x4.splat(0);
        let c3 = f32x4.splat(0);
        for (let i = 0; i < kk; i += 4) {
          const off = (<usize>i) << 2;
          const u = v128.load(xa + off);
          const v = v128.load(xb + off);
          let w = v128.load(b0 + off);
          a0 = fma4(w, u, a0);
          c0 = fma4(w, v, c0);
          w = v128.load(b1 + off);
          a1 = fma4(w, u, a1);
          c1 = fma4(w, v, c1);
          w = v128.load(b2 + off);
          a2 = fma4(w, u, a2);
          c2 = fma4(w, v, c2);
          w = v128.load(b3 + off);
          a3 = fma4(w, u, a3);
          c3 = fma4(w, v, c3);
        }
        const y = c + <usize>t * cBytes + ((<usize>o) << 2);
        v128.store(y, hsum4(a0, a1, a2, a3));
        v128.store(y + cBytes, hsum4(c0, c1, c2, c3));
      }
    }
  }
}

// dst[c, r] = src[r, c] for columns c in [begin, end): src float32 [rows, cols], dst float32 [cols, ld].
export function transposeF32(
  begin: i32,
  end: i32,
  _slot: i32,
  src: usize,
  rows: i32,
  cols: i32,
  dst: usize,
  ld: i32,
): void {
  const srcRow = (<usize>cols) << 2;
  const dstRow = (<usize>ld) << 2;
  for (let c0 = begin; c0 < end; c0 += 8) {
    const c1 = min(end, c0 + 8);
    for (let r = 0; r < rows; r++) {
      const s = src + <usize>r * srcRow;
      const d = dst + ((<usize>r) << 2);
      for (let c = c0; c < c1; c++) store<f32>(d + <usize>c * dstRow, load<f32>(s + ((<usize>c) << 2)));
    }
  }
}
