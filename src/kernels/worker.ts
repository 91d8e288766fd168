/**
 * A kernel worker: instantiates the shared module on each shared memory, then claims and runs chunks of every
 * job posted in the slot (see pool.ts) until told to stop. Job kernel k of space s is number s * P + k, P the
 * number of parallel kernels.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { GEN, type KernelFn, serveJobs, type WorkerData } from './pool.js';
import { PARALLEL_KERNELS } from './wasm-exports.js';
import { WebAssemblyApi } from './wasm-api.js';

const { module, memories, slot, thread } = workerData as WorkerData;
const kernels = memories.flatMap((memory) => {
  const exports = new WebAssemblyApi.Instance(module, { env: { memory } }).exports;
  return PARALLEL_KERNELS.map(({ name }) => exports[name] as KernelFn);
});
const buffer = memories[0]!.buffer;
const seen = Atomics.load(new Int32Array(buffer, slot, 1), GEN);
parentPort!.postMessage('ready');
serveJobs(buffer, slot, kernels, { name: `wina kernel worker ${thread}`, notifyDone: false, seen });
