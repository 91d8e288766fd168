/**
 * Profile files: what `wina calibrate` learns (score histograms, thresholds, the chosen allocation) and what
 * generate / eval / bench / serve load with --profile. Tied to one model by a fingerprint of its weights.
 */
import { createHash } from 'node:crypto';
import { fail } from '../errors.js';
import type { WeightData } from '../kernels/formats.js';
import { PROJECTIONS, type Projection } from '../model/config.js';
import type { Model } from '../model/model.js';
import type { Calibration, SampleSignature } from './calibrate.js';
import { METHODS, type Method, type SparsityConfig, sparsityOf } from './config.js';
import { HISTOGRAM_BINS, Histogram, type HistogramJson } from './histogram.js';
import type { MaskMode } from './masks.js';
import { readInputJson, writeOutputFile } from '../io/files.js';

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
  samples?: SampleSignature[];
}

/** Identifies a model's weights: shapes plus a sample of the raw bits of the first and last matrices. */
export function fingerprint(model: Model): string {
  const w = model.transformer.weights;
  const h = createHash('sha256');
  const c = model.config;
  h.update(
    JSON.stringify([model.info.architecture, c.hiddenSize, c.numLayers, c.intermediateSize, c.vocabSize]),
  );
  const sample = (data: WeightData) => {
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

export function writeProfile(file: string, profile: Profile, flag = '--out'): void {
  writeOutputFile(file, JSON.stringify(profile), flag);
}

/** Reads and checks a profile file; with a model, also that it was made for that model. */
export function readProfile(file: string, model?: Model): Profile {
  const p = readInputJson(file, 'profile');
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
  if (!isObject(p.allocation) || !isObject(p.thresholds) || !isObject(p.histograms)) {
    fail(`${where} is incomplete: it needs allocation, thresholds and histograms`);
  }
  if (model) {
    if (p.model?.fingerprint !== fingerprint(model)) {
      fail(
        `${where} was made for another model (${p.model?.architecture ?? 'unknown'}, fingerprint ${p.model?.fingerprint}), not ${model.info.source}` +
          ' (the fingerprint covers the stored weights: calibrate with the same --quantize as you run with)',
      );
    }
  }
  checkShape(p, where, model);
  return p;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** At most this many layers in a profile read without a model (no real model has more). */
const MAX_LAYERS = 10_000;

/**
 * Every field a profile's use allocates or indexes from, checked against the model (or, without one, against
 * the profile's own numLayers) before anything is allocated: a hand-edited numLayers of 1e9 or a histogram
 * that runs past the bins is one line, not gigabytes.
 */
function checkShape(p: Profile, where: string, model?: Model): void {
  const m = p.model as unknown;
  if (!isObject(m)) fail(`${where} has no "model" section`);
  const layers = m.numLayers;
  const limit = model?.config.numLayers ?? MAX_LAYERS;
  if (typeof layers !== 'number' || !Number.isInteger(layers) || layers < 1 || layers > limit)
    fail(`${where}: model.numLayers must be a whole number in [1, ${limit}], got ${JSON.stringify(layers)}`);
  if (model && (layers !== model.config.numLayers || m.hiddenSize !== model.config.hiddenSize))
    fail(`${where} was made for a model with ${layers} layers and hidden size ${m.hiddenSize}, not this one`);
  if (typeof p.sparsity !== 'number' || !(p.sparsity >= 0 && p.sparsity < 1))
    fail(`${where}: sparsity must be in [0, 1), got ${JSON.stringify(p.sparsity)}`);
  const perLayer = (table: unknown, name: string, ok: (v: unknown) => boolean, range: string) => {
    for (const [l, row] of Object.entries(table as Record<string, unknown>)) {
      const layer = Number(l);
      if (!Number.isInteger(layer) || layer < 0 || layer >= layers)
        fail(`${where}: ${name} has layer ${JSON.stringify(l)}, outside [0, ${layers})`);
      if (!isObject(row)) fail(`${where}: ${name}[${l}] is not an object of projections`);
      for (const [proj, v] of Object.entries(row)) {
        if (!(PROJECTIONS as readonly string[]).includes(proj))
          fail(`${where}: ${name}[${l}] has unknown projection ${JSON.stringify(proj)}`);
        if (!ok(v)) fail(`${where}: ${name}[${l}].${proj} must be ${range}, got ${JSON.stringify(v)}`);
      }
    }
  };
  perLayer(p.allocation, 'allocation', (v) => typeof v === 'number' && v >= 0 && v < 1, 'in [0, 1)');
  perLayer(
    p.thresholds,
    'thresholds',
    (v) => typeof v === 'number' && v >= 0 && Number.isFinite(v),
    'a finite number >= 0',
  );
  for (const [key, h] of Object.entries(p.histograms)) {
    const [l, proj, extra] = key.split('.');
    const layer = Number(l);
    if (
      extra !== undefined ||
      !Number.isInteger(layer) ||
      layer < 0 ||
      layer >= layers ||
      !(PROJECTIONS as readonly string[]).includes(proj ?? '')
    )
      fail(`${where}: histogram key ${JSON.stringify(key)} is not "<layer>.<projection>" of this model`);
    checkHistogram(h, `${where}: histogram ${key}`);
  }
  if (p.greedy !== undefined && (!Array.isArray(p.greedy) || p.greedy.length !== layers))
    fail(`${where}: greedy must be a list of ${layers} layers' steps`);
  for (const [l, steps] of (p.greedy ?? []).entries()) {
    if (!Array.isArray(steps)) fail(`${where}: greedy[${l}] is not a list of steps`);
    for (const step of steps as unknown[]) {
      if (!isObject(step) || typeof step.effectiveSparsity !== 'number' || !isObject(step.sparsities))
        fail(`${where}: greedy[${l}] has a step without effectiveSparsity and sparsities`);
      for (const v of Object.values(step.sparsities))
        if (typeof v !== 'number' || !(v >= 0 && v < 1))
          fail(`${where}: greedy[${l}] has a sparsity outside [0, 1)`);
    }
  }
}

function checkHistogram(h: unknown, where: string): void {
  if (!isObject(h) || !Array.isArray(h.counts)) fail(`${where} is not a histogram (zeros, first, counts)`);
  const { zeros, first, counts } = h as unknown as HistogramJson;
  const count = (v: unknown) => typeof v === 'number' && Number.isFinite(v) && v >= 0;
  if (!count(zeros)) fail(`${where}: zeros must be a count >= 0`);
  if (!Number.isInteger(first) || first < 0 || first + counts.length > HISTOGRAM_BINS)
    fail(`${where}: bins [${first}, ${first} + ${counts.length}) run outside the ${HISTOGRAM_BINS} bins`);
  if (!counts.every(count)) fail(`${where}: counts must be numbers >= 0`);
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
