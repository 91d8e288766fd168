// The WebAssembly kernels. No allocation happens in here: every kernel takes raw pointers into the memory
// that src/kernels/wasm.ts manages, and parallel kernels take one chunk of the work as (begin, end, slot), the
// slot picking the chunk's scratch (whichever thread claimed it; see pool.ts).
export { attention, attentionScratchBytes } from './attention';
export {
  gatherBF16,
  gatherF16,
  gatherF32,
  matmulBF16,
  matmulF16,
  matmulF32,
  matmulQ4,
  matmulQ8,
  matmulScratchBytes,
  matvecBF16,
  matvecF16,
  matvecF32,
  permuteEvenOdd,
} from './dense';
export {
  inputMajorMatmulBF16,
  inputMajorMatmulF16,
  inputMajorMatmulF32,
  inputMajorSlotBytes,
} from './input-major';
export { addInPlace, rmsnorm, rope, swiglu } from './layers';
export { readSum, transpose } from './layout';
export {
  maskScratchBytes,
  maskThreshold,
  maskTopK,
  selectScratchBytes,
  selectThreshold,
  selectTopK,
} from './select';
export { inputMajorMatmulQ8T, sparseQ8T } from './q8';
export { inputMajorMatmulQ4T, sparseQ4T } from './q4';
export { gatherQ4, gatherQ8, matvecQ4, matvecQ8 } from './quantized';
export { quantizedXBytes, quantizeX } from './xq';
export { firstInvalidIndex, sparseBF16, sparseF16, sparseF32, sparseReduce, sparseSlotBytes } from './sparse';

/** First byte past the module's static data: the host allocates from here. */
export function heapBase(): usize {
  return __heap_base;
}
