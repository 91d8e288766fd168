/**
 * The WebAssembly memory the kernels run on, and a bump allocator over it. Weights, activations and kernel
 * scratch all live here; nothing is freed (a model's buffers live as long as the model).
 */
import { WinaError } from '../io/errors.js';
import { type WasmMemory, WebAssemblyApi } from './wasm-api.js';

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
    if (end > MAX_BYTES) {
      throw new WinaError(`model needs ${gib(end)} GiB of weights but WebAssembly memory stops at 4 GiB`);
    }
    this.reserve(end);
    this.top = end;
    return new Uint8Array(this.memory.buffer, start, byteLength);
  }

  f32(n: number): Float32Array {
    const bytes = this.alloc(n * 4);
    return new Float32Array(bytes.buffer, bytes.byteOffset, n);
  }

  i32(n: number): Int32Array {
    const bytes = this.alloc(n * 4);
    return new Int32Array(bytes.buffer, bytes.byteOffset, n);
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
    const want = Math.min(MAX_BYTES, Math.max(end, have + GROW_STEP));
    try {
      this.memory.grow(Math.ceil((want - have) / PAGE));
    } catch (err) {
      throw new WinaError(`could not grow WebAssembly memory to ${gib(want)} GiB: ${(err as Error).message}`);
    }
    this.buffers.add(this.memory.buffer);
  }
}
