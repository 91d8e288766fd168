/**
 * Turns a `--model` argument into files on disk: a local folder or file, a model under the shared folder
 * (`stories260K` -> $WINA_SHARED/models/stories260K), or a hub id `org/name` from the local Hugging Face cache,
 * downloaded with @huggingface/hub when a network exists (never when HF_HUB_OFFLINE is set; the Hub must answer
 * within 20 s).
 */
import fs from 'node:fs';
import path from 'node:path';
import { getHFHubCachePath, getRepoFolderName } from '@huggingface/hub';
import { fail, WinaError } from '../errors.js';
import { openInputFile, statInput } from './files.js';
import { sharedPath } from './paths.js';

export type ModelLocation =
  | { format: 'hf'; dir: string }
  | { format: 'llama2c'; checkpoint: string; tokenizer: string | undefined }
  | { format: 'gguf'; file: string };

const HUB_ID = /^[A-Za-z0-9][\w.-]*\/[\w.-]+$/;

export async function resolveModel(spec: string): Promise<ModelLocation> {
  if (fs.existsSync(spec)) return locate(path.resolve(spec));
  const shared = sharedPath('models', spec);
  if (!spec.includes('/') && fs.existsSync(shared)) return locate(shared);
  if (HUB_ID.test(spec) && !spec.startsWith('.')) return locate(await fromHub(spec));
  fail(`model path ${spec} does not exist`);
}

function locate(p: string): ModelLocation {
  const st = statInput(p, 'model path');
  if (!st.isFile() && !st.isDirectory()) openInputFile(p, 'model file'); // names the FIFO or device
  if (st.isFile()) {
    if (p.endsWith('.safetensors')) return locate(path.dirname(p));
    if (p.endsWith('.bin')) return { format: 'llama2c', checkpoint: p, tokenizer: llama2cTokenizerBeside(p) };
    if (p.endsWith('.gguf')) return { format: 'gguf', file: p };
    fail(`${p} is neither a model folder, a .safetensors file, a .gguf file nor a llama2.c .bin checkpoint`);
  }
  if (fs.existsSync(path.join(p, 'config.json'))) return { format: 'hf', dir: p };
  const bins = fs.readdirSync(p).filter((f) => f.endsWith('.bin') && !isTokenizerName(f));
  if (bins.length === 1) {
    const checkpoint = path.join(p, bins[0]!);
    return { format: 'llama2c', checkpoint, tokenizer: llama2cTokenizerBeside(checkpoint) };
  }
  fail(
    `${p} has no config.json: not a Hugging Face model folder (nor a folder with one llama2.c .bin checkpoint)`,
  );
}

function isTokenizerName(file: string): boolean {
  return /^tok.*\.bin$/.test(file);
}

function llama2cTokenizerBeside(checkpoint: string): string | undefined {
  const dir = path.dirname(checkpoint);
  const names = fs.readdirSync(dir).filter(isTokenizerName).sort();
  const preferred = names.includes('tokenizer.bin') ? 'tokenizer.bin' : names[0];
  return preferred ? path.join(dir, preferred) : undefined;
}

/** Snapshot folder of a hub model in the local cache (the layout huggingface_hub writes), if present. */
function cachedSnapshot(repo: string): string | undefined {
  const repoDir = path.join(getHFHubCachePath(), getRepoFolderName({ name: repo, type: 'model' }));
  const ref = path.join(repoDir, 'refs', 'main');
  if (!fs.existsSync(ref)) return undefined;
  const snapshot = path.join(repoDir, 'snapshots', fs.readFileSync(ref, 'utf8').trim());
  return fs.existsSync(path.join(snapshot, 'config.json')) ? snapshot : undefined;
}

/** HF_HUB_OFFLINE as huggingface_hub reads it: 1, ON, YES or TRUE (any case) turn offline mode on. */
function hubOffline(): boolean {
  return ['1', 'ON', 'YES', 'TRUE'].includes((process.env.HF_HUB_OFFLINE ?? '').trim().toUpperCase());
}

const HUB_TIMEOUT_MS = 20_000;

/**
 * fetch that gives up when the Hub has not answered within HUB_TIMEOUT_MS (a machine without network fails
 * with a clear message instead of hanging). Only the wait for the response headers is limited: the body of a
 * large file may take longer than that to stream.
 */
const fetchWithTimeout: typeof fetch = async (input, init) => {
  const timer = new AbortController();
  const timeout = setTimeout(
    () => timer.abort(new Error(`no answer from the Hub within ${HUB_TIMEOUT_MS / 1000} s`)),
    HUB_TIMEOUT_MS,
  );
  const signal = init?.signal ? AbortSignal.any([init.signal, timer.signal]) : timer.signal;
  try {
    return await fetch(input, { ...init, signal });
  } catch (e) {
    throw timer.signal.aborted ? timer.signal.reason : e;
  } finally {
    clearTimeout(timeout);
  }
};

async function fromHub(repo: string): Promise<string> {
  const cached = cachedSnapshot(repo);
  if (cached) return cached;
  if (hubOffline()) {
    fail(
      `${repo} is not in the local Hugging Face cache ${getHFHubCachePath()} and offline mode is on ` +
        '(HF_HUB_OFFLINE is set), so no download was attempted: pass a local model folder instead',
    );
  }
  try {
    const { snapshotDownload } = await import('@huggingface/hub');
    return await snapshotDownload({ repo: { type: 'model', name: repo }, fetch: fetchWithTimeout });
  } catch (e) {
    if (e instanceof WinaError) throw e;
    const reason = e instanceof Error ? e.message.split('\n')[0] : String(e);
    fail(
      `cannot download ${repo} from the Hugging Face Hub (${reason}); it is not in the local cache ` +
        `${getHFHubCachePath()} either: pass a local model folder instead`,
    );
  }
}
