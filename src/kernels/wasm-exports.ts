/**
 * The kernel module's exports, each declared once. Parallel kernels take (begin, end, slot, ...args) and run as
 * jobs on every thread (see pool.ts); the worker and the main thread number them by their place in
 * PARALLEL_KERNELS. The others run on the calling thread.
 */
import {
  type DType,
  DTYPES,
  type Family as FormatFamily,
  FORMATS,
  type KernelSuffix,
  type WeightFormat,
} from './formats.js';
import type { KernelFn } from '../runtime/pool.js';

/** A warm-up argument: a number, or a buffer warmUp allocates (`zeros` is read by every kernel, written by none). */
type WarmUpArg = number | 'zeros' | 'out' | 'scratch';

/** The job WasmKernels.create runs once on every thread (on zeros), so that no first call pays start-up costs. */
export interface WarmUp {
  total: number;
  align: number;
  args: readonly WarmUpArg[];
}

/** Parallel kernels built once per weight format, named family + suffix (matvec + BF16 = matvecBF16). */
const PER_FORMAT = {
  matvec: { total: 8, align: 4, args: ['zeros', 'zeros', 'out', 0, 16] },
  matmul: { total: 8, align: 4, args: ['zeros', 'zeros', 2, 'out', 0, 16, 8, 'scratch'] },
  sparse: { total: 16, align: 8, args: ['zeros', 'zeros', 'zeros', 16, 'out', 128] },
  gather: { total: 8, align: 4, args: ['zeros', 'zeros', 'zeros', 'out', 0, 16] },
  inputMajorMatmul: null,
} as const satisfies Record<string, WarmUp | null>;

/** Parallel kernels that read no weights. */
const OTHERS = {
  attention: { total: 2, align: 1, args: ['out', 'zeros', 'zeros', 'zeros', 1, 0, 2, 1, 16, 0, 'scratch'] },
  transpose: { total: 32, align: 16, args: ['zeros', 'out', 16, 32, 4] },
  readSum: { total: 8, align: 4, args: ['zeros', 'out', 1] },
  maskTopK: null,
  maskThreshold: null,
} as const satisfies Record<string, WarmUp | null>;

type Family = keyof typeof PER_FORMAT & FormatFamily;
export type ParallelKernel = `${Family}${KernelSuffix}` | keyof typeof OTHERS;

const entries = <T extends object>(o: T) => Object.entries(o) as [keyof T & string, T[keyof T]][];
/** The families a format has kernels for: all, unless its table entry lists some. */
const familiesOf = (d: DType): Family[] =>
  ((FORMATS[d] as WeightFormat).families as Family[] | undefined) ?? entries(PER_FORMAT).map(([f]) => f);

export const PARALLEL_KERNELS: readonly { name: ParallelKernel; warmUp: WarmUp | null }[] = [
  ...entries(PER_FORMAT).flatMap(([family, warmUp]) =>
    DTYPES.filter((d) => familiesOf(d).includes(family)).map((d) => ({
      name: `${family}${FORMATS[d].kernels}` as ParallelKernel,
      warmUp,
    })),
  ),
  ...entries(OTHERS).map(([name, warmUp]) => ({ name, warmUp })),
];

/** Each format's kernel of each family it has: FORMAT_KERNELS.BF16.matvec is 'matvecBF16'. */
export const FORMAT_KERNELS = Object.fromEntries(
  DTYPES.map((d) => [d, Object.fromEntries(familiesOf(d).map((f) => [f, f + FORMATS[d].kernels]))]),
) as Record<DType, Record<Family, ParallelKernel>>;

export interface Exports extends Record<ParallelKernel, KernelFn> {
  heapBase(): number;
  permuteEvenOdd(src: number, dst: number, n: number, scale: number): void;
  quantizedXBytes(inDim: number): number;
  quantizeX(x: number, inDim: number, out: number): void;
  matmulScratchBytes(inDim: number): number;
  sparseReduce(
    y: number,
    partial: number,
    stride: number,
    chunks: number,
    outDim: number,
    bias: number,
    evenOdd: number,
  ): void;
  firstInvalidIndex(kept: number, count: number, limit: number): number;
  sparseSlotBytes(outDim: number): number;
  selectScratchBytes(d: number): number;
  selectTopK(
    x: number,
    norms: number,
    normsKind: number,
    d: number,
    k: number,
    kept: number,
    scratch: number,
  ): number;
  selectThreshold(
    x: number,
    norms: number,
    normsKind: number,
    d: number,
    threshold: number,
    kept: number,
  ): number;
  maskScratchBytes(d: number): number;
  inputMajorSlotBytes(outDim: number): number;
  attentionScratchBytes(heads: number, positions: number, headDim: number): number;
  rmsnorm(out: number, x: number, weight: number, eps: number, d: number, tokens: number): void;
  rope(
    x: number,
    tokens: number,
    heads: number,
    headDim: number,
    rotaryDim: number,
    cos: number,
    sin: number,
    startPos: number,
  ): void;
  swiglu(gate: number, up: number, n: number): void;
  addInPlace(x: number, y: number, n: number): void;
}
