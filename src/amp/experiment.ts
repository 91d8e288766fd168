/**
 * The WINA-AMP experiment, end to end (`wina amp run`): per-sample activation profiles of the training items,
 * k-means clusters of those profiles, one WINA profile per cluster (same histogram / threshold / allocation code
 * as the uniform profile), a router from a pre-decoding prompt embedding to the cluster, and the comparison of
 * routed per-cluster profiles with the uniform profile on the test items at matched achieved sparsity.
 */
import { PCA } from 'ml-pca';
import { seededRandom } from '../io/random.js';
import type { Sample } from '../sparsity/datasets.js';
import { fail } from '../io/errors.js';
import { PROJECTIONS } from '../model/config.js';
import type { Model } from '../model/model.js';
import type { Calibration } from '../sparsity/calibrate.js';
import { METHODS, type Method, type SparsityConfig } from '../sparsity/config.js';
import { greedyAllocation } from '../sparsity/greedy.js';
import type { Histogram } from '../sparsity/histogram.js';
import {
  buildProfile,
  fingerprint,
  type GreedyStep,
  type PerLayer,
  type Profile,
  thresholdsFor,
  uniformAllocation,
} from '../sparsity/profile.js';
import { AMP_PROFILE_FORMAT, type AmpProfile } from './amp-profile.js';
import {
  adjustedRandIndex,
  chooseK,
  type Clustering,
  contingency,
  nearest,
  purity,
  shuffleColumns,
} from './cluster.js';
import { type AmpItem, type ItemSet, loadItems } from './data.js';
import {
  labelledMetrics,
  type Metrics,
  type PairedDelta,
  pairedAccuracyDelta,
  pairedNllDelta,
  type Pass,
  runPass,
} from './evaluate.js';
import {
  fitStandardisation,
  groupCalibration,
  profileKeys,
  profileSamples,
  profileVector,
  standardiseRow,
} from './profiles.js';
import { answerQuestions, type Answers } from './report.js';
import {
  accuracy,
  crossValidatedAccuracy,
  type FeatureSource,
  featureFlops,
  promptFeatures,
  route,
  type Router,
  ROUTER_KINDS,
  type RouterKind,
  routerFlops,
  trainRouter,
} from './router.js';

export interface AmpOptions {
  /** Data specs (see data.ts): PATH, passages:PATH or tasks:T1,T2. Without `test`, tasks use their test split. */
  train: string;
  test?: string;
  method?: Method;
  /** Target sparsity of the uniform and the cluster profiles (default 0.5). */
  sparsity?: number;
  /** A number of clusters, or 'auto': the k in 2..maxClusters with the highest silhouette (default). */
  clusters?: 'auto' | number;
  maxClusters?: number;
  /** Per-projection allocation of every profile: uniform (default) or TEAL's greedy search. */
  allocation?: 'uniform' | 'greedy';
  greedySamples?: number;
  greedyStep?: number;
  /** Greedy compares block outputs on each sample's first this many tokens (default 128). */
  greedyTokens?: number;
  seqLen?: number;
  trainPerLabel?: number;
  testPerLabel?: number;
  split?: number;
  seed?: number;
  shots?: number;
  maxTokens?: number;
  /** The router's input ('auto': embed and layer:1, chosen by cross-validation on the training set). */
  routerInput?: 'auto' | FeatureSource;
  router?: 'auto' | RouterKind;
  /** Further target sparsities for the sparsity-vs-metric curves (default: target - 0.1 and target + 0.1). */
  curve?: number[];
  /** Achieved sparsities closer than this count as matched (default 0.001). */
  tolerance?: number;
  matchIterations?: number;
  command?: string;
  onProgress?: (stage: string, done: number, total: number) => void;
}

type Resolved = Required<
  Omit<AmpOptions, 'test' | 'trainPerLabel' | 'testPerLabel' | 'command' | 'onProgress'>
> &
  Pick<AmpOptions, 'test' | 'trainPerLabel' | 'testPerLabel' | 'command' | 'onProgress'>;

export interface EvaluationRecord {
  /** dense, uniform, amp-routed, amp-oracle. */
  name: string;
  data: 'train' | 'test';
  /** Evaluated on the data its profiles were calibrated on (and, for amp-oracle on train, clustered on). */
  leakageProne: boolean;
  /** Shift added to every projection's allocated sparsity (the knob that matches achieved sparsity). */
  shift: number;
  targetSparsity: number;
  achievedSparsity: number;
  gflopsPerToken: number;
  secondsPerItem: number;
  /** Routing (features + classifier) per item; 0 when not routed. */
  routerSecondsPerItem: number;
  overall: Metrics;
  byLabel: Record<string, Metrics>;
}

export interface CurvePoint {
  target: number;
  shift: number;
  sparsity: number;
  value: number;
  nllPerToken: number;
  gflopsPerToken: number;
}

export interface RouterCandidate {
  source: FeatureSource;
  kind: RouterKind;
  cvAccuracy: number;
  trainAccuracy: number;
  testAccuracy: number;
  flopsPerPrompt: number;
  secondsPerPrompt: number;
}

export interface AmpReport {
  format: 'wina-amp';
  version: 1;
  command?: string;
  model: string;
  fingerprint: string;
  architecture: string;
  method: Method;
  sparsity: number;
  metric: 'perplexity' | 'accuracy';
  options: Record<string, unknown>;
  data: Record<
    'train' | 'test',
    { spec: string; n: number; promptTokens: number; labels: Record<string, number> }
  >;
  clustering: {
    features: string;
    dimensions: number;
    k: number;
    chosenBy: 'silhouette' | 'option';
    silhouette: number;
    /** Best silhouette of the same search on the profiles with each column shuffled on its own. */
    nullSilhouette: number;
    nullK: number;
    purity: number;
    ari: number;
    /** Purity of a single cluster: the largest label's share. */
    majorityPurity: number;
    labels: string[];
    sizes: number[];
    contingency: Record<string, Record<string, number>>;
    candidates: { k: number; silhouette: number; inertia: number; purity: number; ari: number }[];
    test: { sizes: number[]; purity: number; ari: number };
  };
  projection: {
    explainedVariance: number[];
    train: { id: string; label: string; cluster: number; x: number; y: number }[];
    test: { id: string; label: string; cluster: number; routed: number; x: number; y: number }[];
  };
  allocations: {
    projections: string[];
    uniform: number[][];
    clusters: number[][][];
  };
  /** Measured sparsity per cluster, [cluster][layer][projection]: of the uniform profile on each cluster's
   * training items, and of the routed cluster profiles on the test items routed to each cluster. */
  achieved: { uniformOnTrain: (number | null)[][][]; routedOnTest: (number | null)[][][] };
  router: {
    source: FeatureSource;
    kind: RouterKind;
    chosenBy: 'cross-validation' | 'option';
    candidates: RouterCandidate[];
    testAccuracy: number;
    /** Share of the most common true test cluster: what always predicting it scores. */
    majorityBaseline: number;
    /** [true cluster][routed cluster] counts on test. */
    confusion: number[][];
    predictions: number[];
    truth: number[];
    flopsPerPrompt: number;
    secondsPerPrompt: number;
    /** Router FLOPs over the dense FLOPs of the prompts' prefill. */
    flopsShareOfPrefill: number;
  };
  evaluations: EvaluationRecord[];
  matching: {
    uniformAchieved: number;
    tolerance: number;
    iterations: { shift: number; achieved: number }[];
    matched: boolean;
    shift: number;
  };
  curves: { uniform: CurvePoint[]; ampRouted: CurvePoint[] };
  comparison: {
    metric: 'perplexity' | 'accuracy';
    uniform: number;
    ampRouted: number;
    ampOracle: number;
    dense: number;
    achieved: { uniform: number; ampRouted: number; ampOracle: number };
    /** amp-routed minus uniform, per item paired: NLL per token (log perplexity ratio), and accuracy. */
    nll: PairedDelta;
    accuracy?: PairedDelta;
    /**
     * The routed AMP curve read (linearly) at exactly the uniform profile's achieved sparsity, beside the measured
     * matched pass; null when its points do not bracket it.
     */
    interpolated: {
      sparsity: number;
      nllPerToken: number;
      value: number;
      nllDelta: number;
      valueDelta: number;
    } | null;
    latency: { uniform: number; ampRouted: number };
  };
  answers: Answers;
  timings: Record<string, number>;
  seconds: number;
}

export interface AmpRun {
  report: AmpReport;
  amp: AmpProfile;
  uniform: Profile;
}

function resolve(o: AmpOptions, model: Model): Resolved {
  const sparsity = o.sparsity ?? 0.5;
  if (!(sparsity > 0 && sparsity < 1)) fail(`sparsity must be in (0, 1), got ${sparsity}`);
  const method = o.method ?? 'wina';
  if (!(METHODS as readonly string[]).includes(method) || method === 'dense' || method === 'cats')
    fail(`WINA-AMP profiles the seven projections: method must be wina, wina-paper or teal, got ${method}`);
  const clusters = o.clusters ?? 'auto';
  if (clusters !== 'auto' && !(Number.isInteger(clusters) && clusters >= 2))
    fail(`clusters must be auto or a whole number >= 2, got ${clusters}`);
  const maxClusters = o.maxClusters ?? 8;
  if (!(Number.isInteger(maxClusters) && maxClusters >= 2))
    fail(`max clusters must be a whole number >= 2, got ${maxClusters}`);
  const allocation = o.allocation ?? 'uniform';
  if (allocation !== 'uniform' && allocation !== 'greedy')
    fail(`allocation must be uniform or greedy, got ${allocation}`);
  const curve = o.curve ?? [sparsity - 0.1, sparsity + 0.1].filter((s) => s > 0 && s < 1);
  for (const s of curve) if (!(s > 0 && s < 1)) fail(`curve sparsities must be in (0, 1), got ${s}`);
  const routerKind = o.router ?? 'auto';
  if (routerKind !== 'auto' && !(ROUTER_KINDS as readonly string[]).includes(routerKind))
    fail(`router must be auto, ${ROUTER_KINDS.join(' or ')}, got ${routerKind}`);
  const positive = (v: number, what: string) => {
    if (!(Number.isInteger(v) && v >= 1)) fail(`${what} must be a whole number >= 1, got ${v}`);
    return v;
  };
  const tolerance = o.tolerance ?? 0.001;
  if (!(tolerance > 0 && tolerance < 0.5)) fail(`tolerance must be in (0, 0.5), got ${tolerance}`);
  const greedyStep = o.greedyStep ?? 0.1;
  if (!(greedyStep > 0 && greedyStep < 1)) fail(`greedy step must be in (0, 1), got ${greedyStep}`);
  return {
    ...o,
    method,
    sparsity,
    clusters,
    maxClusters,
    allocation,
    greedySamples: positive(o.greedySamples ?? 4, 'greedy samples'),
    greedyStep,
    greedyTokens: positive(o.greedyTokens ?? 128, 'greedy tokens'),
    seqLen: o.seqLen ?? Math.min(256, model.config.maxPositions),
    split: o.split ?? 0.5,
    seed: o.seed ?? 1,
    shots: o.shots ?? 0,
    maxTokens: o.maxTokens ?? 128,
    routerInput: o.routerInput ?? 'auto',
    router: routerKind,
    curve,
    tolerance,
    matchIterations: positive(o.matchIterations ?? 4, 'match iterations'),
  };
}

const asSamples = (items: readonly AmpItem[]): Sample[] =>
  items.map((it) => ({ id: it.id, label: it.label, ids: it.prompt }));

function countLabels(items: readonly AmpItem[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const it of items) out[it.label] = (out[it.label] ?? 0) + 1;
  return out;
}

function clamp(s: number): number {
  return Math.min(0.99, Math.max(0, s));
}

/** A profile's allocation shifted by `shift` (clamped to [0, 0.99]), thresholds re-derived from its histograms. */
export function shiftedConfig(
  method: Method,
  target: number,
  histograms: Map<string, Histogram>,
  allocation: PerLayer,
  shift: number,
  layers: number,
): SparsityConfig {
  const shifted: PerLayer = {};
  for (let l = 0; l < layers; l++)
    shifted[l] = Object.fromEntries(
      PROJECTIONS.map((p) => [p, clamp((allocation[l]?.[p] ?? target) + shift)]),
    );
  return {
    method,
    globalSparsity: clamp(target + shift),
    layers: shifted,
    mask: 'threshold',
    thresholds: thresholdsFor(histograms, (l, p) => shifted[l]![p]!, layers),
    prefill: 'all',
  };
}

/** [layer][projection] of a per-layer map. */
function grid(layers: number, value: (l: number, p: string) => number | null): (number | null)[][] {
  return Array.from({ length: layers }, (_, l) => PROJECTIONS.map((p) => value(l, p)));
}

function sparsityGrid(layers: number, counts: Pass['groupCounts'][number]): (number | null)[][] {
  return grid(layers, (l, p) => {
    const total = counts.total[`${l}.${p}`];
    return total ? 1 - (counts.kept[`${l}.${p}`] ?? 0) / total : null;
  });
}

export async function runAmp(model: Model, options: AmpOptions): Promise<AmpRun> {
  const started = performance.now();
  const o = resolve(options, model);
  const timings: Record<string, number> = {};
  let stageStart = performance.now();
  const lap = (name: string) => {
    const now = performance.now();
    timings[name] = (timings[name] ?? 0) + (now - stageStart) / 1000;
    stageStart = now;
  };
  const progress = (stage: string) => (done: number, total: number) => o.onProgress?.(stage, done, total);
  // Let the event loop run between long stages (signals, progress output).
  const breathe = () => new Promise((resolve) => setImmediate(resolve));
  const layers = model.config.numLayers;
  const method = o.method;
  const s = o.sparsity;

  // Data.
  const dataOptions = {
    seqLen: o.seqLen,
    split: o.split,
    seed: o.seed,
    shots: o.shots,
    maxTokens: o.maxTokens,
  };
  const train: ItemSet = loadItems(o.train, 'train', model, { ...dataOptions, perLabel: o.trainPerLabel });
  const testSpec =
    o.test ?? (train.kind === 'tasks' ? o.train : fail('--test is required unless --train is tasks:...'));
  const test: ItemSet = loadItems(testSpec, 'test', model, { ...dataOptions, perLabel: o.testPerLabel });
  const metric: AmpReport['metric'] = test.kind === 'tasks' ? 'accuracy' : 'perplexity';
  const trainLabels = train.items.map((i) => i.label);
  if (train.items.length < 4) fail(`WINA-AMP needs at least 4 training items, got ${train.items.length}`);
  lap('data');

  // 1. Per-sample profiles (dense).
  const trainProfiled = profileSamples(model, asSamples(train.items), method, progress('profile train'));
  await breathe();
  const testProfiled = profileSamples(model, asSamples(test.items), method, progress('profile test'));
  lap('profiles');

  // 3. Clusters of the standardised profile vectors.
  const keys = profileKeys(model, method);
  const trainRows = trainProfiled.calibration.samples.map((p) => profileVector(p, keys));
  const standard = fitStandardisation(trainRows);
  const z = trainRows.map((r) => standardiseRow(r, standard));
  const zTest = testProfiled.calibration.samples.map((p) => standardiseRow(profileVector(p, keys), standard));
  const ks = Array.from({ length: Math.min(o.maxClusters, z.length - 1) - 1 }, (_, i) => i + 2);
  if (o.clusters !== 'auto' && o.clusters > z.length - 1)
    fail(`cannot make ${o.clusters} clusters of ${z.length} training items`);
  const searched = chooseK(z, o.clusters === 'auto' ? ks : [...new Set([...ks, o.clusters])], o.seed);
  const clustering: Clustering = o.clusters === 'auto' ? searched.best : searched.all.get(o.clusters)!;
  const k = clustering.k;
  const assignments = clustering.assignments;
  const candidates = [...searched.all.values()]
    .filter((c) => o.clusters !== 'auto' || ks.includes(c.k))
    .map((c) => ({
      k: c.k,
      silhouette: searched.candidates.find((x) => x.k === c.k)!.silhouette,
      inertia: c.inertia,
      purity: purity(c.assignments, trainLabels),
      ari: adjustedRandIndex(c.assignments, trainLabels),
    }))
    .sort((a, b) => a.k - b.k);
  const nullSearch = chooseK(shuffleColumns(z, seededRandom(o.seed)), ks.length ? ks : [k], o.seed);
  const truth = zTest.map((row) => nearest(row, clustering.centroids));
  const members = Array.from({ length: k }, (_, c) => assignments.flatMap((a, i) => (a === c ? [i] : [])));
  const pca = new PCA(z, { center: true, scale: false });
  const project = (rows: number[][]) => pca.predict(rows, { nComponents: 2 }).to2DArray();
  const trainXY = project(z);
  const testXY = zTest.length ? project(zTest) : [];
  lap('cluster');

  // 4. Profiles: the uniform one on all training items, one per cluster on its items (same algorithms).
  const allocate = (calibration: Calibration, indices: readonly number[], stage: string) => {
    if (o.allocation === 'uniform')
      return { allocation: uniformAllocation({ method, globalSparsity: s }, layers) };
    const n = Math.min(o.greedySamples, indices.length);
    const picked = Array.from({ length: n }, (_, i) => indices[Math.floor((i * indices.length) / n)]!);
    const samples = picked.map((i) => ({
      id: train.items[i]!.id,
      ids: train.items[i]!.prompt.slice(0, o.greedyTokens),
    }));
    return greedyAllocation(model, samples, calibration.histograms, {
      method,
      target: s,
      step: o.greedyStep,
      onProgress: progress(stage),
    });
  };
  const profileOf = (calibration: Calibration, allocation: PerLayer, trace?: GreedyStep[][]) =>
    buildProfile(model, calibration, {
      sparsity: s,
      allocation,
      data: o.train,
      seqLen: o.seqLen,
      transform: false,
      greedy: trace,
    });
  const everyone = train.items.map((_, i) => i);
  const uniformAlloc = allocate(trainProfiled.calibration, everyone, 'greedy uniform');
  const uniform = profileOf(
    trainProfiled.calibration,
    uniformAlloc.allocation,
    'trace' in uniformAlloc ? uniformAlloc.trace : undefined,
  );
  const clusterCalibrations = members.map((m) => groupCalibration(trainProfiled, m));
  const clusterProfiles = clusterCalibrations.map((cal, c) => {
    const a = allocate(cal, members[c]!, `greedy cluster ${c}`);
    const p = profileOf(cal, a.allocation, 'trace' in a ? a.trace : undefined);
    delete p.samples;
    return p;
  });
  lap('profiles per cluster');
  await breathe();

  // 6. Routers: features before decoding -> cluster; chosen by cross-validation on train unless fixed.
  const sources: FeatureSource[] =
    o.routerInput === 'auto' ? (layers > 1 ? ['embed', 'layer:1'] : ['embed']) : [o.routerInput];
  const kinds: RouterKind[] = o.router === 'auto' ? [...ROUTER_KINDS] : [o.router];
  const routerCandidates: (RouterCandidate & { router: Router; predictions: number[] })[] = [];
  for (const source of sources) {
    const trainFeatures = train.items.map((it) => promptFeatures(model, it.prompt, source));
    const t0 = performance.now();
    const testFeatures = test.items.map((it) => promptFeatures(model, it.prompt, source));
    const featureSeconds = (performance.now() - t0) / 1000;
    for (const kind of kinds) {
      const router = trainRouter(kind, trainFeatures, assignments, k, source);
      const t1 = performance.now();
      const predictions = testFeatures.map((f) => route(router, f));
      const routeSeconds = (performance.now() - t1) / 1000;
      const meanTokens = test.items.reduce((n, it) => n + it.prompt.length, 0) / test.items.length;
      routerCandidates.push({
        source,
        kind,
        cvAccuracy: crossValidatedAccuracy(kind, trainFeatures, assignments, k, source),
        trainAccuracy: accuracy(
          trainFeatures.map((f) => route(router, f)),
          assignments,
        ),
        testAccuracy: accuracy(predictions, truth),
        flopsPerPrompt: featureFlops(model, meanTokens, source) + routerFlops(router),
        secondsPerPrompt: (featureSeconds + routeSeconds) / test.items.length,
        router,
        predictions,
      });
      await breathe();
    }
  }
  const chosen = routerCandidates.reduce((a, b) =>
    b.cvAccuracy > a.cvAccuracy + 1e-12 ||
    (Math.abs(b.cvAccuracy - a.cvAccuracy) <= 1e-12 && b.flopsPerPrompt < a.flopsPerPrompt)
      ? b
      : a,
  );
  const routed = chosen.predictions;
  lap('router');

  // Evaluation passes.
  const clusterHistograms = clusterCalibrations.map((c) => c.histograms);
  const uniformConfig = (shift: number) =>
    shiftedConfig(method, s, trainProfiled.calibration.histograms, uniform.allocation, shift, layers);
  const clusterConfigs = (shift: number) =>
    clusterProfiles.map((p, c) =>
      shiftedConfig(method, s, clusterHistograms[c]!, p.allocation, shift, layers),
    );
  const evaluations: EvaluationRecord[] = [];
  const record = (
    name: string,
    data: 'train' | 'test',
    items: readonly AmpItem[],
    pass: Pass,
    shift: number,
    routerSeconds = 0,
  ): EvaluationRecord => {
    const r: EvaluationRecord = {
      name,
      data,
      leakageProne: data === 'train' && name !== 'dense',
      shift,
      targetSparsity: name === 'dense' ? 0 : clamp(s + shift),
      achievedSparsity: pass.achievedSparsity,
      gflopsPerToken: pass.gflopsPerToken,
      secondsPerItem: pass.secondsPerItem,
      routerSecondsPerItem: routerSeconds,
      ...labelledMetrics(items, pass.scores),
    };
    evaluations.push(r);
    return r;
  };
  const passOf = (
    stage: string,
    items: readonly AmpItem[],
    configs: (SparsityConfig | undefined)[],
    use: readonly number[],
    groups?: readonly number[],
  ) => {
    const pass = runPass(model, items, {
      configs,
      use,
      groups,
      maxTokens: o.maxTokens,
      onProgress: progress(stage),
    });
    return pass;
  };
  const zeros = (items: readonly AmpItem[]) => items.map(() => 0);

  // 2 and 5: on train (leakage-prone: the profiles were calibrated, and clustered, on these items).
  const uniformTrain = passOf(
    'uniform on train',
    train.items,
    [uniformConfig(0)],
    zeros(train.items),
    assignments,
  );
  record('uniform', 'train', train.items, uniformTrain, 0);
  await breathe();
  const oracleTrain = passOf('amp-oracle on train', train.items, clusterConfigs(0), assignments, assignments);
  record('amp-oracle', 'train', train.items, oracleTrain, 0);
  lap('evaluate train');
  await breathe();

  // 2 and 7: on test.
  const denseTest = passOf('dense on test', test.items, [undefined], zeros(test.items));
  const denseRecord = record('dense', 'test', test.items, denseTest, 0);
  await breathe();
  const uniformTest = passOf('uniform on test', test.items, [uniformConfig(0)], zeros(test.items), truth);
  const uniformRecord = record('uniform', 'test', test.items, uniformTest, 0);
  await breathe();
  // Matching: shift every cluster's allocation until the routed achieved sparsity equals the uniform one's.
  const target = uniformTest.achievedSparsity;
  const iterations: { shift: number; achieved: number; pass: Pass }[] = [];
  const routedAt = (shift: number) => {
    const pass = passOf(
      `amp-routed on test (shift ${shift.toFixed(4)})`,
      test.items,
      clusterConfigs(shift),
      routed,
      routed,
    );
    iterations.push({ shift, achieved: pass.achievedSparsity, pass });
    return pass;
  };
  let shift = 0;
  let pass = routedAt(shift);
  while (Math.abs(pass.achievedSparsity - target) > o.tolerance && iterations.length < o.matchIterations) {
    await breathe();
    const [a, b] = iterations.slice(-2);
    // Secant on the last two points; the first step assumes achieved moves one for one with the shift.
    const slope =
      b && Math.abs(b.shift - a!.shift) > 1e-9 ? (b.achieved - a!.achieved) / (b.shift - a!.shift) : 1;
    const last = iterations.at(-1)!;
    shift = last.shift + (target - last.achieved) / (slope > 0.05 ? slope : 1);
    pass = routedAt(Math.max(-s, Math.min(0.99 - s, shift)));
  }
  const best = iterations.reduce((x, y) =>
    Math.abs(y.achieved - target) < Math.abs(x.achieved - target) ? y : x,
  );
  shift = best.shift;
  const routedRecord = record('amp-routed', 'test', test.items, best.pass, shift, chosen.secondsPerPrompt);
  await breathe();
  const oracleTest = passOf('amp-oracle on test', test.items, clusterConfigs(shift), truth, truth);
  const oracleRecord = record('amp-oracle', 'test', test.items, oracleTest, shift);
  lap('evaluate test');

  // Curves: both profiles at further target sparsities (the same shift of their allocations).
  const valueOf = (m: Metrics) => (metric === 'perplexity' ? m.perplexity : m.accuracy!);
  const point = (p: Pass, shiftOf: number): CurvePoint => {
    const overall = labelledMetrics(test.items, p.scores).overall;
    return {
      target: clamp(s + shiftOf),
      shift: shiftOf,
      sparsity: p.achievedSparsity,
      value: valueOf(overall),
      nllPerToken: overall.nllPerToken,
      gflopsPerToken: p.gflopsPerToken,
    };
  };
  const uniformCurve: CurvePoint[] = [point(uniformTest, 0)];
  const routedCurve: CurvePoint[] = iterations.map((it) => point(it.pass, it.shift));
  for (const t of o.curve) {
    await breathe();
    const d = t - s;
    const u = passOf(`uniform on test at ${t}`, test.items, [uniformConfig(d)], zeros(test.items), truth);
    uniformCurve.push(point(u, d));
    const a = passOf(`amp-routed on test at ${t}`, test.items, clusterConfigs(d), routed, routed);
    routedCurve.push(point(a, d));
  }
  uniformCurve.sort((a, b) => a.sparsity - b.sparsity);
  routedCurve.sort((a, b) => a.sparsity - b.sparsity);
  lap('curves');

  const routerRecord = (c: (typeof routerCandidates)[number]): RouterCandidate => ({
    source: c.source,
    kind: c.kind,
    cvAccuracy: c.cvAccuracy,
    trainAccuracy: c.trainAccuracy,
    testAccuracy: c.testAccuracy,
    flopsPerPrompt: c.flopsPerPrompt,
    secondsPerPrompt: c.secondsPerPrompt,
  });
  const confusion = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  truth.forEach((t, i) => confusion[t]![routed[i]!]!++);
  const testSizes = Array.from({ length: k }, (_, c) => truth.filter((t) => t === c).length);
  const meanPromptTokens = test.items.reduce((n, it) => n + it.prompt.length, 0) / test.items.length;
  const labels = [...new Set(trainLabels)];
  const table = contingency(assignments, trainLabels);

  const base: Omit<AmpReport, 'answers'> = {
    format: 'wina-amp',
    version: 1,
    command: o.command,
    model: model.info.source,
    fingerprint: fingerprint(model),
    architecture: model.info.architecture,
    method,
    sparsity: s,
    metric,
    options: {
      train: o.train,
      test: testSpec,
      clusters: o.clusters,
      maxClusters: o.maxClusters,
      allocation: o.allocation,
      ...(o.allocation === 'greedy'
        ? { greedySamples: o.greedySamples, greedyStep: o.greedyStep, greedyTokens: o.greedyTokens }
        : {}),
      seqLen: o.seqLen,
      trainPerLabel: o.trainPerLabel ?? null,
      testPerLabel: o.testPerLabel ?? null,
      split: o.split,
      seed: o.seed,
      shots: o.shots,
      maxTokens: o.maxTokens,
      routerInput: o.routerInput,
      router: o.router,
      curve: o.curve,
      tolerance: o.tolerance,
      matchIterations: o.matchIterations,
    },
    data: {
      train: {
        spec: o.train,
        n: train.items.length,
        promptTokens: tokensOf(train.items),
        labels: countLabels(train.items),
      },
      test: {
        spec: testSpec,
        n: test.items.length,
        promptTokens: tokensOf(test.items),
        labels: countLabels(test.items),
      },
    },
    clustering: {
      features: `mean and standard deviation of log2 ${method} score per layer and projection (${keys.length} x 2), standardised over the training items`,
      dimensions: z[0]!.length,
      k,
      chosenBy: o.clusters === 'auto' ? 'silhouette' : 'option',
      silhouette: searched.candidates.find((c) => c.k === k)!.silhouette,
      nullSilhouette: nullSearch.candidates.find((c) => c.k === nullSearch.best.k)!.silhouette,
      nullK: nullSearch.best.k,
      purity: purity(assignments, trainLabels),
      ari: adjustedRandIndex(assignments, trainLabels),
      majorityPurity: Math.max(...Object.values(countLabels(train.items))) / train.items.length,
      labels,
      sizes: members.map((m) => m.length),
      contingency: Object.fromEntries(
        Array.from({ length: k }, (_, c) => [
          String(c),
          Object.fromEntries(labels.map((l) => [l, table.get(c)?.get(l) ?? 0])),
        ]),
      ),
      candidates,
      test: {
        sizes: testSizes,
        purity: purity(
          truth,
          test.items.map((i) => i.label),
        ),
        ari: adjustedRandIndex(
          truth,
          test.items.map((i) => i.label),
        ),
      },
    },
    projection: {
      explainedVariance: pca.getExplainedVariance().slice(0, 2),
      train: train.items.map((it, i) => ({
        id: it.id,
        label: it.label,
        cluster: assignments[i]!,
        x: trainXY[i]![0]!,
        y: trainXY[i]![1] ?? 0,
      })),
      test: test.items.map((it, i) => ({
        id: it.id,
        label: it.label,
        cluster: truth[i]!,
        routed: routed[i]!,
        x: testXY[i]![0]!,
        y: testXY[i]![1] ?? 0,
      })),
    },
    allocations: {
      projections: [...PROJECTIONS],
      uniform: grid(
        layers,
        (l, p) => uniform.allocation[l]?.[p as keyof PerLayer[number]] ?? 0,
      ) as number[][],
      clusters: clusterProfiles.map(
        (cp) => grid(layers, (l, p) => cp.allocation[l]?.[p as keyof PerLayer[number]] ?? 0) as number[][],
      ),
    },
    achieved: {
      uniformOnTrain: uniformTrain.groupCounts.map((c) => sparsityGrid(layers, c)),
      routedOnTest: Array.from({ length: k }, (_, c) =>
        sparsityGrid(layers, best.pass.groupCounts[c] ?? { kept: {}, total: {} }),
      ),
    },
    router: {
      source: chosen.source,
      kind: chosen.kind,
      chosenBy: routerCandidates.length > 1 ? 'cross-validation' : 'option',
      candidates: routerCandidates.map(routerRecord),
      testAccuracy: chosen.testAccuracy,
      majorityBaseline: Math.max(...testSizes) / Math.max(1, test.items.length),
      confusion,
      predictions: routed,
      truth,
      flopsPerPrompt: chosen.flopsPerPrompt,
      secondsPerPrompt: chosen.secondsPerPrompt,
      flopsShareOfPrefill: chosen.flopsPerPrompt / (denseTest.gflopsPerToken * 1e9 * meanPromptTokens),
    },
    evaluations,
    matching: {
      uniformAchieved: target,
      tolerance: o.tolerance,
      iterations: iterations.map(({ shift, achieved }) => ({ shift, achieved })),
      matched: Math.abs(best.achieved - target) <= o.tolerance,
      shift,
    },
    curves: { uniform: uniformCurve, ampRouted: routedCurve },
    comparison: {
      metric,
      uniform: valueOf(uniformRecord.overall),
      ampRouted: valueOf(routedRecord.overall),
      ampOracle: valueOf(oracleRecord.overall),
      dense: valueOf(denseRecord.overall),
      achieved: {
        uniform: uniformRecord.achievedSparsity,
        ampRouted: routedRecord.achievedSparsity,
        ampOracle: oracleRecord.achievedSparsity,
      },
      nll: pairedNllDelta(uniformTest.scores, best.pass.scores),
      ...(metric === 'accuracy'
        ? { accuracy: pairedAccuracyDelta(uniformTest.scores, best.pass.scores) }
        : {}),
      interpolated: interpolate(
        routedCurve,
        uniformCurve.find((p) => p.shift === 0)!,
      ),
      latency: {
        uniform: uniformRecord.secondsPerItem,
        ampRouted: routedRecord.secondsPerItem + routedRecord.routerSecondsPerItem,
      },
    },
    timings,
    seconds: (performance.now() - started) / 1000,
  };
  const report: AmpReport = { ...base, answers: answerQuestions(base) };

  const amp: AmpProfile = {
    format: AMP_PROFILE_FORMAT,
    version: 1,
    model: uniform.model,
    method,
    sparsity: s,
    router: chosen.router,
    clusters: clusterProfiles.map((profile, c) => ({
      id: c,
      size: members[c]!.length,
      labels: countLabels(members[c]!.map((i) => train.items[i]!)),
      profile,
    })),
    calibration: { data: o.train, samples: train.items.length, seqLen: o.seqLen },
  };
  return { report, amp, uniform };
}

/** `curve` (sorted by achieved sparsity) read linearly at `at`'s achieved sparsity, and its difference to `at`. */
function interpolate(curve: readonly CurvePoint[], at: CurvePoint): AmpReport['comparison']['interpolated'] {
  const i = curve.findIndex((p) => p.sparsity >= at.sparsity);
  if (i < 0 || (i === 0 && curve[0]!.sparsity > at.sparsity)) return null;
  const b = curve[i]!;
  const a = i > 0 ? curve[i - 1]! : b;
  const t = b.sparsity === a.sparsity ? 0 : (at.sparsity - a.sparsity) / (b.sparsity - a.sparsity);
  const nllPerToken = a.nllPerToken + t * (b.nllPerToken - a.nllPerToken);
  const value = a.value + t * (b.value - a.value);
  return {
    sparsity: at.sparsity,
    nllPerToken,
    value,
    nllDelta: nllPerToken - at.nllPerToken,
    valueDelta: value - at.value,
  };
}

function tokensOf(items: readonly AmpItem[]): number {
  return items.reduce((n, it) => n + it.prompt.length, 0);
}
