/**
 * A kernel worker: instantiates the shared module on the shared memory, then runs its share of every job
 * posted in the slot (see pool.ts) until told to stop.
 */
import { parentPort, workerData } from 'node:worker_threads';
import {
  ARG_COUNT,
  ARGS_BYTE_OFFSET,
  DONE,
  FAILED,
  GEN,
  KERNEL,
  type KernelFn,
  PARALLEL_KERNELS,
  runShare,
  SLEEPERS,
  SLOT_BYTES,
  STOP,
} from './pool.js';
import { type WasmMemory, type WasmModule, WebAssemblyApi } from './wasm-api.js';

export interface WorkerData {
  module: WasmModule;
  memory: WasmMemory;
  slot: number;
  thread: number;
}

/** How long an idle worker polls before sleeping: covers the serial work between kernels of one token. */
const SPIN_MS = 2;

const { module, memory, slot, thread } = workerData as WorkerData;
const exports = new WebAssemblyApi.Instance(module, { env: { memory } }).exports;
const kernels = PARALLEL_KERNELS.map((name) => exports[name] as KernelFn);
const ctl = new Int32Array(memory.buffer, slot, SLOT_BYTES / 4);
const args = new Float64Array(memory.buffer, slot + ARGS_BYTE_OFFSET, ARG_COUNT);

function waitForJob(seen: number): number {
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
}

let seen = Atomics.load(ctl, GEN);
parentPort!.postMessage('ready');
for (;;) {
  seen = waitForJob(seen);
  const kernel = ctl[KERNEL]!;
  if (kernel === STOP) break;
  try {
    runShare(kernels[kernel]!, ctl, args, thread);
  } catch (err) {
    console.error(`wina kernel worker ${thread}:`, err);
    Atomics.store(ctl, FAILED, 1);
  }
  Atomics.add(ctl, DONE, 1);
}
