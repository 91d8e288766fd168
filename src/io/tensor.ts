/** Weight dtypes kept as stored: BF16 and F16 stay 16-bit in memory and are widened inside the kernels. */
export type DType = 'F32' | 'F16' | 'BF16';

export interface Tensor {
  dtype: DType;
  shape: number[];
  /** F32 -> Float32Array; F16 and BF16 -> Uint16Array of raw bits. */
  data: Float32Array | Uint16Array;
  /**
   * A [out, in] weight stored transposed (each input channel's weights contiguous), as column-sparse decode
   * reads it. `shape` stays the logical [out, in].
   */
  layout?: 'input-major';
}

export const BYTES_PER_ELEMENT: Record<DType, number> = { F32: 4, F16: 2, BF16: 2 };

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
