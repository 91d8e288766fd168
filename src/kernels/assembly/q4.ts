// q4 weights (see src/kernels/q4.ts): 4-bit q in [0, 15], weight = (q - 8) * scale, one f32 scale per group of
// 32 inputs per output. Q4 (row-major [out, in]) is stored in tiles of four rows (the last one padded with zero
// rows): per group of 32 inputs, the tile's four rows of 16 bytes (byte j holds value j low and j + 16 high), then
// their four scales, 80 bytes, read as one stream. Q4T (input-major [in, out]): per group of 32 input rows, the
// rows (outputs padded to blocks of 32; in a block, byte k holds output k low and k + 16 high), then the group's
// out scales. One-token products take x quantized (xq.ts) and sum exact integers: q is the [0, 15] side of
// relaxed SIMD's int8 dot product as it is, and the -8 is applied once per group through the sum of x's values.
import { isum4, madd } from './simd';
import { interleave4, PASS_BYTES, writePasses, xqGroup } from './xq';

/** Bytes of one tile's group: four rows of 16 bytes, then four f32 scales. */
export const Q4_TILE_GROUP: usize = 80;


@inline
export function rowBytes(inDim: i32): usize {
  return ((<usize>inDim) >> 1) + ((<usize>inDim) >> 3);
}

const LOW = i8x16.splat(15);

// Sum over a group of q * x (lanes to be added), the group's 16 bytes at p; x's 32 values as x0 (0-15), x1 (16-31)
// or, without relaxed SIMD, as int16 e0..e3.
@inline
function groupDot(p: usize, x0: v128, x1: v128, e0: v128, e1: v128, e2: v128, e3: v128): v128 {
  const b = v128.load(p);
  const lo = v128.and(b, LOW);
  // Shifting 16-bit lanes and masking is cheaper than an 8-bit shift, which the engine emulates.
  const hi = v128.and(i16x8.shr_u(b, 4), LOW);
  if (ASC_FEATURE_RELAXED_SIMD) {
    // Four products of at most 127 * 15 fit in int16.
    const s = i16x8.add(i16x8.relaxed_dot_i8x16_i7x16_s(x0, lo), i16x8.relaxed_dot_i8x16_i7x16_s(x1, hi));
    return i32x4.extadd_pairwise_i16x8_s(s);
  }
  let a = i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_u(lo), e0);
  a = i32x4.add(a, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_u(lo), e1));
  a = i32x4.add(a, i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_u(hi), e2));
  return i32x4.add(a, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_u(hi), e3));
}

// The four rows of the Q4 tile at `tile` times quantized x: lane r = sum over groups of scale[r, g] * d[g] *
// (sum (q - 8) * x), the integer sums exact, scaled once per group.
@inline
export function dotTile(tile: usize, xq: usize, inDim: i32): v128 {
  let t = f32x4.splat(0);
  let p = tile;
  for (let g = 0; g < inDim >> 5; g++) {
    const gx = xqGroup(xq, g);
    const x0 = v128.load(gx);
    const x1 = v128.load(gx, 16);
    // x as int16, for the build without relaxed SIMD only.
    let e0 = x0;
    let e1 = x0;
    let e2 = x1;
    let e3 = x1;
    if (!ASC_FEATURE_RELAXED_SIMD) {
      e0 = i16x8.extend_low_i8x16_s(x0);
      e1 = i16x8.extend_high_i8x16_s(x0);
      e2 = i16x8.extend_low_i8x16_s(x1);
      e3 = i16x8.extend_high_i8x16_s(x1);
    }
    const sums = isum4(
      groupDot(p, x0, x1, e0, e1, e2, e3),
      groupDot(p + 16, x0, x1, e0, e1, e2, e3),
      groupDot(p + 32, x0, x1, e0, e1, e2, e3),
      groupDot(p + 48, x0, x1, e0, e1, e2, e3),
    );
    // The -8 of every q: minus 8 times the sum of x's values.
    const offset = i32x4.splat(-8 * load<i32>(gx, 36));
    t = madd(
      f32x4.convert_i32x4_s(i32x4.add(sums, offset)),
      f32x4.mul(v128.load(p, 64), v128.load32_splat(gx + 32)),
      t,
    );
    p += Q4_TILE_GROUP;
  }
  return t;
}


@inline
function q4tRowBytes(outDim: i32): usize {
  return (<usize>((outDim + 31) >> 5)) << 4;
}


@inline
function q4tGroupBytes(outDim: i32): usize {
  return (q4tRowBytes(outDim) << 5) + ((<usize>outDim) << 2);
}

// acc[o..o+32) += (sums - offset) * scale * d: sums of one block of 32 outputs, k-th holding outputs 4k..4k+3.
@inline
function addBlock(acc: usize, scales: usize, o: usize, s: v128, k: i32, offset: v128, d: v128): void {
  const at = (o + ((<usize>k) << 2)) << 2;
  v128.store(
    acc + at,
    madd(
      f32x4.convert_i32x4_s(i32x4.sub(s, offset)),
      f32x4.mul(v128.load(scales + at), d),
      v128.load(acc + at),
    ),
  );
}

/**
 * Partial y (at partial + slot * stride) = sum over kept inputs j in [begin, end) of x[i] * W[:, i], on Q4T,
 * with x quantized (xq.ts). Each group's run of kept inputs is summed exactly in integers, four rows per pass,
 * 32 outputs at a time, then scaled once by the group's scales and d.
 */
export function sparseQ4T(
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
  const tail = at + 256; // the last, partial block's 32 sums
  memory.fill(acc, 0, (<usize>outDim) << 2);
  const rowB = q4tRowBytes(outDim);
  const groupB = q4tGroupBytes(outDim);
  const blocks = (outDim + 31) >> 5;
  let j = begin;
  while (j < end) {
    const g = load<i32>(kept + ((<usize>j) << 2)) >> 5;
    let e = j + 1;
    let xsum = <i32>load<i8>(xqGroup(xq, g) + <usize>(load<i32>(kept + ((<usize>j) << 2)) & 31));
    while (e < end && load<i32>(kept + ((<usize>e) << 2)) >> 5 == g) {
      xsum += <i32>load<i8>(xqGroup(xq, g) + <usize>(load<i32>(kept + ((<usize>e) << 2)) & 31));
      e++;
    }
    const passes = writePasses(at, wT, xq, kept, j, e, rowB, groupB);
    const d = v128.load32_splat(xqGroup(xq, g) + 32);
    const offset = i32x4.splat(8 * xsum);
    const scales = wT + <usize>g * groupB + (rowB << 5);
    for (let b = 0; b < blocks; b++) {
      const wo = (<usize>b) << 4;
      let s0 = i32x4.splat(0);
      let s1 = i32x4.splat(0);
      let s2 = i32x4.splat(0);
      let s3 = i32x4.splat(0);
      let s4 = i32x4.splat(0);
      let s5 = i32x4.splat(0);
      let s6 = i32x4.splat(0);
      let s7 = i32x4.splat(0);
      for (let p = 0; p < passes; p++) {
        const ps = at + ((<usize>p) << 5);
        const w0 = v128.load(load<usize>(ps) + wo);
        const w1 = v128.load(load<usize>(ps, 4) + wo);
        const w2 = v128.load(load<usize>(ps, 8) + wo);
        const w3 = v128.load(load<usize>(ps, 12) + wo);
        if (ASC_FEATURE_RELAXED_SIMD) {
          const x = v128.load32_splat(ps + 24);
          let v = interleave4(w0, w1, w2, w3, 0);
          s0 = i32x4.relaxed_dot_i8x16_i7x16_add_s(x, v128.and(v, LOW), s0);
          s4 = i32x4.relaxed_dot_i8x16_i7x16_add_s(x, i8x16.shr_u(v, 4), s4);
          v = interleave4(w0, w1, w2, w3, 1);
          s1 = i32x4.relaxed_dot_i8x16_i7x16_add_s(x, v128.and(v, LOW), s1);
          s5 = i32x4.relaxed_dot_i8x16_i7x16_add_s(x, i8x16.shr_u(v, 4), s5);
          v = interleave4(w0, w1, w2, w3, 2);
          s2 = i32x4.relaxed_dot_i8x16_i7x16_add_s(x, v128.and(v, LOW), s2);
          s6 = i32x4.relaxed_dot_i8x16_i7x16_add_s(x, i8x16.shr_u(v, 4), s6);
          v = interleave4(w0, w1, w2, w3, 3);
          s3 = i32x4.relaxed_dot_i8x16_i7x16_add_s(x, v128.and(v, LOW), s3);
          s7 = i32x4.relaxed_dot_i8x16_i7x16_add_s(x, i8x16.shr_u(v, 4), s7);
        } else {
          // Four products of at most 15 * 127 fit in int16.
          const x0 = i8x16.splat(load<i8>(ps + 24));
          const x1 = i8x16.splat(load<i8>(ps + 25));
          const x2 = i8x16.splat(load<i8>(ps + 26));
          const x3 = i8x16.splat(load<i8>(ps + 27));
          const l0 = v128.and(w0, LOW);
          const l1 = v128.and(w1, LOW);
          const l2 = v128.and(w2, LOW);
          const l3 = v128.and(w3, LOW);
          const h0 = i8x16.shr_u(w0, 4);
          const h1 = i8x16.shr_u(w1, 4);
          const h2 = i8x16.shr_u(w2, 4);
          const h3 = i8x16.shr_u(w3, 4);
          let p = i16x8.add(
            i16x8.add(i16x8.extmul_low_i8x16_s(l0, x0), i16x8.extmul_low_i8x16_s(l1, x1)),
            i16x8.add(i16x8.extmul_low_i8x16_s(l2, x2), i16x8.extmul_low_i8x16_s(l3, x3)),
          );
          s0 = i32x4.add(s0, i32x4.extend_low_i16x8_s(p));
          s1 = i32x4.add(s1, i32x4.extend_high_i16x8_s(p));
          p = i16x8.add(
            i16x8.add(i16x8.extmul_high_i8x16_s(l0, x0), i16x8.extmul_high_i8x16_s(l1, x1)),
            i16x8.add(i16x8.extmul_high_i8x16_s(l2, x2), i16x8.extmul_high_i8x16_s(l3, x3)),
          );
          s2 = i32x4.add(s2, i32x4.extend_low_i16x8_s(p));
          s3 = i32x4.add(s3, i32x4.extend_high_i16x8_s(p));
          p = i16x8.add(
            i16x8.add(i16x8.extmul_low_i8x16_s(h0, x0), i16x8.extmul_low_i8x16_s(h1, x1)),
            i16x8.add(i16x8.extmul_low_i8x16_s(h2, x2), i16x8.extmul_low_i8x16_s(h3, x3)),
          );
          s4 = i32x4.add(s4, i32x4.extend_low_i16x8_s(p));
          s5 = i32x4.add(s5, i32x4.extend_high_i16x8_s(p));
          p = i16x8.add(
            i16x8.add(i16x8.extmul_high_i8x16_s(h0, x0), i16x8.extmul_high_i8x16_s(h1, x1)),
            i16x8.add(i16x8.extmul_high_i8x16_s(h2, x2), i16x8.extmul_high_i8x16_s(h3, x3)),
          );
          s6 = i32x4.add(s6, i32x4.extend_low_i16x8_s(p));
          s7 = i32x4.add(s7, i32x4.extend_high_i16x8_s(p));
        }
      }
      const o = (<usize>b) << 5;
      if (<i32>o + 32 <= outDim) {
        addBlock(acc, scales, o, s0, 0, offset, d);
        addBlock(acc, scales, o, s1, 1, offset, d);
        addBlock(acc, scales, o, s2, 2, offset, d);
        addBlock(acc, scales, o, s3, 3, offset, d);
        addBlock(acc, scales, o, s4, 4, offset, d);
        addBlock(acc, scales, o, s5, 5, offset, d);
        addBlock(acc, scales, o, s6, 6, offset, d);
        addBlock(acc, scales, o, s7, 7, offset, d);
      } else {
        v128.store(tail, s0);
        v128.store(tail, s1, 16);
        v128.store(tail, s2, 32);
        v128.store(tail, s3, 48);
        v128.store(tail, s4, 64);
        v128.store(tail, s5, 80);
        v128.store(tail, s6, 96);
        v128.store(tail, s7, 112);
        const ds = f32x4.extract_lane(d, 0);
        for (let k: usize = 0; <i32>(o + k) < outDim; k++) {
          const a = acc + ((o + k) << 2);
          const sum = <f32>(load<i32>(tail + (k << 2)) - 8 * xsum);
          store<f32>(a, load<f32>(a) + sum * (load<f32>(scales + ((o + k) << 2)) * ds));
        }
      }
    }
    j = e;
  }
}

/**
 * Y[t, o] = sum_i X[t, i] W[o, i] (+ bias) on Q4T for outputs [begin, end): the prefill of a model loaded
 * input-major only. One output at a time, groups in order (simple; such a model's prefill is not the fast path).
 */
export function inputMajorMatmulQ4T(
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
  const rowB = q4tRowBytes(outDim);
  const groupB = q4tGroupBytes(outDim);
  for (let t = 0; t < tokens; t++) {
    const xt = x + ((<usize>t * <usize>inDim) << 2);
    for (let o = begin; o < end; o++) {
      const at = <usize>(o >> 5) * 16 + <usize>(o & 15);
      const shift = o & 16 ? 4 : 0;
      let s: f32 = 0;
      for (let g = 0; g < inDim >> 5; g++) {
        const group = wT + <usize>g * groupB;
        let a: f32 = 0;
        for (let r = 0; r < 32; r++) {
          const q = ((<i32>load<u8>(group + <usize>r * rowB + at)) >> shift) & 15;
          a += <f32>(q - 8) * load<f32>(xt + ((<usize>((g << 5) + r)) << 2));
        }
        s += a * load<f32>(group + (rowB << 5) + ((<usize>o) << 2));
      }
      if (bias) s += load<f32>(bias + ((<usize>o) << 2));
      store<f32>(y + ((<usize>t * <usize>outDim + <usize>o) << 2), s);
    }
  }
}
