/**
 * Profile files: what `wina calibrate` learns (score histograms, thresholds, the chosen allocation) and what
 * generate / eval / bench / serve load with --profile. Tied to one model by a fingerprint of its weights.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { fail } from '../io/errors.js';
import { PROJECTIONS, type Projection } from '../model/config.js';
import type { Model } from '../model/model.js';
import type { Calibration, SampleProfile } from './calibrate.js';
import { METHODS, type Method, type SparsityConfig, sparsityOf } from './config.js';
import { Histogram, type HistogramJson } from './histogram.js';
import type { MaskMode } from './masks.js';

export type PerLayer = Record<number, Partial<Record<Projection, number>>>;

export interface GreedyStep {
  effectiveSparsity: number;
  error: number;
  baselineError: number;
  sparsities: Partial<Record<Projection, number>>;
}

export interface Profile {
  format: 'wina-profile';
  version: 1;
  model: { fingerprint: string; architecture: string; numLayers: number; hiddenSize: number };
  method: Method;
  transform: boolean;
  mask: MaskMode;
  /** Target sparsity the allocation was made for. */
  sparsity: number;
  /** Sparsity per layer and projection. */
  allocation: PerLayer;
  thresholds: PerLayer;
  histograms: Record<string, HistogramJson>;
  calibration: { data: string; samples: number; seqLen: number; tokens: number };
  greedy?: GreedyStep[][];
  samples?: SampleProfile[];
}

/** Identifies a model's weights: shapes plus a sample of the raw bits of the first and last matrices. */
export function fingerprint(model: Model): string {
  const w = model.transformer.weights;
  const h = createHash('sha256');
  const c = model.config;
  h.update(
    JSON.stringify([model.info.architecture, c.hiddenSize, c.numLayers, c.intermediateSize, c.vocabSize]),
  );
  const sample = (data: Float32Array | Uint16Array) => {
    const n = Math.min(4096, data.length);
    h.update(new Uint8Array(data.buffer, data.byteOffset, n * data.BYTES_PER_ELEMENT).slice());
  };
  sample(w.embed.data);
  sample(w.layers[0]!.proj.q.weight.data);
  sample(w.layers[c.numLayers - 1]!.proj.down.weight.data);
  return h.digest('hex').slice(0, 32);
}

/** Thresholds at which each projection's calibrated scores reach its allocated sparsity. */
export function thresholdsFor(
  histograms: Map<string, Histogram>,
  allocation: (l: number, p: Projection) => number,
  layers: number,
): PerLayer {
  const out: PerLayer = {};
  for (let l = 0; l < layers; l++) {
    out[l] = {};
    for (const p of PROJECTIONS) {
      const h = histograms.get(`${l}.${p}`);
      if (h) out[l]![p] = h.quantile(allocation(l, p));
    }
  }
  return out;
}

export function uniformAllocation(config: SparsityConfig, layers: number): PerLayer {
  const out: PerLayer = {};
  for (let l = 0; l < layers; l++)
    out[l] = Object.fromEntries(PROJECTIONS.map((p) => [p, sparsityOf(config, l, p)]));
  return out;
}

export function buildProfile(
  model: Model,
  calibration: Calibration,
  o: {
    sparsity: number;
    allocation: PerLayer;
    data: string;
    seqLen: number;
    transform: boolean;
    greedy?: GreedyStep[][];
  },
): Profile {
  const layers = model.config.numLayers;
  return {
    format: 'wina-profile',
    version: 1,
    model: {
      fingerprint: fingerprint(model),
      architecture: model.info.architecture,
      numLayers: layers,
      hiddenSize: model.config.hiddenSize,
    },
    method: calibration.method,
    transform: o.transform,
    mask: 'threshold',
    sparsity: o.sparsity,
    allocation: o.allocation,
    thresholds: thresholdsFor(calibration.histograms, (l, p) => o.allocation[l]?.[p] ?? 0, layers),
    histograms: Object.fromEntries([...calibration.histograms].map(([k, h]) => [k, h.toJSON()])),
    calibration: {
      data: o.data,
      samples: calibration.samples.length,
      seqLen: o.seqLen,
      tokens: calibration.tokens,
    },
    greedy: o.greedy,
    samples: calibration.samples,
  };
}

export function writeProfile(file: string, profile: Profile): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(profile));
  fs.renameSync(tmp, file);
}

/** Reads and checks a profile file; with a model, also that it was made for that model. */
export function readProfile(file: string, model?: Model): Profile {
  let raw: string;
  try {
    raw = fs.readFileSync(file, 'utf8');
  } catch {
    fail(`cannot read profile ${file}`);
  }
  let p: unknown;
  try {
    p = JSON.parse(raw);
  } catch {
    fail(`profile ${file} is not valid JSON`);
  }
  if ((p as { format?: unknown })?.format === 'wina-amp-profile')
    fail(
      `${file} is a WINA-AMP profile (cluster profiles + router): generate and eval route prompts with it`,
    );
  return checkProfile(p, `profile ${file}`, model);
}

/**
 * Checks a parsed profile (`where` names it in errors, e.g. "profile p.json" or "cluster 2 of amp.json"); with a
 * model, also that it was made for that model.
 */
export function checkProfile(value: unknown, where: string, model?: Model): Profile {
  const p = value as Profile;
  if (p?.format !== 'wina-profile') fail(`${where} is not a wina profile (no "format": "wina-profile")`);
  if (p.version !== 1) fail(`${where} has version ${p.version}; this wina reads version 1`);
  if (!(METHODS as readonly string[]).includes(p.method))
    fail(`${where} has unknown method ${JSON.stringify(p.method)}`);
  if (
    typeof p.allocation !== 'object' ||
    typeof p.thresholds !== 'object' ||
    typeof p.histograms !== 'object'
  ) {
    fail(`${where} is incomplete: it needs allocation, thresholds and histograms`);
  }
  if (model) {
    if (p.model?.fingerprint !== fingerprint(model)) {
      fail(
        `${where} was made for another model (${p.model?.architecture ?? 'unknown'}, fingerprint ${p.model?.fingerprint}), not ${model.info.source}`,
      );
    }
  }
  return p;
}

export function histogramsOf(p: Profile): Map<string, Histogram> {
  return new Map(Object.entries(p.histograms).map(([k, j]) => [k, Histogram.fromJSON(j)]));
}

/**
 * The sparsity config a profile stands for. A requested sparsity other than the profile's own re-derives uniform
 * thresholds from the stored histograms.
 */
export function profileConfig(
  p: Profile,
  overrides: { sparsity?: number; prefill?: SparsityConfig['prefill'] } = {},
): SparsityConfig {
  const layers = p.model.numLayers;
  if (overrides.sparsity === undefined || overrides.sparsity === p.sparsity) {
    return {
      method: p.method,
      globalSparsity: p.sparsity,
      layers: p.allocation,
      mask: 'threshold',
      thresholds: p.thresholds,
      prefill: overrides.prefill,
    };
  }
  const allocation =
    greedyAllocationAt(p, overrides.sparsity) ??
    uniformAllocation({ method: p.method, globalSparsity: overrides.sparsity }, layers);
  return {
    method: p.method,
    globalSparsity: overrides.sparsity,
    layers: allocation,
    mask: 'threshold',
    thresholds: thresholdsFor(histogramsOf(p), (l, q) => allocation[l]?.[q] ?? 0, layers),
    prefill: overrides.prefill,
  };
}

/**
 * The greedy search passes through every lower sparsity on its way to the target (TEAL records them all): the
 * allocation at `sparsity` is, per layer, the first step of the trace whose effective sparsity reaches it. One
 * greedy profile calibrated at 0.65 thus serves 0.25, 0.4 and 0.5 too. Undefined without a trace that gets there.
 */
export function greedyAllocationAt(p: Profile, sparsity: number): PerLayer | undefined {
  const trace = p.greedy;
  if (!trace || trace.length !== p.model.numLayers) return undefined;
  const allocation: PerLayer = {};
  for (const [l, steps] of trace.entries()) {
    if (sparsity <= 0) {
      allocation[l] = {};
      continue;
    }
    const step = steps.find((s) => s.effectiveSparsity >= sparsity - 1e-9);
    if (!step) return undefined;
    allocation[l] = { ...step.sparsities };
  }
  return allocation;
}
