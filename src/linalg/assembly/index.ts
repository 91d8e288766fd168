// Dense linear algebra for the orthogonal transform (see ../README.md): a symmetric eigensolver in float64
// and the products around it. No allocation happens in here: the host passes addresses into the shared
// memory; parallel kernels take their share as (begin, end, slot).
export { backPrepare, backScratchBytes, backTransform } from './back';
export { gemmF32, gramF64, mirrorLower, transposeF32, transposeScale } from './gemm';
export { mirrorBlock, panelPack, panelRow, panelSymv, panelUpdate, panelW, trailingNorm2 } from './panel';
export { qlSweeps } from './ql';
export { panelIdentity, rotatePanels, unpanel } from './rotate';
export { trdHouse, trdStep, trdSymv, trdUpdate } from './tridiag';

/** First byte past the module's static data: the host allocates from here. */
export function heapBase(): usize {
  return __heap_base;
}
