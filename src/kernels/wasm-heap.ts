/**
 * The WebAssembly memories the kernels run on, and bump allocators over them. wasm32 addresses stop at 4 GiB,
 * so a larger model spreads over several memories ("spaces"), each with its own instance of the kernel module on
 * every thread: a tensor lies in one space, and a kernel runs in the space of its largest operand (the weight);
 * the small operands that lie elsewhere (activations, biases) are copied in and out around the call (SpaceCall).
 * Nothing is freed (a model's buffers live as long as the model).
 */
import { WinaError } from '../errors.js';
import { type WasmMemory, WebAssemblyApi } from '../runtime/wasm-api.js';

const PAGE = 65536;
/** wasm32 addresses stop at 4 GiB (AssemblyScript cannot emit memory64). */
export const MAX_PAGES = 65536;
const MAX_BYTES = MAX_PAGES * PAGE;
const ALIGN = 64;
/** Grow at least this much at a time, so that growth (and the buffers it creates) stays rare. */
const GROW_STEP = 16 << 20;

const gib = (bytes: number): string => (bytes / 2 ** 30).toFixed(1);

/**
 * Shared memory grows in place, so views made before growth stay valid. Without SharedArrayBuffer, growth
 * would detach every view handed out, so the whole address space is reserved up front instead (only pages
 * that are touched use RAM), as large as the engine allows.
 */
export function createMemory(shared: boolean, initialBytes: number): WasmMemory {
  const initial = Math.ceil(initialBytes / PAGE);
  if (shared) return new WebAssemblyApi.Memory({ initial, maximum: MAX_PAGES, shared: true });
  for (let pages = MAX_PAGES; pages >= initial; pages >>= 1) {
    try {
      return new WebAssemblyApi.Memory({ initial: pages, maximum: pages });
    } catch {
      // Too large to reserve here: try half.
    }
  }
  throw new WinaError('could not reserve WebAssembly memory');
}

/** One memory and its bump allocator. */
export class WasmHeap {
  /** Every ArrayBuffer the memory has had (growth replaces memory.buffer): views into any of them are ours. */
  private readonly buffers = new Set<ArrayBufferLike>();
  private readonly scratch = new Map<string, { address: number; bytes: number }>();
  private top: number;

  /** A word at the same address in every heap (the first allocation), used to recognise our memory. */
  private readonly probe: number;

  constructor(
    readonly memory: WasmMemory,
    base: number,
    private readonly growable: boolean,
    /** Bytes this memory may hold (4 GiB; less in tests of several spaces). */
    readonly limit = MAX_BYTES,
  ) {
    this.top = base;
    this.buffers.add(memory.buffer);
    this.probe = this.alloc(4).byteOffset;
  }

  /** `byteLength` bytes, 64-byte aligned, zero-filled on first use. */
  alloc(byteLength: number): Uint8Array {
    if (!Number.isInteger(byteLength) || byteLength < 0)
      throw new RangeError(`invalid byte length ${byteLength}`);
    const start = Math.ceil(this.top / ALIGN) * ALIGN;
    const end = start + byteLength;
    if (end > this.limit) {
      const limit = this.limit === MAX_BYTES ? '4' : gib(this.limit);
      throw new WinaError(
        `model needs ${gib(end)} GiB of weights but WebAssembly memory stops at ${limit} GiB`,
      );
    }
    this.reserve(end);
    this.top = end;
    return new Uint8Array(this.memory.buffer, start, byteLength);
  }

  /** Bytes still free. */
  get free(): number {
    return this.limit - Math.ceil(this.top / ALIGN) * ALIGN;
  }

  /** Whether a view lies in this memory. */
  owns(view: ArrayBufferView): boolean {
    const buffer = view.buffer;
    if (this.buffers.has(buffer)) return true;
    // V8 re-wraps the buffer of every shared memory when any shared memory grows, so one backing store can
    // show up as several SharedArrayBuffer objects. Recognise ours by writing through the view's buffer and
    // reading through ours, at the probe word (the same address in every heap, so no other data is touched).
    const current = this.memory.buffer;
    if (typeof SharedArrayBuffer !== 'function' || !(buffer instanceof SharedArrayBuffer)) return false;
    if (buffer.byteLength > current.byteLength || buffer.byteLength < this.probe + 4) return false;
    const theirs = new Int32Array(buffer, this.probe, 1);
    const ours = new Int32Array(current, this.probe, 1);
    const saved = theirs[0]!;
    let same = true;
    for (const token of [0x5eed1234, -0x2bad4321]) {
      theirs[0] = token;
      same &&= ours[0] === token;
    }
    theirs[0] = saved;
    if (same) this.buffers.add(buffer);
    return same;
  }

  /** The byte address of a view the kernels read or write, checked to be ours and long enough. */
  address(
    view: Float32Array | Float64Array | Uint16Array | Int32Array | Uint8Array | Int8Array,
    minLength: number,
    name: string,
  ): number {
    if (!this.owns(view)) {
      throw new TypeError(
        `${name} is not in the kernels' WebAssembly memory: allocate it with alloc(), f32() or i32()`,
      );
    }
    if (view.length < minLength)
      throw new RangeError(`${name} has ${view.length} elements, needs ${minLength}`);
    return view.byteOffset;
  }

  /** A reusable region for kernel scratch, reallocated when a call needs more than before. */
  scratchAddress(name: string, bytes: number): number {
    const cur = this.scratch.get(name);
    if (cur && cur.bytes >= bytes) return cur.address;
    const size = Math.max(bytes, (cur?.bytes ?? 0) * 2);
    const address = this.alloc(size).byteOffset;
    this.scratch.set(name, { address, bytes: size });
    return address;
  }

  private reserve(end: number): void {
    const have = this.memory.buffer.byteLength;
    if (end <= have) return;
    if (!this.growable) {
      throw new WinaError(
        `model needs ${gib(end)} GiB but this WebAssembly memory holds ${gib(have)} GiB (it cannot grow without SharedArrayBuffer)`,
      );
    }
    const want = Math.min(this.limit, Math.max(end, have + GROW_STEP));
    try {
      this.memory.grow(Math.ceil((want - have) / PAGE));
    } catch (err) {
      throw new WinaError(`could not grow WebAssembly memory to ${gib(want)} GiB: ${(err as Error).message}`);
    }
    this.buffers.add(this.memory.buffer);
  }
}

type View = Float32Array | Float64Array | Uint16Array | Int32Array | Uint8Array | Int8Array;

/**
 * Every space's heap. Allocations fill one space, then the next; a space being left keeps `margin` bytes free for
 * the scratch and staging of the kernels that will run in it.
 */
export class WasmHeaps {
  private current = 0;
  readonly margin: number;

  constructor(readonly heaps: WasmHeap[]) {
    this.margin = Math.min(64 << 20, Math.max(4 << 20, Math.floor(heaps[0]!.limit / 64)));
  }

  alloc(byteLength: number): Uint8Array {
    if (this.heaps.length > 1 && byteLength > this.heaps[0]!.limit - this.margin)
      throw new WinaError(
        `a tensor of ${gib(byteLength)} GiB is larger than one WebAssembly memory (${gib(this.heaps[0]!.limit)} GiB)`,
      );
    for (;;) {
      const heap = this.heaps[this.current]!;
      const last = this.current === this.heaps.length - 1;
      if (byteLength + (last ? 0 : this.margin) <= heap.free || (last && this.heaps.length === 1))
        return heap.alloc(byteLength);
      if (last) {
        const total = this.heaps.reduce((sum, h) => sum + h.limit, 0);
        throw new WinaError(
          `model needs more than the ${gib(total)} GiB of WebAssembly memory this machine allows ` +
            `(${this.heaps.length} memories of ${gib(heap.limit)} GiB): ${gib(byteLength)} GiB more did not fit`,
        );
      }
      this.current++;
    }
  }

  /** Bytes that allocations can still take. */
  get free(): number {
    return this.heaps.slice(this.current).reduce((sum, h, i, all) => {
      const keep = i < all.length - 1 ? this.margin : 0;
      return sum + Math.max(0, h.free - keep);
    }, 0);
  }

  /** The space of a view (TypeError if none holds it). */
  spaceOf(view: ArrayBufferView, name: string): number {
    const s = this.heaps.findIndex((h) => h.owns(view));
    if (s < 0)
      throw new TypeError(
        `${name} is not in the kernels' WebAssembly memory: allocate it with alloc(), f32() or i32()`,
      );
    return s;
  }

  /** Addresses for one kernel call in `space`. */
  call(space: number): SpaceCall {
    return new SpaceCall(this, space);
  }
}

/**
 * The operands of one kernel call in one space: views there are used in place; views in another space are
 * copied into this one's staging scratch first and, for outputs, copied back by `done()`.
 */
export class SpaceCall {
  private readonly copyBack: { view: View; address: number; length: number }[] = [];
  readonly heap: WasmHeap;

  constructor(
    private readonly heaps: WasmHeaps,
    readonly space: number,
  ) {
    this.heap = heaps.heaps[space]!;
  }

  /** The address of an input of at least `minLength` elements. */
  address(view: View, minLength: number, name: string): number {
    return this.place(view, minLength, name, false);
  }

  /** The address of an output (read too: in-place kernels), copied back by done() if staged. */
  output(view: View, minLength: number, name: string): number {
    return this.place(view, minLength, name, true);
  }

  private place(view: View, minLength: number, name: string, output: boolean): number {
    if (this.heap.owns(view)) return this.heap.address(view, minLength, name);
    this.heaps.spaceOf(view, name);
    if (view.length < minLength)
      throw new RangeError(`${name} has ${view.length} elements, needs ${minLength}`);
    const bytes = minLength * view.BYTES_PER_ELEMENT;
    const address = this.heap.scratchAddress(`stage-${name}`, bytes);
    new Uint8Array(this.heap.memory.buffer, address, bytes).set(
      new Uint8Array(view.buffer, view.byteOffset, bytes),
    );
    if (output) this.copyBack.push({ view, address, length: minLength });
    return address;
  }

  scratch(name: string, bytes: number): number {
    return this.heap.scratchAddress(name, bytes);
  }

  done(): void {
    for (const { view, address, length } of this.copyBack) {
      const bytes = length * view.BYTES_PER_ELEMENT;
      new Uint8Array(view.buffer, view.byteOffset, bytes).set(
        new Uint8Array(this.heap.memory.buffer, address, bytes),
      );
    }
  }
}
