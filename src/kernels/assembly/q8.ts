// q8 weights (see src/kernels/q8.ts): int8 values with one f32 scale per group of 32 inputs per output.
// Q8 (row-major [out, in]) is stored in tiles of four rows (the last one padded with zero rows): per group of 32
// inputs, the tile's four rows of 32 values, then their four scales, 144 bytes, so that a four-row product reads
// one sequential stream (three times faster here than four rows apart). Q8T (input-major [in, out]): per group
// of 32 input rows, those rows' out int8 values, then the group's out scales. One-token products (matvec,
// row-gather, column-sparse) take x quantized per 32 (xq.ts) and run exact integer dot products, so every build
// computes the same sums; prefill widens int8 to f32. Each group is summed, then scaled once.
import { isum4, madd } from './simd';
import { interleave4, PASS_BYTES, writePasses, xqGroup } from './xq';

/** Bytes of one tile's group: four rows of 32 values, then four f32 scales. */
export const Q8_TILE_GROUP: usize = 144;


@inline
export function rowBytes(inDim: i32): usize {
  return <usize>inDim + ((<usize>inDim) >> 3);
}

// dot of 32 int8 weights at p with 32 int16 x values (x0..x3), as four i32 lanes (builds without relaxed SIMD).
@inline
function dot32(p: usize, x0: v128, x1: v128, x2: v128, x3: v128): v128 {
  const w0 = v128.load(p);
  const w1 = v128.load(p, 16);
  let a = i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(w0), x0);
  a = i32x4.add(a, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(w0), x1));
  a = i32x4.add(a, i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(w1), x2));
  return i32x4.add(a, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(w1), x3));
}

// The same with relaxed SIMD's int8 dot product, which needs one side in [0, 127]: |x| (a0, a1) times the
// weights with x's sign moved onto them ((w ^ s) - s, s = -1 where x < 0; w = -128 never occurs). Pairs sum in
// int16 (2 * 127 * 127 < 2^15), then widen: about 15% faster than the i32 form here.
@inline
function dot32Relaxed(p: usize, s0: v128, s1: v128, a0: v128, a1: v128): v128 {
  const p0 = i16x8.relaxed_dot_i8x16_i7x16_s(i8x16.sub(v128.xor(v128.load(p), s0), s0), a0);
  const p1 = i16x8.relaxed_dot_i8x16_i7x16_s(i8x16.sub(v128.xor(v128.load(p, 16), s1), s1), a1);
  return i32x4.add(i32x4.extadd_pairwise_i16x8_s(p0), i32x4.extadd_pairwise_i16x8_s(p1));
}

// The four rows of the Q8 tile at `tile` times quantized x: lane r = sum over groups g of scale[r, g] * d[g] *
// (integer dot of row r's group g with x's). Integer products and their sums are exact; only the scaling rounds.
@inline
export function dotTile(tile: usize, xq: usize, inDim: i32): v128 {
  let t = f32x4.splat(0);
  let p = tile;
  for (let g = 0; g < inDim >> 5; g++) {
    const gx = xqGroup(xq, g);
    const x0 = v128.load(gx);
    const x1 = v128.load(gx, 16);
    let sums: v128;
    if (ASC_FEATURE_RELAXED_SIMD) {
      const s0 = i8x16.lt_s(x0, i8x16.splat(0));
      const s1 = i8x16.lt_s(x1, i8x16.splat(0));
      const a0 = i8x16.abs(x0);
      const a1 = i8x16.abs(x1);
      sums = isum4(
        dot32Relaxed(p, s0, s1, a0, a1),
        dot32Relaxed(p + 32, s0, s1, a0, a1),
        dot32Relaxed(p + 64, s0, s1, a0, a1),
        dot32Relaxed(p + 96, s0, s1, a0, a1),
      );
    } else {
      const e0 = i16x8.extend_low_i8x16_s(x0);
      const e1 = i16x8.extend_high_i8x16_s(x0);
      const e2 = i16x8.extend_low_i8x16_s(x1);
      const e3 = i16x8.extend_high_i8x16_s(x1);
      sums = isum4(
        dot32(p, e0, e1, e2, e3),
        dot32(p + 32, e0, e1, e2, e3),
        dot32(p + 64, e0, e1, e2, e3),
        dot32(p + 96, e0, e1, e2, e3),
      );
    }
    t = madd(f32x4.convert_i32x4_s(sums), f32x4.mul(v128.load(p, 128), v128.load32_splat(gx + 32)), t);
    p += Q8_TILE_GROUP;
  }
  return t;
}

// Byte offset in Q8T of input row i's values, and of group g's scales.
@inline
function q8tRow(wT: usize, i: i32, outDim: i32): usize {
  return wT + <usize>(i >> 5) * <usize>outDim * 36 + <usize>(i & 31) * <usize>outDim;
}


@inline
function q8tScales(wT: usize, g: i32, outDim: i32): usize {
  return wT + <usize>g * <usize>outDim * 36 + ((<usize>outDim) << 5);
}

/**
 * Partial y (at partial + slot * stride) = sum over kept inputs j in [begin, end) of x[i] * W[:, i], on Q8T,
 * with x quantized (xq.ts). Each group's run of kept inputs is summed exactly in integers, four rows per pass,
 * 16 outputs at a time, then scaled once by the group's scales and d.
 */
export function sparseQ8T(
  begin: i32,
  end: i32,
  slot: i32,
  wT: usize,
  xq: usize,
  kept: usize,
  outDim: i32,
  partial: usize,
  stride: usize,
): void {
  const acc = partial + <usize>slot * stride;
  const at = acc + stride - PASS_BYTES;
  memory.fill(acc, 0, (<usize>outDim) << 2);
  const vecEnd = outDim & ~15;
  let j = begin;
  while (j < end) {
    const g = load<i32>(kept + ((<usize>j) << 2)) >> 5;
    let e = j + 1;
    while (e < end && load<i32>(kept + ((<usize>e) << 2)) >> 5 == g) e++;
    const passes = writePasses(at, wT, xq, kept, j, e, <usize>outDim, <usize>outDim * 36);
    const d = f32x4.splat(load<f32>(xqGroup(xq, g), 32));
    const scales = q8tScales(wT, g, outDim);
    for (let o = 0; o < vecEnd; o += 16) {
      const wo = <usize>o;
      let s0 = i32x4.splat(0);
      let s1 = i32x4.splat(0);
      let s2 = i32x4.splat(0);
      let s3 = i32x4.splat(0);
      for (let p = 0; p < passes; p++) {
        const ps = at + ((<usize>p) << 5);
        const w0 = v128.load(load<usize>(ps) + wo);
        const w1 = v128.load(load<usize>(ps, 4) + wo);
        const w2 = v128.load(load<usize>(ps, 8) + wo);
        const w3 = v128.load(load<usize>(ps, 12) + wo);
        if (ASC_FEATURE_RELAXED_SIMD) {
          const m = v128.load32_splat(ps + 20);
          const ax = v128.load32_splat(ps + 16);
          s0 = i32x4.relaxed_dot_i8x16_i7x16_add_s(
            i8x16.sub(v128.xor(interleave4(w0, w1, w2, w3, 0), m), m),
            ax,
            s0,
          );
          s1 = i32x4.relaxed_dot_i8x16_i7x16_add_s(
            i8x16.sub(v128.xor(interleave4(w0, w1, w2, w3, 1), m), m),
            ax,
            s1,
          );
          s2 = i32x4.relaxed_dot_i8x16_i7x16_add_s(
            i8x16.sub(v128.xor(interleave4(w0, w1, w2, w3, 2), m), m),
            ax,
            s2,
          );
          s3 = i32x4.relaxed_dot_i8x16_i7x16_add_s(
            i8x16.sub(v128.xor(interleave4(w0, w1, w2, w3, 3), m), m),
            ax,
            s3,
          );
        } else {
          // Two int8 products fit in int16 (2 * 127 * 127 < 2^15).
          const x0 = i8x16.splat(load<i8>(ps + 24));
          const x1 = i8x16.splat(load<i8>(ps + 25));
          const x2 = i8x16.splat(load<i8>(ps + 26));
          const x3 = i8x16.splat(load<i8>(ps + 27));
          const lo = i16x8.add(i16x8.extmul_low_i8x16_s(w0, x0), i16x8.extmul_low_i8x16_s(w1, x1));
          const lo2 = i16x8.add(i16x8.extmul_low_i8x16_s(w2, x2), i16x8.extmul_low_i8x16_s(w3, x3));
          const hi = i16x8.add(i16x8.extmul_high_i8x16_s(w0, x0), i16x8.extmul_high_i8x16_s(w1, x1));
          const hi2 = i16x8.add(i16x8.extmul_high_i8x16_s(w2, x2), i16x8.extmul_high_i8x16_s(w3, x3));
          s0 = i32x4.add(s0, i32x4.add(i32x4.extend_low_i16x8_s(lo), i32x4.extend_low_i16x8_s(lo2)));
          s1 = i32x4.add(s1, i32x4.add(i32x4.extend_high_i16x8_s(lo), i32x4.extend_high_i16x8_s(lo2)));
          s2 = i32x4.add(s2, i32x4.add(i32x4.extend_low_i16x8_s(hi), i32x4.extend_low_i16x8_s(hi2)));
          s3 = i32x4.add(s3, i32x4.add(i32x4.extend_high_i16x8_s(hi), i32x4.extend_high_i16x8_s(hi2)));
        }
      }
      const ao = acc + (wo << 2);
      const so = scales + (wo << 2);
      v128.store(ao, madd(f32x4.convert_i32x4_s(s0), f32x4.mul(v128.load(so), d), v128.load(ao)));
      v128.store(ao, madd(f32x4.convert_i32x4_s(s1), f32x4.mul(v128.load(so, 16), d), v128.load(ao, 16)), 16);
      v128.store(ao, madd(f32x4.convert_i32x4_s(s2), f32x4.mul(v128.load(so, 32), d), v128.load(ao, 32)), 32);
      v128.store(ao, madd(f32x4.convert_i32x4_s(s3), f32x4.mul(v128.load(so, 48), d), v128.load(ao, 48)), 48);
    }
    const ds = f32x4.extract_lane(d, 0);
    for (let o = vecEnd; o < outDim; o++) {
      let s = 0;
      for (let r = j; r < e; r++) {
        const i = load<i32>(kept + ((<usize>r) << 2));
        s +=
          <i32>load<i8>(q8tRow(wT, i, outDim) + <usize>o) * <i32>load<i8>(xqGroup(xq, g) + <usize>(i & 31));
      }
      const ao = acc + ((<usize>o) << 2);
      store<f32>(ao, load<f32>(ao) + <f32>s * (load<f32>(scales + ((<usize>o) << 2)) * ds));
    }
    j = e;
  }
}

/**
 * Y[t, o] = sum_i X[t, i] W[o, i] (+ bias) on Q8T for outputs [begin, end): the prefill of a model loaded
 * input-major only. One output at a time, groups in order (simple; such a model's prefill is not the fast path).
 */
export function inputMajorMatmulQ8T(
  begin: i32,
  end: i32,
  _slot: i32,
  wT: usize,
  x: usize,
  tokens: i32,
  inDim: i32,
  outDim: i32,
  y: usize,
  bias: usize,
  _scratch: usize,
  _stride: usize,
): void {
  const groups = inDim >> 5;
  for (let t = 0; t < tokens; t++) {
    const xt = x + ((<usize>t * <usize>inDim) << 2);
    for (let o = begin; o < end; o++) {
      let s: f32 = 0;
      for (let g = 0; g < groups; g++) {
        let a: f32 = 0;
        for (let r = 0; r < 32; r++) {
          const i = (g << 5) + r;
          a += <f32>load<i8>(q8tRow(wT, i, outDim) + <usize>o) * load<f32>(xt + ((<usize>i) << 2));
        }
        s += a * load<f32>(q8tScales(wT, g, outDim) + ((<usize>o) << 2));
      }
      if (bias) s += load<f32>(bias + ((<usize>o) << 2));
      store<f32>(y + ((<usize>t * <usize>outDim + <usize>o) << 2), s);
    }
  }
}
