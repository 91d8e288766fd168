/**
 * Log-likelihoods from a model, as lm-evaluation-harness requests them:
 *
 * - `loglikelihood(context, continuation)`: the sum of log p(continuation token | everything before). Many choices
 *   share one context: it runs once with a KV cache, then each choice continues from that cache truncated back
 *   to the context (the first continuation token is scored from the context's last logits). When context plus
 *   continuation exceed the window, the input is cut from the left as lm-eval does
 *   ((context + continuation)[-(max_length + 1):][:-1]) and that choice runs alone.
 * - windows (perplexity): each window is (context tokens, target tokens); input = (context + targets)[:-1] in a
 *   fresh cache, the targets scored on the last |targets| positions. `rollingWindows` is lm-eval's
 *   get_rolling_token_windows + make_disjoint_window; `chunkedWindows` the MODEL_CARD protocol.
 *
 * Log-softmax is computed in float64 from the float32 logits.
 */
import type { KVCache } from '../model/kv-cache.js';

/** What scoring needs from a model (a Model, or a stub in tests). */
export interface ScoringModel<C extends CacheLike = CacheLike> {
  readonly config: { readonly maxPositions: number; readonly vocabSize: number };
  newCache(capacity?: number): C;
  forward(ids: readonly number[], opts: { cache?: C; lastOnly?: boolean }): Float32Array;
}

export type CacheLike = Pick<KVCache, 'length' | 'truncate' | 'release'>;

/** Work done, for compute accounting: positions run through the model and the keys they attended to. */
export interface Usage {
  tokens: number;
  /** Sum over positions of the keys attended (position + 1, capped by a sliding window). */
  attended: number;
}

export interface Window {
  /** Tokens the targets are conditioned on, before them (at least one). */
  context: number[];
  /** Tokens scored. */
  targets: number[];
}

export interface ContinuationScore {
  loglikelihood: number;
  /** Every continuation token is the argmax of its logits (lm-eval's is_greedy). */
  greedy: boolean;
}

/** log p(target) and whether target is the argmax, from one row of logits (float64 log-sum-exp). */
export function logProb(
  logits: Float32Array,
  offset: number,
  vocab: number,
  target: number,
): [number, boolean] {
  let max = -Infinity;
  let best = 0;
  for (let i = 0; i < vocab; i++) {
    const v = logits[offset + i]!;
    if (v > max) {
      max = v;
      best = i;
    }
  }
  let sum = 0;
  for (let i = 0; i < vocab; i++) sum += Math.exp(logits[offset + i]! - max);
  return [logits[offset + target]! - max - Math.log(sum), best === target];
}

export class Scorer<C extends CacheLike = CacheLike> {
  readonly usage: Usage = { tokens: 0, attended: 0 };
  readonly maxLength: number;

  constructor(
    readonly model: ScoringModel<C>,
    opts: { maxLength?: number; slidingWindow?: number } = {},
  ) {
    this.maxLength = opts.maxLength ?? model.config.maxPositions;
    this.slidingWindow = opts.slidingWindow ?? 0;
  }

  private readonly slidingWindow: number;

  /** model.forward, counted. */
  forward(ids: readonly number[], cache: C, lastOnly = false): Float32Array {
    const start = cache.length;
    this.usage.tokens += ids.length;
    for (let i = 0; i < ids.length; i++) {
      const keys = start + i + 1;
      this.usage.attended += this.slidingWindow > 0 ? Math.min(keys, this.slidingWindow) : keys;
    }
    return this.model.forward(ids, { cache, lastOnly });
  }

  /** Log-likelihood of each continuation after the shared context (token ids, the context non-empty). */
  continuations(
    context: readonly number[],
    continuations: readonly (readonly number[])[],
  ): ContinuationScore[] {
    if (context.length === 0) throw new RangeError('the context needs at least one token');
    const longest = Math.max(0, ...continuations.map((c) => c.length));
    if (context.length + longest - 1 <= this.maxLength) return this.shared(context, continuations);
    // Too long for the window: lm-eval keeps the last max_length + 1 tokens of context + continuation, so the
    // context is cut by an amount that depends on the continuation's length; choices of one length share it.
    const out: ContinuationScore[] = new Array(continuations.length);
    for (const length of new Set(continuations.map((c) => c.length))) {
      const which = continuations.flatMap((c, i) => (c.length === length ? [i] : []));
      if (length > this.maxLength) {
        for (const i of which) out[i] = this.alone(context, continuations[i]!);
        continue;
      }
      const cut = context.slice(-Math.max(1, this.maxLength + 1 - length));
      const scores = this.shared(
        cut,
        which.map((i) => continuations[i]!),
      );
      which.forEach((i, j) => (out[i] = scores[j]!));
    }
    return out;
  }

  /** One pass over the context, then each continuation from the cache truncated back to it. */
  private shared(
    context: readonly number[],
    continuations: readonly (readonly number[])[],
  ): ContinuationScore[] {
    const longest = Math.max(0, ...continuations.map((c) => c.length));
    const cache = this.model.newCache(context.length + longest);
    try {
      return this.continueFrom(cache, context, continuations);
    } finally {
      cache.release();
    }
  }

  private continueFrom(
    cache: C,
    context: readonly number[],
    continuations: readonly (readonly number[])[],
  ): ContinuationScore[] {
    const vocab = this.model.config.vocabSize;
    const last = this.forward(context, cache, true);
    return continuations.map((cont) => {
      if (cont.length === 0) return { loglikelihood: 0, greedy: true };
      let [ll, greedy] = logProb(last, 0, vocab, cont[0]!);
      if (cont.length > 1) {
        cache.truncate(context.length);
        const logits = this.forward(cont.slice(0, -1), cache);
        for (let i = 1; i < cont.length; i++) {
          const [lp, g] = logProb(logits, (i - 1) * vocab, vocab, cont[i]!);
          ll += lp;
          greedy &&= g;
        }
      }
      return { loglikelihood: ll, greedy };
    });
  }

  /** A continuation longer than the window: its last max_length tokens scored after what fits of the rest. */
  private alone(context: readonly number[], cont: readonly number[]): ContinuationScore {
    const whole = [...context, ...cont].slice(-(this.maxLength + 1));
    const input = whole.slice(0, -1);
    const targets = cont.slice(-Math.min(cont.length, input.length));
    return this.scoreWindow({ context: input.slice(0, input.length - targets.length + 1), targets });
  }

  /** Sum of log p(targets) after the window's context, in a fresh cache. */
  scoreWindow(w: Window): ContinuationScore {
    if (w.context.length === 0) throw new RangeError('a window needs at least one context token');
    if (w.targets.length === 0) return { loglikelihood: 0, greedy: true };
    const input = [...w.context, ...w.targets].slice(0, -1);
    if (input.length > this.maxLength)
      throw new RangeError(`window of ${input.length} tokens exceeds the maximum length ${this.maxLength}`);
    const vocab = this.model.config.vocabSize;
    const cache = this.model.newCache(input.length);
    let logits: Float32Array;
    try {
      logits = this.forward(input, cache);
    } finally {
      cache.release();
    }
    let ll = 0;
    let greedy = true;
    const first = w.context.length - 1;
    for (let i = 0; i < w.targets.length; i++) {
      const [lp, g] = logProb(logits, (first + i) * vocab, vocab, w.targets[i]!);
      ll += lp;
      greedy &&= g;
    }
    return { loglikelihood: ll, greedy };
  }
}

/**
 * lm-eval's get_rolling_token_windows(tokens, prefix, maxSeqLen, contextLen) followed by make_disjoint_window:
 * the first window predicts up to maxSeqLen tokens after the prefix token; each later one predicts the next
 * maxSeqLen - contextLen + 1 tokens (the stride) conditioned on the tokens before them, maxSeqLen inputs in all.
 * lm-eval's HF model uses contextLen 1 (stride = maxSeqLen).
 */
export function rollingWindows(
  tokens: readonly number[],
  prefix: number,
  maxSeqLen: number,
  contextLen = 1,
): Window[] {
  if (!(Number.isInteger(contextLen) && contextLen >= 1 && contextLen <= maxSeqLen))
    throw new RangeError(`context length ${contextLen} must be in 1..${maxSeqLen}`);
  const out: Window[] = [];
  if (tokens.length === 0) return out;
  const predLen = maxSeqLen - contextLen + 1;
  const firstLen = Math.min(maxSeqLen, tokens.length);
  out.push(disjoint([prefix, ...tokens.slice(0, firstLen - 1)], tokens.slice(0, firstLen)));
  let predicted = firstLen;
  while (predicted < tokens.length) {
    const windowPredLen = Math.min(tokens.length - predicted, predLen);
    const end = predicted + windowPredLen;
    out.push(
      disjoint(
        tokens.slice(Math.max(0, end - maxSeqLen - 1), end - 1),
        tokens.slice(end - windowPredLen, end),
      ),
    );
    predicted += windowPredLen;
  }
  return out;
}

/** make_disjoint_window: the input tokens that are not themselves predicted, and the predicted ones. */
function disjoint(input: number[], pred: number[]): Window {
  return { context: input.slice(0, input.length - (pred.length - 1)), targets: pred };
}

/**
 * The MODEL_CARD protocol of llama-28m-mixed: consecutive non-overlapping chunks of `chunk` tokens (the last one
 * shorter), each prefixed by BOS; every token after BOS is scored.
 */
export function chunkedWindows(tokens: readonly number[], bos: number, chunk: number): Window[] {
  if (!(Number.isInteger(chunk) && chunk >= 1)) throw new RangeError(`chunk length ${chunk} must be >= 1`);
  const out: Window[] = [];
  for (let at = 0; at < tokens.length; at += chunk)
    out.push({ context: [bos], targets: tokens.slice(at, at + chunk) });
  return out;
}
