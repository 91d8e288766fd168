/**
 * The weight dtypes, each one entry of FORMATS (formats.ts), which the compiler holds to this list: a new format
 * is a name here and its entry there. Kept here, not derived from the table, so that the table's own kernels
 * (q8.ts, q4.ts) can name their tensors without importing it.
 */
export type DType = 'F32' | 'F16' | 'BF16' | 'Q8' | 'Q8T' | 'Q4' | 'Q4T';

/**
 * The stored elements of a weight: values (F32), raw bits (16-bit floats), int8 with their scales (q8), or bytes
 * of two 4-bit values with their scales (q4).
 */
export type WeightData = Float32Array | Uint16Array | Int8Array | Uint8Array;

/** Where a tensor's bytes come from: fresh zeroed bytes, or the kernels' memory. */
export type Allocate = (byteLength: number) => Uint8Array;

export interface Tensor {
  dtype: DType;
  shape: number[];
  /** The stored elements, as FORMATS[dtype].view gives them (16-bit floats as raw bits). */
  data: WeightData;
  /**
   * A [out, in] weight stored transposed (each input channel's weights contiguous), as column-sparse decode
   * reads it. `shape` stays the logical [out, in].
   */
  layout?: 'input-major';
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
