/**
 * A pool worker (kernels or linear algebra): instantiates the module on each shared memory, then claims and
 * runs chunks of every job posted in the slot (pool.ts) until told to stop.
 */
import { workerContext } from './platform.js';
import { GEN, type KernelFn, serveJobs } from './pool.js';
import { WebAssemblyApi } from './wasm-api.js';

const { data, ready } = await workerContext();
const kernels = data.memories.flatMap((memory) => {
  const exports = new WebAssemblyApi.Instance(data.module, { env: { memory } }).exports;
  return data.kernels.map((name) => exports[name] as KernelFn);
});
const buffer = data.memories[0]!.buffer;
// Joins the job in progress, if any (a worker may start after jobs began: linear algebra does not wait for it).
const seen = Atomics.load(new Int32Array(buffer, data.slot, 1), GEN) - 1;
ready();
serveJobs(buffer, data.slot, kernels, { name: data.name, notifyDone: data.notifyDone, seen });
