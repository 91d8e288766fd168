/**
 * The router: from a prompt, before decoding, to a cluster. Its input is a cheap embedding of the prompt: the
 * mean of its token embeddings (`embed`), or the mean of the residual stream after the first N blocks
 * (`layer:N`, dense). Two classifiers: nearest centroid, and a softmax gate on the standardised embedding
 * (multinomial logistic regression with L2, as an MoE gate), trained full-batch with Adam from zero.
 */
import { fail } from '../errors.js';
import { widen } from '../kernels/reference.js';
import type { Model } from '../model/model.js';
import { nearest } from './cluster.js';
import { fitStandardisation } from './signatures.js';

export type FeatureSource = 'embed' | `layer:${number}`;
export const ROUTER_KINDS = ['centroid', 'softmax'] as const;
export type RouterKind = (typeof ROUTER_KINDS)[number];

export function parseFeatureSource(value: string, numLayers: number): FeatureSource {
  if (value === 'embed') return value;
  const m = /^layer:(\d+)$/.exec(value);
  const n = m ? Number(m[1]) : NaN;
  if (!(Number.isInteger(n) && n >= 1 && n < numLayers))
    fail(`router input must be embed or layer:N with N in 1..${numLayers - 1}, got ${JSON.stringify(value)}`);
  return `layer:${n}`;
}

function layersOf(source: FeatureSource): number {
  return source === 'embed' ? 0 : Number(source.slice('layer:'.length));
}

/**
 * The prompt's embedding: the mean over its tokens of the residual stream after `layer:N`'s first N blocks
 * (dense: runBlock's default projections, whatever view `model` is), or of the token embeddings.
 */
export function promptFeatures(model: Model, ids: readonly number[], source: FeatureSource): Float64Array {
  const cfg = model.config;
  const d = cfg.hiddenSize;
  if (ids.length === 0) fail('routing needs a prompt of at least one token');
  let x: Float32Array = new Float32Array(ids.length * d);
  ids.forEach((id, t) => {
    if (!Number.isInteger(id) || id < 0 || id >= cfg.vocabSize)
      fail(`token id ${id} is outside the vocabulary`);
    widen(model.transformer.weights.embed, id * d, x.subarray(t * d, (t + 1) * d));
  });
  const blocks = layersOf(source);
  if (blocks > 0) {
    const cache = model.newCache(ids.length);
    try {
      for (let l = 0; l < blocks; l++) x = model.transformer.runBlock(l, x, cache);
    } finally {
      cache.release();
    }
  }
  const out = new Float64Array(d);
  for (let t = 0; t < ids.length; t++) for (let i = 0; i < d; i++) out[i]! += x[t * d + i]!;
  for (let i = 0; i < d; i++) out[i]! /= ids.length;
  return out;
}

/** FLOPs of computing a prompt's features: the blocks run (projections and attention), plus the mean. */
export function featureFlops(model: Model, tokens: number, source: FeatureSource): number {
  const c = model.config;
  const blocks = layersOf(source);
  let flops = tokens * c.hiddenSize;
  for (let l = 0; l < blocks; l++) {
    const layer = model.transformer.weights.layers[l]!;
    for (const p of Object.values(layer.proj)) flops += 2 * tokens * p.weight.shape[0]! * p.weight.shape[1]!;
    // QK^T and AV over a causal prompt: each position attends to itself and those before it.
    flops += 4 * c.numHeads * c.headDim * ((tokens * (tokens + 1)) / 2);
  }
  return flops;
}

export interface Router {
  kind: RouterKind;
  source: FeatureSource;
  clusters: number;
  /** Standardisation of the features: train mean, and standard deviation (softmax; 1 where constant) or 1 (centroid). */
  mean: number[];
  std: number[];
  /** centroid: per cluster, the mean standardised feature of its training prompts. */
  centroids?: number[][];
  /** softmax: logits = weights · z + bias, weights [clusters][features]. */
  weights?: number[][];
  bias?: number[];
  /** softmax: the L2 penalty it was trained with. */
  l2?: number;
}

function standardise(r: ArrayLike<number>, mean: readonly number[], std: readonly number[]): number[] {
  return Array.from({ length: mean.length }, (_, i) => (r[i]! - mean[i]!) / std[i]!);
}

function checkTraining(
  features: readonly ArrayLike<number>[],
  targets: readonly number[],
  clusters: number,
): void {
  if (features.length === 0) fail('a router needs at least one training prompt');
  if (features.length !== targets.length) throw new RangeError('features and targets differ in length');
  if (targets.some((t) => !(Number.isInteger(t) && t >= 0 && t < clusters)))
    throw new RangeError(`targets must be clusters 0..${clusters - 1}`);
}

/**
 * Nearest centroid in the feature space as it is (centred, not scaled: scaling would give every uninformative
 * feature the weight of an informative one); a cluster without training prompts is never chosen.
 */
export function trainCentroidRouter(
  features: readonly ArrayLike<number>[],
  targets: readonly number[],
  clusters: number,
  source: FeatureSource,
): Router {
  checkTraining(features, targets, clusters);
  const mean = fitStandardisation(features).mean;
  const std = mean.map(() => 1);
  const d = mean.length;
  const sums = Array.from({ length: clusters }, () => new Array<number>(d).fill(0));
  const counts = new Array<number>(clusters).fill(0);
  features.forEach((f, i) => {
    const z = standardise(f, mean, std);
    counts[targets[i]!]!++;
    for (let j = 0; j < d; j++) sums[targets[i]!]![j]! += z[j]!;
  });
  const centroids = sums.map((s, c) => (counts[c] ? s.map((v) => v / counts[c]!) : s.map(() => Infinity)));
  return { kind: 'centroid', source, clusters, mean, std, centroids };
}

export interface SoftmaxOptions {
  /** L2 penalty on the weights (default 1e-3). */
  l2?: number;
  /** Full-batch Adam steps (default 300). */
  iterations?: number;
  learningRate?: number;
}

/** Multinomial logistic regression on the standardised features: mean cross-entropy + l2/2 |W|^2. */
export function trainSoftmaxRouter(
  features: readonly ArrayLike<number>[],
  targets: readonly number[],
  clusters: number,
  source: FeatureSource,
  o: SoftmaxOptions = {},
): Router {
  checkTraining(features, targets, clusters);
  const l2 = o.l2 ?? 1e-3;
  const iterations = o.iterations ?? 300;
  const lr = o.learningRate ?? 0.05;
  const { mean, std } = fitStandardisation(features);
  const d = mean.length;
  const z = features.map((f) => standardise(f, mean, std));
  const n = z.length;
  const k = clusters;
  // Parameters as one flat array: k rows of d weights, then k biases.
  const theta = new Float64Array(k * d + k);
  const grad = new Float64Array(theta.length);
  const m1 = new Float64Array(theta.length);
  const m2 = new Float64Array(theta.length);
  const p = new Float64Array(k);
  const [beta1, beta2, eps] = [0.9, 0.999, 1e-8];
  for (let step = 1; step <= iterations; step++) {
    grad.fill(0);
    for (let i = 0; i < n; i++) {
      softmaxInto(theta, z[i]!, k, d, p);
      p[targets[i]!]! -= 1;
      for (let c = 0; c < k; c++) {
        const g = p[c]! / n;
        if (g === 0) continue;
        const row = c * d;
        for (let j = 0; j < d; j++) grad[row + j]! += g * z[i]![j]!;
        grad[k * d + c]! += g;
      }
    }
    for (let j = 0; j < k * d; j++) grad[j]! += l2 * theta[j]!;
    for (let j = 0; j < theta.length; j++) {
      m1[j] = beta1 * m1[j]! + (1 - beta1) * grad[j]!;
      m2[j] = beta2 * m2[j]! + (1 - beta2) * grad[j]! ** 2;
      const mHat = m1[j]! / (1 - beta1 ** step);
      const vHat = m2[j]! / (1 - beta2 ** step);
      theta[j]! -= (lr * mHat) / (Math.sqrt(vHat) + eps);
    }
  }
  return {
    kind: 'softmax',
    source,
    clusters,
    mean,
    std,
    weights: Array.from({ length: k }, (_, c) => Array.from(theta.subarray(c * d, (c + 1) * d))),
    bias: Array.from(theta.subarray(k * d)),
    l2,
  };
}

function softmaxInto(
  theta: Float64Array,
  z: readonly number[],
  k: number,
  d: number,
  out: Float64Array,
): void {
  let max = -Infinity;
  for (let c = 0; c < k; c++) {
    let s = theta[k * d + c]!;
    const row = c * d;
    for (let j = 0; j < d; j++) s += theta[row + j]! * z[j]!;
    out[c] = s;
    if (s > max) max = s;
  }
  let sum = 0;
  for (let c = 0; c < k; c++) sum += out[c] = Math.exp(out[c]! - max);
  for (let c = 0; c < k; c++) out[c]! /= sum;
}

/** The gate's probabilities over clusters (softmax), or a one-hot of the nearest centroid. */
export function routerProbabilities(router: Router, feature: ArrayLike<number>): number[] {
  const z = standardise(feature, router.mean, router.std);
  if (router.kind === 'centroid') {
    const c = nearest(z, router.centroids!);
    return Array.from({ length: router.clusters }, (_, i) => (i === c ? 1 : 0));
  }
  const k = router.clusters;
  const d = router.mean.length;
  const theta = new Float64Array(k * d + k);
  router.weights!.forEach((w, c) => theta.set(w, c * d));
  theta.set(router.bias!, k * d);
  const p = new Float64Array(k);
  softmaxInto(theta, z, k, d, p);
  return Array.from(p);
}

/** The cluster a prompt's features route to (ties to the lowest cluster). */
export function route(router: Router, feature: ArrayLike<number>): number {
  const p = routerProbabilities(router, feature);
  let best = 0;
  for (let c = 1; c < p.length; c++) if (p[c]! > p[best]!) best = c;
  return best;
}

/** FLOPs of one routing decision given the features: standardising plus the classifier. */
export function routerFlops(router: Router): number {
  const d = router.mean.length;
  const k = router.clusters;
  // Standardise: a subtraction and a division per feature; centroid: k squared distances; softmax: k dot
  // products, k exponentials and the normalisation.
  return 2 * d + (router.kind === 'centroid' ? 3 * k * d : 2 * k * d + 3 * k);
}

export function trainRouter(
  kind: RouterKind,
  features: readonly ArrayLike<number>[],
  targets: readonly number[],
  clusters: number,
  source: FeatureSource,
  o: SoftmaxOptions = {},
): Router {
  return kind === 'centroid'
    ? trainCentroidRouter(features, targets, clusters, source)
    : trainSoftmaxRouter(features, targets, clusters, source, o);
}

/** Share of predictions equal to the targets. */
export function accuracy(predictions: readonly number[], targets: readonly number[]): number {
  if (predictions.length !== targets.length) throw new RangeError('predictions and targets differ in length');
  if (predictions.length === 0) return NaN;
  return predictions.filter((p, i) => p === targets[i]).length / predictions.length;
}

/**
 * Accuracy of `kind` under `folds`-fold cross-validation on the training prompts (folds by position i % folds,
 * so every fold sees each cluster when the rows interleave them): what chooses a router without the test set.
 */
export function crossValidatedAccuracy(
  kind: RouterKind,
  features: readonly ArrayLike<number>[],
  targets: readonly number[],
  clusters: number,
  source: FeatureSource,
  folds = 5,
  o: SoftmaxOptions = {},
): number {
  const n = features.length;
  const f = Math.min(folds, n);
  if (f < 2) return NaN;
  let correct = 0;
  for (let fold = 0; fold < f; fold++) {
    const train = Array.from({ length: n }, (_, i) => i).filter((i) => i % f !== fold);
    const held = Array.from({ length: n }, (_, i) => i).filter((i) => i % f === fold);
    const router = trainRouter(
      kind,
      train.map((i) => features[i]!),
      train.map((i) => targets[i]!),
      clusters,
      source,
      o,
    );
    for (const i of held) if (route(router, features[i]!) === targets[i]) correct++;
  }
  return correct / n;
}
