import type { DType, WeightData } from '../kernels/formats.js';

export type { DType } from '../kernels/formats.js';

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
