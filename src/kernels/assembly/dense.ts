// Dense y[t, o] = dot(W[o, :], x[t, :]) + bias[o] on row-major W [out, in]. Threads split the output rows:
// [begin, end) is one chunk of rows, a multiple of 4 except at the end of the matrix; `slot` picks the
// chunk's scratch.
import {
  bf16Scalar,
  f16High,
  f16Scalar,
  hsum,
  hsum4,
  madd,
  sumScale,
  weightAt,
  widenEven,
  widenOdd,
  BF16,
  F16,
  Q4,
  q4Row,
  Q8,
  q8Row,
  listedRow,
  rowAt,
  store1,
  store4,
  storeListed,
} from './simd';


@inline
function scalar(kind: i32, bits: u16): f32 {
  return kind == BF16 ? bf16Scalar(bits) : f16Scalar(bits);
}

// A row is read alone when it and x fit in 24 KiB (L1 is 32-48 KiB): four short rows read side by side stall the
// hardware prefetcher (half the bandwidth at 576 inputs, measured), while longer rows go four at a time, sharing
// each load of x, which would not stay in L1 beside them.
@inline
function readsAlone(inDim: i32, weightBytes: i32): bool {
  return inDim * (weightBytes + 4) <= 24576;
}

// One F32 row times x.
@inline
function dot1F32(r: usize, x: usize, n: i32): f32 {
  let a0 = f32x4.splat(0);
  let a1 = f32x4.splat(0);
  let a2 = f32x4.splat(0);
  let a3 = f32x4.splat(0);
  let i = 0;
  for (; i + 16 <= n; i += 16) {
    const off = (<usize>i) << 2;
    a0 = madd(v128.load(r + off), v128.load(x + off), a0);
    a1 = madd(v128.load(r + off, 16), v128.load(x + off, 16), a1);
    a2 = madd(v128.load(r + off, 32), v128.load(x + off, 32), a2);
    a3 = madd(v128.load(r + off, 48), v128.load(x + off, 48), a3);
  }
  for (; i + 4 <= n; i += 4)
    a0 = madd(v128.load(r + ((<usize>i) << 2)), v128.load(x + ((<usize>i) << 2)), a0);
  let s = hsum(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)));
  for (; i < n; i++) s += load<f32>(r + ((<usize>i) << 2)) * load<f32>(x + ((<usize>i) << 2));
  return s;
}

// Four F32 rows times one x: lane r = dot(row r, x).
@inline
function dot4F32(r0: usize, r1: usize, r2: usize, r3: usize, x: usize, n: i32): v128 {
  let a0 = f32x4.splat(0);
  let a1 = f32x4.splat(0);
  let a2 = f32x4.splat(0);
  let a3 = f32x4.splat(0);
  let b0 = f32x4.splat(0);
  let b1 = f32x4.splat(0);
  let b2 = f32x4.splat(0);
  let b3 = f32x4.splat(0);
  const vecEnd = n & ~7;
  for (let i = 0; i < vecEnd; i += 8) {
    const off = (<usize>i) << 2;
    const x0 = v128.load(x + off);
    const x1 = v128.load(x + off, 16);
    a0 = madd(v128.load(r0 + off), x0, a0);
    b0 = madd(v128.load(r0 + off, 16), x1, b0);
    a1 = madd(v128.load(r1 + off), x0, a1);
    b1 = madd(v128.load(r1 + off, 16), x1, b1);
    a2 = madd(v128.load(r2 + off), x0, a2);
    b2 = madd(v128.load(r2 + off, 16), x1, b2);
    a3 = madd(v128.load(r3 + off), x0, a3);
    b3 = madd(v128.load(r3 + off, 16), x1, b3);
  }
  let s = hsum4(f32x4.add(a0, b0), f32x4.add(a1, b1), f32x4.add(a2, b2), f32x4.add(a3, b3));
  if (vecEnd < n) {
    let t0: f32 = 0;
    let t1: f32 = 0;
    let t2: f32 = 0;
    let t3: f32 = 0;
    for (let i = vecEnd; i < n; i++) {
      const off = (<usize>i) << 2;
      const xi = load<f32>(x + off);
      t0 += load<f32>(r0 + off) * xi;
      t1 += load<f32>(r1 + off) * xi;
      t2 += load<f32>(r2 + off) * xi;
      t3 += load<f32>(r3 + off) * xi;
    }
    s = f32x4.add(
      s,
      f32x4.replace_lane(f32x4.replace_lane(f32x4.replace_lane(f32x4.splat(t0), 1, t1), 2, t2), 3, t3),
    );
  }
  return s;
}

// Four 16-bit rows times x as permuteEvenOdd gives it (in even/odd order, scaled by the format's x scale).
@inline
function dot4Half(kind: i32, r0: usize, r1: usize, r2: usize, r3: usize, xp: usize, n: i32): v128 {
  let e0 = f32x4.splat(0);
  let e1 = f32x4.splat(0);
  let e2 = f32x4.splat(0);
  let e3 = f32x4.splat(0);
  let o0 = f32x4.splat(0);
  let o1 = f32x4.splat(0);
  let o2 = f32x4.splat(0);
  let o3 = f32x4.splat(0);
  const vecEnd = n & ~7;
  for (let i = 0; i < vecEnd; i += 8) {
    const wo = (<usize>i) << 1;
    const xo = (<usize>i) << 2;
    const xe = v128.load(xp + xo);
    const xd = v128.load(xp + xo, 16);
    const w0 = v128.load(r0 + wo);
    const w1 = v128.load(r1 + wo);
    const w2 = v128.load(r2 + wo);
    const w3 = v128.load(r3 + wo);
    e0 = madd(widenEven(kind, w0), xe, e0);
    o0 = madd(widenOdd(kind, w0), xd, o0);
    e1 = madd(widenEven(kind, w1), xe, e1);
    o1 = madd(widenOdd(kind, w1), xd, o1);
    e2 = madd(widenEven(kind, w2), xe, e2);
    o2 = madd(widenOdd(kind, w2), xd, o2);
    e3 = madd(widenEven(kind, w3), xe, e3);
    o3 = madd(widenOdd(kind, w3), xd, o3);
  }
  let s = hsum4(f32x4.add(e0, o0), f32x4.add(e1, o1), f32x4.add(e2, o2), f32x4.add(e3, o3));
  if (vecEnd < n) {
    let t0: f32 = 0;
    let t1: f32 = 0;
    let t2: f32 = 0;
    let t3: f32 = 0;
    for (let i = vecEnd; i < n; i++) {
      const xi = load<f32>(xp + ((<usize>i) << 2));
      t0 += weightAt(kind, r0, i) * xi;
      t1 += weightAt(kind, r1, i) * xi;
      t2 += weightAt(kind, r2, i) * xi;
      t3 += weightAt(kind, r3, i) * xi;
    }
    s = f32x4.add(
      s,
      f32x4.replace_lane(f32x4.replace_lane(f32x4.replace_lane(f32x4.splat(t0), 1, t1), 2, t2), 3, t3),
    );
  }
  return kind == F16 ? f32x4.mul(s, f32x4.splat(sumScale(kind))) : s;
}

// One 16-bit row times x as permuteEvenOdd gives it.
@inline
function dot1Half(kind: i32, r: usize, xp: usize, n: i32): f32 {
  let e0 = f32x4.splat(0);
  let e1 = f32x4.splat(0);
  let o0 = f32x4.splat(0);
  let o1 = f32x4.splat(0);
  let i = 0;
  for (; i + 16 <= n; i += 16) {
    const wo = (<usize>i) << 1;
    const xo = (<usize>i) << 2;
    const w0 = v128.load(r + wo);
    const w1 = v128.load(r + wo, 16);
    const x0 = v128.load(xp + xo);
    const x1 = v128.load(xp + xo, 16);
    const x2 = v128.load(xp + xo, 32);
    const x3 = v128.load(xp + xo, 48);
    e0 = madd(widenEven(kind, w0), x0, e0);
    o0 = madd(widenOdd(kind, w0), x1, o0);
    e1 = madd(widenEven(kind, w1), x2, e1);
    o1 = madd(widenOdd(kind, w1), x3, o1);
  }
  if (i + 8 <= n) {
    const w0 = v128.load(r + ((<usize>i) << 1));
    const x0 = v128.load(xp + ((<usize>i) << 2));
    const x1 = v128.load(xp + ((<usize>i) << 2), 16);
    e0 = madd(widenEven(kind, w0), x0, e0);
    o0 = madd(widenOdd(kind, w0), x1, o0);
    i += 8;
  }
  let s = hsum(f32x4.add(f32x4.add(e0, o0), f32x4.add(e1, o1)));
  for (; i < n; i++) s += weightAt(kind, r, i) * load<f32>(xp + ((<usize>i) << 2));
  return kind == F16 ? s * sumScale(kind) : s;
}


@inline
function matvecHalf(
  kind: i32,
  begin: i32,
  end: i32,
  w: usize,
  xp: usize,
  y: usize,
  bias: usize,
  inDim: i32,
): void {
  const rowBytes = (<usize>inDim) << 1;
  if (readsAlone(inDim, 2)) {
    for (let o = begin; o < end; o++) store1(y, bias, o, dot1Half(kind, w + <usize>o * rowBytes, xp, inDim));
    return;
  }
  for (let o = begin; o < end; o += 4) {
    const rows = min(4, end - o);
    const s = dot4Half(
      kind,
      rowAt(w, rowBytes, o, 0, rows),
      rowAt(w, rowBytes, o, 1, rows),
      rowAt(w, rowBytes, o, 2, rows),
      rowAt(w, rowBytes, o, 3, rows),
      xp,
      inDim,
    );
    store4(y, bias, o, rows, s);
  }
}

export function matvecF32(
  begin: i32,
  end: i32,
  _slot: i32,
  w: usize,
  x: usize,
  y: usize,
  bias: usize,
  inDim: i32,
): void {
  const rowBytes = (<usize>inDim) << 2;
  if (readsAlone(inDim, 4)) {
    for (let o = begin; o < end; o++) store1(y, bias, o, dot1F32(w + <usize>o * rowBytes, x, inDim));
    return;
  }
  for (let o = begin; o < end; o += 4) {
    const rows = min(4, end - o);
    const s = dot4F32(
      rowAt(w, rowBytes, o, 0, rows),
      rowAt(w, rowBytes, o, 1, rows),
      rowAt(w, rowBytes, o, 2, rows),
      rowAt(w, rowBytes, o, 3, rows),
      x,
      inDim,
    );
    store4(y, bias, o, rows, s);
  }
}

/** T = 1 with BF16 weights; xp is x after permuteEvenOdd (F16: scaled by its x scale). */
export function matvecBF16(
  begin: i32,
  end: i32,
  _slot: i32,
  w: usize,
  xp: usize,
  y: usize,
  bias: usize,
  inDim: i32,
): void {
  matvecHalf(BF16, begin, end, w, xp, y, bias, inDim);
}

export function matvecF16(
  begin: i32,
  end: i32,
  _slot: i32,
  w: usize,
  xp: usize,
  y: usize,
  bias: usize,
  inDim: i32,
): void {
  matvecHalf(F16, begin, end, w, xp, y, bias, inDim);
}

// Row-gather: y[rows[j]] = dot(W[rows[j], :], x) (+ bias) for j in [begin, end), four listed rows at a time;
// the other rows of y are the caller's (zeroed). CATS reads only the up_proj rows its mask keeps.
export function gatherF32(
  begin: i32,
  end: i32,
  _slot: i32,
  w: usize,
  x: usize,
  rows: usize,
  y: usize,
  bias: usize,
  inDim: i32,
): void {
  const rowBytes = (<usize>inDim) << 2;
  if (readsAlone(inDim, 4)) {
    for (let j = begin; j < end; j++) {
      const o = load<i32>(rows + ((<usize>j) << 2));
      store1(y, bias, o, dot1F32(w + <usize>o * rowBytes, x, inDim));
    }
    return;
  }
  for (let j = begin; j < end; j += 4) {
    const n = min(4, end - j);
    const s = dot4F32(
      listedRow(w, rowBytes, rows, j, 0, n),
      listedRow(w, rowBytes, rows, j, 1, n),
      listedRow(w, rowBytes, rows, j, 2, n),
      listedRow(w, rowBytes, rows, j, 3, n),
      x,
      inDim,
    );
    storeListed(y, bias, rows, j, n, s);
  }
}


@inline
function gatherHalf(
  kind: i32,
  begin: i32,
  end: i32,
  w: usize,
  xp: usize,
  rows: usize,
  y: usize,
  bias: usize,
  inDim: i32,
): void {
  const rowBytes = (<usize>inDim) << 1;
  if (readsAlone(inDim, 2)) {
    for (let j = begin; j < end; j++) {
      const o = load<i32>(rows + ((<usize>j) << 2));
      store1(y, bias, o, dot1Half(kind, w + <usize>o * rowBytes, xp, inDim));
    }
    return;
  }
  for (let j = begin; j < end; j += 4) {
    const n = min(4, end - j);
    const s = dot4Half(
      kind,
      listedRow(w, rowBytes, rows, j, 0, n),
      listedRow(w, rowBytes, rows, j, 1, n),
      listedRow(w, rowBytes, rows, j, 2, n),
      listedRow(w, rowBytes, rows, j, 3, n),
      xp,
      inDim,
    );
    storeListed(y, bias, rows, j, n, s);
  }
}

/** Row-gather with BF16 weights; xp is x after permuteEvenOdd. */
export function gatherBF16(
  begin: i32,
  end: i32,
  _slot: i32,
  w: usize,
  xp: usize,
  rows: usize,
  y: usize,
  bias: usize,
  inDim: i32,
): void {
  gatherHalf(BF16, begin, end, w, xp, rows, y, bias, inDim);
}

export function gatherF16(
  begin: i32,
  end: i32,
  _slot: i32,
  w: usize,
  xp: usize,
  rows: usize,
  y: usize,
  bias: usize,
  inDim: i32,
): void {
  gatherHalf(F16, begin, end, w, xp, rows, y, bias, inDim);
}

/**
 * Reorders each block of 8 floats as its 4 even then its 4 odd elements (the order 16-bit widening yields), times
 * scale (F16's x scale, see xScale in simd.ts; 1 for BF16).
 */
export function permuteEvenOdd(src: usize, dst: usize, n: i32, scale: f32): void {
  const s = f32x4.splat(scale);
  const vecEnd = n & ~7;
  for (let i = 0; i < vecEnd; i += 8) {
    const off = (<usize>i) << 2;
    const a = v128.load(src + off);
    const b = v128.load(src + off, 16);
    v128.store(dst + off, f32x4.mul(i32x4.shuffle(a, b, 0, 2, 4, 6), s));
    v128.store(dst + off, f32x4.mul(i32x4.shuffle(a, b, 1, 3, 5, 7), s), 16);
  }
  for (let i = vecEnd; i < n; i++)
    store<f32>(dst + ((<usize>i) << 2), load<f32>(src + ((<usize>i) << 2)) * scale);
}

// Four F32 rows times two tokens' x (xa, xb): each weight vector loaded once feeds both tokens.
@inline
function dot4x2F32(
  r0: usize,
  r1: usize,
  r2: usize,
  r3: usize,
  xa: usize,
  xb: usize,
  n: i32,
  ya: usize,
  yb: usize,
  bias: usize,
  o: i32,
  rows: i32,
): void {
  let a0 = f32x4.splat(0);
  let a1 = f32x4.splat(0);
  let a2 = f32x4.splat(0);
  let a3 = f32x4.splat(0);
  let b0 = f32x4.splat(0);
  let b1 = f32x4.splat(0);
  let b2 = f32x4.splat(0);
  let b3 = f32x4.splat(0);
  const vecEnd = n & ~3;
  for (let i = 0; i < vecEnd; i += 4) {
    const off = (<usize>i) << 2;
    const xav = v128.load(xa + off);
    const xbv = v128.load(xb + off);
    let w = v128.load(r0 + off);
    a0 = madd(w, xav, a0);
    b0 = madd(w, xbv, b0);
    w = v128.load(r1 + off);
    a1 = madd(w, xav, a1);
    b1 = madd(w, xbv, b1);
    w = v128.load(r2 + off);
    a2 = madd(w, xav, a2);
    b2 = madd(w, xbv, b2);
    w = v128.load(r3 + off);
    a3 = madd(w, xav, a3);
    b3 = madd(w, xbv, b3);
  }
  let sa = hsum4(a0, a1, a2, a3);
  let sb = hsum4(b0, b1, b2, b3);
  if (vecEnd < n) {
    for (let i = vecEnd; i < n; i++) {
      const off = (<usize>i) << 2;
      const w = f32x4.replace_lane(
        f32x4.replace_lane(
          f32x4.replace_lane(f32x4.splat(load<f32>(r0 + off)), 1, load<f32>(r1 + off)),
          2,
          load<f32>(r2 + off),
        ),
        3,
        load<f32>(r3 + off),
      );
      sa = madd(w, v128.load32_splat(xa + off), sa);
      sb = madd(w, v128.load32_splat(xb + off), sb);
    }
  }
  store4(ya, bias, o, rows, sa);
  store4(yb, bias, o, rows, sb);
}

// Prefill: each block of four rows is read from memory once and used for every token, two tokens at a time.
@inline
function matmulRows(
  r0: usize,
  r1: usize,
  r2: usize,
  r3: usize,
  o: i32,
  rows: i32,
  x: usize,
  tokens: i32,
  y: usize,
  bias: usize,
  inDim: i32,
  outDim: i32,
): void {
  const xBytes = (<usize>inDim) << 2;
  const yBytes = (<usize>outDim) << 2;
  let t = 0;
  for (; t + 2 <= tokens; t += 2) {
    const xa = x + <usize>t * xBytes;
    const ya = y + <usize>t * yBytes;
    dot4x2F32(r0, r1, r2, r3, xa, xa + xBytes, inDim, ya, ya + yBytes, bias, o, rows);
  }
  if (t < tokens)
    store4(y + <usize>t * yBytes, bias, o, rows, dot4F32(r0, r1, r2, r3, x + <usize>t * xBytes, inDim));
}

/** `_scratch` is unused: every format's matmul takes the same arguments. */
export function matmulF32(
  begin: i32,
  end: i32,
  _slot: i32,
  w: usize,
  x: usize,
  tokens: i32,
  y: usize,
  bias: usize,
  inDim: i32,
  outDim: i32,
  _scratch: usize,
): void {
  const rowBytes = (<usize>inDim) << 2;
  for (let o = begin; o < end; o += 4) {
    const rows = min(4, end - o);
    matmulRows(
      rowAt(w, rowBytes, o, 0, rows),
      rowAt(w, rowBytes, o, 1, rows),
      rowAt(w, rowBytes, o, 2, rows),
      rowAt(w, rowBytes, o, 3, rows),
      o,
      rows,
      x,
      tokens,
      y,
      bias,
      inDim,
      outDim,
    );
  }
}

// 16-bit row -> F32 in natural order (for prefill, where the widened rows are reused across tokens).
@inline
function widenRow(kind: i32, src: usize, dst: usize, n: i32): void {
  const vecEnd = n & ~7;
  for (let i = 0; i < vecEnd; i += 8) {
    const w = v128.load(src + ((<usize>i) << 1));
    const lo = i32x4.shl(i32x4.extend_low_i16x8_u(w), 16);
    const hi = i32x4.shl(i32x4.extend_high_i16x8_u(w), 16);
    const off = (<usize>i) << 2;
    v128.store(dst + off, kind == BF16 ? lo : f16High(lo));
    v128.store(dst + off, kind == BF16 ? hi : f16High(hi), 16);
  }
  for (let i = vecEnd; i < n; i++)
    store<f32>(dst + ((<usize>i) << 2), scalar(kind, load<u16>(src + ((<usize>i) << 1))));
}

/** Bytes of scratch each slot needs for matmulBF16/F16: four widened rows. */
export function matmulScratchBytes(inDim: i32): usize {
  return (((<usize>inDim) << 4) + 63) & ~63;
}


@inline
function matmulHalf(
  kind: i32,
  begin: i32,
  end: i32,
  slot: i32,
  w: usize,
  x: usize,
  tokens: i32,
  y: usize,
  bias: usize,
  inDim: i32,
  outDim: i32,
  scratch: usize,
): void {
  // q8 / q4 rows are stored in tiles of four (see q8.ts, q4.ts): a block of four rows is one tile.
  const rowBytes =
    kind == Q8
      ? <usize>inDim + ((<usize>inDim) >> 3)
      : kind == Q4
        ? ((<usize>inDim) >> 1) + ((<usize>inDim) >> 3)
        : (<usize>inDim) << 1;
  const f32Bytes = (<usize>inDim) << 2;
  const rowsBuf = scratch + <usize>slot * matmulScratchBytes(inDim);
  for (let o = begin; o < end; o += 4) {
    const rows = min(4, end - o);
    for (let r = 0; r < rows; r++) {
      const dst = rowsBuf + <usize>r * f32Bytes;
      if (kind == Q8) q8Row(w + <usize>o * rowBytes, r, dst, inDim);
      else if (kind == Q4) q4Row(w + <usize>o * rowBytes, r, dst, inDim);
      else widenRow(kind, w + <usize>(o + r) * rowBytes, dst, inDim);
    }
    matmulRows(
      rowsBuf,
      rowsBuf + (rows > 1 ? f32Bytes : 0),
      rowsBuf + (rows > 2 ? 2 * f32Bytes : 0),
      rowsBuf + (rows > 3 ? 3 * f32Bytes : 0),
      o,
      rows,
      x,
      tokens,
      y,
      bias,
      inDim,
      outDim,
    );
  }
}

export function matmulBF16(
  begin: i32,
  end: i32,
  slot: i32,
  w: usize,
  x: usize,
  tokens: i32,
  y: usize,
  bias: usize,
  inDim: i32,
  outDim: i32,
  scratch: usize,
): void {
  matmulHalf(BF16, begin, end, slot, w, x, tokens, y, bias, inDim, outDim, scratch);
}

export function matmulF16(
  begin: i32,
  end: i32,
  slot: i32,
  w: usize,
  x: usize,
  tokens: i32,
  y: usize,
  bias: usize,
  inDim: i32,
  outDim: i32,
  scratch: usize,
): void {
  matmulHalf(F16, begin, end, slot, w, x, tokens, y, bias, inDim, outDim, scratch);
}

/** Prefill with q8 weights (src/kernels/assembly/q8.ts): each block of four rows widened once, for all tokens. */
export function matmulQ8(
  begin: i32,
  end: i32,
  slot: i32,
  w: usize,
  x: usize,
  tokens: i32,
  y: usize,
  bias: usize,
  inDim: i32,
  outDim: i32,
  scratch: usize,
): void {
  matmulHalf(Q8, begin, end, slot, w, x, tokens, y, bias, inDim, outDim, scratch);
}

/** Prefill with q4 weights (src/kernels/assembly/q4.ts): each block of four rows widened once, for all tokens. */
export function matmulQ4(
  begin: i32,
  end: i32,
  slot: i32,
  w: usize,
  x: usize,
  tokens: i32,
  y: usize,
  bias: usize,
  inDim: i32,
  outDim: i32,
  scratch: usize,
): void {
  matmulHalf(Q4, begin, end, slot, w, x, tokens, y, bias, inDim, outDim, scratch);
}
