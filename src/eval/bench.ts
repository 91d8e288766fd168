/**
 * End-to-end speed: prefill and decode tokens/s of one model under several sparsity settings, the median of
 * repeats after a warm-up. Tokens are fixed pseudo-random ids (speed does not depend on their meaning).
 */
import type { Model } from '../model/model.js';
import { applyWina } from '../sparsity/apply.js';
import type { Method, SparsityConfig } from '../sparsity/config.js';
import { computeShape, gflopsPerToken, type KeptCounts } from './compute.js';

/** One measured setting; `config` (e.g. from a profile via the shared sparsity options) wins over the method. */
export interface BenchSetting {
  method: Method;
  sparsity: number;
  config?: SparsityConfig;
}

export interface BenchOptions {
  methods: Method[];
  sparsities: number[];
  /** Explicit settings (as `wina eval` builds them from --methods / --sparsity / --profile) instead of the grid. */
  settings?: BenchSetting[];
  promptTokens: number;
  newTokens: number;
  repeats: number;
  /** FLOPs per token outside the projections, e.g. the orthogonal transform's shortcut products. */
  extraFlopsPerToken?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface BenchResult {
  method: Method;
  sparsity: number;
  achievedSparsity: number;
  decodeTokensPerSecond: number;
  prefillTokensPerSecond: number;
  /** Of a decoded token, from the kept inputs counted during decode (as `wina eval` counts them). */
  decodeGflopsPerToken: number;
  peakMemoryBytes: number;
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/**
 * Repeats run round-robin over the settings (repeat 1 of every setting, then repeat 2, ...), so a machine whose
 * bandwidth drifts during the run shifts every setting alike and the ratios to dense stay honest.
 */
export function bench(model: Model, o: BenchOptions): BenchResult[] {
  const vocab = model.config.vocabSize;
  const prompt = Array.from({ length: o.promptTokens }, (_, i) => (i * 7919 + 13) % vocab);
  const grid: BenchSetting[] =
    o.settings ??
    o.methods.flatMap((method) =>
      (method === 'dense' ? [0] : o.sparsities.filter((s) => s > 0)).map((sparsity) => ({
        method,
        sparsity,
      })),
    );
  // Each setting is applied once (column norms, input-major copies) and its view kept.
  const prepared = grid.map(({ method, sparsity, config }) => {
    const applied = config
      ? applyWina(model, config)
      : method === 'dense'
        ? undefined
        : applyWina(model, { method, globalSparsity: sparsity });
    return { applied, view: applied ?? model, runs: [] as { prefill: number; decode: number }[] };
  });
  const shape = computeShape(model, o.extraFlopsPerToken ?? 0);
  const counts = prepared.map(() => ({ kept: {}, total: {} }) as KeptCounts);
  let peak = process.memoryUsage().rss;
  const run = (g: number, record: boolean) => {
    const { applied, view, runs } = prepared[g]!;
    const cache = model.newCache(o.promptTokens + o.newTokens);
    let t0 = performance.now();
    view.forward(prompt, { cache, lastOnly: true });
    const prefill = (performance.now() - t0) / 1000;
    applied?.stats.reset();
    t0 = performance.now();
    for (let i = 0; i < o.newTokens; i++) view.forward([(i * 104729 + 7) % vocab], { cache, lastOnly: true });
    const decode = (performance.now() - t0) / 1000;
    cache.release();
    peak = Math.max(peak, process.memoryUsage().rss);
    if (record) runs.push({ prefill, decode });
    if (applied) {
      counts[g] = {
        kept: Object.fromEntries(applied.stats.kept),
        total: Object.fromEntries(applied.stats.total),
      };
    }
  };
  const total = grid.length * (o.repeats + 1);
  let done = 0;
  for (let r = 0; r <= o.repeats; r++) {
    // Repeat 0 is the warm-up: JIT tiers, caches, page faults.
    for (let g = 0; g < grid.length; g++) {
      run(g, r > 0);
      o.onProgress?.(++done, total);
    }
  }
  // Decoded positions attend to the prompt and the tokens before them.
  const attended = o.newTokens * o.promptTokens + (o.newTokens * (o.newTokens + 1)) / 2;
  const usage = { tokens: o.newTokens, attended };
  return grid.map(({ method, sparsity }, g) => {
    const { applied, runs } = prepared[g]!;
    return {
      method,
      sparsity,
      achievedSparsity: applied ? applied.achieved() : 0,
      decodeTokensPerSecond: median(runs.map((r) => o.newTokens / r.decode)),
      prefillTokensPerSecond: median(runs.map((r) => o.promptTokens / r.prefill)),
      decodeGflopsPerToken: gflopsPerToken(shape, counts[g]!, usage),
      peakMemoryBytes: peak,
    };
  });
}
