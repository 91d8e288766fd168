import { fail } from '../errors.js';

export interface SamplingOptions {
  /** 0 = greedy (argmax). */
  temperature?: number;
  /** Keep only the k most likely tokens; 0 = off. */
  topK?: number;
  /** Nucleus sampling: keep the smallest set of tokens whose probability reaches topP; 1 = off. */
  topP?: number;
  seed?: number;
}

export function validateSampling(o: SamplingOptions): Required<SamplingOptions> {
  const temperature = o.temperature ?? 1;
  const topK = o.topK ?? 0;
  const topP = o.topP ?? 1;
  const seed = o.seed ?? Date.now() % 2 ** 31;
  if (!Number.isFinite(temperature) || temperature < 0)
    fail(`temperature must be >= 0, got ${o.temperature}`);
  if (!Number.isInteger(topK) || topK < 0) fail(`top-k must be a whole number >= 0, got ${o.topK}`);
  if (!Number.isFinite(topP) || topP <= 0 || topP > 1) fail(`top-p must be in (0, 1], got ${o.topP}`);
  if (!Number.isSafeInteger(seed) || seed < 0) fail(`seed must be a whole number >= 0, got ${o.seed}`);
  return { temperature, topK, topP, seed };
}

/** xorshift64*, as llama2.c's sampler: the same seed gives the same tokens on every platform. */
export class Rng {
  private state: bigint;

  constructor(seed: number) {
    this.state = BigInt(seed) ^ 0x9e3779b97f4a7c15n || 1n;
  }

  /** Uniform in [0, 1). */
  next(): number {
    let x = this.state;
    x ^= x >> 12n;
    x ^= (x << 25n) & 0xffffffffffffffffn;
    x ^= x >> 27n;
    this.state = x;
    const r = (x * 0x2545f4914f6cdd1dn) & 0xffffffffffffffffn;
    return Number(r >> 40n) / 2 ** 24;
  }
}

export function argmax(logits: Float32Array): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
  return best;
}

export class Sampler {
  private readonly opts: Required<SamplingOptions>;
  private readonly rng: Rng;

  constructor(opts: SamplingOptions) {
    this.opts = validateSampling(opts);
    this.rng = new Rng(this.opts.seed);
  }

  sample(logits: Float32Array): number {
    const { temperature, topK, topP } = this.opts;
    if (temperature === 0) return argmax(logits);
    let max = Number.NEGATIVE_INFINITY;
    for (const v of logits) if (v > max) max = v;
    const probs = new Float64Array(logits.length);
    let sum = 0;
    for (let i = 0; i < logits.length; i++) {
      probs[i] = Math.exp((logits[i]! - max) / temperature);
      sum += probs[i]!;
    }
    let order = Array.from(probs.keys());
    if (topK > 0 || topP < 1) {
      order.sort((a, b) => probs[b]! - probs[a]! || a - b);
      if (topK > 0) order = order.slice(0, topK);
      if (topP < 1) {
        let mass = 0;
        let keep = 0;
        while (keep < order.length && mass < topP * sum) mass += probs[order[keep++]!]!;
        order = order.slice(0, Math.max(keep, 1));
      }
      sum = order.reduce((s, i) => s + probs[i]!, 0);
    }
    let r = this.rng.next() * sum;
    for (const i of order) {
      r -= probs[i]!;
      if (r < 0) return i;
    }
    return order[order.length - 1]!;
  }
}
