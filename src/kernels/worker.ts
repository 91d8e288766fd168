/**
 * A kernel worker: instantiates the shared module on the shared memory, then claims and runs chunks of every
 * job posted in the slot (see pool.ts) until told to stop.
 */
import { parentPort, workerData } from 'node:worker_threads';
import {
  ARG_COUNT,
  ARGS_BYTE_OFFSET,
  DONE,
  FAILED,
  GEN,
  Job,
  KERNEL,
  type KernelFn,
  NEXT,
  PARALLEL_KERNELS,
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

/**
 * How long an idle worker polls before sleeping. Waking a sleeping thread costs 50-200 µs here (more the longer
 * it slept), so the poll covers the serial work between a token's kernels and between tokens.
 */
const SPIN_MS = 10;

const { module, memory, slot, thread } = workerData as WorkerData;
const exports = new WebAssemblyApi.Instance(module, { env: { memory } }).exports;
const kernels = PARALLEL_KERNELS.map((name) => exports[name] as KernelFn);
const ctl = new Int32Array(memory.buffer, slot, SLOT_BYTES / 4);
const args = new Float64Array(memory.buffer, slot + ARGS_BYTE_OFFSET, ARG_COUNT);
const job = new Job();

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

/** Claims chunks of job `gen` until none are left; returns the generation of the last job it looked at. */
function work(gen: number): number {
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
      console.error(`wina kernel worker ${thread}:`, err);
      Atomics.store(ctl, FAILED, 1);
    }
    Atomics.add(ctl, DONE, 1);
  }
}

let seen = Atomics.load(ctl, GEN);
parentPort!.postMessage('ready');
while (Atomics.load(ctl, KERNEL) !== STOP) {
  seen = waitForJob(seen);
  if (Atomics.load(ctl, KERNEL) === STOP) break;
  seen = work(seen);
}
