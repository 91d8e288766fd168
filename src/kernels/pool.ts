/**
 * The job slot through which the main thread hands parallel kernels to the workers: a few Int32 words and
 * Float64 arguments in shared WebAssembly memory, no messages per call. The main thread writes the job, bumps
 * `GEN` and opens `NEXT`; every thread (main included) then claims chunks of the work from `NEXT` until none are
 * left and counts finished chunks in `DONE`. Workers spin on `GEN` briefly, then sleep in `Atomics.wait`.
 *
 * Chunks, not fixed shares: a worker that the OS has descheduled (another process wants the core) or that is
 * still waking up just claims fewer chunks, instead of making every call wait for it. Kernels get the chunk
 * index as their scratch slot, and per-chunk partial results are combined in chunk order, so results do not
 * depend on which thread ran which chunk.
 */

export const SLOT_BYTES = 320;
// Int32 indices. NEXT and DONE have cache lines of their own: every thread writes them.
export const GEN = 0;
export const SLEEPERS = 1;
export const KERNEL = 2;
export const TOTAL = 3;
export const ALIGN = 4;
export const CHUNKS = 5;
export const FAILED = 6;
export const NEXT = 16;
export const DONE = 32;
export const ARGS_BYTE_OFFSET = 192;
export const ARG_COUNT = 12;
export const STOP = -1;
/** NEXT between jobs: claims made late, by a thread that has not noticed the job ended, find nothing. */
export const CLOSED = 1 << 30;
/** Chunks per thread: enough for a late or descheduled thread to cost little, few enough to stay cheap. */
export const CHUNKS_PER_THREAD = 4;

/** Kernels that take (begin, end, slot, ...args) and run on every thread. */
export const PARALLEL_KERNELS = [
  'matvecF32',
  'matvecBF16',
  'matvecF16',
  'matmulF32',
  'matmulBF16',
  'matmulF16',
  'sparseF32',
  'sparseBF16',
  'sparseF16',
  'gatherF32',
  'gatherBF16',
  'gatherF16',
  'attention',
  'transpose',
  'readSum',
] as const;
export type ParallelKernel = (typeof PARALLEL_KERNELS)[number];

export type KernelFn = (begin: number, end: number, slot: number, ...args: number[]) => void;

/** Chunk `chunk` [begin, end) of `total` items split into `chunks` pieces cut at multiples of `align`. */
export function chunkRange(total: number, align: number, chunks: number, chunk: number): [number, number] {
  const units = Math.ceil(total / align);
  const per = Math.floor(units / chunks);
  const extra = units % chunks;
  const first = chunk * per + Math.min(chunk, extra);
  const count = per + (chunk < extra ? 1 : 0);
  return [Math.min(total, first * align), Math.min(total, (first + count) * align)];
}

/** How many chunks a job of `total` items gets on `threads` threads. */
export function chunkCount(total: number, align: number, threads: number): number {
  return Math.max(1, Math.min(threads * CHUNKS_PER_THREAD, Math.ceil(total / align)));
}

/** A job as read from the slot. */
export class Job {
  kernel = 0;
  total = 0;
  align = 1;
  chunks = 0;
  readonly args = new Float64Array(ARG_COUNT);

  read(ctl: Int32Array, args: Float64Array): void {
    this.kernel = ctl[KERNEL]!;
    this.total = ctl[TOTAL]!;
    this.align = ctl[ALIGN]!;
    this.chunks = ctl[CHUNKS]!;
    this.args.set(args);
  }

  run(fn: KernelFn, chunk: number): void {
    const [begin, end] = chunkRange(this.total, this.align, this.chunks, chunk);
    const a = this.args;
    fn(
      begin,
      end,
      chunk,
      a[0]!,
      a[1]!,
      a[2]!,
      a[3]!,
      a[4]!,
      a[5]!,
      a[6]!,
      a[7]!,
      a[8]!,
      a[9]!,
      a[10]!,
      a[11]!,
    );
  }
}
