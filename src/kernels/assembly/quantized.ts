// The one-token dense products of the quantized formats (q8.ts, q4.ts): four rows at a time, each format's dot4
// on x quantized per 32 (xq.ts).
import { dot4 as dot4Q4, rowBytes as rowBytesQ4 } from './q4';
import { dot4 as dot4Q8, rowBytes as rowBytesQ8 } from './q8';
import { listedRow, rowAt, store4, storeListed } from './simd';

const Q8: i32 = 0;
const Q4: i32 = 1;


@inline
function rowBytes(kind: i32, inDim: i32): usize {
  return kind == Q8 ? rowBytesQ8(inDim) : rowBytesQ4(inDim);
}


@inline
function dot4(kind: i32, r0: usize, r1: usize, r2: usize, r3: usize, xq: usize, inDim: i32): v128 {
  return kind == Q8 ? dot4Q8(r0, r1, r2, r3, xq, inDim) : dot4Q4(r0, r1, r2, r3, xq, inDim);
}

// T = 1: y[o] = dot(W[o, :], x) (+ bias) for rows [begin, end), in a multiple of 32.
@inline
function matvec(
  kind: i32,
  begin: i32,
  end: i32,
  w: usize,
  xq: usize,
  y: usize,
  bias: usize,
  inDim: i32,
): void {
  const bytes = rowBytes(kind, inDim);
  for (let o = begin; o < end; o += 4) {
    const n = min(4, end - o);
    const s = dot4(
      kind,
      rowAt(w, bytes, o, 0, n),
      rowAt(w, bytes, o, 1, n),
      rowAt(w, bytes, o, 2, n),
      rowAt(w, bytes, o, 3, n),
      xq,
      inDim,
    );
    store4(y, bias, o, n, s);
  }
}

// Row-gather: y[rows[j]] = dot(W[rows[j], :], x) (+ bias) for j in [begin, end).
@inline
function gather(
  kind: i32,
  begin: i32,
  end: i32,
  w: usize,
  xq: usize,
  rows: usize,
  y: usize,
  bias: usize,
  inDim: i32,
): void {
  const bytes = rowBytes(kind, inDim);
  for (let j = begin; j < end; j += 4) {
    const n = min(4, end - j);
    const s = dot4(
      kind,
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

/** T = 1 on Q8 (prefill is matmulQ8 in dense.ts: each block of rows widened once, F32 x). */
export function matvecQ8(
  begin: i32,
  end: i32,
  _slot: i32,
  w: usize,
  xq: usize,
  y: usize,
  bias: usize,
  inDim: i32,
): void {
  matvec(Q8, begin, end, w, xq, y, bias, inDim);
}

export function matvecQ4(
  begin: i32,
  end: i32,
  _slot: i32,
  w: usize,
  xq: usize,
  y: usize,
  bias: usize,
  inDim: i32,
): void {
  matvec(Q4, begin, end, w, xq, y, bias, inDim);
}

export function gatherQ8(
  begin: i32,
  end: i32,
  _slot: i32,
  w: usize,
  xq: usize,
  rows: usize,
  y: usize,
  bias: usize,
  inDim: i32,
): void {
  gather(Q8, begin, end, w, xq, rows, y, bias, inDim);
}

export function gatherQ4(
  begin: i32,
  end: i32,
  _slot: i32,
  w: usize,
  xq: usize,
  rows: usize,
  y: usize,
  bias: usize,
  inDim: i32,
): void {
  gather(Q4, begin, end, w, xq, rows, y, bias, inDim);
}
