/**
 * The worker pool shared by the kernels (src/kernels) and the linear algebra (src/linalg), and the job slot through which the main thread hands parallel kernels to the workers: a few Int32 words and
 * Float64 arguments in shared WebAssembly memory, no messages per call. The main thread writes the job, bumps
 * `GEN` and opens `NEXT`; every thread (main included) then claims chunks of the work from `NEXT` until none are
 * left and counts finished chunks in `DONE`. Workers spin on `GEN` briefly, then sleep in `Atomics.wait`.
 *
 * Chunks, not fixed shares: a worker that the OS has descheduled (another process wants the core) or that is
 * still waking up just claims fewer chunks, instead of making every call wait for it. Kernels get the chunk
 * index as their scratch slot, and per-chunk partial results are combined in chunk order, so results do not
 * depend on which thread ran which chunk.
 */
import { type PoolWorker, startWorker } from './platform.js';
import type { WasmMemory, WasmModule } from './wasm-api.js';

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

/**
 * How long an idle worker polls before sleeping. Waking a sleeping thread costs 50-200 µs here (more the longer
 * it slept), so the poll covers the serial work between a token's kernels and between tokens.
 */
const SPIN_MS = 10;

/**
 * A worker's life: wait for each job posted in the slot at `slot`, claim and run its chunks, until STOP.
 * `notifyDone`: wake a main thread that sleeps while waiting for chunks (the linear-algebra runtime does).
 * `seen`: the generation the worker has already seen (a worker started after jobs began joins the current one).
 */
export function serveJobs(
  buffer: ArrayBufferLike,
  slot: number,
  kernels: KernelFn[],
  o: { name: string; notifyDone: boolean; seen: number },
): void {
  const ctl = new Int32Array(buffer, slot, SLOT_BYTES / 4);
  const args = new Float64Array(buffer, slot + ARGS_BYTE_OFFSET, ARG_COUNT);
  const job = new Job();

  const waitForJob = (seen: number): number => {
    let spins = 0;
    let since = performance.now();
    for (;;) {
      const gen = Atomics.load(ctl, GEN);
      if (gen !== seen) return gen;
      if (++spins % 1024 !== 0) continue;
      if (performance.now() - since < SPIN_MS) continue;
      // The main thread only notifies when it sees a sleeper; Atomics.wait rechecks GEN, so no wake-up is lost.
      Atomics.add(ctl, SLEEPERS, 1);
      Atomics.wait(ctl, GEN, seen);
      Atomics.sub(ctl, SLEEPERS, 1);
      since = performance.now();
    }
  };

  /** Claims chunks of job `gen` until none are left; returns the generation of the last job it looked at. */
  const work = (gen: number): number => {
    job.read(ctl, args);
    for (;;) {
      const chunk = Atomics.add(ctl, NEXT, 1);
      const now = Atomics.load(ctl, GEN);
      if (now !== gen) {
        // This thread was slow: the job it read has ended and another began, which the claim belongs to (or,
        // if made before that job opened, is void). No job ends while a claim on it is unfinished.
        gen = now;
        job.read(ctl, args);
        if (job.kernel === STOP) return gen;
        if (chunk >= job.chunks) continue;
      } else if (chunk >= job.chunks) {
        return gen;
      }
      try {
        job.run(kernels[job.kernel]!, chunk);
      } catch (err) {
        console.error(`${o.name}:`, err);
        Atomics.store(ctl, FAILED, 1);
      }
      Atomics.add(ctl, DONE, 1);
      if (o.notifyDone) Atomics.notify(ctl, DONE);
    }
  };

  let seen = o.seen;
  while (Atomics.load(ctl, KERNEL) !== STOP) {
    seen = waitForJob(seen);
    if (Atomics.load(ctl, KERNEL) === STOP) break;
    seen = work(seen);
  }
}

/** Polls of the finished-chunk count before a sleeping main thread sleeps on it (a few microseconds). */
const SPINS_BEFORE_SLEEP = 1000;

/**
 * The main thread's side: threads - 1 workers on `memories` and the slot at `slot` (in the first memory), and
 * the dispatch loop that posts a job, claims chunks beside the workers and waits for the last one.
 */
export class WorkerPool {
  readonly threads: number;
  /** The most chunks a job can have (scratch slots to allocate). */
  readonly maxChunks: number;
  /** Settles once every worker waits for jobs (a job posted before runs on those already there). */
  readonly ready: Promise<void>;
  private readonly ctl: Int32Array;
  private readonly args: Float64Array;
  private readonly job = new Job();
  private readonly workers: PoolWorker[];
  private readonly sleepWhileWaiting: boolean;
  private readonly kernelNames: string[];
  private closed = false;

  constructor(o: {
    module: WasmModule;
    memories: WasmMemory[];
    slot: number;
    threads: number;
    /** The module's parallel kernels (see WorkerData.kernels). */
    kernels: string[];
    /** Workers are named `${name} ${thread}` in messages. */
    name: string;
    /**
     * Sleep (not spin) while waiting for workers' last chunks: for long jobs, where a spinning main thread on a
     * busy machine would hold the core a worker needs.
     */
    sleepWhileWaiting: boolean;
  }) {
    const buffer = o.memories[0]!.buffer;
    this.ctl = new Int32Array(buffer, o.slot, SLOT_BYTES / 4);
    this.args = new Float64Array(buffer, o.slot + ARGS_BYTE_OFFSET, ARG_COUNT);
    Atomics.store(this.ctl, NEXT, CLOSED);
    this.threads = o.threads;
    this.maxChunks = o.threads === 1 ? 1 : o.threads * CHUNKS_PER_THREAD;
    this.sleepWhileWaiting = o.sleepWhileWaiting;
    this.kernelNames = o.kernels;
    this.workers = Array.from({ length: o.threads - 1 }, (_, i) =>
      startWorker({
        module: o.module,
        memories: o.memories,
        slot: o.slot,
        thread: i + 1,
        kernels: o.kernels,
        name: `${o.name} ${i + 1}`,
        notifyDone: o.sleepWhileWaiting,
      }),
    );
    this.ready = Promise.all(this.workers.map((w) => w.ready)).then(() => {});
    this.ready.catch(() => {}); // reported by each worker; awaited only by callers that need every thread
  }

  get hasWorkers(): boolean {
    return this.workers.length > 0;
  }

  /**
   * Runs `fn` (job kernel number `kernel`, as the workers number it) over [0, total) in chunks cut at
   * multiples of `align`, claimed by every thread, the main thread included. `wake`: notify sleeping workers
   * (waking one takes 50-200 µs, more than a small job). Returns the number of chunks (scratch slots used).
   */
  run(kernel: number, fn: KernelFn, total: number, align: number, wake: boolean, args: number[]): number {
    if (this.closed) throw new Error('the worker pool is closed');
    const c = this.ctl;
    const chunks = chunkCount(total, align, this.threads);
    c[KERNEL] = kernel;
    c[TOTAL] = total;
    c[ALIGN] = align;
    c[CHUNKS] = chunks;
    c[FAILED] = 0;
    this.args.fill(0);
    this.args.set(args);
    this.job.read(c, this.args);
    Atomics.store(c, DONE, 0);
    Atomics.add(c, GEN, 1);
    Atomics.store(c, NEXT, 0); // opens the job for claims
    if (wake && Atomics.load(c, SLEEPERS) > 0) Atomics.notify(c, GEN);
    let error: unknown;
    for (let chunk = Atomics.add(c, NEXT, 1); chunk < chunks; chunk = Atomics.add(c, NEXT, 1)) {
      try {
        this.job.run(fn, chunk);
      } catch (err) {
        error ??= err;
      }
      Atomics.add(c, DONE, 1);
    }
    // At most one chunk per worker is still running.
    for (let spins = 0; ; spins++) {
      const done = Atomics.load(c, DONE);
      if (done >= chunks) break;
      if (this.sleepWhileWaiting && spins >= SPINS_BEFORE_SLEEP) Atomics.wait(c, DONE, done, 1);
    }
    Atomics.store(c, NEXT, CLOSED);
    if (error) throw error;
    if (Atomics.load(c, FAILED)) {
      const name = this.kernelNames[kernel % this.kernelNames.length];
      throw new Error(`WebAssembly kernel ${name} failed in a worker (see stderr)`);
    }
    return chunks;
  }

  /** Stops the workers (they never keep the process alive, so a forgotten close costs nothing). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.workers.length === 0) return;
    this.ctl[KERNEL] = STOP;
    Atomics.add(this.ctl, GEN, 1);
    Atomics.notify(this.ctl, GEN);
    for (const w of this.workers) w.terminate();
  }
}
