/**
 * Calibration: stream samples through the dense model and collect, per layer and projection, a histogram of the
 * method's scores (bounded memory), plus per-sample statistics for WINA-AMP (which sample activated what).
 */
import type { Sample } from './datasets.js';
import type { Model } from '../model/model.js';
import type { LinearFn } from '../model/transformer.js';
import type { Method } from './config.js';
import { Histogram } from './histogram.js';
import { computeScores, scoreNorms } from './scores.js';

export interface SampleSignature {
  id: string;
  label?: string;
  tokens: number;
  /** Mean and standard deviation of log2(score) per "layer.proj" key: the sample's activation signature (WINA-AMP clusters them). */
  meanLog2: Record<string, number>;
  stdLog2: Record<string, number>;
}

export interface Calibration {
  method: Method;
  histograms: Map<string, Histogram>;
  samples: SampleSignature[];
  tokens: number;
}

export function calibrate(
  model: Model,
  samples: Sample[],
  method: Method,
  onProgress?: (done: number, total: number) => void,
): Calibration {
  const dense = model.linear;
  const norms = scoreNorms(model, method);
  const histograms = new Map<string, Histogram>();
  const signatures: SampleSignature[] = [];
  let sums = new Map<string, { n: number; s: number; ss: number }>();
  let scores = new Float64Array(0);

  const record = (key: string, x: Float32Array, d: number, tokens: number, normKey: string) => {
    let h = histograms.get(key);
    if (!h) histograms.set(key, (h = new Histogram()));
    let acc = sums.get(key);
    if (!acc) sums.set(key, (acc = { n: 0, s: 0, ss: 0 }));
    if (scores.length < d) scores = new Float64Array(d);
    for (let t = 0; t < tokens; t++) {
      computeScores(x.subarray(t * d, (t + 1) * d), norms.get(normKey), scores);
      for (let i = 0; i < d; i++) {
        const v = scores[i]!;
        h.add(v);
        if (v > 0) {
          const l = Math.log2(v);
          acc.n++;
          acc.s += l;
          acc.ss += l * l;
        }
      }
    }
  };

  const recording: LinearFn = (layer, proj, lin, x, tokens, y) => {
    dense(layer, proj, lin, x, tokens, y);
    const d = lin.weight.shape[1]!;
    if (method === 'cats') {
      // CATS thresholds |silu(gate)|: record it under "up", the projection whose rows it masks.
      if (proj !== 'gate') return;
      const ff = lin.weight.shape[0]!;
      const act = new Float32Array(y.subarray(0, tokens * ff).map((g) => g / (1 + Math.exp(-g))));
      record(`${layer}.up`, act, ff, tokens, '');
      return;
    }
    record(`${layer}.${proj}`, x, d, tokens, `${layer}.${proj}`);
  };

  const recorder = model.withProjections({ linear: recording });
  let tokens = 0;
  samples.forEach((sample, i) => {
    sums = new Map();
    recorder.forward(sample.ids, { lastOnly: true });
    tokens += sample.ids.length;
    const meanLog2: Record<string, number> = {};
    const stdLog2: Record<string, number> = {};
    for (const [key, a] of sums) {
      const mean = a.n ? a.s / a.n : 0;
      meanLog2[key] = mean;
      stdLog2[key] = a.n ? Math.sqrt(Math.max(0, a.ss / a.n - mean * mean)) : 0;
    }
    signatures.push({ id: sample.id, label: sample.label, tokens: sample.ids.length, meanLog2, stdLog2 });
    onProgress?.(i + 1, samples.length);
  });
  return { method, histograms, samples: signatures, tokens };
}
