/**
 * One generation for one request: Model.generate's loop (the same sampler, decoder and stopping rules, so the
 * same tokens as `wina generate`) with the request's sampling, sparsity and stop sequences, and two things a
 * server needs: the prompt is prefilled in chunks with the event loop free between them, and the KV cache is
 * reserved for what the request can use, growing beyond that only when the request may go on.
 */
import { KVCacheMemoryError, type KVCache } from '../model/kv-cache.js';
import type { Model } from '../model/model.js';
import { Sampler } from '../model/sampling.js';
import type { SparseModel } from '../sparsity/apply.js';
import { StreamDecoder } from '../tokenizer/stream.js';
import { ApiError } from './api-error.js';
import type { FinishReason } from './metrics.js';
import type { GenerationRequest } from './requests.js';
import type { SparsitySwitch } from './sparsity-switch.js';

/**
 * Prompt tokens per forward pass while prefilling; between passes other requests (/health, a client's
 * disconnect) are served. The kernels give the same numbers whatever the chunking (rows are independent), so
 * the tokens are those of one whole-prompt pass.
 */
export const PREFILL_CHUNK = 64;

export interface LiveStats {
  /** Tokens generated so far. */
  tokens: number;
  /** Decode speed as `wina generate` reports it: tokens after the first over the time after the first. */
  tokensPerSecond: number;
  achievedSparsity: number;
}

export interface GenerationResult extends LiveStats {
  text: string;
  finishReason: FinishReason;
  seconds: number;
}

/**
 * Runs the request's generation, calling `onStart` once its KV cache is reserved (before the prefill), then
 * `onText` with each piece of text as it becomes final (text that might begin a stop sequence is held back until
 * it cannot). Stops early when `signal` aborts (finish reason "cancelled"). A cache that cannot be reserved is a
 * 400 naming the KV cache, thrown before `onStart`.
 */
export async function generate(
  model: Model,
  request: GenerationRequest,
  sparsitySwitch: SparsitySwitch,
  signal: AbortSignal,
  onText: (text: string, stats: LiveStats) => void,
  onStart: () => void = () => {},
): Promise<GenerationResult> {
  let sparsity: SparseModel | undefined;
  const started = performance.now();
  let firstTokenAt = started;
  let tokens = 0;
  const stats = (): LiveStats => {
    const decodeSeconds = (performance.now() - firstTokenAt) / 1000;
    return {
      tokens,
      tokensPerSecond: tokens > 1 && decodeSeconds > 0 ? (tokens - 1) / decodeSeconds : 0,
      achievedSparsity: sparsity?.achieved() ?? 0,
    };
  };
  const stops = new StopMatcher(request.stop);
  let text = '';
  let stopped = false;
  let outOfMemory = false;
  /** Passes a token's text through the stop sequences; true once one has ended the output. */
  const emit = (piece: string): boolean => {
    const { text: safe, stopped: found } = stops.push(piece);
    text += safe;
    if (safe) onText(safe, stats());
    return found;
  };
  const ids = request.promptIds;
  let cache: KVCache | undefined;
  try {
    sparsity = sparsitySwitch.choose(request.sparsity, ids);
    const view = sparsity ?? model;
    const sampler = new Sampler(request);
    const eos = request.ignoreEos ? [] : model.tokenizer.eosIds;
    cache = reserveCache(model, request);
    onStart();
    const decoder = new StreamDecoder(model.tokenizer, { skipSpecial: true, context: ids });
    let logits = await prefill(view, ids, cache, signal, sparsity?.sparsity.prefill !== 'paper');
    for (let n = 0; logits && n < request.maxTokens && !signal.aborted; n++) {
      const id = sampler.sample(logits);
      if (eos.includes(id)) break;
      if (++tokens === 1) firstTokenAt = performance.now();
      if (emit(decoder.push(id))) {
        stopped = true;
        break;
      }
      if (cache.length >= model.config.maxPositions) break;
      // Let the event loop run (a server notices a client that went away).
      await new Promise((resolve) => setImmediate(resolve));
      try {
        logits = view.forward([id], { cache, lastOnly: true });
      } catch (e) {
        // The cache could not grow (a request without max_tokens ran out of memory): the output ends here.
        if (!(e instanceof KVCacheMemoryError)) throw e;
        outOfMemory = true;
        break;
      }
    }
    if (!stopped) stopped = emit(decoder.flush());
    if (!stopped) emit(stops.flush());
  } finally {
    cache?.release();
  }
  const finishReason: FinishReason = signal.aborted
    ? 'cancelled'
    : outOfMemory || (!stopped && tokens >= request.maxTokens)
      ? 'length'
      : 'stop';
  return { ...stats(), text, finishReason, seconds: (performance.now() - started) / 1000 };
}

function reserveCache(model: Model, request: GenerationRequest): KVCache {
  try {
    return model.newCache(request.reserve);
  } catch (e) {
    if (!(e instanceof KVCacheMemoryError)) throw e;
    const asked = request.promptIds.length + request.maxTokens;
    throw new ApiError(
      400,
      `the KV cache for this request's ${asked} tokens (${request.promptIds.length} in the prompt, ` +
        `${request.maxTokens} to generate) does not fit: ${e.message}; ask for fewer ${request.maxField} ` +
        'or send a shorter prompt',
      request.maxField,
      'kv_cache_too_large',
    );
  }
}

/**
 * The prompt through the model, PREFILL_CHUNK tokens at a time, yielding to the event loop between chunks; the
 * last token's logits, or undefined when `signal` aborted. `chunked` false (the paper's prefill policy keeps the
 * first 1% of the whole prompt dense, so it needs one pass) runs it at once. No chunk is a single token: a
 * one-token pass is a decode step to the sparse kernels.
 */
async function prefill(
  model: Model,
  ids: readonly number[],
  cache: KVCache,
  signal: AbortSignal,
  chunked: boolean,
): Promise<Float32Array | undefined> {
  const size = chunked ? PREFILL_CHUNK : ids.length;
  let logits: Float32Array | undefined;
  for (let from = 0; from < ids.length;) {
    if (from > 0) {
      await new Promise((resolve) => setImmediate(resolve));
      if (signal.aborted) return undefined;
    }
    const to = ids.length - (from + size) <= 1 ? ids.length : from + size;
    logits = model.forward(ids.slice(from, to), { cache, lastOnly: true });
    from = to;
  }
  return logits;
}

/** Finds stop sequences in streamed text without ever emitting a part of one. */
export class StopMatcher {
  private text = '';
  private emitted = 0;

  constructor(private readonly stops: readonly string[]) {}

  /** Adds `piece`; returns the text now safe to emit, and whether a stop sequence ended the output. */
  push(piece: string): { text: string; stopped: boolean } {
    this.text += piece;
    let first = -1;
    for (const stop of this.stops) {
      const at = this.text.indexOf(stop, this.emitted);
      if (at >= 0 && (first < 0 || at < first)) first = at;
    }
    if (first >= 0) return { text: this.take(first), stopped: true };
    return { text: this.take(this.text.length - this.heldBack()), stopped: false };
  }

  /** The text held back at the end of the output. */
  flush(): string {
    return this.take(this.text.length);
  }

  /** Length of the longest end of the text that could still grow into a stop sequence. */
  private heldBack(): number {
    let longest = 0;
    for (const stop of this.stops) {
      for (let k = Math.min(stop.length - 1, this.text.length - this.emitted); k > longest; k--) {
        if (this.text.endsWith(stop.slice(0, k))) {
          longest = k;
          break;
        }
      }
    }
    return longest;
  }

  private take(end: number): string {
    const piece = this.text.slice(this.emitted, end);
    this.emitted = end;
    return piece;
  }
}
