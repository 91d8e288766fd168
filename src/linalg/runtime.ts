/**
 * The linear-algebra WebAssembly module (dist/linalg/, built from src/linalg/assembly) on a shared memory of
 * its own, with a worker per extra core. It runs the orthogonal transform's eigendecompositions and matrix
 * products; the model's kernels (src/kernels) are a separate module and memory, untouched by it.
 *
 * Threads come from the runtime's worker pool (src/runtime/pool.ts: chunks claimed with Atomics, no message per
 * call), as the kernels'. Start-up is synchronous: workers are spawned on first use and join jobs once they are running; until
 * then the main thread claims every chunk itself. When other processes hold the cores, jobs run on the main
 * thread alone for a while (`govern`). Memory is a stack: `mark()` / `release()` around each call.
 */
import { compileFastest } from '../runtime/compile.js';
import { availableThreads, cpuMicros } from '../runtime/platform.js';
import { type KernelFn, SLOT_BYTES, WorkerPool } from '../runtime/pool.js';
import { type WasmMemory, WebAssemblyApi } from '../runtime/wasm-api.js';

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
/** See `govern`: judged over windows of this much parallel work; serial for this long when starved. */
const GOVERNOR_WINDOW_MS = 200;
const GOVERNOR_SHARE = 0.6;
const GOVERNOR_SERIAL_MS = 5000;

/** Jobs with less work than this (in element operations) run on the main thread alone. */
const PARALLEL_MIN_WORK = 1 << 15;

export class Linalg {
  private static instance: Linalg | undefined;
  private static wantThreads = availableThreads();
  readonly wasm: LinalgExports;
  readonly threads: number;
  private readonly memory: WasmMemory;
  private readonly pool: WorkerPool;
  private top: number;
  /** Wall and CPU (all threads) time of the parallel jobs in the current window; end of a serial spell. */
  private jobMs = 0;
  private jobCpuMs = 0;
  private serialUntil = 0;

  private constructor(threads: number) {
    if (typeof SharedArrayBuffer !== 'function') threads = 1;
    const { module } = compileFastest('linalg', 'linalg', { shared: true });
    this.memory = new WebAssemblyApi.Memory({ initial: 16, maximum: MAX_PAGES, shared: true });
    this.wasm = new WebAssemblyApi.Instance(module, { env: { memory: this.memory } })
      .exports as unknown as LinalgExports;
    this.top = this.wasm.heapBase();
    const slot = this.alloc(SLOT_BYTES);
    this.threads = threads;
    // Start-up stays synchronous: jobs run on the main thread alone until workers join.
    this.pool = new WorkerPool({
      module,
      memories: [this.memory],
      slot,
      threads,
      kernels: [...LINALG_KERNELS],
      name: 'wina linalg worker',
      sleepWhileWaiting: true,
    });
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
    la.pool.close();
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
    if (!this.pool.hasWorkers || work < PARALLEL_MIN_WORK || started < this.serialUntil) {
      fn(0, total, 0, ...args);
      return 1;
    }
    const cpu = cpuMicros();
    const chunks = this.pool.run(LINALG_KERNELS.indexOf(kernel), fn, total, align, true, args);
    this.govern(performance.now() - started, cpuMicros() - cpu);
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
    return this.pool.maxChunks;
  }
}
