/**
 * A linear-algebra worker: instantiates the shared module on the shared memory, then claims and runs chunks
 * of every job posted in the slot (the protocol of src/kernels/pool.ts) until told to stop.
 */
import { workerData } from 'node:worker_threads';
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
  SLEEPERS,
  SLOT_BYTES,
  STOP,
} from '../kernels/pool.js';
import { WebAssemblyApi } from '../kernels/wasm-api.js';
import { LINALG_KERNELS, type WorkerData } from './runtime.js';

/** Polling before sleeping: the serial steps between jobs (eigensolver bookkeeping) are short. */
const SPIN_MS = 10;

const { module, memory, slot, thread } = workerData as WorkerData;
const exports = new WebAssemblyApi.Instance(module, { env: { memory } }).exports;
const kernels = LINALG_KERNELS.map((name) => exports[name] as KernelFn);
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
      console.error(`wina linalg worker ${thread}:`, err);
      Atomics.store(ctl, FAILED, 1);
    }
    Atomics.add(ctl, DONE, 1);
    Atomics.notify(ctl, DONE); // the main thread may be asleep waiting for it
  }
}

// A worker started after jobs began joins from the current generation.
let seen = Atomics.load(ctl, GEN) - 1;
while (Atomics.load(ctl, KERNEL) !== STOP) {
  seen = waitForJob(seen);
  if (Atomics.load(ctl, KERNEL) === STOP) break;
  seen = work(seen);
}
