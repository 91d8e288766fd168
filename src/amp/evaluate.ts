/**
 * Scoring items under sparsity configs, each item under the config of its cluster (uniform: one config for
 * all; dense: none): per-item scores, the kept / seen counts per "layer.proj" (achieved sparsity and GFLOPs per
 * token are measured, not assumed), per-group counts, and wall time per item.
 */
import {
  type KeptCounts,
  addCounts,
  achievedSparsity,
  computeShape,
  gflopsPerToken,
} from '../eval/compute.js';
import { gsm8kExactMatch, scoreChoiceItem } from '../eval/metrics.js';
import { Scorer, type Usage } from '../eval/scoring.js';
import { greedyUntil } from '../eval/tasks.js';
import type { Model } from '../model/model.js';
import { applyWina, SparsityStats } from '../sparsity/apply.js';
import type { SparsityConfig } from '../sparsity/config.js';
import type { AmpItem } from './data.js';

export interface ItemScore {
  /** -log p (natural) of the scored tokens: the passage after its first token, the gold choice, or GSM8K's reference answer. */
  nll: number;
  tokens: number;
  /** choice: acc; generate: exact match. */
  correct?: number;
  /** choice: acc_norm. */
  correctNorm?: number;
  seconds: number;
}

export interface Pass {
  scores: ItemScore[];
  counts: KeptCounts;
  /** Counts per group (e.g. cluster), when groups were given. */
  groupCounts: KeptCounts[];
  usage: Usage;
  achievedSparsity: number;
  gflopsPerToken: number;
  /** Mean wall time of scoring an item. */
  secondsPerItem: number;
}

export interface PassOptions {
  /** Configs by index; undefined: dense. */
  configs: (SparsityConfig | undefined)[];
  /** Index into `configs` of each item's config. */
  use: readonly number[];
  /** Group of each item, for per-group counts (default: all one group). */
  groups?: readonly number[];
  /** GSM8K: new tokens at most. */
  maxTokens: number;
  onProgress?: (done: number, total: number) => void;
}

const GSM8K_STOPS = ['Question:', '\n\n'];

function snapshot(stats: SparsityStats): KeptCounts {
  return { kept: Object.fromEntries(stats.kept), total: Object.fromEntries(stats.total) };
}

function difference(after: KeptCounts, before: KeptCounts): KeptCounts {
  const out: KeptCounts = { kept: {}, total: {} };
  for (const [k, v] of Object.entries(after.total)) {
    out.total[k] = v - (before.total[k] ?? 0);
    out.kept[k] = (after.kept[k] ?? 0) - (before.kept[k] ?? 0);
  }
  return out;
}

/** Scores every item under its config; each config is installed once, its items scored in their order. */
export function runPass(model: Model, items: readonly AmpItem[], o: PassOptions): Pass {
  const groups = o.groups ?? items.map(() => 0);
  const groupCount = Math.max(0, ...groups) + 1;
  const usage: Usage = { tokens: 0, attended: 0 };
  const scores = new Array<ItemScore>(items.length);
  const groupCounts: KeptCounts[] = Array.from({ length: groupCount }, () => ({ kept: {}, total: {} }));
  let counts: KeptCounts = { kept: {}, total: {} };
  let done = 0;
  o.configs.forEach((config, c) => {
    const mine = items.map((_, i) => i).filter((i) => o.use[i] === c);
    if (mine.length === 0) return;
    const stats = new SparsityStats();
    const view = config ? applyWina(model, config, { stats }) : model;
    const scorer = new Scorer(view, { slidingWindow: model.config.slidingWindow });
    for (const i of mine) {
      const before = snapshot(stats);
      scores[i] = scoreItem(view, scorer, items[i]!, o.maxTokens);
      groupCounts[groups[i]!] = addCounts(groupCounts[groups[i]!]!, difference(snapshot(stats), before));
      o.onProgress?.(++done, items.length);
    }
    usage.tokens += scorer.usage.tokens;
    usage.attended += scorer.usage.attended;
    counts = addCounts(counts, snapshot(stats));
  });
  const shape = computeShape(model);
  const dense = o.configs.every((c) => c === undefined);
  return {
    scores,
    counts,
    groupCounts,
    usage,
    achievedSparsity: dense ? 0 : achievedSparsity(shape.sizes, counts),
    gflopsPerToken: gflopsPerToken(shape, counts, usage),
    secondsPerItem: scores.reduce((s, x) => s + x.seconds, 0) / Math.max(1, scores.length),
  };
}

function scoreItem(model: Model, scorer: Scorer, item: AmpItem, maxTokens: number): ItemScore {
  const t0 = performance.now();
  const seconds = () => (performance.now() - t0) / 1000;
  if (item.kind === 'text') {
    const r = scorer.scoreWindow({ context: item.prompt.slice(0, 1), targets: item.prompt.slice(1) });
    return { nll: -r.loglikelihood, tokens: item.prompt.length - 1, seconds: seconds() };
  }
  if (item.kind === 'choice') {
    const scored = scorer.continuations(item.prompt, item.continuations!);
    const r = scoreChoiceItem(
      scored.map((s, i) => ({ loglikelihood: s.loglikelihood, text: item.choices![i]! })),
      item.gold!,
    );
    return {
      nll: -scored[item.gold!]!.loglikelihood,
      tokens: item.continuations![item.gold!]!.length,
      correct: r.acc,
      correctNorm: r.accNorm,
      seconds: seconds(),
    };
  }
  const text = greedyUntil(
    {
      scorer,
      tokenizer: model.tokenizer,
      bosId: model.config.bosId,
      eosIds: model.config.eosIds,
      onItem: () => {},
    },
    item.prompt,
    maxTokens,
    GSM8K_STOPS,
  );
  const reference = scorer.continuations(item.prompt, item.continuations!)[0]!;
  return {
    nll: -reference.loglikelihood,
    tokens: item.continuations![0]!.length,
    correct: gsm8kExactMatch(text, item.answer!),
    seconds: seconds(),
  };
}

export interface Metrics {
  n: number;
  /** Scored tokens (text: passages; tasks: gold continuations). */
  tokens: number;
  nllPerToken: number;
  perplexity: number;
  /** Tasks: mean of acc (choice) and exact match (GSM8K) over the items. */
  accuracy?: number;
  accuracyStderr?: number;
  /** Choice items only: mean acc_norm. */
  accuracyNorm?: number;
}

export function metricsOf(scores: readonly ItemScore[]): Metrics {
  const tokens = scores.reduce((s, x) => s + x.tokens, 0);
  const nll = scores.reduce((s, x) => s + x.nll, 0);
  const m: Metrics = {
    n: scores.length,
    tokens,
    nllPerToken: nll / tokens,
    perplexity: Math.exp(nll / tokens),
  };
  const correct = scores.flatMap((x) => (x.correct === undefined ? [] : [x.correct]));
  if (correct.length) {
    m.accuracy = mean(correct);
    m.accuracyStderr = correct.length > 1 ? Math.sqrt(variance(correct) / correct.length) : undefined;
  }
  const norm = scores.flatMap((x) => (x.correctNorm === undefined ? [] : [x.correctNorm]));
  if (norm.length) m.accuracyNorm = mean(norm);
  return m;
}

/** Metrics overall and per label. */
export function labelledMetrics(
  items: readonly AmpItem[],
  scores: readonly ItemScore[],
): { overall: Metrics; byLabel: Record<string, Metrics> } {
  const labels = [...new Set(items.map((i) => i.label))];
  return {
    overall: metricsOf(scores),
    byLabel: Object.fromEntries(
      labels.map((l) => [l, metricsOf(scores.filter((_, i) => items[i]!.label === l))]),
    ),
  };
}

function mean(v: readonly number[]): number {
  return v.reduce((a, b) => a + b, 0) / v.length;
}

function variance(v: readonly number[]): number {
  const m = mean(v);
  return v.reduce((s, x) => s + (x - m) ** 2, 0) / (v.length - 1);
}

export interface PairedDelta {
  /** b - a. */
  delta: number;
  /** Standard error from the per-item differences (paired: the same items under both). */
  stderr: number;
  n: number;
}

/**
 * Difference b - a of NLL per token over the same items: sum(nll_b - nll_a) / sum(tokens), its standard error by
 * the delta method for a ratio of sums (the log of the perplexity ratio).
 */
export function pairedNllDelta(a: readonly ItemScore[], b: readonly ItemScore[]): PairedDelta {
  const n = a.length;
  const tokens = a.reduce((s, x) => s + x.tokens, 0);
  const d = a.map((x, i) => b[i]!.nll - x.nll);
  const delta = d.reduce((s, x) => s + x, 0) / tokens;
  const residual = d.reduce((s, x, i) => s + (x - delta * a[i]!.tokens) ** 2, 0);
  return { delta, stderr: n > 1 ? Math.sqrt((n / (n - 1)) * residual) / tokens : NaN, n };
}

/** Difference b - a of accuracy over the same items, with the standard error of the mean paired difference. */
export function pairedAccuracyDelta(a: readonly ItemScore[], b: readonly ItemScore[]): PairedDelta {
  const d = a.flatMap((x, i) => (x.correct === undefined ? [] : [b[i]!.correct! - x.correct]));
  const n = d.length;
  return { delta: n ? mean(d) : NaN, stderr: n > 1 ? Math.sqrt(variance(d) / n) : NaN, n };
}
