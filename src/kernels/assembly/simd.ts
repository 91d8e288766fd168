// Widening and math helpers shared by the kernels. Everything is inlined into the loops that use it.

// A v128 of eight 16-bit weights holds elements 2k in the low and 2k+1 in the high half of lane k: shifting
// or masking widens them in even/odd order with one operation per four weights (x is permuted to match).
@inline
export function bf16Even(w: v128): v128 {
  return i32x4.shl(w, 16);
}


@inline
export function bf16Odd(w: v128): v128 {
  return v128.and(w, i32x4.splat(0xffff0000));
}

// F16 is widened rebased: its 15 bits below the sign shift right by 3 into F32's exponent and mantissa with
// the exponent left unbiased, so the F32 read is the weight times 2^-112 (subnormals included) in two or three
// integer operations per four weights. Kernels multiply x by F16_X_SCALE (the one-token dense ones take it so
// from permuteEvenOdd: formats.ts's xScale) and their sums by F16_SUM_SCALE: powers of two, so every product and
// sum rounds as it would on the weights themselves (for |x| < 2^63 and products above 2^-78). Exponent 31 (NaN,
// Inf) would read as a finite weight: loading refuses such weights (model/weights.ts).
export const F16_X_SCALE: f32 = reinterpret<f32>(0x5f800000); // 2^64
export const F16_SUM_SCALE: f32 = reinterpret<f32>(0x57800000); // 2^48
const F16_TO_F32: f32 = reinterpret<f32>(0x77800000); // 2^112

// F16 bits in the high half of each lane (anything below) -> the weight times 2^-112.
@inline
export function f16Rebased(v: v128): v128 {
  return v128.and(i32x4.shr_s(v, 3), i32x4.splat(0x8fffe000));
}

// F16 bits in the high half of each lane -> F32, exact for finite values.
@inline
export function f16High(v: v128): v128 {
  return f32x4.mul(f16Rebased(v), f32x4.splat(F16_TO_F32));
}


@inline
export function f16Even(w: v128): v128 {
  return f16Rebased(i32x4.shl(w, 16));
}


@inline
export function f16Odd(w: v128): v128 {
  return f16Rebased(w);
}

/** How a 16-bit kind's kernels scale x (F16's rebasing; 1 otherwise). */
@inline
export function xScale(kind: i32): f32 {
  return kind == F16 ? F16_X_SCALE : 1;
}

/** How a 16-bit kind's kernels scale their sums back (F16's rebasing; 1 otherwise). */
@inline
export function sumScale(kind: i32): f32 {
  return kind == F16 ? F16_SUM_SCALE : 1;
}


@inline
export function bf16Scalar(bits: u16): f32 {
  return reinterpret<f32>((<u32>bits) << 16);
}

/** F16 bits as the weight times 2^-112, as f16Even / f16Odd widen them. */
@inline
export function f16ScalarRebased(bits: u16): f32 {
  return reinterpret<f32>((((<i32>bits) << 16) >> 3) & 0x8fffe000);
}


@inline
export function f16Scalar(bits: u16): f32 {
  return f16ScalarRebased(bits) * F16_TO_F32;
}


@inline
export function hsum(v: v128): f32 {
  return (
    f32x4.extract_lane(v, 0) +
    f32x4.extract_lane(v, 1) +
    (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3))
  );
}

// Lane i of the result = sum of the lanes of ai (four horizontal sums at once).
@inline
export function hsum4(a0: v128, a1: v128, a2: v128, a3: v128): v128 {
  const t0 = f32x4.add(i32x4.shuffle(a0, a1, 0, 4, 1, 5), i32x4.shuffle(a0, a1, 2, 6, 3, 7));
  const t1 = f32x4.add(i32x4.shuffle(a2, a3, 0, 4, 1, 5), i32x4.shuffle(a2, a3, 2, 6, 3, 7));
  return f32x4.add(i32x4.shuffle(t0, t1, 0, 1, 4, 5), i32x4.shuffle(t0, t1, 2, 3, 6, 7));
}

// The same for i32 lanes (exact).
@inline
export function isum4(a0: v128, a1: v128, a2: v128, a3: v128): v128 {
  const t0 = i32x4.add(i32x4.shuffle(a0, a1, 0, 4, 1, 5), i32x4.shuffle(a0, a1, 2, 6, 3, 7));
  const t1 = i32x4.add(i32x4.shuffle(a2, a3, 0, 4, 1, 5), i32x4.shuffle(a2, a3, 2, 6, 3, 7));
  return i32x4.add(i32x4.shuffle(t0, t1, 0, 1, 4, 5), i32x4.shuffle(t0, t1, 2, 3, 6, 7));
}

// e^x for four lanes (Cephes expf polynomial, ~1 ulp). Inputs are clamped to [-87, 88] so 2^n stays a
// normal float; softmax and SiLU only need exp of moderate arguments to full precision.
@inline
export function exp4(x: v128): v128 {
  x = f32x4.min(f32x4.max(x, f32x4.splat(-87.0)), f32x4.splat(88.0));
  const n = f32x4.nearest(f32x4.mul(x, f32x4.splat(1.4426950408889634)));
  let r = f32x4.sub(x, f32x4.mul(n, f32x4.splat(0.693359375)));
  r = f32x4.sub(r, f32x4.mul(n, f32x4.splat(-2.1219444e-4)));
  let p = f32x4.splat(1.98756915e-4);
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.3981999507e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(8.3334519073e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(4.1665795894e-2));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.6666665459e-1));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(5.0000001201e-1));
  const y = f32x4.add(f32x4.add(f32x4.mul(f32x4.mul(p, r), r), r), f32x4.splat(1.0));
  const pow2n = i32x4.shl(i32x4.add(i32x4.trunc_sat_f32x4_s(n), i32x4.splat(127)), 23);
  return f32x4.mul(y, pow2n);
}


@inline
export function exp1(x: f32): f32 {
  return f32x4.extract_lane(exp4(f32x4.splat(x)), 0);
}

// a * b + c: fused where relaxed SIMD is compiled in (one instruction instead of two), else exact mul + add.
@inline
export function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}

// Weight dtypes as the kernels receive them.
export const F32: i32 = 0;
export const BF16: i32 = 1;
export const F16: i32 = 2;
export const Q8: i32 = 3;
export const Q4: i32 = 4;

// 16 int8 -> four f32x4 (elements 0-3, 4-7, 8-11, 12-15), for the q8 kernels.
@inline
export function i8to32x4(w: v128, quarter: i32): v128 {
  const half = quarter < 2 ? i16x8.extend_low_i8x16_s(w) : i16x8.extend_high_i8x16_s(w);
  return f32x4.convert_i32x4_s(
    (quarter & 1) == 0 ? i32x4.extend_low_i16x8_s(half) : i32x4.extend_high_i16x8_s(half),
  );
}

// Row r (0-3) of a q8 tile (see q8.ts: per group, four rows of 32 int8 values, then four f32 scales) -> F32
// values q * scale at dst.
@inline
export function q8Row(tile: usize, r: i32, dst: usize, inDim: i32): void {
  for (let g = 0; g < inDim >> 5; g++) {
    const p = tile + <usize>g * 144;
    const s = v128.load32_splat(p + 128 + ((<usize>r) << 2));
    for (let h: usize = 0; h < 32; h += 16) {
      const w = v128.load(p + ((<usize>r) << 5) + h);
      const d = dst + ((((<usize>g) << 5) + h) << 2);
      v128.store(d, f32x4.mul(i8to32x4(w, 0), s));
      v128.store(d, f32x4.mul(i8to32x4(w, 1), s), 16);
      v128.store(d, f32x4.mul(i8to32x4(w, 2), s), 32);
      v128.store(d, f32x4.mul(i8to32x4(w, 3), s), 48);
    }
  }
}

// Row r (0-3) of a q4 tile (see q4.ts: per group, four rows of 16 bytes, then four f32 scales) -> F32 values
// (q - 8) * scale at dst.
@inline
export function q4Row(tile: usize, r: i32, dst: usize, inDim: i32): void {
  for (let g = 0; g < inDim >> 5; g++) {
    const p = tile + <usize>g * 80;
    const s = v128.load32_splat(p + 64 + ((<usize>r) << 2));
    const b = v128.load(p + ((<usize>r) << 4));
    const lo = i8x16.sub(v128.and(b, i8x16.splat(15)), i8x16.splat(8));
    const hi = i8x16.sub(i8x16.shr_u(b, 4), i8x16.splat(8));
    const d = dst + ((<usize>g) << 7);
    v128.store(d, f32x4.mul(i8to32x4(lo, 0), s));
    v128.store(d, f32x4.mul(i8to32x4(lo, 1), s), 16);
    v128.store(d, f32x4.mul(i8to32x4(lo, 2), s), 32);
    v128.store(d, f32x4.mul(i8to32x4(lo, 3), s), 48);
    v128.store(d, f32x4.mul(i8to32x4(hi, 0), s), 64);
    v128.store(d, f32x4.mul(i8to32x4(hi, 1), s), 80);
    v128.store(d, f32x4.mul(i8to32x4(hi, 2), s), 96);
    v128.store(d, f32x4.mul(i8to32x4(hi, 3), s), 112);
  }
}

// Even / odd halves of eight 16-bit weights as F32, for either 16-bit dtype (F16 rebased: see xScale).
@inline
export function widenEven(kind: i32, w: v128): v128 {
  return kind == BF16 ? bf16Even(w) : f16Even(w);
}


@inline
export function widenOdd(kind: i32, w: v128): v128 {
  return kind == BF16 ? bf16Odd(w) : f16Odd(w);
}

/** Weight o of a row at p, as F32 (F16 rebased, as widenEven / widenOdd). */
@inline
export function weightAt(kind: i32, p: usize, o: i32): f32 {
  if (kind == F32) return load<f32>(p + ((<usize>o) << 2));
  const bits = load<u16>(p + ((<usize>o) << 1));
  return kind == BF16 ? bf16Scalar(bits) : f16ScalarRebased(bits);
}

// acc[8 outputs at a] += four 16-bit columns (at byte offset wo) times their x, in even/odd order.
@inline
export function add4Half(
  kind: i32,
  a: usize,
  wo: usize,
  p0: usize,
  p1: usize,
  p2: usize,
  p3: usize,
  x0: v128,
  x1: v128,
  x2: v128,
  x3: v128,
): void {
  let e = v128.load(a);
  let d = v128.load(a, 16);
  let w = v128.load(p0 + wo);
  e = madd(widenEven(kind, w), x0, e);
  d = madd(widenOdd(kind, w), x0, d);
  w = v128.load(p1 + wo);
  e = madd(widenEven(kind, w), x1, e);
  d = madd(widenOdd(kind, w), x1, d);
  w = v128.load(p2 + wo);
  e = madd(widenEven(kind, w), x2, e);
  d = madd(widenOdd(kind, w), x2, d);
  w = v128.load(p3 + wo);
  e = madd(widenEven(kind, w), x3, e);
  d = madd(widenOdd(kind, w), x3, d);
  v128.store(a, e);
  v128.store(a, d, 16);
}

// acc[0, width) += x * the row at p (16-bit sums in even/odd order per block of 8).
@inline
export function addColumn(kind: i32, acc: usize, width: i32, p: usize, x: v128): void {
  let vecEnd: i32;
  if (kind == F32) {
    vecEnd = width & ~3;
    for (let o = 0; o < vecEnd; o += 4) {
      const off = (<usize>o) << 2;
      v128.store(acc + off, f32x4.add(v128.load(acc + off), f32x4.mul(v128.load(p + off), x)));
    }
  } else {
    vecEnd = width & ~7;
    for (let o = 0; o < vecEnd; o += 8) {
      const w = v128.load(p + ((<usize>o) << 1));
      const a = acc + ((<usize>o) << 2);
      v128.store(a, f32x4.add(v128.load(a), f32x4.mul(widenEven(kind, w), x)));
      v128.store(a, f32x4.add(v128.load(a, 16), f32x4.mul(widenOdd(kind, w), x)), 16);
    }
  }
  const xs = f32x4.extract_lane(x, 0);
  for (let o = vecEnd; o < width; o++) {
    const a = acc + ((<usize>o) << 2);
    store<f32>(a, load<f32>(a) + weightAt(kind, p, o) * xs);
  }
}

// Four rows at a time: which rows, and where their sums go (shared by the dense and q8 kernels).

@inline
export function store1(y: usize, bias: usize, o: i32, v: f32): void {
  const off = (<usize>o) << 2;
  store<f32>(y + off, bias ? v + load<f32>(bias + off) : v);
}


@inline
export function lane(s: v128, r: i32): f32 {
  if (r == 0) return f32x4.extract_lane(s, 0);
  if (r == 1) return f32x4.extract_lane(s, 1);
  return r == 2 ? f32x4.extract_lane(s, 2) : f32x4.extract_lane(s, 3);
}

// Writes rows o..o+3 of one token (lanes beyond `rows` are dropped).
@inline
export function store4(y: usize, bias: usize, o: i32, rows: i32, s: v128): void {
  const off = (<usize>o) << 2;
  if (rows == 4) {
    if (bias) s = f32x4.add(s, v128.load(bias + off));
    v128.store(y + off, s);
  } else {
    for (let r = 0; r < rows; r++) {
      let v = lane(s, r);
      if (bias) v += load<f32>(bias + off + ((<usize>r) << 2));
      store<f32>(y + off + ((<usize>r) << 2), v);
    }
  }
}

// Row o + r for r < rows, else row o again: the last block of a matrix may have fewer than four rows.
@inline
export function rowAt(w: usize, rowBytes: usize, o: i32, r: i32, rows: i32): usize {
  return w + <usize>(r < rows ? o + r : o) * rowBytes;
}


@inline
export function listedRow(w: usize, rowBytes: usize, rows: usize, j: i32, r: i32, n: i32): usize {
  return w + <usize>load<i32>(rows + ((<usize>(r < n ? j + r : j)) << 2)) * rowBytes;
}


@inline
export function storeListed(y: usize, bias: usize, rows: usize, j: i32, n: i32, s: v128): void {
  for (let r = 0; r < n; r++) {
    const off = (<usize>load<i32>(rows + ((<usize>(j + r)) << 2))) << 2;
    let v = lane(s, r);
    if (bias) v += load<f32>(bias + off);
    store<f32>(y + off, v);
  }
}
