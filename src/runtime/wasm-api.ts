/**
 * The parts of the WebAssembly JS API the kernels use. tsconfig's `lib` (ES2022) and @types/node 20 declare
 * no WebAssembly types, so they are spelled out here.
 */
export interface WasmMemory {
  readonly buffer: ArrayBufferLike;
  grow(pages: number): number;
}

/** A compiled module: opaque, but it can be sent to workers. */
export type WasmModule = object & { readonly __wasmModule?: never };

export interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (module: WasmModule, imports: object) => { exports: Record<string, unknown> };
  Memory: new (descriptor: { initial: number; maximum?: number; shared?: boolean }) => WasmMemory;
}

export const WebAssemblyApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
