/**
 * q4 weights: 4-bit values q in [0, 15] with one scale d per group of 32 inputs per output, a weight being
 * (q - 8) * d: GGUF Q4_0's blocks, quantized as llama.cpp quantizes them (quantize_row_q4_0_ref), so its Q4_0
 * files and ours hold the same numbers. Each layout keeps the scales beside the bytes its kernel reads with them:
 * - `Q4` (row-major [out, in], dense products): rows in tiles of four (see q8.ts's `tiledValue`), per group of
 *   32 inputs the tile's rows' 16 bytes, then their f32 scales. Byte j of a group holds value j in its low nibble
 *   and value j + 16 in its high nibble (Q4_0's order).
 * - `Q4T` (input-major [in, out], column-sparse decode): per group of 32 input rows, the 32 rows of out values
 *   (padded to a multiple of 32; per block of 32 outputs, byte k holds output k low and k + 16 high), then the
 *   group's out f32 scales.
 */
import type { Tensor } from './tensor.js';
import {
  type QuantizedX,
  roundToF16,
  scalesOf,
  storedShape,
  tiledBytes,
  tiledScale,
  tiledValue,
  zeroPadding,
} from './q8.js';

export const Q4_GROUP = 32;
/** Stored bytes per weight: half a byte plus a share of its group's f32 scale. */
export const Q4_BYTES = 0.5 + 4 / Q4_GROUP;

/** Bytes of one group of a Q4 row: 32 values, two per byte. */
const GROUP_BYTES = 16;
/** Bytes of one Q4T input row: its outputs padded to whole blocks of 32. */
const q4tRowBytes = (outDim: number) => Math.ceil(outDim / 32) * 16;
/** Bytes of one Q4T group: 32 input rows and the group's scales. */
const q4tGroupBytes = (outDim: number) => Q4_GROUP * q4tRowBytes(outDim) + 4 * outDim;

/** Bytes of a Q4T tensor of [in, out]. */
export const q4tBytes = (inDim: number, outDim: number) => (inDim / Q4_GROUP) * q4tGroupBytes(outDim);

/** Value k (0..31) of the group at byte offset `at`: Q4_0's nibble order. */
const nibble = (bytes: Uint8Array, at: number, k: number) =>
  k < 16 ? bytes[at + k]! & 15 : bytes[at + k - 16]! >> 4;

/**
 * A row-major `Q4` tensor of a [out, in] weight whose rows `rowAt(o, dst)` gives in F32, quantized as
 * llama.cpp's quantize_row_q4_0_ref: per group, m = the value of largest magnitude, d = m / -8,
 * q = min(15, trunc(w / d + 8.5)), the scale stored as d rounded to F16.
 */
export function quantizeQ4(
  out: number,
  inDim: number,
  rowAt: (o: number, dst: Float32Array) => void,
  alloc: (bytes: number) => Uint8Array,
): Tensor {
  const bytes = alloc(tiledBytes(out, inDim, GROUP_BYTES));
  zeroPadding(bytes, out, inDim, GROUP_BYTES);
  const scales = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >> 2);
  const row = new Float32Array(inDim);
  const f = Math.fround;
  for (let o = 0; o < out; o++) {
    rowAt(o, row);
    for (let g = 0; g < inDim / Q4_GROUP; g++) {
      let amax = 0;
      let max = 0;
      for (let j = 0; j < Q4_GROUP; j++) {
        const v = row[g * Q4_GROUP + j]!;
        if (amax < Math.abs(v)) {
          amax = Math.abs(v);
          max = v;
        }
      }
      const d = f(max / -8);
      const id = d ? f(1 / d) : 0;
      scales[tiledScale(inDim, GROUP_BYTES, o, g) / 4] = roundToF16(d);
      const q = (v: number) => Math.min(15, Math.trunc(f(f(v * id) + 8.5)));
      const at = tiledValue(inDim, GROUP_BYTES, o, g);
      for (let j = 0; j < 16; j++) {
        const lo = q(row[g * Q4_GROUP + j]!);
        const hi = q(row[g * Q4_GROUP + 16 + j]!);
        bytes[at + j] = lo | (hi << 4);
      }
    }
  }
  return { dtype: 'Q4', shape: [out, inDim], data: bytes };
}

/** q values of a Q4 row o, in input order. */
function q4RowValues(t: Tensor, o: number, inDim: number, out: Uint8Array): void {
  const bytes = t.data as Uint8Array;
  for (let i = 0; i < inDim; i++) out[i] = nibble(bytes, tiledValue(inDim, GROUP_BYTES, o, i >> 5), i & 31);
}

/** The `Q4T` copy [in, out] of a `Q4` weight [out, in]: the same values, in column-sparse decode's layout. */
export function q4InputMajor(w: Tensor, alloc: (bytes: number) => Uint8Array): Tensor {
  const [out, inDim] = w.shape as [number, number];
  const srcScales = scalesOf(w);
  const bytes = alloc(q4tBytes(inDim, out));
  bytes.fill(0);
  const scales = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  const rowB = q4tRowBytes(out);
  const groupB = q4tGroupBytes(out);
  const values = new Uint8Array(inDim);
  for (let o = 0; o < out; o++) {
    q4RowValues(w, o, inDim, values);
    const at = (o >> 5) * 16 + (o & 15);
    const shift = o & 16 ? 4 : 0;
    for (let i = 0; i < inDim; i++) {
      const g = i >> 5;
      bytes[g * groupB + (i & 31) * rowB + at] |= values[i]! << shift;
    }
    for (let g = 0; g < inDim / Q4_GROUP; g++)
      scales[(g * groupB + Q4_GROUP * rowB) / 4 + o] = srcScales[tiledScale(inDim, GROUP_BYTES, o, g) / 4]!;
  }
  return { dtype: 'Q4T', shape: [inDim, out], data: bytes };
}

/** q and scale of element (r, c) of a Q4 [rows, cols] or Q4T [in, out] tensor (in stored orientation). */
function q4Element(t: Tensor, r: number, c: number, cols: number): [number, number] {
  const bytes = t.data as Uint8Array;
  const scales = scalesOf(t);
  if (t.dtype === 'Q4') {
    const g = c >> 5;
    return [
      nibble(bytes, tiledValue(cols, GROUP_BYTES, r, g), c & 31),
      scales[tiledScale(cols, GROUP_BYTES, r, g) / 4]!,
    ];
  }
  const rowB = q4tRowBytes(cols);
  const groupB = q4tGroupBytes(cols);
  const g = r >> 5;
  const at = g * groupB + (r & 31) * rowB + (c >> 5) * 16;
  return [nibble(bytes, at, c & 31), scales[(g * groupB + Q4_GROUP * rowB) / 4 + c]!];
}

/** Elements [start, start + out.length) of a `Q4` or `Q4T` tensor in row-major (stored) order, as F32. */
export function widenQ4(t: Tensor, start: number, out: Float32Array): void {
  const cols = storedShape(t)[1];
  for (let k = 0; k < out.length; k++) {
    const e = start + k;
    const r = Math.floor(e / cols);
    const [q, d] = q4Element(t, r, e - r * cols, cols);
    out[k] = (q - 8) * d;
  }
}

/** Whether any scale of a `Q4` or `Q4T` tensor is NaN or Inf (4-bit values cannot be). */
export function q4HasNonFinite(t: Tensor): boolean {
  const [rows, cols] = storedShape(t);
  const scales = scalesOf(t);
  if (t.dtype === 'Q4') {
    for (let r = 0; r < rows; r++)
      for (let g = 0; g < cols / Q4_GROUP; g++)
        if (!Number.isFinite(scales[tiledScale(cols, GROUP_BYTES, r, g) / 4]!)) return true;
    return false;
  }
  for (let g = 0; g < rows / Q4_GROUP; g++)
    for (let c = 0; c < cols; c++)
      if (!Number.isFinite(scales[(g * q4tGroupBytes(cols) + Q4_GROUP * q4tRowBytes(cols)) / 4 + c]!))
        return true;
  return false;
}

/** Reference of the one-token dense q4 products: per group, exact integer sum of (q - 8) * xq, times d * dx. */
export function q4RowDotQuantizedX(w: Tensor, o: number, xq: QuantizedX): number {
  const inDim = w.shape[1]!;
  const bytes = w.data as Uint8Array;
  const scales = scalesOf(w);
  let sum = 0;
  for (let g = 0; g < inDim / Q4_GROUP; g++) {
    const at = tiledValue(inDim, GROUP_BYTES, o, g);
    let dot = 0;
    for (let k = 0; k < Q4_GROUP; k++) dot += (nibble(bytes, at, k) - 8) * xq.q[g * Q4_GROUP + k]!;
    sum += dot * Math.fround(scales[tiledScale(inDim, GROUP_BYTES, o, g) / 4]! * xq.d[g]!);
  }
  return sum;
}

/** Reference of column-sparse decode on `Q4T`: per group, exact integer sums over its kept inputs, then scaled. */
export function q4tSparseQuantizedX(
  wT: Tensor,
  xq: QuantizedX,
  kept: Int32Array,
  count: number,
  y: Float32Array,
): void {
  const outDim = wT.shape[1]!;
  const acc = new Float64Array(outDim);
  const dots = new Int32Array(outDim);
  let j = 0;
  while (j < count) {
    const g = kept[j]! >> 5;
    dots.fill(0);
    for (; j < count && kept[j]! >> 5 === g; j++) {
      const i = kept[j]!;
      for (let o = 0; o < outDim; o++) dots[o] += (q4Element(wT, i, o, outDim)[0] - 8) * xq.q[i]!;
    }
    for (let o = 0; o < outDim; o++)
      acc[o] += dots[o]! * Math.fround(q4Element(wT, g * Q4_GROUP, o, outDim)[1] * xq.d[g]!);
  }
  y.set(acc.subarray(0, outDim));
}
