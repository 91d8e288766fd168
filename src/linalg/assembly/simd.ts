// Fused multiply-add where relaxed SIMD is compiled in (linalg.wasm), else exact multiply then add
// (linalg-baseline.wasm). Either way every product and sum is a float64 (float32 for the f32 GEMM) operation.

// float32 a * b + c and four horizontal sums at once: the kernels' own (same fused / exact rule).
export { madd as fma4, hsum4 } from '../../kernels/assembly/simd';

// a * b + c
@inline
export function fma2(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f64x2.relaxed_madd(a, b, c);
  return f64x2.add(f64x2.mul(a, b), c);
}

// c - a * b
@inline
export function fnma2(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f64x2.relaxed_nmadd(a, b, c);
  return f64x2.sub(c, f64x2.mul(a, b));
}


@inline
export function hsum2(v: v128): f64 {
  return f64x2.extract_lane(v, 0) + f64x2.extract_lane(v, 1);
}

// sum x[j] * y[j] for j < m (any alignment).
@inline
export function dot(x: usize, y: usize, m: i32): f64 {
  let s0 = f64x2.splat(0);
  let s1 = f64x2.splat(0);
  let j = 0;
  for (; j + 4 <= m; j += 4) {
    const o = (<usize>j) << 3;
    s0 = fma2(v128.load(x + o), v128.load(y + o), s0);
    s1 = fma2(v128.load(x + o, 16), v128.load(y + o, 16), s1);
  }
  let s = hsum2(f64x2.add(s0, s1));
  for (; j < m; j++) s += load<f64>(x + ((<usize>j) << 3)) * load<f64>(y + ((<usize>j) << 3));
  return s;
}

// y[j] -= a * x[j] for j < m.
@inline
export function axpyNeg(a: f64, x: usize, y: usize, m: i32): void {
  const av = f64x2.splat(a);
  let j = 0;
  for (; j + 2 <= m; j += 2) {
    const o = (<usize>j) << 3;
    v128.store(y + o, fnma2(av, v128.load(x + o), v128.load(y + o)));
  }
  if (j < m) {
    const o = (<usize>j) << 3;
    store<f64>(y + o, load<f64>(y + o) - a * load<f64>(x + o));
  }
}

// out[i, j] (rows ld bytes apart) op= x_i . y_j for four rows x0..x3 and two rows y0, y1 of n doubles (n even):
// op 0 stores the dot products, 1 adds them, -1 subtracts them (a constant wherever this is inlined).
@inline
export function dots42(
  x0: usize,
  x1: usize,
  x2: usize,
  x3: usize,
  y0: usize,
  y1: usize,
  n: i32,
  out: usize,
  ld: usize,
  op: i32,
): void {
  let a00 = f64x2.splat(0);
  let a01 = f64x2.splat(0);
  let a10 = f64x2.splat(0);
  let a11 = f64x2.splat(0);
  let a20 = f64x2.splat(0);
  let a21 = f64x2.splat(0);
  let a30 = f64x2.splat(0);
  let a31 = f64x2.splat(0);
  for (let r = 0; r < n; r += 2) {
    const o = (<usize>r) << 3;
    const u = v128.load(y0 + o);
    const w = v128.load(y1 + o);
    let x = v128.load(x0 + o);
    a00 = fma2(x, u, a00);
    a01 = fma2(x, w, a01);
    x = v128.load(x1 + o);
    a10 = fma2(x, u, a10);
    a11 = fma2(x, w, a11);
    x = v128.load(x2 + o);
    a20 = fma2(x, u, a20);
    a21 = fma2(x, w, a21);
    x = v128.load(x3 + o);
    a30 = fma2(x, u, a30);
    a31 = fma2(x, w, a31);
  }
  put(out, hsum2(a00), op);
  put(out + 8, hsum2(a01), op);
  put(out + ld, hsum2(a10), op);
  put(out + ld + 8, hsum2(a11), op);
  put(out + 2 * ld, hsum2(a20), op);
  put(out + 2 * ld + 8, hsum2(a21), op);
  put(out + 3 * ld, hsum2(a30), op);
  put(out + 3 * ld + 8, hsum2(a31), op);
}


@inline
function put(p: usize, v: f64, op: i32): void {
  if (op == 0) store<f64>(p, v);
  else if (op > 0) store<f64>(p, load<f64>(p) + v);
  else store<f64>(p, load<f64>(p) - v);
}
