// Column-sparse y = sum over kept i of x[i] * WT[i, :] on the input-major layout WT [in, out], where each
// input channel's weights are contiguous, so skipping a channel skips reading its bytes. Threads split the
// kept list into chunks [begin, end), each accumulating its own partial y (at partial + slot * stride);
// sparseReduce adds the partials in chunk order, so results do not depend on which thread ran a chunk.
// 16-bit partials are kept in even/odd order within each block of 8 outputs.
import { add4Half, addColumn, madd, sumScale, weightAt, xScale, F32, BF16, F16 } from './simd';
import { PASS_BYTES } from './xq';


@inline
function column(wT: usize, kept: usize, j: i32, rowBytes: usize): usize {
  return wT + <usize>load<i32>(kept + ((<usize>j) << 2)) * rowBytes;
}


@inline
function xAt(kind: i32, x: usize, kept: usize, j: i32): v128 {
  const v = v128.load32_splat(x + ((<usize>load<i32>(kept + ((<usize>j) << 2))) << 2));
  return kind == F16 ? f32x4.mul(v, f32x4.splat(xScale(kind))) : v;
}

/** Bytes between chunks' partial sums (64-byte aligned, so threads never share a cache line). */
export function sparseSlotBytes(outDim: i32): usize {
  // q8's column-sparse kernel keeps a group's passes after its partial sums (q8.ts).
  return ((((<usize>outDim) << 2) + 63) & ~63) + PASS_BYTES;
}

// Eight columns per pass over the outputs: partial y is read and written once per eight columns.
@inline
function pass8(
  kind: i32,
  acc: usize,
  wT: usize,
  x: usize,
  kept: usize,
  j: i32,
  outDim: i32,
  rowBytes: usize,
): void {
  const p0 = column(wT, kept, j, rowBytes);
  const p1 = column(wT, kept, j + 1, rowBytes);
  const p2 = column(wT, kept, j + 2, rowBytes);
  const p3 = column(wT, kept, j + 3, rowBytes);
  const p4 = column(wT, kept, j + 4, rowBytes);
  const p5 = column(wT, kept, j + 5, rowBytes);
  const p6 = column(wT, kept, j + 6, rowBytes);
  const p7 = column(wT, kept, j + 7, rowBytes);
  const x0 = xAt(kind, x, kept, j);
  const x1 = xAt(kind, x, kept, j + 1);
  const x2 = xAt(kind, x, kept, j + 2);
  const x3 = xAt(kind, x, kept, j + 3);
  const x4 = xAt(kind, x, kept, j + 4);
  const x5 = xAt(kind, x, kept, j + 5);
  const x6 = xAt(kind, x, kept, j + 6);
  const x7 = xAt(kind, x, kept, j + 7);
  let vecEnd: i32;
  if (kind == F32) {
    vecEnd = outDim & ~3;
    for (let o = 0; o < vecEnd; o += 4) {
      const off = (<usize>o) << 2;
      let s = v128.load(acc + off);
      s = madd(v128.load(p0 + off), x0, s);
      s = madd(v128.load(p1 + off), x1, s);
      s = madd(v128.load(p2 + off), x2, s);
      s = madd(v128.load(p3 + off), x3, s);
      s = madd(v128.load(p4 + off), x4, s);
      s = madd(v128.load(p5 + off), x5, s);
      s = madd(v128.load(p6 + off), x6, s);
      s = madd(v128.load(p7 + off), x7, s);
      v128.store(acc + off, s);
    }
  } else {
    // Two halves of four columns, each storing its sums: V8 issues all of an iteration's loads up front, and
    // with eight weight vectors live at once (plus eight x) it would spill them to the stack.
    vecEnd = outDim & ~7;
    for (let o = 0; o < vecEnd; o += 8) {
      const wo = (<usize>o) << 1;
      const a = acc + ((<usize>o) << 2);
      add4Half(kind, a, wo, p0, p1, p2, p3, x0, x1, x2, x3);
      add4Half(kind, a, wo, p4, p5, p6, p7, x4, x5, x6, x7);
    }
  }
  for (let o = vecEnd; o < outDim; o++) {
    const a = acc + ((<usize>o) << 2);
    let s =
      weightAt(kind, p0, o) * f32x4.extract_lane(x0, 0) + weightAt(kind, p1, o) * f32x4.extract_lane(x1, 0);
    s +=
      weightAt(kind, p2, o) * f32x4.extract_lane(x2, 0) + weightAt(kind, p3, o) * f32x4.extract_lane(x3, 0);
    s +=
      weightAt(kind, p4, o) * f32x4.extract_lane(x4, 0) + weightAt(kind, p5, o) * f32x4.extract_lane(x5, 0);
    s +=
      weightAt(kind, p6, o) * f32x4.extract_lane(x6, 0) + weightAt(kind, p7, o) * f32x4.extract_lane(x7, 0);
    store<f32>(a, load<f32>(a) + s);
  }
}


@inline
function sparse(
  kind: i32,
  begin: i32,
  end: i32,
  slot: i32,
  wT: usize,
  x: usize,
  kept: usize,
  outDim: i32,
  partial: usize,
  stride: usize,
): void {
  const acc = partial + <usize>slot * stride;
  const rowBytes = (<usize>outDim) << (kind == F32 ? 2 : 1);
  memory.fill(acc, 0, (<usize>outDim) << 2);
  let j = begin;
  for (; j + 8 <= end; j += 8) pass8(kind, acc, wT, x, kept, j, outDim, rowBytes);
  for (; j < end; j++) addColumn(kind, acc, outDim, column(wT, kept, j, rowBytes), xAt(kind, x, kept, j));
  if (kind == F16) scaleSums(acc, outDim, sumScale(kind));
}

function scaleSums(acc: usize, n: i32, scale: f32): void {
  const vecEnd = n & ~3;
  for (let o = 0; o < vecEnd; o += 4) {
    const a = acc + ((<usize>o) << 2);
    v128.store(a, f32x4.mul(v128.load(a), f32x4.splat(scale)));
  }
  for (let o = vecEnd; o < n; o++)
    store<f32>(acc + ((<usize>o) << 2), load<f32>(acc + ((<usize>o) << 2)) * scale);
}

export function sparseF32(
  begin: i32,
  end: i32,
  slot: i32,
  wT: usize,
  x: usize,
  kept: usize,
  outDim: i32,
  partial: usize,
  stride: usize,
): void {
  sparse(F32, begin, end, slot, wT, x, kept, outDim, partial, stride);
}

export function sparseBF16(
  begin: i32,
  end: i32,
  slot: i32,
  wT: usize,
  x: usize,
  kept: usize,
  outDim: i32,
  partial: usize,
  stride: usize,
): void {
  sparse(BF16, begin, end, slot, wT, x, kept, outDim, partial, stride);
}

export function sparseF16(
  begin: i32,
  end: i32,
  slot: i32,
  wT: usize,
  x: usize,
  kept: usize,
  outDim: i32,
  partial: usize,
  stride: usize,
): void {
  sparse(F16, begin, end, slot, wT, x, kept, outDim, partial, stride);
}

/** y = bias + sum of the chunks' partials, undoing the even/odd order of 16-bit partials. */
export function sparseReduce(
  y: usize,
  partial: usize,
  stride: usize,
  chunks: i32,
  outDim: i32,
  bias: usize,
  evenOdd: bool,
): void {
  let vecEnd = 0;
  if (evenOdd) {
    vecEnd = outDim & ~7;
    for (let o = 0; o < vecEnd; o += 8) {
      const off = (<usize>o) << 2;
      let e = v128.load(partial + off);
      let d = v128.load(partial + off, 16);
      for (let t = 1; t < chunks; t++) {
        const p = partial + <usize>t * stride + off;
        e = f32x4.add(e, v128.load(p));
        d = f32x4.add(d, v128.load(p, 16));
      }
      let lo = i32x4.shuffle(e, d, 0, 4, 1, 5);
      let hi = i32x4.shuffle(e, d, 2, 6, 3, 7);
      if (bias) {
        lo = f32x4.add(lo, v128.load(bias + off));
        hi = f32x4.add(hi, v128.load(bias + off, 16));
      }
      v128.store(y + off, lo);
      v128.store(y + off, hi, 16);
    }
  }
  for (let o = vecEnd; o < outDim; o++) {
    const off = (<usize>o) << 2;
    let s = load<f32>(partial + off);
    for (let t = 1; t < chunks; t++) s += load<f32>(partial + <usize>t * stride + off);
    if (bias) s += load<f32>(bias + off);
    store<f32>(y + off, s);
  }
}

/** Position of the first index outside [0, limit), or -1 when all are valid. */
export function firstInvalidIndex(kept: usize, count: i32, limit: i32): i32 {
  for (let j = 0; j < count; j++) {
    const i = load<i32>(kept + ((<usize>j) << 2));
    if (<u32>i >= <u32>limit) return j;
  }
  return -1;
}
