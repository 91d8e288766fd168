/**
 * End-to-end speed: prefill and decode tokens/s of one model under several sparsity settings, the median of
 * repeats after a warm-up. Tokens are fixed pseudo-random ids (speed does not depend on their meaning).
 */
import type { Model } from '../model/model.js';
import { applyWina } from '../sparsity/apply.js';
import type { Method, SparsityConfig } from '../sparsity/config.js';

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
  onProgress?: (done: number, total: number) => void;
}

export interface BenchResult {
  method: Method;
  sparsity: number;
  achievedSparsity: number;
  decodeTokensPerSecond: number;
  prefillTokensPerSecond: number;
  peakMemoryBytes: number;
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

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
  const results: BenchResult[] = [];
  let peak = process.memoryUsage().rss;
  grid.forEach(({ method, sparsity, config }, g) => {
    const applied = config
      ? applyWina(model, config)
      : method === 'dense'
        ? undefined
        : applyWina(model, { method, globalSparsity: sparsity });
    const run = () => {
      const cache = model.newCache(o.promptTokens + o.newTokens);
      let t0 = performance.now();
      model.forward(prompt, { cache, lastOnly: true });
      const prefill = (performance.now() - t0) / 1000;
      applied?.stats.reset();
      t0 = performance.now();
      for (let i = 0; i < o.newTokens; i++)
        model.forward([(i * 104729 + 7) % vocab], { cache, lastOnly: true });
      const decode = (performance.now() - t0) / 1000;
      cache.release();
      peak = Math.max(peak, process.memoryUsage().rss);
      return { prefill, decode };
    };
    run(); // warm-up: JIT tiers, caches, page faults
    const runs = Array.from({ length: o.repeats }, run);
    results.push({
      method,
      sparsity,
      achievedSparsity: applied ? applied.stats.achieved() : 0,
      decodeTokensPerSecond: median(runs.map((r) => o.newTokens / r.decode)),
      prefillTokensPerSecond: median(runs.map((r) => o.promptTokens / r.prefill)),
      peakMemoryBytes: peak,
    });
    applied?.remove();
    o.onProgress?.(g + 1, grid.length);
  });
  return results;
}
