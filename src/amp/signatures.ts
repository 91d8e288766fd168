/**
 * Per-sample activation signatures, from the calibration machinery run one sample at a time: each sample's
 * signature (mean and standard deviation of log2 score per layer and projection) and its own score histograms,
 * kept compact so that any group of samples (a cluster) gets its merged histograms without another pass.
 */
import type { Sample } from '../sparsity/datasets.js';
import { PROJECTIONS } from '../model/config.js';
import type { Model } from '../model/model.js';
import { type Calibration, calibrate, type SampleSignature } from '../sparsity/calibrate.js';
import type { Method } from '../sparsity/config.js';
import { Histogram } from '../sparsity/histogram.js';

/** A histogram's bins between its first and last non-empty one. */
interface CompactHistogram {
  zeros: number;
  first: number;
  counts: Uint32Array;
}

export interface SampleSignatures {
  /** Histograms merged over every sample, per-sample signatures, tokens. */
  calibration: Calibration;
  /** Each sample's own histograms, by "layer.proj". */
  histograms: Map<string, CompactHistogram>[];
}

export function sampleSignatures(
  model: Model,
  samples: readonly Sample[],
  method: Method,
  onProgress?: (done: number, total: number) => void,
): SampleSignatures {
  const merged = new Map<string, Histogram>();
  const signatures: SampleSignature[] = [];
  const histograms: Map<string, CompactHistogram>[] = [];
  let tokens = 0;
  samples.forEach((sample, i) => {
    const one = calibrate(model, [sample], method);
    signatures.push(one.samples[0]!);
    tokens += one.tokens;
    const own = new Map<string, CompactHistogram>();
    for (const [key, h] of one.histograms) {
      let m = merged.get(key);
      if (!m) merged.set(key, (m = new Histogram()));
      m.merge(h);
      const j = h.toJSON();
      own.set(key, { zeros: j.zeros, first: j.first, counts: Uint32Array.from(j.counts) });
    }
    histograms.push(own);
    onProgress?.(i + 1, samples.length);
  });
  return { calibration: { method, histograms: merged, samples: signatures, tokens }, histograms };
}

/** The histograms of a group of samples (indices into the signed samples), merged. */
export function groupHistograms(
  signed: SampleSignatures,
  members: readonly number[],
): Map<string, Histogram> {
  const out = new Map<string, Histogram>();
  for (const i of members) {
    for (const [key, c] of signed.histograms[i]!) {
      let h = out.get(key);
      if (!h) out.set(key, (h = new Histogram()));
      for (let b = 0; b < c.counts.length; b++) h.counts[c.first + b]! += c.counts[b]!;
      h.zeros += c.zeros;
      h.total += c.zeros + c.counts.reduce((s, v) => s + v, 0);
    }
  }
  return out;
}

/** The calibration of a group: its merged histograms, its samples' signatures and tokens. */
export function groupCalibration(signed: SampleSignatures, members: readonly number[]): Calibration {
  const samples = members.map((i) => signed.calibration.samples[i]!);
  return {
    method: signed.calibration.method,
    histograms: groupHistograms(signed, members),
    samples,
    tokens: samples.reduce((s, p) => s + p.tokens, 0),
  };
}

/** The "layer.proj" keys of a signature, in model order (layer, then q k v o gate up down). */
export function signatureKeys(model: Model, method: Method): string[] {
  const projections = method === 'cats' ? (['up'] as const) : PROJECTIONS;
  return Array.from({ length: model.config.numLayers }, (_, l) => projections.map((p) => `${l}.${p}`)).flat();
}

/** A sample's signature as a vector: mean log2 score per key, then standard deviation per key. */
export function signatureVector(p: SampleSignature, keys: readonly string[]): number[] {
  return [...keys.map((k) => p.meanLog2[k] ?? 0), ...keys.map((k) => p.stdLog2[k] ?? 0)];
}

export interface Standardisation {
  mean: number[];
  std: number[];
}

/** Per-column mean and standard deviation (1 where a column is constant). */
export function fitStandardisation(rows: readonly ArrayLike<number>[]): Standardisation {
  const d = rows[0]?.length ?? 0;
  const mean = new Array<number>(d).fill(0);
  const variance = new Array<number>(d).fill(0);
  for (const r of rows) for (let j = 0; j < d; j++) mean[j]! += r[j]! / rows.length;
  for (const r of rows) for (let j = 0; j < d; j++) variance[j]! += (r[j]! - mean[j]!) ** 2 / rows.length;
  return { mean, std: variance.map((v) => (v > 1e-24 ? Math.sqrt(v) : 1)) };
}

export function standardiseRow(row: readonly number[], s: Standardisation): number[] {
  return row.map((v, j) => (v - s.mean[j]!) / s.std[j]!);
}
