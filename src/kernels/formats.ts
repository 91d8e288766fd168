/**
 * The weight formats: one entry each, and the only place that knows what a dtype is. A new format is an entry
 * here, its AssemblyScript kernels (named family + `kernels`, e.g. matvecBF16; see wasm-exports.ts) and the
 * reference `widen` below, which the tests hold the kernels to.
 */

/** The stored elements of a weight, as a typed array of values (F32) or raw bits (16-bit floats). */
export type WeightData = Float32Array | Uint16Array;

export interface WeightFormat {
  /** Bytes per stored element. */
  bytes: number;
  /** The stored elements over `bytes` (a whole number of elements, suitably aligned). */
  view(bytes: Uint8Array): WeightData;
  /** Writes elements [start, start + out.length) of `data` into `out` as F32: the reference semantics. */
  widen(data: WeightData, start: number, out: Float32Array): void;
  /** Whether any stored element is NaN or +-Inf. */
  hasNonFinite(data: WeightData): boolean;
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
const allOnesExponent = (exponent: number) => (data: WeightData) => {
  for (let i = 0; i < data.length; i++) if ((data[i]! & exponent) === exponent) return true;
  return false;
};

function widenBF16(data: WeightData, start: number, out: Float32Array): void {
  const n = out.length;
  if (out.constructor !== Float32Array) {
    // The float64 reference mode: widen through a scratch F32.
    const scratch = new Float32Array(n);
    widenBF16(data, start, scratch);
    out.set(scratch);
    return;
  }
  const bits = new Uint32Array(out.buffer, out.byteOffset, n);
  for (let i = 0; i < n; i++) bits[i] = data[start + i]! << 16;
}

export const FORMATS = {
  F32: {
    bytes: 4,
    view: f32View,
    widen: (data, start, out) => out.set(data.subarray(start, start + out.length)),
    hasNonFinite: (data) => {
      for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i]!)) return true;
      return false;
    },
    kernels: 'F32',
    evenOdd: false,
  },
  F16: {
    bytes: 2,
    view: u16View,
    widen: (data, start, out) => {
      for (let i = 0; i < out.length; i++) out[i] = f16Table[data[start + i]!]!;
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
} as const satisfies Record<string, WeightFormat>;

/** Weight dtypes kept as stored: 16-bit ones stay 16-bit in memory and are widened inside the kernels. */
export type DType = keyof typeof FORMATS;
export type KernelSuffix = (typeof FORMATS)[DType]['kernels'];

export const DTYPES = Object.keys(FORMATS) as DType[];

export function isDType(name: string): name is DType {
  return Object.hasOwn(FORMATS, name);
}
