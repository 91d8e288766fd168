/**
 * Multi-threaded WebAssembly SIMD kernels with the signatures and semantics of reference.ts, plus the
 * column-sparse matvec and input selection that turn activation sparsity into skipped memory traffic.
 *
 * Every buffer a kernel touches (weights, activations, kept lists, norms) must be a view into this instance's
 * memory, from alloc(), f32() or i32() (a model loaded with `alloc` as its Allocate has its weights there).
 */
import type { Tensor } from './tensor.js';
import { compileFastest } from '../runtime/compile.js';
import { availableThreads, totalMemory, warn } from '../runtime/platform.js';
import { SLOT_BYTES, WorkerPool } from '../runtime/pool.js';
import { type WasmMemory, WebAssemblyApi } from '../runtime/wasm-api.js';
import { FORMATS, formatOf, type WeightFormat } from './formats.js';
import type { Kernels } from './kernels.js';
import * as ref from './reference.js';
import { createMemory, MAX_PAGES, type SpaceCall, WasmHeap, WasmHeaps } from './wasm-heap.js';
import { type Exports, FORMAT_KERNELS, type ParallelKernel, PARALLEL_KERNELS } from './wasm-exports.js';

/** Jobs moving less than this do not wake sleeping workers (which takes 50-200 µs); spinning ones join in. */
const WAKE_MIN_BYTES = 4 << 20;
/** Traffic that always runs on every thread (warm-up, probes). */
const ALWAYS = Number.POSITIVE_INFINITY;
const INITIAL_BYTES = 1 << 20;
const KERNEL_INDEX = new Map(PARALLEL_KERNELS.map(({ name }, i) => [name, i]));

type Norms = Float32Array | Float64Array | undefined;

export class WasmKernels implements Kernels {
  readonly name: string;
  /** Kernels that move fewer bytes than this run on the main thread alone: waking workers would cost more. */
  parallelMinBytes = 64 << 10;
  readonly threads: number;
  /** Scratch slots a kernel may use: one per chunk. */
  private readonly maxChunks: number;
  private closed = false;

  private constructor(
    private readonly heaps: WasmHeaps,
    /** The module's instance in each space (see wasm-heap.ts), on this thread. */
    private readonly instances: Exports[],
    private readonly pool: WorkerPool,
    fused: boolean,
  ) {
    this.threads = pool.threads;
    const simd = fused ? 'SIMD with FMA' : 'SIMD';
    this.name = `WebAssembly ${simd}, ${this.threads} thread${this.threads > 1 ? 's' : ''}`;
    this.maxChunks = pool.maxChunks;
  }

  /**
   * The main thread plus threads - 1 workers (default: one thread per core). `fusedMultiplyAdd: false` picks
   * the build without relaxed SIMD even where the engine has it (results then round as mul + add).
   */
  static async create(
    opts: {
      threads?: number;
      fusedMultiplyAdd?: boolean;
      /** WebAssembly memories (default: enough for this machine's RAM, 4 GiB each; one without shared memory). */
      spaces?: number;
      /** Bytes per memory (default 4 GiB; smaller in tests of several). */
      spaceBytes?: number;
    } = {},
  ): Promise<WasmKernels> {
    const shared = typeof SharedArrayBuffer === 'function';
    let threads = Math.max(1, Math.floor(opts.threads ?? availableThreads()));
    if (!shared && threads > 1) {
      warn('wina: SharedArrayBuffer is unavailable, so the WebAssembly kernels run on 1 thread');
      threads = 1;
    }
    const { module, fused } = compileFastest('kernels', 'kernels', {
      shared,
      relaxed: opts.fusedMultiplyAdd ?? true,
    });
    const spaceBytes = Math.min(opts.spaceBytes ?? MAX_PAGES * 65536, MAX_PAGES * 65536);
    // Untouched pages of a memory cost no RAM: a space per 4 GiB of this machine's memory.
    const spaces = shared ? Math.max(1, Math.floor(opts.spaces ?? Math.ceil(totalMemory() / spaceBytes))) : 1;
    const memories = Array.from({ length: spaces }, () => createMemory(shared, INITIAL_BYTES));
    const instances = memories.map(
      (memory) => new WebAssemblyApi.Instance(module, { env: { memory } }).exports as unknown as Exports,
    );
    const heaps = new WasmHeaps(
      memories.map((memory, i) => new WasmHeap(memory, instances[i]!.heapBase(), shared, spaceBytes)),
    );
    const slot = heaps.heaps[0]!.alloc(SLOT_BYTES).byteOffset;
    const pool = new WorkerPool({
      module,
      memories,
      slot,
      threads,
      kernels: PARALLEL_KERNELS.map(({ name }) => name),
      name: 'wina kernel worker',
      sleepWhileWaiting: false,
    });
    await pool.ready;
    const kernels = new WasmKernels(heaps, instances, pool, fused);
    kernels.warmUp();
    return kernels;
  }

  /** The first space's memory (the only one of a model under 4 GiB). */
  get memory(): WasmMemory {
    return this.heaps.heaps[0]!.memory;
  }

  /** The number of WebAssembly memories (spaces) weights and buffers are spread over. */
  get spaces(): number {
    return this.heaps.heaps.length;
  }

  /** Which of the memories holds a view (TypeError if none). */
  spaceOf(view: ArrayBufferView): number {
    return this.heaps.spaceOf(view, 'view');
  }

  /** Bytes that alloc() can still give. */
  get bytesFree(): number {
    return this.heaps.free;
  }

  /** `byteLength` bytes of kernel memory, 64-byte aligned (usable as a model loader's Allocate). */
  alloc = (byteLength: number): Uint8Array => this.heaps.alloc(byteLength);

  f32(n: number): Float32Array {
    const bytes = this.alloc(n * 4);
    return new Float32Array(bytes.buffer, bytes.byteOffset, n);
  }

  i32(n: number): Int32Array {
    const bytes = this.alloc(n * 4);
    return new Int32Array(bytes.buffer, bytes.byteOffset, n);
  }

  /** The call context of the space that holds `view` (a weight, or the largest operand). */
  private callIn(view: ArrayBufferView, name: string): SpaceCall {
    return this.heaps.call(this.heaps.spaceOf(view, name));
  }

  /** Y[t, o] = sum_i W[o, i] X[t, i] (+ bias[o]), W [out, in] row-major, as reference.matmul. */
  matmul(w: Tensor, x: Float32Array, tokens: number, y: Float32Array, bias?: Float32Array): void {
    const [outDim, inDim] = w.shape as [number, number];
    const h = this.callIn(w.data, 'weight');
    const wp = this.weightAddress(h, w);
    const xp = h.address(x, tokens * inDim, 'x');
    const yp = h.output(y, tokens * outDim, 'y');
    const bp = bias ? h.address(bias, outDim, 'bias') : 0;
    const format = FORMATS[w.dtype];
    const kernels = FORMAT_KERNELS[w.dtype];
    const traffic = outDim * inDim * format.bytes * tokens;
    if (tokens === 1) {
      const xr = this.xAsRead(h, format, xp, inDim);
      this.parallel(h, kernels.matvec, outDim, 4, traffic, wp, xr, yp, bp, inDim);
    } else {
      // Room for each chunk's rows widened to F32 (matmulF32 takes it unused: one signature per family).
      const rows = this.wasmOf(h).matmulScratchBytes(inDim) * this.maxChunks;
      const scratch = h.scratch('matmul-rows', rows);
      this.parallel(h, kernels.matmul, outDim, 4, traffic, wp, xp, tokens, yp, bp, inDim, outDim, scratch);
    }
    h.done();
  }

  /** The input-major copy [in, out] of a weight [out, in], allocated here, for sparseMatvec. */
  toInputMajor(w: Tensor): Tensor {
    const own = formatOf(w.dtype).inputMajor;
    if (own) return own(w, this.alloc);
    const [outDim, inDim] = w.shape as [number, number];
    const n = outDim * inDim;
    const { bytes, view } = FORMATS[w.dtype];
    const dst = this.alloc(n * bytes);
    const data = view(dst);
    const h = this.callIn(dst, 'input-major copy');
    if (h.heap.owns(w.data)) {
      const src = h.address(w.data, n, 'weight');
      this.parallel(h, 'transpose', inDim, 16, n * bytes * 2, src, dst.byteOffset, outDim, inDim, bytes);
    } else {
      data.set(ref.toInputMajor(w).data);
    }
    return { dtype: w.dtype, shape: [inDim, outDim], data };
  }

  /**
   * y = sum over kept[0..count) of x[i] * wT[i, :] (+ bias), wT input-major [in, out] (from toInputMajor), as
   * reference.sparseMatvec. Threads split the kept list; only the kept inputs' weights are read.
   */
  sparseMatvec(
    wT: Tensor,
    x: Float32Array,
    kept: Int32Array,
    count: number,
    y: Float32Array,
    bias?: Float32Array,
  ): void {
    const [inDim, outDim] = wT.shape as [number, number];
    const h = this.callIn(wT.data, 'weight');
    const wasm = this.wasmOf(h);
    const wp = this.weightAddress(h, wT);
    const xp = h.address(x, inDim, 'x');
    const kp = h.address(kept, count, 'kept');
    const yp = h.output(y, outDim, 'y');
    const bp = bias ? h.address(bias, outDim, 'bias') : 0;
    const bad = wasm.firstInvalidIndex(kp, count, inDim);
    if (bad >= 0) throw new RangeError(`kept[${bad}] = ${kept[bad]} is not an input index below ${inDim}`);
    const format = formatOf(wT.dtype);
    const traffic = count * outDim * format.bytes;
    const stride = wasm.sparseSlotBytes(outDim);
    const partial = h.scratch('sparse-partial', stride * this.maxChunks);
    const kernel = FORMAT_KERNELS[wT.dtype].sparse;
    const xr = format.quantizesX ? this.xAsRead(h, format, xp, inDim) : xp;
    const chunks = this.parallel(h, kernel, count, 8, traffic, wp, xr, kp, outDim, partial, stride);
    wasm.sparseReduce(yp, partial, stride, chunks, outDim, bp, format.evenOdd ? 1 : 0);
    h.done();
  }

  /**
   * Y[t, o] = sum_i X[t, i] WT[i, o] (+ bias), WT input-major [in, out], as reference.matmulInputMajor. Threads
   * split the outputs; each reads its columns of WT once per tile of eight tokens.
   */
  matmulInputMajor(wT: Tensor, x: Float32Array, tokens: number, y: Float32Array, bias?: Float32Array): void {
    const [inDim, outDim] = wT.shape as [number, number];
    const h = this.callIn(wT.data, 'weight');
    const wp = this.weightAddress(h, wT);
    const xp = h.address(x, tokens * inDim, 'x');
    const yp = h.output(y, tokens * outDim, 'y');
    const bp = bias ? h.address(bias, outDim, 'bias') : 0;
    const traffic = inDim * outDim * FORMATS[wT.dtype].bytes * Math.ceil(tokens / 8);
    const stride = this.wasmOf(h).inputMajorSlotBytes(outDim);
    const scratch = h.scratch('input-major-acc', stride * this.maxChunks);
    const kernel = FORMAT_KERNELS[wT.dtype].inputMajorMatmul;
    this.parallel(h, kernel, outDim, 8, traffic, wp, xp, tokens, inDim, outDim, yp, bp, scratch, stride);
    h.done();
  }

  /** y[rows[j]] = W[rows[j], :] . x (+ bias) for j < count, other rows zero, as reference.gatherMatvec. */
  gatherMatvec(
    w: Tensor,
    x: Float32Array,
    rows: Int32Array,
    count: number,
    y: Float32Array,
    bias?: Float32Array,
  ): void {
    const [outDim, inDim] = w.shape as [number, number];
    const h = this.callIn(w.data, 'weight');
    const wp = this.weightAddress(h, w);
    const xp = h.address(x, inDim, 'x');
    const rp = h.address(rows, count, 'rows');
    const bad = this.wasmOf(h).firstInvalidIndex(rp, count, outDim);
    if (bad >= 0) throw new RangeError(`rows[${bad}] = ${rows[bad]} is not a row index below ${outDim}`);
    y.fill(0, 0, outDim);
    const yp = h.output(y, outDim, 'y');
    const bp = bias ? h.address(bias, outDim, 'bias') : 0;
    const format = FORMATS[w.dtype];
    const traffic = count * inDim * format.bytes;
    const kernel = FORMAT_KERNELS[w.dtype].gather;
    this.parallel(h, kernel, count, 4, traffic, wp, this.xAsRead(h, format, xp, inDim), rp, yp, bp, inDim);
    h.done();
  }

  /**
   * Keeps the k highest scores |x_i| * norms_i (computed in double; norms F32 or F64, omitted: |x_i|), ties
   * to the lower index, indices ascending in `kept`; returns the count. Equals reference.selectTopK.
   */
  selectTopK(x: Float32Array, norms: Norms, k: number, kept: Int32Array): number {
    const d = x.length;
    const keep = Math.max(0, Math.min(d, Math.floor(k)));
    const h = this.callIn(x, 'x');
    const wasm = this.wasmOf(h);
    const [np, kind] = this.normsAddress(h, norms, d);
    const xp = h.address(x, d, 'x');
    const kp = h.output(kept, keep, 'kept');
    const scratch = h.scratch('select', wasm.selectScratchBytes(d));
    const n = wasm.selectTopK(xp, np, kind, d, keep, kp, scratch);
    h.done();
    return n;
  }

  /** Keeps every i with |x_i| * norms_i > threshold, indices ascending in `kept`; returns the count. */
  selectThreshold(x: Float32Array, norms: Norms, threshold: number, kept: Int32Array): number {
    const d = x.length;
    const h = this.callIn(x, 'x');
    const [np, kind] = this.normsAddress(h, norms, d);
    const xp = h.address(x, d, 'x');
    const n = this.wasmOf(h).selectThreshold(xp, np, kind, d, threshold, h.output(kept, d, 'kept'));
    h.done();
    return n;
  }

  /** As reference.maskRows: threads split the tokens, each selecting and masking its rows. */
  maskRows(
    x: Float32Array,
    tokens: number,
    norms: Norms,
    rule: ref.MaskRule,
    out: Float32Array,
    counts: Int32Array,
  ): void {
    const d = x.length / tokens;
    const h = this.callIn(x, 'x');
    const [np, kind] = this.normsAddress(h, norms, d);
    const xp = h.address(x, tokens * d, 'x');
    const op = h.output(out, tokens * d, 'out');
    const cp = h.output(counts, tokens, 'counts');
    // Selection is compute, not traffic: weigh it as the bytes a matvec would move in the same time.
    const work = tokens * d * 64;
    if ('topK' in rule) {
      const k = Math.max(0, Math.min(d, Math.floor(rule.topK)));
      // One region per width: a chunk's histogram must stay where the last call left it zeroed.
      const scratch = h.scratch(`mask-${d}`, this.wasmOf(h).maskScratchBytes(d) * this.maxChunks);
      this.parallel(h, 'maskTopK', tokens, 1, work, xp, np, kind, d, k, op, cp, scratch);
    } else {
      this.parallel(h, 'maskThreshold', tokens, 1, work, xp, np, kind, d, rule.threshold, op, cp);
    }
    h.done();
  }

  rmsnorm(out: Float32Array, x: Float32Array, weight: Float32Array, eps: number, tokens: number): void {
    const d = weight.length;
    const h = this.callIn(x, 'x');
    const op = h.output(out, tokens * d, 'out');
    this.wasmOf(h).rmsnorm(op, h.address(x, tokens * d, 'x'), h.address(weight, d, 'weight'), eps, d, tokens);
    h.done();
  }

  rope(
    x: Float32Array,
    tokens: number,
    heads: number,
    headDim: number,
    rotaryDim: number,
    cos: Float32Array,
    sin: Float32Array,
    startPos: number,
  ): void {
    const h = this.callIn(x, 'x');
    const table = ((startPos + tokens) * rotaryDim) / 2;
    const xp = h.output(x, tokens * heads * headDim, 'x');
    const cp = h.address(cos, table, 'cos');
    this.wasmOf(h).rope(xp, tokens, heads, headDim, rotaryDim, cp, h.address(sin, table, 'sin'), startPos);
    h.done();
  }

  attention(
    out: Float32Array,
    q: Float32Array,
    kCache: Float32Array,
    vCache: Float32Array,
    tokens: number,
    startPos: number,
    heads: number,
    kvHeads: number,
    headDim: number,
    window: number,
  ): void {
    // The space of the keys (the largest operand; keys and values are one block).
    const h = this.callIn(kCache, 'kCache');
    const positions = startPos + tokens;
    const cacheLength = positions * kvHeads * headDim;
    const op = h.output(out, tokens * heads * headDim, 'out');
    const qp = h.address(q, tokens * heads * headDim, 'q');
    const kp = h.address(kCache, cacheLength, 'kCache');
    const vp = h.address(vCache, cacheLength, 'vCache');
    const scratch = h.scratch('attention', this.wasmOf(h).attentionScratchBytes(heads, positions, headDim));
    const span = window > 0 ? Math.min(window, positions) : positions;
    const traffic = tokens * kvHeads * span * headDim * 8;
    const args = [op, qp, kp, vp, tokens, startPos, heads, kvHeads, headDim, window, scratch];
    // One chunk per thread, in runs of four heads: every chunk sweeps all cache rows, so fewer is better.
    const align = Math.ceil(heads / this.threads / 4) * 4;
    this.parallel(h, 'attention', heads, align, traffic, ...args);
    h.done();
  }

  swiglu(gate: Float32Array, up: Float32Array, n: number): void {
    const h = this.callIn(gate, 'gate');
    this.wasmOf(h).swiglu(h.output(gate, n, 'gate'), h.address(up, n, 'up'), n);
    h.done();
  }

  addInPlace(x: Float32Array, y: Float32Array, n: number): void {
    const h = this.callIn(x, 'x');
    this.wasmOf(h).addInPlace(h.output(x, n, 'x'), h.address(y, n, 'y'), n);
    h.done();
  }

  /**
   * Reads a buffer as fast as the threads can (a bandwidth probe for benchmarks), each thread its share as
   * `streams` interleaved sequential streams; returns a checksum.
   */
  sumBytes(bytes: Uint8Array, threads = this.threads, streams = 1): number {
    const blocks = Math.floor(bytes.length / 256);
    const h = this.callIn(bytes, 'bytes');
    const base = h.address(bytes, 0, 'bytes');
    const out = h.scratch('sum', 16 * this.maxChunks);
    let used = 1;
    if (threads === 1) this.wasmOf(h).readSum(0, blocks, 0, base, out, streams);
    else used = this.parallel(h, 'readSum', blocks, 1024, ALWAYS, base, out, streams);
    const sums = new Int32Array(h.heap.memory.buffer, out, 4 * used);
    return sums.reduce((a, b) => (a + b) | 0, 0);
  }

  /** Stops the workers (they are unref()ed, so a forgotten close does not keep node alive). */
  close(): void {
    this.closed = true;
    this.pool.close();
  }

  /** x as a format's one-token dense kernels read it: in even/odd order (scaled), or quantized per 32 (q8, q4). */
  private xAsRead(h: SpaceCall, format: WeightFormat, x: number, inDim: number): number {
    const wasm = this.wasmOf(h);
    if (format.quantizesX) {
      const quantized = h.scratch('x-quantized', wasm.quantizedXBytes(inDim));
      wasm.quantizeX(x, inDim, quantized);
      return quantized;
    }
    if (!format.evenOdd) return x;
    const permuted = h.scratch('x-even-odd', inDim * 4);
    wasm.permuteEvenOdd(x, permuted, inDim, format.xScale ?? 1);
    return permuted;
  }

  private wasmOf(h: SpaceCall): Exports {
    return this.instances[h.space]!;
  }

  /** A weight's address, checked to hold its stored bytes (a q8 / q4 element is a fraction of its view's). */
  private weightAddress(h: SpaceCall, w: Tensor): number {
    const n = w.shape[0]! * w.shape[1]!;
    return h.address(w.data, Math.floor((n * FORMATS[w.dtype].bytes) / w.data.BYTES_PER_ELEMENT), 'weight');
  }

  private normsAddress(h: SpaceCall, norms: Norms, d: number): [number, number] {
    if (!norms) return [0, 0];
    return [h.address(norms, d, 'norms'), norms instanceof Float64Array ? 2 : 1];
  }

  /**
   * Runs a kernel over [0, total) in chunks claimed by every thread, the main thread included (see pool.ts), or
   * on the main thread alone when the work is small. Returns the number of chunks (= scratch slots used).
   */
  private parallel(
    h: SpaceCall,
    kernel: ParallelKernel,
    total: number,
    align: number,
    traffic: number,
    ...args: number[]
  ): number {
    if (this.closed) throw new Error('WasmKernels is closed');
    const fn = this.wasmOf(h)[kernel];
    if (!this.pool.hasWorkers || traffic < this.parallelMinBytes) {
      fn(0, total, 0, ...args);
      return 1;
    }
    // Workers number every space's kernels in one list (WorkerData.kernels). Waking a sleeping worker takes
    // longer than a small job: let the main thread do those alone.
    const job = h.space * PARALLEL_KERNELS.length + KERNEL_INDEX.get(kernel)!;
    return this.pool.run(job, fn, total, align, traffic >= WAKE_MIN_BYTES, args);
  }

  /** Runs every parallel kernel that has a warm-up once on every thread, on zeros (see wasm-exports.ts). */
  private warmUp(): void {
    const zeros = this.alloc(1 << 16).byteOffset; // read by every kernel, written by none
    const buffers = { zeros, out: zeros + (32 << 10), scratch: zeros + (40 << 10) };
    for (const { name, warmUp } of PARALLEL_KERNELS) {
      if (!warmUp) continue;
      const args = warmUp.args.map((a) => (typeof a === 'number' ? a : buffers[a]));
      this.parallel(this.heaps.call(0), name, warmUp.total, warmUp.align, ALWAYS, ...args);
    }
  }
}
