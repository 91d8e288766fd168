// x quantized per group of 32 for the integer kernels of q8 and q4 weights, as llama.cpp quantizes
// activations for Q8_0 / Q4_0 products: d = max |x| / 127, q = round(x / d) (ties to even) in [-127, 127].
// Layout: per group, 48 bytes: its 32 int8 values, the f32 d, the i32 sum of the values, 8 bytes of padding
// (16-byte aligned groups; q4 weights need the sum for their offset of -8).

export const XQ_GROUP_BYTES: usize = 48;

/** Bytes of x quantized (inDim a multiple of 32). */
export function quantizedXBytes(inDim: i32): usize {
  return <usize>(inDim >> 5) * XQ_GROUP_BYTES;
}


@inline
export function xqGroup(xq: usize, g: i32): usize {
  return xq + <usize>g * XQ_GROUP_BYTES;
}

export function quantizeX(x: usize, inDim: i32, out: usize): void {
  for (let g = 0; g < inDim >> 5; g++) {
    const xg = x + ((<usize>g) << 7);
    let m = f32x4.splat(0);
    for (let k: usize = 0; k < 8; k++) m = f32x4.max(m, f32x4.abs(v128.load(xg + (k << 4))));
    const amax = max(
      max(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1)),
      max(f32x4.extract_lane(m, 2), f32x4.extract_lane(m, 3)),
    );
    const d: f32 = amax / 127;
    const id = f32x4.splat(d != 0 ? <f32>1 / d : 0);
    const og = xqGroup(out, g);
    let sum = i32x4.splat(0);
    for (let k: usize = 0; k < 8; k += 4) {
      const a = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(xg + (k << 4)), id)));
      const b = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(xg + ((k + 1) << 4)), id)));
      const c = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(xg + ((k + 2) << 4)), id)));
      const e = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(xg + ((k + 3) << 4)), id)));
      sum = i32x4.add(sum, i32x4.add(i32x4.add(a, b), i32x4.add(c, e)));
      v128.store(og + (k << 2), i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(a, b), i16x8.narrow_i32x4_s(c, e)));
    }
    store<f32>(og, d, 32);
    const total =
      i32x4.extract_lane(sum, 0) +
      i32x4.extract_lane(sum, 1) +
      i32x4.extract_lane(sum, 2) +
      i32x4.extract_lane(sum, 3);
    store<i32>(og, total, 36);
  }
}

// Four rows' 16 bytes interleaved for a four-way dot product: lane j of result m holds byte 4m + j of each row,
// rows in order (so i32x4.relaxed_dot with the four rows' x in each lane sums the four rows per output).
@inline
export function interleave4(w0: v128, w1: v128, w2: v128, w3: v128, m: i32): v128 {
  const a =
    m < 2
      ? i8x16.shuffle(w0, w1, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23)
      : i8x16.shuffle(w0, w1, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  const b =
    m < 2
      ? i8x16.shuffle(w2, w3, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23)
      : i8x16.shuffle(w2, w3, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  return (m & 1) == 0
    ? i8x16.shuffle(a, b, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23)
    : i8x16.shuffle(a, b, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31);
}

/**
 * Bytes after each column-sparse slot's partial sums (sparse.ts) for the q8 / q4 kernels: up to 8 passes of 32
 * bytes (writePasses), then room for 32 i32 sums.
 */
export const PASS_BYTES: usize = 384;

/**
 * The passes of one group's run of kept inputs kept[j..e) of an input-major q8 / q4 weight (rows of `rowBytes`,
 * groups of 32 rows and their scales every `groupBytes`), four rows each (a short last pass repeats the first row
 * with x = 0), written at `at`, 32 bytes a pass: the four row addresses, then the four |x| bytes, the four sign
 * bytes (-1 where x < 0) and the four x bytes. Returns the number of passes.
 */
@inline
export function writePasses(
  at: usize,
  wT: usize,
  xq: usize,
  kept: usize,
  j: i32,
  e: i32,
  rowBytes: usize,
  groupBytes: usize,
): i32 {
  const first = load<i32>(kept + ((<usize>j) << 2));
  const gx = xqGroup(xq, first >> 5);
  const group = wT + <usize>(first >> 5) * groupBytes;
  let passes = 0;
  for (let r = j; r < e; r += 4) {
    const ps = at + ((<usize>passes) << 5);
    let abs: u32 = 0;
    let sign: u32 = 0;
    let xs: u32 = 0;
    for (let t = 0; t < 4; t++) {
      const i = r + t < e ? load<i32>(kept + ((<usize>(r + t)) << 2)) : first;
      const v: i32 = r + t < e ? <i32>load<i8>(gx + <usize>(i & 31)) : 0;
      store<usize>(ps + ((<usize>t) << 2), group + <usize>(i & 31) * rowBytes);
      abs |= ((<u32>(v < 0 ? -v : v)) & 0xff) << (t << 3);
      sign |= (v < 0 ? <u32>0xff : 0) << (t << 3);
      xs |= ((<u32>v) & 0xff) << (t << 3);
    }
    store<u32>(ps, abs, 16);
    store<u32>(ps, sign, 20);
    store<u32>(ps, xs, 24);
    passes++;
  }
  return passes;
}
