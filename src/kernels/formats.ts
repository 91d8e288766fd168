/**
 * The weight formats: one entry each, and the only place that knows what a dtype is. A new format is its name in
 * DType (tensor.ts), an entry here, its AssemblyScript kernels (named family + `kernels`, e.g. matvecBF16; see
 * wasm-exports.ts) and the reference `widen` below, which the tests hold the kernels to.
 */

import type { DType, Tensor, WeightData } from './tensor.js';
import {
  Q4_BYTES,
  q4HasNonFinite,
  q4InputMajor,
  q4RowDotQuantizedX,
  q4tSparseQuantizedX,
  quantizeQ4,
  widenQ4,
} from './q4.js';
import {
  checkGroupShape,
  groupedFromSaved,
  groupedSaved,
  Q8_BYTES,
  q8HasNonFinite,
  q8InputMajor,
  q8RowDotQuantizedX,
  q8tSparseQuantizedX,
  type QuantizedX,
  quantizeQ8,
  widenQ8,
  widenQ8T,
} from './q8.js';

export type { DType, WeightData } from './tensor.js';

/** Kernel families (see wasm-exports.ts); a format that lists some has only those kernels. */
export type Family = 'matvec' | 'matmul' | 'sparse' | 'gather' | 'inputMajorMatmul';

export interface WeightFormat {
  /** Bytes per stored element (q8: one int8 and a 32nd of an f32 scale). */
  bytes: number;
  /** The stored elements over `bytes` (a whole number of elements, suitably aligned). */
  view(bytes: Uint8Array): WeightData;
  /** Writes elements [start, start + out.length) of `t` into `out` as F32: the reference semantics. */
  widen(t: Tensor, start: number, out: Float32Array): void;
  /** Whether any stored element is NaN or +-Inf. */
  hasNonFinite(t: Tensor): boolean;
  /**
   * Its one-token kernels (matvec, row-gather, column-sparse) read x quantized per group of 32 to int8 (exact
   * integer dot products, as llama.cpp does for Q8_0); prefill keeps F32 x.
   */
  quantizesX?: {
    /** Reference of the dense products: row o of w times x quantized, without bias. */
    rowDot?: (w: Tensor, o: number, xq: QuantizedX) => number;
    /** Reference of column-sparse decode: y = the kept inputs' columns times x quantized, without bias. */
    sparse?: (wT: Tensor, xq: QuantizedX, kept: Int32Array, count: number, y: Float32Array) => void;
  };
  /** The kernel families it has (default all): q8's row-major and input-major layouts are two formats. */
  families?: readonly Family[];
  /**
   * A layout of its own for column-sparse decode: the copy [in, out] of a weight [out, in] (q8's input-major
   * format regroups the scales too). Without it, input-major is the same format transposed.
   */
  inputMajor?: (w: Tensor, alloc: (bytes: number) => Uint8Array) => Tensor;
  /** The suffix of its WebAssembly kernels' names. */
  kernels: string;
  /**
   * Its SIMD kernels widen eight stored elements into two F32 vectors, even then odd elements: x is permuted
   * once per call to match (see permuteEvenOdd), and sparse partial sums are put back in order.
   */
  evenOdd: boolean;
  /** Its one-token dense kernels read x times this (F16's rebased widening, kernels/assembly/simd.ts). */
  xScale?: number;
}

const f16Table = (() => {
  const table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    if (exp === 0) table[h] = sign * 2 ** -14 * (frac / 1024);
    else if (exp === 31) table[h] = frac ? Number.NaN : sign * Number.POSITIVE_INFINITY;
    else table[h] = sign * 2 ** (exp - 15) * (1 + frac / 1024);
  }
  return table;
})();

/** An F16 bit pattern's value (GGUF block scales, the reference widening). */
export const f16ToF32 = (bits: number): number => f16Table[bits & 0xffff]!;

const f32View = (b: Uint8Array) => new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
const u16View = (b: Uint8Array) => new Uint16Array(b.buffer, b.byteOffset, b.byteLength / 2);

/** NaN and Inf of a 16-bit float: the exponent bits all ones. */
const allOnesExponent = (exponent: number) => (t: Tensor) => {
  const data = t.data;
  let i = 0;
  for (; i < data.length && (data.byteOffset + 2 * i) % 4 !== 0; i++)
    if ((data[i]! & exponent) === exponent) return true;
  // Two elements per word: an all-ones exponent plus its lowest bit carries into the element's sign bit.
  const pairs = new Uint32Array(data.buffer, data.byteOffset + 2 * i, (data.length - i) >> 1);
  const mask = (exponent | (exponent << 16)) >>> 0;
  const carry = (exponent & -exponent) * 0x10001;
  let seen = 0;
  for (let j = 0; j < pairs.length; j++) seen |= ((pairs[j]! & mask) >>> 0) + carry;
  if (seen & 0x80008000) return true;
  for (i += 2 * pairs.length; i < data.length; i++) if ((data[i]! & exponent) === exponent) return true;
  return false;
};

function widenBF16(t: Tensor, start: number, out: Float32Array): void {
  const n = out.length;
  if (out.constructor !== Float32Array) {
    // The float64 reference mode: widen through a scratch F32.
    const scratch = new Float32Array(n);
    widenBF16(t, start, scratch);
    out.set(scratch);
    return;
  }
  const bits = new Uint32Array(out.buffer, out.byteOffset, n);
  for (let i = 0; i < n; i++) bits[i] = t.data[start + i]! << 16;
}

const i8View = (b: Uint8Array) => new Int8Array(b.buffer, b.byteOffset, b.byteLength);
const u8View = (b: Uint8Array) => b;

export const FORMATS = {
  F32: {
    bytes: 4,
    view: f32View,
    widen: (t, start, out) => out.set(t.data.subarray(start, start + out.length)),
    hasNonFinite: (t) => {
      for (let i = 0; i < t.data.length; i++) if (!Number.isFinite(t.data[i]!)) return true;
      return false;
    },
    kernels: 'F32',
    evenOdd: false,
  },
  F16: {
    bytes: 2,
    view: u16View,
    widen: (t, start, out) => {
      for (let i = 0; i < out.length; i++) out[i] = f16Table[t.data[start + i]!]!;
    },
    hasNonFinite: allOnesExponent(0x7c00),
    kernels: 'F16',
    evenOdd: true,
    xScale: 2 ** 64,
  },
  BF16: {
    bytes: 2,
    view: u16View,
    widen: widenBF16,
    hasNonFinite: allOnesExponent(0x7f80),
    kernels: 'BF16',
    evenOdd: true,
  },
  /** q8, row-major [out, in] (src/kernels/q8.ts): dense and row-gather products. */
  Q8: {
    bytes: Q8_BYTES,
    view: i8View,
    widen: widenQ8,
    hasNonFinite: q8HasNonFinite,
    kernels: 'Q8',
    evenOdd: false,
    quantizesX: { rowDot: q8RowDotQuantizedX },
    inputMajor: q8InputMajor,
    families: ['matvec', 'matmul', 'gather'],
  },
  /** q8, input-major [in, out] (src/kernels/q8.ts): column-sparse decode and the input-major matmul. */
  Q8T: {
    bytes: Q8_BYTES,
    view: i8View,
    widen: widenQ8T,
    hasNonFinite: q8HasNonFinite,
    kernels: 'Q8T',
    evenOdd: false,
    quantizesX: { sparse: q8tSparseQuantizedX },
    families: ['sparse', 'inputMajorMatmul'],
  },
  /** q4, row-major [out, in] (src/kernels/q4.ts): dense and row-gather products. */
  Q4: {
    bytes: Q4_BYTES,
    view: u8View,
    widen: widenQ4,
    hasNonFinite: q4HasNonFinite,
    kernels: 'Q4',
    evenOdd: false,
    quantizesX: { rowDot: q4RowDotQuantizedX },
    inputMajor: q4InputMajor,
    families: ['matvec', 'matmul', 'gather'],
  },
  /** q4, input-major [in, out] (src/kernels/q4.ts): column-sparse decode and the input-major matmul. */
  Q4T: {
    bytes: Q4_BYTES,
    view: u8View,
    widen: widenQ4,
    hasNonFinite: q4HasNonFinite,
    kernels: 'Q4T',
    evenOdd: false,
    quantizesX: { sparse: q4tSparseQuantizedX },
    families: ['sparse', 'inputMajorMatmul'],
  },
} as const satisfies Record<DType, WeightFormat>;

/**
 * The quantizations (`--quantize`, `wina quantize --to`): each makes a row-major format (whose table entry says
 * its input-major one) and is saved as `NAME` (its values, row-major, `stored` dtype) and `NAME_scale` (F32
 * [out, in / 32]), values then scales per row in memory as on disk.
 */
export interface Quantizer {
  dtype: 'Q8' | 'Q4';
  stored: 'I8' | 'U8';
  /** What the saved values mean (config.json's `wina_quantization`). */
  packing: string;
  /** Saved value bytes per row of `inDim` inputs. */
  valueBytes(inDim: number): number;
  checkShape(name: string, shape: readonly number[]): void;
  quantize(
    out: number,
    inDim: number,
    rowAt: (o: number, dst: Float32Array) => void,
    alloc: (bytes: number) => Uint8Array,
  ): Tensor;
}

export const QUANTIZERS = {
  q8: {
    dtype: 'Q8',
    stored: 'I8',
    packing: 'int8 q per weight, weight = q * scale (GGUF Q8_0)',
    valueBytes: (inDim) => inDim,
    checkShape: (name, shape) => checkGroupShape('q8', name, shape),
    quantize: quantizeQ8,
  },
  q4: {
    dtype: 'Q4',
    stored: 'U8',
    packing:
      'two 4-bit q per byte; per group of 32, byte j holds q of input j (low nibble) and j + 16 (high); ' +
      'weight = (q - 8) * scale (GGUF Q4_0)',
    valueBytes: (inDim) => inDim / 2,
    checkShape: (name, shape) => checkGroupShape('q4', name, shape),
    quantize: quantizeQ4,
  },
} as const satisfies Record<string, Quantizer>;

export type Quantization = keyof typeof QUANTIZERS;
export const QUANTIZATIONS = Object.keys(QUANTIZERS) as Quantization[];

export function isQuantization(name: string): name is Quantization {
  return Object.hasOwn(QUANTIZERS, name);
}

/** The quantizer whose saved values have this safetensors dtype, if any. */
export function quantizerSavedAs(dtype: string): Quantizer | undefined {
  return Object.values(QUANTIZERS).find((q) => q.stored === dtype);
}

/** The quantizer of a row-major or input-major quantized dtype, if any. */
export function quantizerOf(dtype: DType): Quantizer | undefined {
  return Object.values(QUANTIZERS).find((q) => dtype === q.dtype || dtype === `${q.dtype}T`);
}

/** A quantized weight as saved (see Quantizer). */
export const savedValues = (parts: Tensor[], q: Quantizer) =>
  groupedSaved(parts, q.valueBytes(parts[0]!.shape[1]!));
export const fromSaved = (
  q: Quantizer,
  values: Uint8Array,
  scales: Uint8Array,
  shape: [number, number],
  alloc: (bytes: number) => Uint8Array,
) => groupedFromSaved(q.dtype, values, scales, shape, q.valueBytes(shape[1]), alloc);

export type KernelSuffix = (typeof FORMATS)[DType]['kernels'];

export const DTYPES = Object.keys(FORMATS) as DType[];

export function isDType(name: string): name is DType {
  return Object.hasOwn(FORMATS, name);
}

/** A format's entry seen through the interface (its optional fields readable whatever the dtype). */
export function formatOf(dtype: DType): WeightFormat {
  return FORMATS[dtype];
}
