/**
 * Matrix products for the orthogonal transform, in the linear-algebra WebAssembly module (runtime.ts): the
 * Gram matrix X^T X in float64, and float32 products A B^T / A B. Operands are read row by row through a
 * callback (a weight widened from BF16, say), so a large matrix streams through a fixed amount of memory.
 */
import { Linalg } from './runtime.js';

/** Fills `out` with rows first, first + 1, ... (out.length / cols of them) of a [rows, cols] matrix. */
export type RowReader = (first: number, out: Float32Array) => void;

export interface Operand {
  rows: number;
  cols: number;
  read: RowReader;
}

/** A row-major matrix in memory as an Operand (float64 values are rounded to float32 when read). */
export function operand(data: Float32Array | Float64Array, rows: number, cols: number): Operand {
  if (data.length < rows * cols) throw new RangeError(`operand: ${data.length} values for ${rows} x ${cols}`);
  return {
    rows,
    cols,
    read: (first, out) => out.set(data.subarray(first * cols, first * cols + out.length)),
  };
}

const round4 = (n: number) => Math.ceil(n / 4) * 4;
/** Rows per block of the Gram matrix (the summed dimension of one gramF64 call). */
const GRAM_ROWS = 256;
/** Elements of A (and of C) per block of the float32 product. */
const BLOCK_ELEMENTS = 1 << 22;

/**
 * G = (X diag(g))^T (X diag(g)) in float64 (each product of two float32 values is exact), [cols, cols]
 * row-major and exactly symmetric; g omitted: ones.
 */
export function gramMatrix(x: Operand, g?: Float32Array): Float64Array {
  const { rows, cols } = x;
  if (g && g.length !== cols) throw new RangeError(`gramMatrix: ${g.length} scales for ${cols} columns`);
  const la = Linalg.get();
  const mark = la.mark();
  try {
    const c4 = round4(cols);
    const gram = la.f64(c4 * c4).fill(0);
    const block = la.f32(GRAM_ROWS * cols);
    const xt = la.f64(c4 * GRAM_ROWS).fill(0); // rows past cols stay zero
    const scale = g ? la.f32(cols) : undefined;
    scale?.set(g!);
    const groups = c4 / 4;
    for (let r0 = 0; r0 < rows; r0 += GRAM_ROWS) {
      const count = Math.min(GRAM_ROWS, rows - r0);
      x.read(r0, block.subarray(0, count * cols));
      block.fill(0, count * cols);
      const gp = scale ? scale.byteOffset : 0;
      la.parallel(
        'transposeScale',
        cols,
        8,
        cols * GRAM_ROWS,
        block.byteOffset,
        gp,
        GRAM_ROWS,
        cols,
        xt.byteOffset,
        GRAM_ROWS,
      );
      const work = (c4 * c4 * GRAM_ROWS) / 2;
      la.parallel('gramF64', Math.ceil(groups / 2), 1, work, xt.byteOffset, c4, GRAM_ROWS, gram.byteOffset);
    }
    la.wasm.mirrorLower(gram.byteOffset, c4);
    const out = new Float64Array(cols * cols);
    for (let i = 0; i < cols; i++) out.set(gram.subarray(i * c4, i * c4 + cols), i * cols);
    return out;
  } finally {
    la.release(mark);
  }
}

/** out = A B^T, A [m, k], B [n, k], out [m, n] row-major; float32 products and sums. */
export function matmulABt(a: Operand, b: Operand, out: Float32Array): void {
  if (a.cols !== b.cols) throw new RangeError(`matmulABt: [${a.rows}, ${a.cols}] x [${b.rows}, ${b.cols}]^T`);
  product(a, b, false, out);
}

/** out = A B, A [m, k], B [k, n], out [m, n] row-major; float32 products and sums. */
export function matmulAB(a: Operand, b: Operand, out: Float32Array): void {
  if (a.cols !== b.rows) throw new RangeError(`matmulAB: [${a.rows}, ${a.cols}] x [${b.rows}, ${b.cols}]`);
  product(a, b, true, out);
}

function product(a: Operand, b: Operand, bIsKxN: boolean, out: Float32Array): void {
  const m = a.rows;
  const k = a.cols;
  const n = bIsKxN ? b.cols : b.rows;
  if (out.length < m * n) throw new RangeError(`matmul: output has ${out.length} values, needs ${m * n}`);
  const la = Linalg.get();
  const mark = la.mark();
  try {
    const k4 = round4(k);
    const n4 = round4(n);
    // B^T as [n4, k4] (rows of the right factor's transpose), zero-padded.
    const bt = la.f32(n4 * k4).fill(0);
    if (bIsKxN) {
      const step = Math.max(1, Math.floor(BLOCK_ELEMENTS / n));
      const stage = la.f32(step * n);
      for (let r0 = 0; r0 < k; r0 += step) {
        const count = Math.min(step, k - r0);
        b.read(r0, stage.subarray(0, count * n));
        const dst = bt.byteOffset + r0 * 4;
        la.parallel('transposeF32', n, 8, count * n, stage.byteOffset, count, n, dst, k4);
      }
    } else {
      readPadded(b, bt, k4);
    }
    const tRows = Math.max(2, Math.floor(BLOCK_ELEMENTS / Math.max(k4, n4)) & ~1);
    const ablock = la.f32(tRows * k4).fill(0);
    const cblock = la.f32(tRows * n4);
    for (let t0 = 0; t0 < m; t0 += tRows) {
      const count = Math.min(tRows, m - t0);
      const even = count + (count & 1);
      readPadded({ ...a, rows: count, read: (first, o) => a.read(t0 + first, o) }, ablock, k4);
      if (even > count) ablock.fill(0, count * k4, even * k4);
      const args = [ablock.byteOffset, bt.byteOffset, cblock.byteOffset, even, k4, n4];
      la.parallel('gemmF32', n4, 4, even * n4 * k4, ...args);
      if (n4 === n) out.set(cblock.subarray(0, count * n), t0 * n);
      else for (let t = 0; t < count; t++) out.set(cblock.subarray(t * n4, t * n4 + n), (t0 + t) * n);
    }
  } finally {
    la.release(mark);
  }
}

/** All rows of `x` into `dst` with row stride ld >= x.cols (the padding columns are left as they are). */
function readPadded(x: Operand, dst: Float32Array, ld: number): void {
  if (ld === x.cols) {
    x.read(0, dst.subarray(0, x.rows * ld));
    return;
  }
  for (let r = 0; r < x.rows; r++) x.read(r, dst.subarray(r * ld, r * ld + x.cols));
}
