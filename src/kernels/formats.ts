/**
 * The weight formats: one entry each, and the only place that knows what a dtype is. A new format is an entry
 * here, its AssemblyScript kernels (named family + `kernels`, e.g. matvecBF16; see wasm-exports.ts) and the
 * reference `widen` below, which the tests hold the kernels to.
 */

import type { Tensor } from '../io/tensor.js';
import { Q8_BYTES, q8HasNonFinite, widenQ8, widenQ8T } from './q8.js';

/** The stored elements of a weight: values (F32), raw bits (16-bit floats), or int8 with their scales (q8). */
export type WeightData = Float32Array | Uint16Array | Int8Array;

/** Kernel families (see wasm-exports.ts); a format that lists some has only those kernels. */
export type Family = 'matvec' | 'matmul' | 'sparse' | 'gather' | 'imajorMatmul';

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
   * Its one-token dense kernels (matvec, row-gather) read x quantized per group of 32 to int8 (integer dot
   * products, as llama.cpp does for Q8_0); prefill and column-sparse decode keep F32 x.
   */
  quantizesX?: boolean;
  /** The kernel families it has (default all): q8's row-major and input-major layouts are two formats. */
  families?: readonly Family[];
  /** The suffix of its WebAssembly kernels' names. */
  kernels: string;
  /**
   * Its SIMD kernels widen eight stored elements into two F32 vectors, even then odd elements: x is permuted
   * once per call to match (see permuteEvenOdd), and sparse partial sums are put back in order.
   */
  evenOdd: boolean;
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

const f32View = (b: Uint8Array) => new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
const u16View = (b: Uint8Array) => new Uint16Array(b.buffer, b.byteOffset, b.byteLength / 2);

/** NaN and Inf of a 16-bit float: the exponent bits all ones. */
const allOnesExponent = (exponent: number) => (t: Tensor) => {
  const data = t.data;
  for (let i = 0; i < data.length; i++) if ((data[i]! & exponent) === exponent) return true;
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
    quantizesX: true,
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
    families: ['sparse', 'imajorMatmul'],
  },
} as const satisfies Record<string, WeightFormat>;

/** Weight dtypes kept as stored: 16-bit ones stay 16-bit in memory and are widened inside the kernels. */
export type DType = keyof typeof FORMATS;
export type KernelSuffix = (typeof FORMATS)[DType]['kernels'];

export const DTYPES = Object.keys(FORMATS) as DType[];

export function isDType(name: string): name is DType {
  return Object.hasOwn(FORMATS, name);
}

/** A format's entry seen through the interface (its optional fields readable whatever the dtype). */
export function formatOf(dtype: DType): WeightFormat {
  return FORMATS[dtype];
}
