/**
 * The linear-algebra WebAssembly module (dist/linalg/, built from src/linalg/assembly) on a shared memory of
 * its own, with a worker per extra core. It runs the orthogonal transform's eigendecompositions and matrix
 * products; the model's kernels (src/kernels) are a separate module and memory, untouched by it.
 *
 * Threads use the kernels' job-slot protocol (src/kernels/pool.ts: chunks claimed with Atomics, no message per
 * call). Start-up is synchronous: workers are spawned on first use and join jobs once they are running; until
 * then the main thread claims every chunk itself. When other processes hold the cores, jobs run on the main
 * thread alone for a while (`govern`). Memory is a stack: `mark()` / `release()` around each call.
 */
import os from 'node:os';
import { readFileSync } from 'node:fs';
import v8 from 'node:v8';
import { Worker } from 'node:worker_threads';
import {
  ARG_COUNT,
  ARGS_BYTE_OFFSET,
  ALIGN as JOB_ALIGN,
  CHUNKS,
  CHUNKS_PER_THREAD,
  CLOSED,
  chunkCount,
  DONE,
  FAILED,
  GEN,
  Job,
  KERNEL,
  type KernelFn,
  NEXT,
  SLEEPERS,
  SLOT_BYTES,
  STOP,
  TOTAL,
  type WorkerData,
} from '../kernels/pool.js';
import { type WasmMemory, type WasmModule, WebAssemblyApi } from '../kernels/wasm-api.js';
import { compileOptimized } from '../kernels/wasm-module.js';

/** Kernels that take (begin, end, slot, ...args) and run on every thread (the worker maps the same list). */
export const LINALG_KERNELS = [
  'trdSymv',
  'trdUpdate',
  'panelSymv',
  'panelUpdate',
  'panelIdentity',
  'rotatePanels',
  'unpanel',
  'backTransform',
  'transposeScale',
  'transposeF32',
  'gramF64',
  'gemmF32',
] as const;
export type LinalgKernel = (typeof LINALG_KERNELS)[number];

export interface LinalgExports extends Record<LinalgKernel, KernelFn> {
  heapBase(): number;
  trdHouse(a: number, ld: number, n: number, k: number, tau: number, e: number): void;
  trdStep(
    a: number,
    ld: number,
    n: number,
    k: number,
    p: number,
    w: number,
    tau: number,
    d: number,
    e: number,
  ): void;
  panelRow(a: number, ld: number, n: number, k0: number, j: number, wb: number, ldw: number): void;
  panelW(
    a: number,
    ld: number,
    n: number,
    k0: number,
    j: number,
    wb: number,
    ldw: number,
    ypart: number,
    ldy: number,
    chunks: number,
    tau: number,
  ): void;
  panelPack(
    a: number,
    ld: number,
    n: number,
    k0: number,
    nb: number,
    wb: number,
    ldw: number,
    rb: number,
    n4: number,
    p: number,
    q: number,
  ): void;
  mirrorBlock(a: number, ld: number, k0: number, n: number): void;
  trailingNorm2(a: number, ld: number, k: number, n: number): number;
  backPrepare(
    a: number,
    ld: number,
    n: number,
    tau: number,
    groups: number,
    vt: number,
    meta: number,
    tmat: number,
  ): void;
  backScratchBytes(): number;
  qlSweeps(
    n: number,
    d: number,
    e: number,
    state: number,
    sweepL: number,
    sweepM: number,
    cs: number,
    maxSweeps: number,
    maxRotations: number,
  ): number;
  mirrorLower(g: number, n: number): void;
}

const PAGE = 65536;
const MAX_PAGES = 65536;
const ALIGN = 64;
/** Polls of the finished-chunk count before the main thread sleeps on it (a few microseconds). */
const SPINS_BEFORE_SLEEP = 1000;
/** See `govern`: judged over windows of this much parallel work; serial for this long when starved. */
const GOVERNOR_WINDOW_MS = 200;
const GOVERNOR_SHARE = 0.6;
const GOVERNOR_SERIAL_MS = 5000;

const cpuMicros = (since: NodeJS.CpuUsage) => {
  const u = process.cpuUsage(since);
  return u.user + u.system;
};
/** Jobs with less work than this (in element operations) run on the main thread alone. */
const PARALLEL_MIN_WORK = 1 << 15;

const build = (name: string) => readFileSync(new URL(`../../linalg/${name}`, import.meta.url));

function compile(): WasmModule {
  const relaxed = build('linalg.wasm');
  // Node 20 has relaxed SIMD (fused multiply-add) behind a flag; src/kernels sets the same one.
  if (!WebAssemblyApi.validate(relaxed)) v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
  return compileOptimized(WebAssemblyApi.validate(relaxed) ? relaxed : build('linalg-baseline.wasm'));
}

export class Linalg {
  private static instance: Linalg | undefined;
  private static wantThreads = os.availableParallelism();
  readonly wasm: LinalgExports;
  readonly threads: number;
  private readonly memory: WasmMemory;
  private readonly ctl: Int32Array;
  private readonly args: Float64Array;
  private readonly job = new Job();
  private readonly workers: Worker[] = [];
  private top: number;
  /** Wall and CPU (all threads) time of the parallel jobs in the current window; end of a serial spell. */
  private jobMs = 0;
  private jobCpuMs = 0;
  private serialUntil = 0;

  private constructor(threads: number) {
    if (typeof SharedArrayBuffer !== 'function') threads = 1;
    const module = compile();
    this.memory = new WebAssemblyApi.Memory({ initial: 16, maximum: MAX_PAGES, shared: true });
    this.wasm = new WebAssemblyApi.Instance(module, { env: { memory: this.memory } })
      .exports as unknown as LinalgExports;
    this.top = this.wasm.heapBase();
    const slot = this.alloc(SLOT_BYTES);
    this.ctl = new Int32Array(this.memory.buffer, slot, SLOT_BYTES / 4);
    this.args = new Float64Array(this.memory.buffer, slot + ARGS_BYTE_OFFSET, ARG_COUNT);
    Atomics.store(this.ctl, NEXT, CLOSED);
    this.threads = threads;
    // Workers inherit node's flags; --input-type (node -e) would break loading the worker file.
    const execArgv = process.execArgv.some((a) => a.startsWith('--input-type')) ? [] : undefined;
    for (let thread = 1; thread < threads; thread++) {
      const workerData: WorkerData = { module, memories: [this.memory], slot, thread };
      const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData, execArgv });
      worker.unref();
      worker.on('error', (err) => process.stderr.write(`wina linalg worker ${thread}: ${err}\n`));
      this.workers.push(worker);
    }
  }

  /** The process-wide instance (one thread per core unless `setThreads` said otherwise), made on first use. */
  static get(): Linalg {
    Linalg.instance ??= new Linalg(Linalg.wantThreads);
    return Linalg.instance;
  }

  /** Threads for the instance made by the next `get()` (closes the current one). */
  static setThreads(threads: number): void {
    Linalg.close();
    Linalg.wantThreads = Math.max(1, Math.floor(threads));
  }

  /** Stops the workers; the next `get()` starts afresh. */
  static close(): void {
    const la = Linalg.instance;
    if (!la) return;
    Linalg.instance = undefined;
    la.ctl[KERNEL] = STOP;
    Atomics.add(la.ctl, GEN, 1);
    Atomics.notify(la.ctl, GEN);
    for (const w of la.workers) void w.terminate();
  }

  mark(): number {
    return this.top;
  }

  release(mark: number): void {
    this.top = mark;
  }

  /** Byte address of `bytes` fresh bytes (64-byte aligned; contents undefined). */
  alloc(bytes: number): number {
    const start = Math.ceil(this.top / ALIGN) * ALIGN;
    const end = start + bytes;
    const have = this.memory.buffer.byteLength;
    if (end > have) {
      if (end > MAX_PAGES * PAGE)
        throw new RangeError(`linear algebra needs ${end} bytes of WebAssembly memory`);
      const want = Math.min(MAX_PAGES * PAGE, Math.max(end, 2 * have));
      this.memory.grow(Math.ceil((want - have) / PAGE));
    }
    this.top = end;
    return start;
  }

  f64(n: number): Float64Array {
    const at = this.alloc(n * 8); // before reading buffer: alloc may grow it
    return new Float64Array(this.memory.buffer, at, n);
  }

  f32(n: number): Float32Array {
    const at = this.alloc(n * 4); // before reading buffer: alloc may grow it
    return new Float32Array(this.memory.buffer, at, n);
  }

  i32(n: number): Int32Array {
    const at = this.alloc(n * 4); // before reading buffer: alloc may grow it
    return new Int32Array(this.memory.buffer, at, n);
  }

  /**
   * Runs a kernel over [0, total) in chunks (cut at multiples of `align`) claimed by every thread, or on the
   * main thread alone when `work` is small. Returns the number of chunks (slots 0..chunks-1 were used).
   */
  parallel(kernel: LinalgKernel, total: number, align: number, work: number, ...args: number[]): number {
    const fn = this.wasm[kernel];
    const started = performance.now();
    if (this.workers.length === 0 || work < PARALLEL_MIN_WORK || started < this.serialUntil) {
      fn(0, total, 0, ...args);
      return 1;
    }
    const cpu = process.cpuUsage();
    const c = this.ctl;
    const chunks = chunkCount(total, align, this.threads);
    c[KERNEL] = LINALG_KERNELS.indexOf(kernel);
    c[TOTAL] = total;
    c[JOB_ALIGN] = align;
    c[CHUNKS] = chunks;
    c[FAILED] = 0;
    this.args.fill(0);
    this.args.set(args);
    this.job.read(c, this.args);
    Atomics.store(c, DONE, 0);
    Atomics.add(c, GEN, 1);
    Atomics.store(c, NEXT, 0);
    if (Atomics.load(c, SLEEPERS) > 0) Atomics.notify(c, GEN);
    let error: unknown;
    for (let chunk = Atomics.add(c, NEXT, 1); chunk < chunks; chunk = Atomics.add(c, NEXT, 1)) {
      try {
        this.job.run(fn, chunk);
      } catch (err) {
        error ??= err;
      }
      Atomics.add(c, DONE, 1);
    }
    // At most one chunk per worker is still running. Spin briefly, then sleep until a worker finishes one: on
    // a busy machine the worker may be waiting for a core, and spinning would hold the core it needs.
    for (let spins = 0; ; spins++) {
      const done = Atomics.load(c, DONE);
      if (done >= chunks) break;
      if (spins >= SPINS_BEFORE_SLEEP) Atomics.wait(c, DONE, done, 1);
    }
    this.govern(performance.now() - started, cpuMicros(cpu));
    Atomics.store(c, NEXT, CLOSED);
    if (error) throw error;
    if (Atomics.load(c, FAILED)) throw new Error(`linalg kernel ${kernel} failed in a worker (see stderr)`);
    return chunks;
  }

  /**
   * Falls back to the main thread alone for a while when the threads do not get their cores. During a
   * parallel job every thread is busy (working, or spinning for the last chunk), so this process should use
   * about `threads` cores; on a busy machine the scheduler shares out what others leave (Linux shares CPU
   * between sessions before it looks at nice values), two threads then get no more than one would, and
   * waiting for each other makes them slower than one.
   */
  private govern(wallMs: number, cpuMicros: number): void {
    this.jobMs += wallMs;
    this.jobCpuMs += cpuMicros / 1000;
    if (this.jobMs < GOVERNOR_WINDOW_MS) return;
    if (this.jobCpuMs < GOVERNOR_SHARE * this.threads * this.jobMs) {
      this.serialUntil = performance.now() + GOVERNOR_SERIAL_MS;
    }
    this.jobMs = 0;
    this.jobCpuMs = 0;
  }

  /** The most chunks a job can have (partial-result slots to allocate). */
  get maxChunks(): number {
    return this.workers.length === 0 ? 1 : this.threads * CHUNKS_PER_THREAD;
  }
}
