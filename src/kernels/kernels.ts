import type { Allocate, Tensor } from './tensor.js';
import * as ref from './reference.js';

/**
 * The operations the forward pass needs. Buffers come from `f32` and weights from `alloc`, so a backend whose
 * kernels run in a WebAssembly memory gets every array it will be handed inside that memory.
 */
export interface Kernels {
  readonly name: string;
  readonly threads: number;
  alloc: Allocate;
  f32(n: number): Float32Array;
  matmul: typeof ref.matmul;
  rmsnorm: typeof ref.rmsnorm;
  rope: typeof ref.rope;
  attention: typeof ref.attention;
  swiglu: typeof ref.swiglu;
  addInPlace: typeof ref.addInPlace;
  /** Sparse decode: kept-index lists, input-major weight copies, selection and column-sparse matvec. */
  i32(n: number): Int32Array;
  toInputMajor: typeof ref.toInputMajor;
  sparseMatvec: typeof ref.sparseMatvec;
  /** Dense products of several tokens on input-major weights (prefill when only that layout is loaded). */
  matmulInputMajor: typeof ref.matmulInputMajor;
  /** Row-gather matvec: only the listed rows (CATS's up_proj). */
  gatherMatvec: typeof ref.gatherMatvec;
  selectTopK: typeof ref.selectTopK;
  selectThreshold: typeof ref.selectThreshold;
  /** Prefill: every token's row masked at once (selection as selectTopK / selectThreshold). */
  maskRows: typeof ref.maskRows;
  close(): void;
}

export const referenceKernels: Kernels = {
  name: 'reference (TypeScript)',
  threads: 1,
  alloc: (n) => new Uint8Array(n),
  f32: (n) => new Float32Array(n),
  matmul: ref.matmul,
  rmsnorm: ref.rmsnorm,
  rope: ref.rope,
  attention: ref.attention,
  swiglu: ref.swiglu,
  addInPlace: ref.addInPlace,
  i32: (n) => new Int32Array(n),
  toInputMajor: ref.toInputMajor,
  sparseMatvec: ref.sparseMatvec,
  matmulInputMajor: ref.matmulInputMajor,
  gatherMatvec: ref.gatherMatvec,
  selectTopK: ref.selectTopK,
  selectThreshold: ref.selectThreshold,
  maskRows: ref.maskRows,
  close: () => {},
};

/**
 * The reference kernels computing in float64 (buffers are Float64Array behind the Float32Array type): matches
 * PyTorch's float64 references exactly enough that top-k masks agree even where float32 rounding ties two
 * scores. For validation only; slow.
 */
export const referenceKernels64: Kernels = {
  ...referenceKernels,
  name: 'reference (TypeScript, float64)',
  alloc: (n) => new Uint8Array(n),
  f32: (n) => new Float64Array(n) as unknown as Float32Array,
  rmsnorm: rmsnormAsTransformers,
};

/**
 * transformers' LlamaRMSNorm normalises in float32 even in a float64 model (then casts back and multiplies
 * by the weight in float64): emulated step by step so top-k near-ties resolve as in the reference.
 */
function rmsnormAsTransformers(
  out: Float32Array,
  x: Float32Array,
  weight: Float32Array,
  eps: number,
  tokens: number,
): void {
  const f = Math.fround;
  const d = weight.length;
  for (let t = 0; t < tokens; t++) {
    const o = t * d;
    let ss = 0;
    for (let i = 0; i < d; i++) ss = f(ss + f(f(x[o + i]!) * f(x[o + i]!)));
    const scale = f(1 / f(Math.sqrt(f(f(ss / d) + f(eps)))));
    for (let i = 0; i < d; i++) out[o + i] = weight[i]! * f(f(x[o + i]!) * scale);
  }
}

/** The [in, out] view the column-sparse kernels take of an input-major weight. */
export function inputMajorView(w: Tensor): Tensor {
  return { dtype: w.dtype, shape: [w.shape[1]!, w.shape[0]!], data: w.data };
}

const allInputs = new WeakMap<Kernels, Int32Array>();

/**
 * Y = X W^T for either layout: row-major weights go to the dense kernel. Input-major ones (loaded for sparse
 * decode) run one token as a column-sparse matvec that keeps every input (threads split the inputs, each
 * streaming whole rows), several as the input-major matmul.
 */
export function matmulAny(
  k: Kernels,
  w: Tensor,
  x: Float32Array,
  tokens: number,
  y: Float32Array,
  bias?: Float32Array,
): void {
  if (w.layout !== 'input-major') return k.matmul(w, x, tokens, y, bias);
  if (tokens > 1) return k.matmulInputMajor(inputMajorView(w), x, tokens, y, bias);
  const inDim = w.shape[1]!;
  let all = allInputs.get(k);
  if (!all || all.length < inDim) {
    all = k.i32(inDim);
    for (let i = 0; i < inDim; i++) all[i] = i;
    allInputs.set(k, all);
  }
  k.sparseMatvec(inputMajorView(w), x, all, inDim, y, bias);
}
