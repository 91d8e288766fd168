/**
 * Compiling a WebAssembly build: the fastest this engine runs, optimized up front. Each module (kernels,
 * linear algebra) ships as `<name>.wasm` (shared memory, SIMD with relaxed fused multiply-add),
 * `<name>-baseline.wasm` (the same without relaxed SIMD) and, for the kernels, `<name>-single.wasm` (unshared
 * memory, for one thread where SharedArrayBuffer is unavailable).
 */
import { readBuild, setEngineFlag, startedWithFlag } from './platform.js';
import { type WasmModule, WebAssemblyApi } from './wasm-api.js';

/**
 * V8's baseline code (Liftoff) runs these loops at about half speed until it tiers up, and a call in progress
 * never switches: compile every function with the optimizing compiler (TurboFan) up front instead.
 */
export function compileOptimized(bytes: Uint8Array): WasmModule {
  setEngineFlag('--no-liftoff');
  setEngineFlag('--no-wasm-lazy-compilation');
  try {
    return new WebAssemblyApi.Module(bytes);
  } finally {
    if (!startedWithFlag('--no-liftoff')) setEngineFlag('--liftoff');
    if (!startedWithFlag('--no-wasm-lazy-compilation')) setEngineFlag('--wasm-lazy-compilation');
  }
}

/**
 * `folder/name.wasm` with relaxed SIMD where the engine runs it (Node 20's V8 has it behind a flag, shipped from
 * V8 11.4: fused multiply-add makes the BF16 kernels ~25% cheaper), else the baseline build; `fused` says which.
 * `relaxed: false` picks the baseline even where relaxed SIMD runs (results then round as mul + add).
 */
export function compileFastest(
  folder: string,
  name: string,
  o: { shared: boolean; relaxed?: boolean } = { shared: true },
): { module: WasmModule; fused: boolean } {
  const file = (suffix: string) => readBuild(`${folder}/${name}${suffix}.wasm`);
  if (!o.shared) return { module: compileOptimized(file('-single')), fused: false };
  if (o.relaxed === false) return { module: compileOptimized(file('-baseline')), fused: false };
  const relaxed = file('');
  if (!WebAssemblyApi.validate(relaxed)) setEngineFlag('--experimental-wasm-relaxed-simd');
  if (WebAssemblyApi.validate(relaxed)) return { module: compileOptimized(relaxed), fused: true };
  return { module: compileOptimized(file('-baseline')), fused: false };
}
