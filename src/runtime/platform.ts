/**
 * Everything the WebAssembly runtime needs from its host, in one file: the seam a browser build replaces (with
 * navigator.hardwareConcurrency, fetch, Web Workers). Nothing else under src/runtime, src/kernels or
 * src/linalg imports node:*.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import v8 from 'node:v8';
import { Worker } from 'node:worker_threads';
import type { WasmMemory, WasmModule } from './wasm-api.js';

/** Cores this process may use. */
export const availableThreads = (): number => os.availableParallelism();

/** Bytes of RAM on this machine. */
export const totalMemory = (): number => os.totalmem();

/** A WebAssembly build from dist/ (`kernels/kernels.wasm`, `linalg/linalg.wasm`). */
export const readBuild = (file: string): Uint8Array =>
  readFileSync(new URL(`../../${file}`, import.meta.url));

/** Sets an engine flag for code compiled from now on (V8: node's --flag); a no-op where flags are fixed. */
export const setEngineFlag = (flag: string): void => v8.setFlagsFromString(flag);

/** Whether the process was started with this engine flag (so a temporary change must not undo it). */
export const startedWithFlag = (flag: string): boolean => process.execArgv.join(' ').includes(flag);

/** One line to the user's console (stderr). */
export const warn = (line: string): void => void process.stderr.write(`${line}\n`);

/** CPU time (all threads of the process) in microseconds. */
export function cpuMicros(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

/** What a pool worker is started with (runtime/worker.ts). */
export interface WorkerData {
  module: WasmModule;
  /** The shared memories: the module is instantiated on each; the job slot lies in the first. */
  memories: WasmMemory[];
  slot: number;
  thread: number;
  /** Exports run as parallel kernels, per memory: job kernel k of memory m is number m * kernels.length + k. */
  kernels: string[];
  /** For messages: "wina kernel worker 1". */
  name: string;
  /** Notify DONE after each chunk, for a main thread that sleeps while it waits. */
  notifyDone: boolean;
}

export interface PoolWorker {
  /** Settles once the worker has instantiated the module and waits for jobs. */
  ready: Promise<void>;
  terminate(): void;
}

/** Starts a worker thread on runtime/worker.ts; once it is ready it no longer keeps the process alive. */
export function startWorker(data: WorkerData): PoolWorker {
  // Workers inherit node's flags, and --input-type (from `node --input-type=module -e`) would make loading the
  // worker file fail; an explicit execArgv may hold no V8 flags, so drop them all in that case.
  const execArgv = process.execArgv.some((a) => a.startsWith('--input-type')) ? [] : undefined;
  const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: data, execArgv });
  const ready = new Promise<void>((resolve, reject) => {
    worker.once('message', () => {
      worker.unref();
      resolve();
    });
    worker.once('error', reject);
  });
  // A caller that never waits for `ready` still hears of a failure, once, without an unhandled rejection.
  ready.catch((err: unknown) => warn(`${data.name}: ${String(err)}`));
  return { ready, terminate: () => void worker.terminate() };
}

/** Inside a worker: the data it was started with, and how to tell the main thread it is ready. */
export async function workerContext(): Promise<{ data: WorkerData; ready: () => void }> {
  const { parentPort, workerData } = await import('node:worker_threads');
  return { data: workerData as WorkerData, ready: () => parentPort!.postMessage('ready') };
}

/** Lets the event loop run (timers, sockets, signals) before going on. */
export const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
