/**
 * Compiling the kernel module and starting its workers. Three builds sit in dist/kernels/:
 * kernels.wasm (shared memory, SIMD with relaxed fused multiply-add), kernels-baseline.wasm (the same without
 * relaxed SIMD, for engines that lack it) and kernels-single.wasm (unshared memory, for one thread where
 * SharedArrayBuffer is unavailable).
 */
import { readFileSync } from 'node:fs';
import v8 from 'node:v8';
import { Worker } from 'node:worker_threads';
import { type WasmModule, WebAssemblyApi } from './wasm-api.js';
import type { WorkerData } from './pool.js';

const build = (name: string) => readFileSync(new URL(`../../kernels/${name}`, import.meta.url));

/**
 * V8's baseline code (Liftoff) runs these loops at about half speed until it tiers up, and a call in progress
 * never switches: compile every function with the optimizing compiler (TurboFan) up front instead.
 */
export function compileOptimized(bytes: Uint8Array): WasmModule {
  const given = process.execArgv.join(' ');
  v8.setFlagsFromString('--no-liftoff');
  v8.setFlagsFromString('--no-wasm-lazy-compilation');
  try {
    return new WebAssemblyApi.Module(bytes);
  } finally {
    if (!given.includes('--no-liftoff')) v8.setFlagsFromString('--liftoff');
    if (!given.includes('--no-wasm-lazy-compilation')) v8.setFlagsFromString('--wasm-lazy-compilation');
  }
}

/** The fastest build this engine runs, compiled; `fused` tells whether it has fused multiply-add. */
export function compileKernels(shared: boolean, allowFused = true): { module: WasmModule; fused: boolean } {
  if (!shared) return { module: compileOptimized(build('kernels-single.wasm')), fused: false };
  if (!allowFused) return { module: compileOptimized(build('kernels-baseline.wasm')), fused: false };
  const relaxed = build('kernels.wasm');
  // Node 20's V8 has relaxed SIMD behind a flag (shipped from V8 11.4): FMA makes BF16 kernels ~25% cheaper.
  if (!WebAssemblyApi.validate(relaxed)) v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
  if (WebAssemblyApi.validate(relaxed)) return { module: compileOptimized(relaxed), fused: true };
  return { module: compileOptimized(build('kernels-baseline.wasm')), fused: false };
}

/** Starts a kernel worker and resolves once it has instantiated the module and waits for jobs. */
export function startWorker(data: WorkerData): Promise<Worker> {
  // Workers inherit node's flags, and --input-type (from `node --input-type=module -e`) would make loading the
  // worker file fail; an explicit execArgv may hold no V8 flags, so drop them all in that case.
  const execArgv = process.execArgv.some((a) => a.startsWith('--input-type')) ? [] : undefined;
  const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: data, execArgv });
  return new Promise((resolve, reject) => {
    worker.once('message', () => {
      worker.unref();
      resolve(worker);
    });
    worker.once('error', reject);
  });
}
