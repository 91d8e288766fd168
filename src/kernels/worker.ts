/**
 * A kernel worker: instantiates the shared module on the shared memory, then claims and runs chunks of every
 * job posted in the slot (see pool.ts) until told to stop.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { GEN, type KernelFn, serveJobs, type WorkerData } from './pool.js';
import { PARALLEL_KERNELS } from './wasm-exports.js';
import { WebAssemblyApi } from './wasm-api.js';

const { module, memory, slot, thread } = workerData as WorkerData;
const exports = new WebAssemblyApi.Instance(module, { env: { memory } }).exports;
const kernels = PARALLEL_KERNELS.map(({ name }) => exports[name] as KernelFn);
const seen = Atomics.load(new Int32Array(memory.buffer, slot, 1), GEN);
parentPort!.postMessage('ready');
serveJobs(memory.buffer, slot, kernels, { name: `wina kernel worker ${thread}`, notifyDone: false, seen });
