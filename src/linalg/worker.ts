/**
 * A linear-algebra worker: instantiates the shared module on the shared memory, then claims and runs chunks
 * of every job posted in the slot (the protocol of src/kernels/pool.ts) until told to stop.
 */
import { workerData } from 'node:worker_threads';
import { GEN, type KernelFn, serveJobs, type WorkerData } from '../kernels/pool.js';
import { WebAssemblyApi } from '../kernels/wasm-api.js';
import { LINALG_KERNELS } from './runtime.js';

const { module, memories, slot, thread } = workerData as WorkerData;
const memory = memories[0]!;
const exports = new WebAssemblyApi.Instance(module, { env: { memory } }).exports;
const kernels = LINALG_KERNELS.map((name) => exports[name] as KernelFn);
// A worker started after jobs began joins from the current generation; the main thread may sleep on DONE.
const seen = Atomics.load(new Int32Array(memory.buffer, slot, 1), GEN) - 1;
serveJobs(memory.buffer, slot, kernels, { name: `wina linalg worker ${thread}`, notifyDone: true, seen });
