/** One generation for one request: Model.generate with the request's sampling, sparsity and stop sequences. */
import type { Model } from '../model/model.js';
import type { AppliedSparsity } from '../sparsity/apply.js';
import type { FinishReason } from './metrics.js';
import type { GenerationRequest } from './requests.js';
import type { SparsitySwitch } from './sparsity-switch.js';

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
 * Runs the request's generation, calling `onText` with each piece of text as it becomes final (text that might
 * begin a stop sequence is held back until it cannot). Stops early when `signal` aborts (finish reason
 * "cancelled").
 */
export async function generate(
  model: Model,
  request: GenerationRequest,
  sparsitySwitch: SparsitySwitch,
  signal: AbortSignal,
  onText: (text: string, stats: LiveStats) => void,
): Promise<GenerationResult> {
  let sparsity: AppliedSparsity | undefined;
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
  const emit = (piece: string) => {
    text += piece;
    if (piece) onText(piece, stats());
  };
  try {
    sparsity = sparsitySwitch.install(request.sparsity, request.promptIds);
    const tokenStream = model.generate(request.promptIds, {
      maxTokens: request.maxTokens,
      temperature: request.temperature,
      topP: request.topP,
      topK: request.topK,
      seed: request.seed,
      stopAtEos: !request.ignoreEos,
      signal,
    });
    for await (const token of tokenStream) {
      if (token.id >= 0 && ++tokens === 1) firstTokenAt = performance.now();
      const { text: piece, stopped: found } = stops.push(token.text);
      emit(piece);
      if (found) {
        stopped = true;
        break;
      }
    }
    if (!stopped) emit(stops.flush());
  } finally {
    sparsitySwitch.restore();
  }
  const finishReason: FinishReason = signal.aborted
    ? 'cancelled'
    : !stopped && tokens >= request.maxTokens
      ? 'length'
      : 'stop';
  return { ...stats(), text, finishReason, seconds: (performance.now() - started) / 1000 };
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
