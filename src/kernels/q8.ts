/**
 * q8 weights: int8 values with one scale per group of 32 inputs per output, a weight being q * scale: GGUF
 * Q8_0's blocks, quantized as llama.cpp quantizes them (so its Q8_0 files and ours hold the same numbers).
 * Each layout keeps the scales beside the bytes its kernel reads with them:
 * - `Q8` (row-major [out, in], dense products): rows in tiles of four (see `tiledValue`), per group of 32 inputs
 *   the tile's rows' int8 values, then their f32 scales.
 * - `Q8T` (input-major [in, out], column-sparse decode): per group of 32 input rows, the 32 rows of out int8
 *   values, then the group's out f32 scales; a dropped input skips its bytes, a wholly dropped group its scales.
 */
import { fail } from '../errors.js';
import type { Tensor } from './tensor.js';

export const Q8_GROUP = 32;
/** Stored bytes per weight: one int8 plus a share of its group's f32 scale. */
export const Q8_BYTES = 1 + 4 / Q8_GROUP;

/** Bytes of one Q8 row of `inDim` values with its scales. */
const rowBytes = (inDim: number) => inDim * Q8_BYTES;

/**
 * Row-major q8 and q4 tensors are stored in tiles of four rows, the last one padded with zero rows: per group of
 * 32 inputs, the tile's four rows' values (`groupBytes` each: 32 for q8, 16 for q4), then their four f32 scales.
 * A four-row product then reads one sequential stream, three times faster here than four rows apart.
 */
export const tiledBytes = (out: number, inDim: number, groupBytes: number) =>
  Math.ceil(out / 4) * 4 * (inDim / Q8_GROUP) * (groupBytes + 4);

/** Byte offset of row o's values of group g in a tiled tensor (see tiledBytes). */
export const tiledValue = (inDim: number, groupBytes: number, o: number, g: number) =>
  ((o >> 2) * (inDim / Q8_GROUP) + g) * 4 * (groupBytes + 4) + (o & 3) * groupBytes;

/** Byte offset of row o's f32 scale of group g in a tiled tensor (see tiledBytes). */
export const tiledScale = (inDim: number, groupBytes: number, o: number, g: number) =>
  ((o >> 2) * (inDim / Q8_GROUP) + g) * 4 * (groupBytes + 4) + 4 * groupBytes + (o & 3) * 4;

/** Zeroes the padding rows of a tiled tensor's last tile (allocations may hold old bytes). */
export function zeroPadding(bytes: Uint8Array, out: number, inDim: number, groupBytes: number): void {
  if (out % 4) bytes.fill(0, tiledValue(inDim, groupBytes, out & ~3, 0));
}

/**
 * One line naming the weight and what to do when its input size is not a multiple of the group size (32 for
 * q8 and q4 alike).
 */
export function checkGroupShape(quantization: string, name: string, shape: readonly number[]): void {
  if (shape.length !== 2 || shape[1]! % Q8_GROUP !== 0)
    fail(
      `--quantize ${quantization} needs every weight's input size to be a multiple of ${Q8_GROUP}, but ${name} is ` +
        `[${shape}]: load this model without --quantize`,
    );
}

const scratch = new Float32Array(1);
const scratchBits = new Uint32Array(scratch.buffer);

/** x rounded to the nearest F16 value (ties to even), as llama.cpp stores a block's scale. */
export function roundToF16(x: number): number {
  scratch[0] = x;
  const bits = scratchBits[0]!;
  const sign = bits >>> 31 ? -1 : 1;
  const exp = ((bits >>> 23) & 0xff) - 127;
  const abs = Math.abs(scratch[0]!);
  if (abs === 0 || !Number.isFinite(abs)) return scratch[0]!;
  // Quantum of F16 at this magnitude: 2^(exp - 10) for normals, 2^-24 below 2^-14.
  const quantum = 2 ** (Math.max(exp, -14) - 10);
  const q = abs / quantum;
  let r = Math.floor(q);
  const rest = q - r;
  if (rest > 0.5 || (rest === 0.5 && r % 2 === 1)) r++;
  return sign * r * quantum;
}

/** Round half away from zero, as C's roundf. */
const roundAway = (v: number) => Math.sign(v) * Math.floor(Math.abs(v) + 0.5);

/**
 * A row-major `Q8` tensor of a [out, in] weight whose rows `rowAt(o, dst)` gives in F32: per group, d = max |w| /
 * 127, q = roundf(w * (1 / d)), the scale stored as d rounded to F16 (llama.cpp's quantize_row_q8_0).
 */
export function quantizeQ8(
  out: number,
  inDim: number,
  rowAt: (o: number, dst: Float32Array) => void,
  alloc: (bytes: number) => Uint8Array,
): Tensor {
  const bytes = alloc(tiledBytes(out, inDim, Q8_GROUP));
  zeroPadding(bytes, out, inDim, Q8_GROUP);
  const q = new Int8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const scales = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >> 2);
  const row = new Float32Array(inDim);
  const f = Math.fround;
  for (let o = 0; o < out; o++) {
    rowAt(o, row);
    for (let g = 0; g < inDim / Q8_GROUP; g++) {
      let amax = 0;
      for (let j = 0; j < Q8_GROUP; j++) amax = Math.max(amax, Math.abs(row[g * Q8_GROUP + j]!));
      const d = f(amax / 127);
      const id = d ? f(1 / d) : 0;
      scales[tiledScale(inDim, Q8_GROUP, o, g) / 4] = roundToF16(d);
      const at = tiledValue(inDim, Q8_GROUP, o, g);
      for (let j = 0; j < Q8_GROUP; j++) q[at + j] = roundAway(f(row[g * Q8_GROUP + j]! * id));
    }
  }
  return { dtype: 'Q8', shape: [out, inDim], data: q };
}

/** The `Q8T` copy [in, out] of a `Q8` weight [out, in]: the same values, in column-sparse decode's layout. */
export function q8InputMajor(w: Tensor, alloc: (bytes: number) => Uint8Array): Tensor {
  const [out, inDim] = w.shape as [number, number];
  const src = w.data as Int8Array;
  const srcScales = scalesOf(w);
  const bytes = alloc(out * rowBytes(inDim));
  const q = new Int8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const scales = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >> 2);
  const block = Q8_GROUP * out * Q8_BYTES; // one group of 32 input rows and their scales
  for (let o = 0; o < out; o++) {
    for (let g = 0; g < inDim / Q8_GROUP; g++) {
      const at = tiledValue(inDim, Q8_GROUP, o, g);
      for (let j = 0; j < Q8_GROUP; j++) q[g * block + j * out + o] = src[at + j]!;
      scales[(g * block + Q8_GROUP * out) / 4 + o] = srcScales[tiledScale(inDim, Q8_GROUP, o, g) / 4]!;
    }
  }
  return { dtype: 'Q8T', shape: [inDim, out], data: q };
}

/** [rows, cols] as stored: an input-major weight keeps its logical [out, in] shape beside its [in, out] data. */
export function storedShape(t: Tensor): [number, number] {
  const [a, b] = t.shape as [number, number];
  return t.layout === 'input-major' ? [b, a] : [a, b];
}

export function scalesOf(t: Tensor): Float32Array {
  const d = t.data as Int8Array;
  return new Float32Array(d.buffer, d.byteOffset, d.length >> 2);
}

/** Elements [start, start + out.length) of a `Q8` tensor [rows, cols] in row-major order, as F32. */
export function widenQ8(t: Tensor, start: number, out: Float32Array): void {
  const cols = storedShape(t)[1];
  const q = t.data as Int8Array;
  const scales = scalesOf(t);
  for (let k = 0; k < out.length; k++) {
    const e = start + k;
    const r = Math.floor(e / cols);
    const c = e - r * cols;
    const g = c >> 5;
    out[k] = q[tiledValue(cols, Q8_GROUP, r, g) + (c & 31)]! * scales[tiledScale(cols, Q8_GROUP, r, g) / 4]!;
  }
}

/** Elements [start, start + out.length) of a `Q8T` tensor [in, out] in row-major order, as F32. */
export function widenQ8T(t: Tensor, start: number, out: Float32Array): void {
  const cols = storedShape(t)[1];
  const q = t.data as Int8Array;
  const scales = scalesOf(t);
  const block = Q8_GROUP * cols * Q8_BYTES;
  for (let k = 0; k < out.length; k++) {
    const e = start + k;
    const r = Math.floor(e / cols);
    const c = e - r * cols;
    const g = Math.floor(r / Q8_GROUP);
    out[k] = q[g * block + (r % Q8_GROUP) * cols + c]! * scales[(g * block + Q8_GROUP * cols) / 4 + c]!;
  }
}

/** Whether any scale of a `Q8` or `Q8T` tensor is NaN or Inf (int8 values cannot be). */
export function q8HasNonFinite(t: Tensor): boolean {
  const [rows, cols] = storedShape(t);
  const out = new Float32Array(cols);
  const widenRow = t.dtype === 'Q8' ? widenQ8 : widenQ8T;
  for (let r = 0; r < rows; r++) {
    widenRow(t, r * out.length, out);
    for (const v of out) if (!Number.isFinite(v)) return true;
  }
  return false;
}

/**
 * How a q8 or q4 weight is saved (`wina quantize`): `NAME` as its row-major values (q8: I8 [out, in]; q4: U8
 * [out, in / 2], Q4_0's nibble order) and `NAME_scale` as F32 [out, in / 32], `valueBytes` of values per row; in
 * memory both are tiled (see tiledBytes). Fills `values` / `scales` element by element from `start` of the
 * row-stacked `parts` (Phi-3's fused matrices are several).
 */
export function groupedSaved(
  parts: Tensor[],
  valueBytes: number,
): {
  values(start: number, out: Uint8Array): void;
  scales(start: number, out: Float32Array): void;
} {
  const inDim = parts[0]!.shape[1]!;
  const groups = inDim / Q8_GROUP;
  const groupBytes = valueBytes / groups;
  const rowsOf = parts.map((p) => p.shape[0]!);
  const locate = (r0: number): [Tensor, number] => {
    let r = r0;
    for (const [i, p] of parts.entries()) {
      if (r < rowsOf[i]!) return [p, r];
      r -= rowsOf[i]!;
    }
    throw new RangeError(`row ${r0} is past the weight`);
  };
  const bytesOf = (t: Tensor) => new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  return {
    values(start, out) {
      for (let k = 0; k < out.length; k++) {
        const [p, r] = locate(Math.floor((start + k) / valueBytes));
        const b = (start + k) % valueBytes;
        out[k] = bytesOf(p)[tiledValue(inDim, groupBytes, r, Math.floor(b / groupBytes)) + (b % groupBytes)]!;
      }
    },
    scales(start, out) {
      for (let k = 0; k < out.length; k++) {
        const [p, r] = locate(Math.floor((start + k) / groups));
        out[k] = scalesOf(p)[tiledScale(inDim, groupBytes, r, (start + k) % groups) / 4]!;
      }
    },
  };
}

/** A row-major q8 / q4 tensor from its saved values and F32 scales (see groupedSaved), in `alloc`'s memory. */
export function groupedFromSaved(
  dtype: 'Q8' | 'Q4',
  values: Uint8Array,
  scales: Uint8Array,
  shape: [number, number],
  valueBytes: number,
  alloc: (bytes: number) => Uint8Array,
): Tensor {
  const [out, inDim] = shape;
  const groups = inDim / Q8_GROUP;
  const groupBytes = valueBytes / groups;
  const bytes = alloc(tiledBytes(out, inDim, groupBytes));
  zeroPadding(bytes, out, inDim, groupBytes);
  const s = new Float32Array(scales.buffer, scales.byteOffset, scales.byteLength / 4);
  const dst = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >> 2);
  for (let o = 0; o < out; o++) {
    for (let g = 0; g < groups; g++) {
      const from = o * valueBytes + g * groupBytes;
      bytes.set(values.subarray(from, from + groupBytes), tiledValue(inDim, groupBytes, o, g));
      dst[tiledScale(inDim, groupBytes, o, g) / 4] = s[o * groups + g]!;
    }
  }
  const data = dtype === 'Q8' ? new Int8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) : bytes;
  return { dtype, shape, data };
}

/** Round half to even, as f32x4.nearest. */
function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const rest = v - f;
  return rest > 0.5 || (rest === 0.5 && f % 2 !== 0) ? f + 1 : f;
}

/** x quantized per group of 32: int values q and per group d (F32), with x ~ q * d. */
export interface QuantizedX {
  q: Int32Array;
  d: Float32Array;
}

/**
 * x quantized as llama.cpp quantizes activations for Q8_0 / Q4_0 products (and as the kernels' quantizeX): per
 * group of 32, d = max |x| / 127 and q = round(x / d), ties to even.
 */
export function quantizeXReference(x: Float32Array | Float64Array): QuantizedX {
  const f = Math.fround;
  const q = new Int32Array(x.length);
  const d = new Float32Array(x.length / Q8_GROUP);
  for (let g = 0; g < d.length; g++) {
    let amax = 0;
    for (let j = 0; j < Q8_GROUP; j++) amax = Math.max(amax, Math.abs(f(x[g * Q8_GROUP + j]!)));
    d[g] = f(amax / 127);
    const id = d[g] ? f(1 / d[g]!) : 0;
    for (let j = 0; j < Q8_GROUP; j++) {
      const i = g * Q8_GROUP + j;
      q[i] = roundHalfEven(f(f(x[i]!) * id));
    }
  }
  return { q, d };
}

/**
 * Reference of the one-token dense q8 products (matvec, row-gather): per group, the exact integer dot of the
 * weights' int8 values with x quantized (quantizeXReference), times the weight's scale and d. Row o's value
 * without bias.
 */
export function q8RowDotQuantizedX(w: Tensor, o: number, xq: QuantizedX): number {
  const inDim = w.shape[1]!;
  const q = w.data as Int8Array;
  const scales = scalesOf(w);
  let sum = 0;
  for (let g = 0; g < inDim / Q8_GROUP; g++) {
    const at = tiledValue(inDim, Q8_GROUP, o, g);
    let dot = 0;
    for (let j = 0; j < Q8_GROUP; j++) dot += q[at + j]! * xq.q[g * Q8_GROUP + j]!;
    sum += dot * Math.fround(scales[tiledScale(inDim, Q8_GROUP, o, g) / 4]! * xq.d[g]!);
  }
  return sum;
}

/**
 * Reference of column-sparse decode on `Q8T` [in, out]: y[o] = sum over groups g of scale[g, o] * d[g] * (the
 * exact integer sum over kept inputs i of group g of q[i, o] * xq[i]).
 */
export function q8tSparseQuantizedX(
  wT: Tensor,
  xq: QuantizedX,
  kept: Int32Array,
  count: number,
  y: Float32Array,
): void {
  const outDim = wT.shape[1]!;
  const q = wT.data as Int8Array;
  const scales = scalesOf(wT);
  const block = Q8_GROUP * outDim * Q8_BYTES;
  const acc = new Float64Array(outDim);
  const dots = new Int32Array(outDim);
  let j = 0;
  while (j < count) {
    const g = Math.floor(kept[j]! / Q8_GROUP);
    dots.fill(0);
    for (; j < count && Math.floor(kept[j]! / Q8_GROUP) === g; j++) {
      const i = kept[j]!;
      const row = g * block + (i % Q8_GROUP) * outDim;
      for (let o = 0; o < outDim; o++) dots[o] += q[row + o]! * xq.q[i]!;
    }
    for (let o = 0; o < outDim; o++)
      acc[o] += dots[o]! * Math.fround(scales[(g * block + Q8_GROUP * outDim) / 4 + o]! * xq.d[g]!);
  }
  y.set(acc.subarray(0, outDim));
}
