/**
 * Greedy per-layer allocation (TEAL's block-wise search, also WINA's): starting dense, repeatedly raise the
 * sparsity of the projection whose increase hurts the block's output least, in steps that each skip the same
 * number of weights (a matrix's step shrinks with its parameter count), until the block's effective sparsity
 * (parameter-weighted) reaches the target.
 */
import type { Sample } from './datasets.js';
import { fail } from '../errors.js';
import { PROJECTIONS, type Projection } from '../model/config.js';
import type { Model } from '../model/model.js';
import { applyWina } from './apply.js';
import type { Method, SparsityConfig } from './config.js';
import type { Histogram } from './histogram.js';
import { type GreedyStep, type PerLayer, thresholdsFor } from './profile.js';

export interface GreedyOptions {
  method: Method;
  target: number;
  /** Sparsity step of a unit the size of o_proj (TEAL's reference matrix); larger units take smaller steps. */
  step?: number;
  /** Compare outputs on the last fraction of each sample's tokens (TEAL: 0.25). */
  lastFraction?: number;
  onProgress?: (done: number, total: number) => void;
}

/** Units of allocation: projections, or fused groups (Phi-3's qkv, gate_up) that share one mask. */
function unitsOf(model: Model): Projection[][] {
  const fused = model.info.fused;
  const units: Projection[][] = [...fused];
  for (const p of PROJECTIONS) if (!fused.some((g) => g.includes(p))) units.push([p]);
  return units;
}

export function greedyAllocation(
  model: Model,
  samples: Sample[],
  histograms: Map<string, Histogram>,
  o: GreedyOptions,
): { allocation: PerLayer; trace: GreedyStep[][] } {
  const cfg = model.config;
  const layers = cfg.numLayers;
  const d = cfg.hiddenSize;
  const units = unitsOf(model);
  const step = o.step ?? 0.05;
  const lastFraction = o.lastFraction ?? 0.25;
  // A step of 0 would never reach the target; no samples would give a profile fitted to nothing.
  if (!(step > 0 && step < 1)) fail(`greedy step must be in (0, 1), got ${o.step}`);
  if (!(lastFraction > 0 && lastFraction <= 1))
    fail(`greedy last fraction must be in (0, 1], got ${lastFraction}`);
  if (samples.length === 0) fail('greedy allocation needs at least one sample (--greedy-samples >= 1)');
  if (!(o.target >= 0 && o.target < 1)) fail(`greedy target sparsity must be in [0, 1), got ${o.target}`);

  // Inputs of every layer for every sample, from the dense model.
  const inputs: Float32Array[][] = Array.from({ length: layers }, () => []);
  for (const sample of samples) {
    model.forward(sample.ids, { lastOnly: true, onHidden: (i, h) => i < layers && inputs[i]!.push(h) });
  }

  const cache = model.newCache(Math.max(...samples.map((s) => s.ids.length)));
  // Applied once, its config rewritten per trial (applyWina reads it on every call): applying per trial would
  // allocate kernel buffers thousands of times, and the 4 GiB WebAssembly memory never gives them back.
  const transformer = model.transformer;
  const trialConfig: SparsityConfig = {
    method: o.method,
    globalSparsity: 0,
    layers: {},
    mask: 'threshold',
    thresholds: thresholdsFor(histograms, () => 0, layers),
  };
  const sparse = applyWina(model, trialConfig).linear;
  const allocation: PerLayer = {};
  const trace: GreedyStep[][] = [];
  for (let l = 0; l < layers; l++) {
    const sizes = units.map((u) =>
      u.reduce((n, p) => n + model.transformer.weights.layers[l]!.proj[p].weight.data.length, 0),
    );
    const total = sizes.reduce((a, b) => a + b, 0);
    const reference = model.transformer.weights.layers[l]!.proj.o.weight.data.length;
    const steps = sizes.map((n) => Math.min(0.5, (step * reference) / n));
    const targets = inputs[l]!.map((x) => transformer.runBlock(l, x, cache));

    const errorAt = (unitSparsity: number[]): number => {
      const perProj: Partial<Record<Projection, number>> = {};
      units.forEach((u, i) => u.forEach((p) => (perProj[p] = unitSparsity[i]!)));
      trialConfig.layers = { [l]: perProj };
      trialConfig.thresholds = thresholdsFor(
        histograms,
        (layer, p) => (layer === l ? (perProj[p] ?? 0) : 0),
        layers,
      );
      let err = 0;
      inputs[l]!.forEach((x, s) => {
        const out = transformer.runBlock(l, x, cache, sparse);
        const from = Math.floor((x.length / d) * (1 - lastFraction)) * d;
        for (let i = from; i < out.length; i++) err += (out[i]! - targets[s]![i]!) ** 2;
      });
      return Math.sqrt(err);
    };
    const effective = (u: number[]) => u.reduce((a, s, i) => a + s * sizes[i]!, 0) / total;

    const current = units.map(() => 0);
    const layerTrace: GreedyStep[] = [];
    while (effective(current) < o.target - 1e-9) {
      let best = -1;
      let bestError = Number.POSITIVE_INFINITY;
      units.forEach((_, i) => {
        if (current[i]! + steps[i]! >= 1) return;
        const trial = [...current];
        trial[i]! += steps[i]!;
        const e = errorAt(trial);
        if (e < bestError) [best, bestError] = [i, e];
      });
      if (best < 0) break;
      current[best]! += steps[best]!;
      const eff = effective(current);
      const sparsities = Object.fromEntries(units.flatMap((u, i) => u.map((p) => [p, current[i]!])));
      layerTrace.push({
        effectiveSparsity: eff,
        error: bestError,
        baselineError: errorAt(units.map(() => eff)),
        sparsities,
      });
    }
    allocation[l] = Object.fromEntries(units.flatMap((u, i) => u.map((p) => [p, current[i]!])));
    trace.push(layerTrace);
    o.onProgress?.(l + 1, layers);
  }
  cache.release();
  return { allocation, trace };
}
