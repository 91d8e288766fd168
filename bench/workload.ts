/** The measurements behind bench/kernels.ts: read bandwidth, matvec over rotating copies, prefill. */
import type { DType, Tensor } from '../src/kernels/tensor.js';
import { FORMATS } from '../src/kernels/formats.js';
import type { WasmKernels } from '../src/kernels/wasm.js';
import { seededRandom } from '../src/io/random.js';

export const KEEPS = [0.75, 0.6, 0.5, 0.35];
export let ROUNDS = 15;
export const setQuick = (quick: boolean) => {
  ROUNDS = quick ? 3 : 15;
};

export const rng = seededRandom;

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

/** Fills a buffer with random BF16 values in (-1, 1); read as F32, the high halves make every value normal. */
export function fillWeights(bytes: Uint8Array, random: () => number): void {
  const seedBytes = Math.min(bytes.length, 16 << 20);
  const words = new Uint16Array(bytes.buffer, bytes.byteOffset, seedBytes / 2);
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  for (let i = 0; i < words.length; i++) {
    f[0] = (random() * 2 - 1) * (0.5 + random());
    words[i] = u[0]! >>> 16;
  }
  for (let filled = seedBytes; filled < bytes.length; filled *= 2) {
    bytes.copyWithin(filled, 0, Math.min(filled, bytes.length - filled));
  }
}

/**
 * Median seconds per call of each case, after a warm-up round. Every round runs every case once through all the
 * copies, so that a noisy moment (other processes, the host) touches all cases alike and ratios stay fair.
 */
export function timeRotating(copies: number, cases: ((copy: number) => void)[]): number[] {
  for (const run of cases) for (let c = 0; c < copies; c++) run(c);
  const perCall: number[][] = cases.map(() => []);
  for (let r = 0; r < ROUNDS; r++) {
    cases.forEach((run, i) => {
      const t0 = performance.now();
      for (let c = 0; c < copies; c++) run(c);
      perCall[i]!.push((performance.now() - t0) / 1000 / copies);
    });
  }
  return perCall.map(median);
}

export function readBandwidth(k: WasmKernels, region: Uint8Array, threads: number): number {
  k.sumBytes(region, threads);
  const times: number[] = [];
  for (let r = 0; r < Math.min(ROUNDS, 5); r++) {
    const t0 = performance.now();
    k.sumBytes(region, threads);
    times.push((performance.now() - t0) / 1000);
  }
  return region.length / median(times) / 1e9;
}

export interface Row {
  /** Read bandwidth measured alongside, GB/s. */
  bandwidth: number;
  shape: string;
  dtype: DType;
  kernel: string;
  ms: number;
  gbps: number;
  speedup: number;
}

export function benchShape(
  k: WasmKernels,
  region: Uint8Array,
  outDim: number,
  inDim: number,
  dtype: DType,
): Row[] {
  const format = FORMATS[dtype];
  const bytes = outDim * inDim * format.bytes;
  const copies = Math.floor(region.length / bytes);
  const tensor = (c: number, shape: number[]): Tensor => {
    const data = format.view(region.subarray(c * bytes, (c + 1) * bytes));
    return { dtype, shape, data };
  };
  const rowMajor = Array.from({ length: copies }, (_, c) => tensor(c, [outDim, inDim]));
  // The same bytes read as input-major [in, out] (q8's and q4's own layout for it): values do not matter for speed.
  const sparseDtype = INPUT_MAJOR[dtype] ?? dtype;
  const inputMajor = Array.from({ length: copies }, (_, c) => ({
    ...tensor(c, [inDim, outDim]),
    dtype: sparseDtype,
  }));
  const x = k.f32(inDim);
  const random = rng(7);
  for (let i = 0; i < inDim; i++) x[i] = random() - 0.5;
  const y = k.f32(outDim);
  const shape = `${outDim}x${inDim}`;

  const kept = KEEPS.map((keep) => {
    const count = Math.round(keep * inDim);
    // A different kept set per copy, as successive tokens would have.
    const lists = Array.from({ length: copies }, () => {
      const list = k.i32(inDim);
      const order = Array.from({ length: inDim }, (_, i) => i);
      for (let i = inDim - 1; i > 0; i--) {
        const j = Math.floor(random() * (i + 1));
        [order[i], order[j]] = [order[j]!, order[i]!];
      }
      list.set(order.slice(0, count).sort((a, b) => a - b));
      return list;
    });
    return { keep, count, lists };
  });
  const raw = Array.from(
    { length: copies },
    (_, c) => new Uint8Array(region.buffer, region.byteOffset + c * bytes, bytes),
  );
  // The read bandwidth is measured in the same rounds, on the same bytes: it varies over time on a shared host.
  const [read, dense, ...sparse] = timeRotating(copies, [
    (c) => k.sumBytes(raw[c]!),
    (c) => k.matmul(rowMajor[c]!, x, 1, y),
    ...kept.map(
      ({ count, lists }) =>
        (c: number) =>
          k.sparseMatvec(inputMajor[c]!, x, lists[c]!, count, y),
    ),
  ]);
  const bandwidth = bytes / read! / 1e9;
  const rows: Row[] = [
    { shape, dtype, kernel: 'dense', ms: dense! * 1e3, gbps: bytes / dense! / 1e9, speedup: 1, bandwidth },
  ];
  kept.forEach(({ keep, count, lists }, i) => {
    const t = sparse[i]!;
    const read = sparseBytes(dtype, lists[0]!.subarray(0, count), outDim);
    rows.push({
      shape,
      dtype,
      kernel: `sparse keep ${keep}`,
      bandwidth,
      ms: t * 1e3,
      gbps: read / t / 1e9,
      speedup: dense! / t,
    });
  });
  return rows;
}

/** Formats whose column-sparse kernel reads a layout of its own. */
const INPUT_MAJOR: Partial<Record<DType, DType>> = { Q8: 'Q8T', Q4: 'Q4T' };

/** Weight bytes column-sparse decode reads: the kept inputs' values, and each touched group's scales. */
function sparseBytes(dtype: DType, kept: Int32Array, outDim: number): number {
  if (!INPUT_MAJOR[dtype]) return kept.length * outDim * FORMATS[dtype].bytes;
  const groups = new Set(Array.from(kept, (i) => i >> 5)).size;
  const valueBytes = dtype === 'Q4' ? Math.ceil(outDim / 32) * 16 : outDim;
  return kept.length * valueBytes + groups * outDim * 4;
}

export interface PrefillRow {
  shape: string;
  dtype: DType;
  tokens: number;
  ms: number;
  gflops: number;
}

/** Prefill (one matmul over several tokens) is compute-bound: GFLOP/s. */
export function benchPrefill(k: WasmKernels, outDim: number, inDim: number, dtype: DType): PrefillRow[] {
  const format = FORMATS[dtype];
  const n = outDim * inDim;
  const bytes = k.alloc(n * format.bytes);
  fillWeights(bytes, rng(3));
  const w: Tensor = { dtype, shape: [outDim, inDim], data: format.view(bytes) };
  return [16, 64].map((tokens) => {
    const x = k.f32(tokens * inDim).fill(0.25);
    const y = k.f32(tokens * outDim);
    const [t] = timeRotating(1, [() => k.matmul(w, x, tokens, y)]);
    return { shape: `${outDim}x${inDim}`, dtype, tokens, ms: t! * 1e3, gflops: (2 * n * tokens) / t! / 1e9 };
  });
}
