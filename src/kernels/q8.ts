/**
 * q8 weights: int8 values with one scale per group of 32 inputs per output, a weight being q * scale: GGUF
 * Q8_0's blocks, quantized as llama.cpp quantizes them (so its Q8_0 files and ours hold the same numbers).
 * Each layout keeps the scales beside the bytes its kernel reads with them:
 * - `Q8` (row-major [out, in], dense products): each row is its in int8 values, then its in / 32 f32 scales.
 * - `Q8T` (input-major [in, out], column-sparse decode): per group of 32 input rows, the 32 rows of out int8
 *   values, then the group's out f32 scales; a dropped input skips its bytes, a wholly dropped group its scales.
 */
import { fail } from '../io/errors.js';
import type { Tensor } from '../io/tensor.js';

export const Q8_GROUP = 32;
/** Stored bytes per weight: one int8 plus a share of its group's f32 scale. */
export const Q8_BYTES = 1 + 4 / Q8_GROUP;

/** Bytes of one Q8 row of `inDim` values with its scales. */
const rowBytes = (inDim: number) => inDim * Q8_BYTES;

/** One line naming the weight and what to do when its input size is not a multiple of the group size. */
export function checkQ8Shape(name: string, shape: readonly number[]): void {
  if (shape.length !== 2 || shape[1]! % Q8_GROUP !== 0)
    fail(
      `--quantize q8 needs every weight's input size to be a multiple of ${Q8_GROUP}, but ${name} is ` +
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
  const bytes = alloc(out * rowBytes(inDim));
  const q = new Int8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const scales = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  const row = new Float32Array(inDim);
  const f = Math.fround;
  for (let o = 0; o < out; o++) {
    rowAt(o, row);
    const base = o * rowBytes(inDim);
    for (let g = 0; g < inDim / Q8_GROUP; g++) {
      let amax = 0;
      for (let j = 0; j < Q8_GROUP; j++) amax = Math.max(amax, Math.abs(row[g * Q8_GROUP + j]!));
      const d = f(amax / 127);
      const id = d ? f(1 / d) : 0;
      scales[(base + inDim) / 4 + g] = roundToF16(d);
      for (let j = 0; j < Q8_GROUP; j++)
        q[base + g * Q8_GROUP + j] = roundAway(f(row[g * Q8_GROUP + j]! * id));
    }
  }
  return { dtype: 'Q8', shape: [out, inDim], data: q };
}

/** The `Q8T` copy [in, out] of a `Q8` weight [out, in]: the same values, in column-sparse decode's layout. */
export function q8InputMajor(w: Tensor, alloc: (bytes: number) => Uint8Array): Tensor {
  const [out, inDim] = w.shape as [number, number];
  const src = w.data as Int8Array;
  const srcScales = new Float32Array(src.buffer, src.byteOffset, Math.floor(src.length / 4));
  const bytes = alloc(out * rowBytes(inDim));
  const q = new Int8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const scales = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  const block = Q8_GROUP * out * Q8_BYTES; // one group of 32 input rows and their scales
  for (let o = 0; o < out; o++) {
    const base = o * rowBytes(inDim);
    for (let i = 0; i < inDim; i++) {
      const g = Math.floor(i / Q8_GROUP);
      q[g * block + (i % Q8_GROUP) * out + o] = src[base + i]!;
    }
    for (let g = 0; g < inDim / Q8_GROUP; g++)
      scales[(g * block + Q8_GROUP * out) / 4 + o] = srcScales[(base + inDim) / 4 + g]!;
  }
  return { dtype: 'Q8T', shape: [inDim, out], data: q };
}

/** [rows, cols] as stored: an input-major weight keeps its logical [out, in] shape beside its [in, out] data. */
function storedShape(t: Tensor): [number, number] {
  const [a, b] = t.shape as [number, number];
  return t.layout === 'input-major' ? [b, a] : [a, b];
}

function scalesOf(t: Tensor): Float32Array {
  const d = t.data as Int8Array;
  return new Float32Array(d.buffer, d.byteOffset, Math.floor(d.length / 4));
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
    const base = r * rowBytes(cols);
    out[k] = q[base + c]! * scales[(base + cols) / 4 + Math.floor(c / Q8_GROUP)]!;
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
 * How a q8 weight is saved (`wina quantize`): `NAME` as I8 [out, in] (the values) and `NAME_scale` as F32
 * [out, in / 32] (the scales), both row-major. Fills `values` / `scales` element by element from `start` of the
 * row-stacked `parts` (Phi-3's fused matrices are several).
 */
export function q8Saved(parts: Tensor[]): {
  values(start: number, out: Int8Array): void;
  scales(start: number, out: Float32Array): void;
} {
  const inDim = parts[0]!.shape[1]!;
  const groups = inDim / Q8_GROUP;
  const rowsOf = parts.map((p) => p.shape[0]!);
  const locate = (row: number): [Tensor, number] => {
    let r = row;
    for (const [i, p] of parts.entries()) {
      if (r < rowsOf[i]!) return [p, r];
      r -= rowsOf[i]!;
    }
    throw new RangeError(`row ${row} is past the weight`);
  };
  return {
    values(start, out) {
      for (let k = 0; k < out.length; k++) {
        const [p, r] = locate(Math.floor((start + k) / inDim));
        out[k] = (p.data as Int8Array)[r * rowBytes(inDim) + ((start + k) % inDim)]!;
      }
    },
    scales(start, out) {
      for (let k = 0; k < out.length; k++) {
        const [p, r] = locate(Math.floor((start + k) / groups));
        out[k] = scalesOf(p)[(r * rowBytes(inDim) + inDim) / 4 + ((start + k) % groups)]!;
      }
    },
  };
}

/** A `Q8` tensor from saved values (I8 [out, in]) and scales (F32 [out, in / 32]), in `alloc`'s memory. */
export function q8FromSaved(
  values: Uint8Array,
  scales: Uint8Array,
  shape: [number, number],
  alloc: (bytes: number) => Uint8Array,
): Tensor {
  const [out, inDim] = shape;
  const bytes = alloc(out * rowBytes(inDim));
  const s = new Float32Array(scales.buffer, scales.byteOffset, scales.byteLength / 4);
  const dst = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  for (let o = 0; o < out; o++) {
    const base = o * rowBytes(inDim);
    bytes.set(values.subarray(o * inDim, (o + 1) * inDim), base);
    dst.set(s.subarray(o * (inDim / Q8_GROUP), (o + 1) * (inDim / Q8_GROUP)), (base + inDim) / 4);
  }
  return { dtype: 'Q8', shape, data: new Int8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) };
}

/** Round half to even, as f32x4.nearest. */
function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const rest = v - f;
  return rest > 0.5 || (rest === 0.5 && f % 2 !== 0) ? f + 1 : f;
}

/**
 * Reference of the one-token q8 products (matvec, row-gather): x quantized per group of 32 as llama.cpp
 * quantizes activations (d = max |x| / 127, q = round(x / d), ties to even), then per group the exact integer dot
 * with the weights' int8 values, times the weight's scale and d. Returns row o's value (without bias).
 */
export function q8RowDotQuantizedX(w: Tensor, o: number, x: Float32Array): number {
  const inDim = w.shape[1]!;
  const q = w.data as Int8Array;
  const scales = scalesOf(w);
  const base = o * rowBytes(inDim);
  const f = Math.fround;
  let sum = 0;
  for (let g = 0; g < inDim / Q8_GROUP; g++) {
    let amax = 0;
    for (let j = 0; j < Q8_GROUP; j++) amax = Math.max(amax, Math.abs(x[g * Q8_GROUP + j]!));
    const d = f(amax / 127);
    const id = d ? f(1 / d) : 0;
    let dot = 0;
    for (let j = 0; j < Q8_GROUP; j++) {
      const i = g * Q8_GROUP + j;
      dot += q[base + i]! * roundHalfEven(f(f(x[i]!) * id));
    }
    sum += dot * f(scales[(base + inDim) / 4 + g]! * d);
  }
  return sum;
}
