// The one-token dense products of the quantized formats (q8.ts, q4.ts): one tile of four rows at a time, each
// format's dotTile on x quantized per 32 (xq.ts).
import { dotTile as dotTileQ4, rowBytes as rowBytesQ4 } from './q4';
import { dotTile as dotTileQ8, rowBytes as rowBytesQ8 } from './q8';
import { lane, store4 } from './simd';

const Q8: i32 = 0;
const Q4: i32 = 1;


@inline
function rowBytes(kind: i32, inDim: i32): usize {
  return kind == Q8 ? rowBytesQ8(inDim) : rowBytesQ4(inDim);
}


@inline
function dotTile(kind: i32, tile: usize, xq: usize, inDim: i32): v128 {
  return kind == Q8 ? dotTileQ8(tile, xq, inDim) : dotTileQ4(tile, xq, inDim);
}

// T = 1: y[o] = dot(W[o, :], x) (+ bias) for rows [begin, end), begin a multiple of 4 (a tile starts there: the
// tiles before it are whole, four rows each).
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
    store4(y, bias, o, min(4, end - o), dotTile(kind, w + <usize>o * bytes, xq, inDim));
  }
}

// Row-gather: y[rows[j]] = dot(W[rows[j], :], x) (+ bias) for j in [begin, end). A tile is read whole (reading one
// row of it touches most of its cache lines anyway) and serves every listed row in it that follows.
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
  let j = begin;
  while (j < end) {
    const first = load<i32>(rows + ((<usize>j) << 2)) & ~3;
    const s = dotTile(kind, w + <usize>first * bytes, xq, inDim);
    while (j < end) {
      const r = load<i32>(rows + ((<usize>j) << 2));
      if ((r & ~3) != first) break;
      let v = lane(s, r & 3);
      if (bias) v += load<f32>(bias + ((<usize>r) << 2));
      store<f32>(y + ((<usize>r) << 2), v);
      j++;
    }
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
