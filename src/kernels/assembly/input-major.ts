// Dense Y = X W^T for several tokens on the input-major layout WT [in, out] (the layout column-sparse decode
// reads). Threads split the outputs into chunks [begin, end) (multiples of 8), so no partial sums need
// combining: each output is one sum over the inputs in order, whatever the chunking. Tokens go in tiles of
// TILE, each tile's accumulators (at scratch + slot * stride) staying in cache while the chunk's columns of
// WT stream past once per tile. 16-bit weights accumulate in even/odd order per block of 8 outputs.
import { add4Half, addColumn, madd, sumScale, weightAt, xScale, F32, BF16, F16 } from './simd';

const TILE: i32 = 8;

/** Bytes of one chunk's accumulators for outDim outputs (64-byte aligned). */
export function inputMajorSlotBytes(outDim: i32): usize {
  return (<usize>TILE * ((<usize>outDim) << 2) + 63) & ~63;
}

// acc[0, width) += x0 * row p0 + x1 * row p1 + x2 * row p2 + x3 * row p3 (rows already offset to the chunk).
@inline
function add4(
  kind: i32,
  acc: usize,
  width: i32,
  p0: usize,
  p1: usize,
  p2: usize,
  p3: usize,
  x0: v128,
  x1: v128,
  x2: v128,
  x3: v128,
): void {
  let vecEnd: i32;
  if (kind == F32) {
    vecEnd = width & ~3;
    for (let o = 0; o < vecEnd; o += 4) {
      const off = (<usize>o) << 2;
      let s = v128.load(acc + off);
      s = madd(v128.load(p0 + off), x0, s);
      s = madd(v128.load(p1 + off), x1, s);
      s = madd(v128.load(p2 + off), x2, s);
      s = madd(v128.load(p3 + off), x3, s);
      v128.store(acc + off, s);
    }
  } else {
    vecEnd = width & ~7;
    for (let o = 0; o < vecEnd; o += 8)
      add4Half(kind, acc + ((<usize>o) << 2), (<usize>o) << 1, p0, p1, p2, p3, x0, x1, x2, x3);
  }
  for (let o = vecEnd; o < width; o++) {
    const a = acc + ((<usize>o) << 2);
    let s = load<f32>(a);
    s += weightAt(kind, p0, o) * f32x4.extract_lane(x0, 0);
    s += weightAt(kind, p1, o) * f32x4.extract_lane(x1, 0);
    s += weightAt(kind, p2, o) * f32x4.extract_lane(x2, 0);
    s += weightAt(kind, p3, o) * f32x4.extract_lane(x3, 0);
    store<f32>(a, s);
  }
}


@inline
function inputMajor(
  kind: i32,
  begin: i32,
  end: i32,
  slot: i32,
  wT: usize,
  x: usize,
  tokens: i32,
  inDim: i32,
  outDim: i32,
  y: usize,
  bias: usize,
  scratch: usize,
  stride: usize,
): void {
  const width = end - begin;
  if (width <= 0) return;
  const shift: usize = kind == F32 ? 2 : 1;
  const rowBytes = (<usize>outDim) << shift;
  const first = wT + ((<usize>begin) << shift);
  const acc = scratch + <usize>slot * stride;
  const accRow = (<usize>width) << 2;
  for (let t0 = 0; t0 < tokens; t0 += TILE) {
    const nt = min(TILE, tokens - t0);
    memory.fill(acc, 0, <usize>nt * accRow);
    let i = 0;
    for (; i + 4 <= inDim; i += 4) {
      const p0 = first + <usize>i * rowBytes;
      for (let t = 0; t < nt; t++) {
        const xr = x + ((<usize>(t0 + t) * <usize>inDim + <usize>i) << 2);
        const x0 = f32x4.splat(load<f32>(xr) * xScale(kind));
        const x1 = f32x4.splat(load<f32>(xr, 4) * xScale(kind));
        const x2 = f32x4.splat(load<f32>(xr, 8) * xScale(kind));
        const x3 = f32x4.splat(load<f32>(xr, 12) * xScale(kind));
        add4(
          kind,
          acc + <usize>t * accRow,
          width,
          p0,
          p0 + rowBytes,
          p0 + 2 * rowBytes,
          p0 + 3 * rowBytes,
          x0,
          x1,
          x2,
          x3,
        );
      }
    }
    for (; i < inDim; i++) {
      const p = first + <usize>i * rowBytes;
      for (let t = 0; t < nt; t++) {
        const xi = f32x4.splat(
          load<f32>(x + ((<usize>(t0 + t) * <usize>inDim + <usize>i) << 2)) * xScale(kind),
        );
        addColumn(kind, acc + <usize>t * accRow, width, p, xi);
      }
    }
    // Out: y[t, begin + o] = acc (back to natural order) + bias.
    for (let t = 0; t < nt; t++) {
      const a = acc + <usize>t * accRow;
      const yr = y + ((<usize>(t0 + t) * <usize>outDim + <usize>begin) << 2);
      const br = bias ? bias + ((<usize>begin) << 2) : 0;
      let vecEnd = 0;
      if (kind != F32) {
        vecEnd = width & ~7;
        for (let o = 0; o < vecEnd; o += 8) {
          const off = (<usize>o) << 2;
          const e = v128.load(a + off);
          const d = v128.load(a + off, 16);
          let lo = f32x4.mul(i32x4.shuffle(e, d, 0, 4, 1, 5), f32x4.splat(sumScale(kind)));
          let hi = f32x4.mul(i32x4.shuffle(e, d, 2, 6, 3, 7), f32x4.splat(sumScale(kind)));
          if (bias) {
            lo = f32x4.add(lo, v128.load(br + off));
            hi = f32x4.add(hi, v128.load(br + off, 16));
          }
          v128.store(yr + off, lo);
          v128.store(yr + off, hi, 16);
        }
      }
      for (let o = vecEnd; o < width; o++) {
        const off = (<usize>o) << 2;
        store<f32>(yr + off, load<f32>(a + off) * sumScale(kind) + (bias ? load<f32>(br + off) : 0));
      }
    }
  }
}

export function inputMajorMatmulF32(
  begin: i32,
  end: i32,
  slot: i32,
  wT: usize,
  x: usize,
  tokens: i32,
  inDim: i32,
  outDim: i32,
  y: usize,
  bias: usize,
  scratch: usize,
  stride: usize,
): void {
  inputMajor(F32, begin, end, slot, wT, x, tokens, inDim, outDim, y, bias, scratch, stride);
}

export function inputMajorMatmulBF16(
  begin: i32,
  end: i32,
  slot: i32,
  wT: usize,
  x: usize,
  tokens: i32,
  inDim: i32,
  outDim: i32,
  y: usize,
  bias: usize,
  scratch: usize,
  stride: usize,
): void {
  inputMajor(BF16, begin, end, slot, wT, x, tokens, inDim, outDim, y, bias, scratch, stride);
}

export function inputMajorMatmulF16(
  begin: i32,
  end: i32,
  slot: i32,
  wT: usize,
  x: usize,
  tokens: i32,
  inDim: i32,
  outDim: i32,
  y: usize,
  bias: usize,
  scratch: usize,
  stride: usize,
): void {
  inputMajor(F16, begin, end, slot, wT, x, tokens, inDim, outDim, y, bias, scratch, stride);
}
