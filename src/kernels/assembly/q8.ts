// q8 weights (see src/kernels/q8.ts): int8 values with one f32 scale per group of 32 inputs per output.
// Q8 (row-major [out, in]): each row is in int8 values, then its in / 32 scales. Q8T (input-major [in, out]):
// per group of 32 input rows, those rows' out int8 values, then the group's out scales. One-token products take
// x quantized per 32 (quantizeX) and run integer dot products; the others widen int8 to f32. Each group is summed,
// then scaled once.
import { hsum4, i8to32x4, listedRow, madd, rowAt, store4, storeListed } from './simd';

@inline
function rowBytes(inDim: i32): usize {
  return <usize>inDim + (<usize>inDim >> 3);
}

/** Bytes of x quantized for the one-token kernels: inDim int16 values, then inDim / 32 f32 scales. */
export function q8xBytes(inDim: i32): usize {
  return (<usize>inDim << 1) + (<usize>inDim >> 3);
}

/**
 * x quantized per group of 32 as llama.cpp quantizes activations for Q8_0 products: d = max |x| / 127,
 * q = round(x / d) (ties to even) in [-127, 127], kept as int16 for i32x4.dot_i16x8_s; then the groups' d.
 */
export function quantizeX(x: usize, inDim: i32, out: usize): void {
  const scales = out + (<usize>inDim << 1);
  for (let g = 0; g < inDim >> 5; g++) {
    const xg = x + (<usize>g << 7);
    let m = f32x4.splat(0);
    for (let k: usize = 0; k < 8; k++) m = f32x4.max(m, f32x4.abs(v128.load(xg + (k << 4))));
    const amax = max(max(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1)), max(f32x4.extract_lane(m, 2), f32x4.extract_lane(m, 3)));
    const d: f32 = amax / 127;
    const id = f32x4.splat(d != 0 ? <f32>1 / d : 0);
    store<f32>(scales + (<usize>g << 2), d);
    for (let k: usize = 0; k < 8; k += 2) {
      const a = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(xg + (k << 4)), id)));
      const b = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(xg + ((k + 1) << 4)), id)));
      v128.store(out + (<usize>g << 6) + (k << 3), i16x8.narrow_i32x4_s(a, b));
    }
  }
}

// dot of 32 int8 weights at p with 32 int16 x values (x0..x3), as four i32 lanes.
@inline
function dot32(p: usize, x0: v128, x1: v128, x2: v128, x3: v128): v128 {
  const w0 = v128.load(p);
  const w1 = v128.load(p, 16);
  let a = i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(w0), x0);
  a = i32x4.add(a, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(w0), x1));
  a = i32x4.add(a, i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(w1), x2));
  return i32x4.add(a, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(w1), x3));
}

// Four Q8 rows times quantized x (see quantizeX): lane r = sum over groups g of scale[r, g] * d[g] *
// (integer dot of row r's group g with x's). Integer products are exact; only the scaling rounds.
@inline
function dot4(r0: usize, r1: usize, r2: usize, r3: usize, xq: usize, inDim: i32): v128 {
  let t0 = f32x4.splat(0);
  let t1 = f32x4.splat(0);
  let t2 = f32x4.splat(0);
  let t3 = f32x4.splat(0);
  const groups = inDim >> 5;
  const ws = <usize>inDim;
  const xs = xq + (<usize>inDim << 1);
  for (let g = 0; g < groups; g++) {
    const xo = xq + (<usize>g << 6);
    const x0 = v128.load(xo);
    const x1 = v128.load(xo, 16);
    const x2 = v128.load(xo, 32);
    const x3 = v128.load(xo, 48);
    const wo = <usize>g << 5;
    const so = ws + (<usize>g << 2);
    const d = load<f32>(xs + (<usize>g << 2));
    t0 = madd(f32x4.convert_i32x4_s(dot32(r0 + wo, x0, x1, x2, x3)), f32x4.splat(load<f32>(r0 + so) * d), t0);
    t1 = madd(f32x4.convert_i32x4_s(dot32(r1 + wo, x0, x1, x2, x3)), f32x4.splat(load<f32>(r1 + so) * d), t1);
    t2 = madd(f32x4.convert_i32x4_s(dot32(r2 + wo, x0, x1, x2, x3)), f32x4.splat(load<f32>(r2 + so) * d), t2);
    t3 = madd(f32x4.convert_i32x4_s(dot32(r3 + wo, x0, x1, x2, x3)), f32x4.splat(load<f32>(r3 + so) * d), t3);
  }
  return hsum4(t0, t1, t2, t3);
}

/**
 * T = 1: y[o] = dot(W[o, :], x) (+ bias) for rows [begin, end), x quantized by quantizeX (xq); in a multiple of
 * 32. Prefill (several tokens) is matmulQ8 in dense.ts: each block of rows widened once, F32 x.
 */
export function matvecQ8(begin: i32, end: i32, _slot: i32, w: usize, xq: usize, y: usize, bias: usize, inDim: i32): void {
  const bytes = rowBytes(inDim);
  for (let o = begin; o < end; o += 4) {
    const n = min(4, end - o);
    const s = dot4(rowAt(w, bytes, o, 0, n), rowAt(w, bytes, o, 1, n), rowAt(w, bytes, o, 2, n), rowAt(w, bytes, o, 3, n), xq, inDim);
    store4(y, bias, o, n, s);
  }
}

/** Row-gather: y[rows[j]] = dot(W[rows[j], :], x) (+ bias) for j in [begin, end), x quantized (quantizeX). */
export function gatherQ8(begin: i32, end: i32, _slot: i32, w: usize, xq: usize, rows: usize, y: usize, bias: usize, inDim: i32): void {
  const bytes = rowBytes(inDim);
  for (let j = begin; j < end; j += 4) {
    const n = min(4, end - j);
    const s = dot4(
      listedRow(w, bytes, rows, j, 0, n),
      listedRow(w, bytes, rows, j, 1, n),
      listedRow(w, bytes, rows, j, 2, n),
      listedRow(w, bytes, rows, j, 3, n),
      xq,
      inDim,
    );
    storeListed(y, bias, rows, j, n, s);
  }
}

// Column-sparse, four kept inputs of one group at a time (columns c0..c3 of Q8T, their x): sums over the
// columns first, then acc[o] += that sum * the group's scale[o], over outputs [0, outDim).
@inline
function pass4(acc: usize, c0: usize, c1: usize, c2: usize, c3: usize, x0: v128, x1: v128, x2: v128, x3: v128, scale: usize, outDim: i32): void {
  const vecEnd = outDim & ~15;
  for (let o = 0; o < vecEnd; o += 16) {
    const wo = <usize>o;
    const w0 = v128.load(c0 + wo);
    const w1 = v128.load(c1 + wo);
    const w2 = v128.load(c2 + wo);
    const w3 = v128.load(c3 + wo);
    let a = f32x4.mul(i8to32x4(w0, 0), x0);
    let b = f32x4.mul(i8to32x4(w0, 1), x0);
    let c = f32x4.mul(i8to32x4(w0, 2), x0);
    let d = f32x4.mul(i8to32x4(w0, 3), x0);
    a = madd(i8to32x4(w1, 0), x1, a);
    b = madd(i8to32x4(w1, 1), x1, b);
    c = madd(i8to32x4(w1, 2), x1, c);
    d = madd(i8to32x4(w1, 3), x1, d);
    a = madd(i8to32x4(w2, 0), x2, a);
    b = madd(i8to32x4(w2, 1), x2, b);
    c = madd(i8to32x4(w2, 2), x2, c);
    d = madd(i8to32x4(w2, 3), x2, d);
    a = madd(i8to32x4(w3, 0), x3, a);
    b = madd(i8to32x4(w3, 1), x3, b);
    c = madd(i8to32x4(w3, 2), x3, c);
    d = madd(i8to32x4(w3, 3), x3, d);
    const ao = acc + (<usize>o << 2);
    const so = scale + (<usize>o << 2);
    v128.store(ao, madd(a, v128.load(so), v128.load(ao)));
    v128.store(ao, madd(b, v128.load(so, 16), v128.load(ao, 16)), 16);
    v128.store(ao, madd(c, v128.load(so, 32), v128.load(ao, 32)), 32);
    v128.store(ao, madd(d, v128.load(so, 48), v128.load(ao, 48)), 48);
  }
  const s0 = f32x4.extract_lane(x0, 0);
  const s1 = f32x4.extract_lane(x1, 0);
  const s2 = f32x4.extract_lane(x2, 0);
  const s3 = f32x4.extract_lane(x3, 0);
  for (let o = vecEnd; o < outDim; o++) {
    const wo = <usize>o;
    let t = <f32>load<i8>(c0 + wo) * s0 + <f32>load<i8>(c1 + wo) * s1;
    t += <f32>load<i8>(c2 + wo) * s2 + <f32>load<i8>(c3 + wo) * s3;
    const ao = acc + (<usize>o << 2);
    store<f32>(ao, load<f32>(ao) + t * load<f32>(scale + (<usize>o << 2)));
  }
}

// Byte offset in Q8T of input row i's values, and of group g's scales.
@inline
function q8tRow(wT: usize, i: i32, outDim: i32): usize {
  return wT + <usize>(i >> 5) * <usize>outDim * 36 + <usize>(i & 31) * <usize>outDim;
}

@inline
function q8tScales(wT: usize, g: i32, outDim: i32): usize {
  return wT + <usize>g * <usize>outDim * 36 + (<usize>outDim << 5);
}

/**
 * Partial y (at partial + slot * stride) = sum over kept inputs j in [begin, end) of x[i] * W[:, i], on Q8T.
 * Runs of kept inputs within one group go four columns per pass; a run not a multiple of four repeats its first
 * column with x = 0 (the same sums, no other code path).
 */
export function sparseQ8T(begin: i32, end: i32, slot: i32, wT: usize, x: usize, kept: usize, outDim: i32, partial: usize, stride: usize): void {
  const acc = partial + <usize>slot * stride;
  memory.fill(acc, 0, <usize>outDim << 2);
  let j = begin;
  while (j < end) {
    const i0 = load<i32>(kept + (<usize>j << 2));
    const group = i0 >> 5;
    let n = 1;
    while (n < 4 && j + n < end && load<i32>(kept + (<usize>(j + n) << 2)) >> 5 == group) n++;
    const i1 = n > 1 ? load<i32>(kept + (<usize>(j + 1) << 2)) : i0;
    const i2 = n > 2 ? load<i32>(kept + (<usize>(j + 2) << 2)) : i0;
    const i3 = n > 3 ? load<i32>(kept + (<usize>(j + 3) << 2)) : i0;
    const zero = f32x4.splat(0);
    pass4(
      acc,
      q8tRow(wT, i0, outDim),
      q8tRow(wT, i1, outDim),
      q8tRow(wT, i2, outDim),
      q8tRow(wT, i3, outDim),
      v128.load32_splat(x + (<usize>i0 << 2)),
      n > 1 ? v128.load32_splat(x + (<usize>i1 << 2)) : zero,
      n > 2 ? v128.load32_splat(x + (<usize>i2 << 2)) : zero,
      n > 3 ? v128.load32_splat(x + (<usize>i3 << 2)) : zero,
      q8tScales(wT, group, outDim),
      outDim,
    );
    j += n;
  }
}

/**
 * Y[t, o] = sum_i X[t, i] W[o, i] (+ bias) on Q8T for outputs [begin, end): the prefill of a model loaded
 * input-major only. One output at a time, groups in order (simple; such a model's prefill is not the fast path).
 */
export function imajorMatmulQ8T(begin: i32, end: i32, _slot: i32, wT: usize, x: usize, tokens: i32, inDim: i32, outDim: i32, y: usize, bias: usize, _scratch: usize, _stride: usize): void {
  const groups = inDim >> 5;
  for (let t = 0; t < tokens; t++) {
    const xt = x + ((<usize>t * <usize>inDim) << 2);
    for (let o = begin; o < end; o++) {
      let s: f32 = 0;
      for (let g = 0; g < groups; g++) {
        let a: f32 = 0;
        for (let r = 0; r < 32; r++) {
          const i = (g << 5) + r;
          a += <f32>load<i8>(q8tRow(wT, i, outDim) + <usize>o) * load<f32>(xt + (<usize>i << 2));
        }
        s += a * load<f32>(q8tScales(wT, g, outDim) + (<usize>o << 2));
      }
      if (bias) s += load<f32>(bias + (<usize>o << 2));
      store<f32>(y + ((<usize>t * <usize>outDim + <usize>o) << 2), s);
    }
  }
}
