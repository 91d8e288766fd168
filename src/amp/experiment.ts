/**
 * The WINA-AMP experiment, end to end (`wina amp run`): per-sample activation signatures of the training items,
 * k-means clusters of those signatures, one WINA profile per cluster (same histogram / threshold / allocation code
 * as the uniform profile), a router from a pre-decoding prompt embedding to the cluster, and the comparison of
 * routed per-cluster profiles with the uniform profile on the test items at matched achieved sparsity.
 */
import { PCA } from 'ml-pca';
import { seededRandom } from '../io/random.js';
import type { Sample } from '../sparsity/datasets.js';
import { fail } from '../errors.js';
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
  pairedAccuracyDelta,
  pairedNllDelta,
  type Pass,
  runPass,
} from './evaluate.js';
import {
  fitStandardisation,
  groupCalibration,
  signatureKeys,
  type SampleSignatures,
  sampleSignatures,
  signatureVector,
  standardiseRow,
} from './signatures.js';
import { answerQuestions } from './report.js';
import type { AmpReport, CurvePoint, EvaluationRecord, RouterCandidate } from './report-types.js';
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

// The report's types live in report-types.ts; re-exported where callers have always found them.
export type { AmpReport, CurvePoint, EvaluationRecord, RouterCandidate } from './report-types.js';

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

/**
 * `wina amp run`: the data, then the stages of src/amp/README.md's Pipeline in its order, one function each
 * (below, in the same order). The timer's laps are the entries of `report.timings`.
 */
export async function runAmp(model: Model, options: AmpOptions): Promise<AmpRun> {
  const started = performance.now();
  const o = resolve(options, model);
  const timer = stageTimer();
  const ctx: RunContext = {
    model,
    o,
    layers: model.config.numLayers,
    progress: (stage) => (done, total) => o.onProgress?.(stage, done, total),
  };

  const data = loadData(ctx);
  timer.lap('data');
  const signatures = await measureSignatures(ctx, data);
  timer.lap('signatures');
  const clusters = clusterItems(ctx, data, signatures);
  timer.lap('cluster');
  const calibrated = calibrateClusterProfiles(ctx, data, signatures, clusters);
  timer.lap('profiles per cluster');
  await breathe();
  const routing = await chooseRouter(ctx, data, clusters);
  timer.lap('router');
  const evaluation = await evaluateProfiles(ctx, data, clusters, calibrated, routing, timer);
  const stages = { data, clusters, calibrated, routing, evaluation };
  return {
    report: buildReport(ctx, stages, timer.timings, started),
    amp: buildAmpProfile(ctx, stages),
    uniform: calibrated.uniform,
  };
}

/** What every stage reads. */
interface RunContext {
  model: Model;
  o: Resolved;
  layers: number;
  /** The progress callback of one named pass. */
  progress: (stage: string) => (done: number, total: number) => void;
}

/** Seconds per stage: each lap closes the stage since the previous lap. */
function stageTimer() {
  const timings: Record<string, number> = {};
  let stageStart = performance.now();
  return {
    timings,
    lap(name: string) {
      const now = performance.now();
      timings[name] = (timings[name] ?? 0) + (now - stageStart) / 1000;
      stageStart = now;
    },
  };
}
type StageTimer = ReturnType<typeof stageTimer>;

/** Let the event loop run between long passes (signals, progress output). */
const breathe = () => new Promise((resolve) => setImmediate(resolve));

interface LoadedData {
  train: ItemSet;
  test: ItemSet;
  testSpec: string;
  metric: AmpReport['metric'];
  trainLabels: string[];
}

/** The labelled train and test items (data.ts); tasks test on their own test split unless --test says otherwise. */
function loadData({ model, o }: RunContext): LoadedData {
  const dataOptions = {
    seqLen: o.seqLen,
    split: o.split,
    seed: o.seed,
    shots: o.shots,
    maxTokens: o.maxTokens,
  };
  const train = loadItems(o.train, 'train', model, { ...dataOptions, perLabel: o.trainPerLabel });
  const testSpec =
    o.test ?? (train.kind === 'tasks' ? o.train : fail('--test is required unless --train is tasks:...'));
  const test = loadItems(testSpec, 'test', model, { ...dataOptions, perLabel: o.testPerLabel });
  const metric = test.kind === 'tasks' ? 'accuracy' : 'perplexity';
  const trainLabels = train.items.map((i) => i.label);
  if (train.items.length < 4) fail(`WINA-AMP needs at least 4 training items, got ${train.items.length}`);
  return { train, test, testSpec, metric, trainLabels };
}

interface ItemSignatures {
  train: SampleSignatures;
  test: SampleSignatures;
}

/** 1. Signatures: every item's own dense calibration (its signature and compact histograms). */
async function measureSignatures(
  { model, o, progress }: RunContext,
  data: LoadedData,
): Promise<ItemSignatures> {
  const train = sampleSignatures(model, asSamples(data.train.items), o.method, progress('signatures train'));
  await breathe();
  const test = sampleSignatures(model, asSamples(data.test.items), o.method, progress('signatures test'));
  return { train, test };
}

interface Clusters {
  /** The signed layer.projection keys; each gives a mean and a standard deviation. */
  keys: string[];
  /** Length of a signature vector. */
  dimensions: number;
  /** k-means on the training signatures for every k searched, and the same search on column-shuffled ones. */
  searched: ReturnType<typeof chooseK>;
  nullSearch: ReturnType<typeof chooseK>;
  k: number;
  /** Cluster of each training item. */
  assignments: number[];
  candidates: AmpReport['clustering']['candidates'];
  /** Each test item's nearest centroid to its own signature: its true cluster, which the router should find. */
  truth: number[];
  /** Indices of each cluster's training items. */
  members: number[][];
  /** Test items per true cluster. */
  testSizes: number[];
  /** 2-D PCA of the standardised signatures, [item][x, y]. */
  projection: { explainedVariance: number[]; train: number[][]; test: number[][] };
}

/** 2. Clusters of the training signatures (standardised over the training items), k by silhouette or fixed. */
function clusterItems({ model, o }: RunContext, data: LoadedData, signatures: ItemSignatures): Clusters {
  const { trainLabels } = data;
  const keys = signatureKeys(model, o.method);
  const trainRows = signatures.train.calibration.samples.map((p) => signatureVector(p, keys));
  const standard = fitStandardisation(trainRows);
  const z = trainRows.map((r) => standardiseRow(r, standard));
  const zTest = signatures.test.calibration.samples.map((p) =>
    standardiseRow(signatureVector(p, keys), standard),
  );
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
  const train = project(z);
  const test = zTest.length ? project(zTest) : [];
  return {
    keys,
    dimensions: z[0]!.length,
    searched,
    nullSearch,
    k,
    assignments,
    candidates,
    truth,
    members,
    testSizes: Array.from({ length: k }, (_, c) => truth.filter((t) => t === c).length),
    projection: { explainedVariance: pca.getExplainedVariance().slice(0, 2), train, test },
  };
}

interface CalibratedProfiles {
  /** The uniform profile (all training items) and one per cluster (its items), by `wina calibrate`'s code. */
  uniform: Profile;
  clusters: Profile[];
  /** Their sparsity configs with every allocated sparsity shifted by `shift` (thresholds re-derived). */
  uniformAt: (shift: number) => SparsityConfig;
  clustersAt: (shift: number) => SparsityConfig[];
}

/**
 * 3. Profiles per cluster: the uniform profile from every training item's histograms, one profile per cluster from
 * its items' histograms, by the allocation and profile code `wina calibrate` runs.
 */
function calibrateClusterProfiles(
  { model, o, layers, progress }: RunContext,
  data: LoadedData,
  signatures: ItemSignatures,
  clusters: Clusters,
): CalibratedProfiles {
  const { method, sparsity } = o;
  const train = data.train.items;
  const allocate = (calibration: Calibration, indices: readonly number[], stage: string) => {
    if (o.allocation === 'uniform')
      return { allocation: uniformAllocation({ method, globalSparsity: sparsity }, layers) };
    // Greedy scores block outputs of a few of the group's items, spread over it.
    const n = Math.min(o.greedySamples, indices.length);
    const picked = Array.from({ length: n }, (_, i) => indices[Math.floor((i * indices.length) / n)]!);
    const samples = picked.map((i) => ({
      id: train[i]!.id,
      ids: train[i]!.prompt.slice(0, o.greedyTokens),
    }));
    return greedyAllocation(model, samples, calibration.histograms, {
      method,
      target: sparsity,
      step: o.greedyStep,
      onProgress: progress(stage),
    });
  };
  const profileOf = (calibration: Calibration, allocation: PerLayer, trace?: GreedyStep[][]) =>
    buildProfile(model, calibration, {
      sparsity,
      allocation,
      data: o.train,
      seqLen: o.seqLen,
      transform: false,
      greedy: trace,
    });
  const everyone = train.map((_, i) => i);
  const uniformAlloc = allocate(signatures.train.calibration, everyone, 'greedy uniform');
  const uniform = profileOf(
    signatures.train.calibration,
    uniformAlloc.allocation,
    'trace' in uniformAlloc ? uniformAlloc.trace : undefined,
  );
  const clusterCalibrations = clusters.members.map((m) => groupCalibration(signatures.train, m));
  const clusterProfiles = clusterCalibrations.map((cal, c) => {
    const a = allocate(cal, clusters.members[c]!, `greedy cluster ${c}`);
    const p = profileOf(cal, a.allocation, 'trace' in a ? a.trace : undefined);
    // amp.json carries the router and the allocations, not every training item's signature.
    delete p.samples;
    return p;
  });
  const clusterHistograms = clusterCalibrations.map((c) => c.histograms);
  return {
    uniform,
    clusters: clusterProfiles,
    uniformAt: (shift) =>
      shiftedConfig(
        method,
        sparsity,
        signatures.train.calibration.histograms,
        uniform.allocation,
        shift,
        layers,
      ),
    clustersAt: (shift) =>
      clusterProfiles.map((p, c) =>
        shiftedConfig(method, sparsity, clusterHistograms[c]!, p.allocation, shift, layers),
      ),
  };
}

type TrainedRouter = RouterCandidate & { router: Router; predictions: number[] };

interface Routing {
  candidates: TrainedRouter[];
  chosen: TrainedRouter;
  /** The chosen router's cluster for each test item. */
  routed: number[];
}

/** 4. Router: every input x classifier asked for, the best by cross-validated accuracy on train (ties: fewer FLOPs). */
async function chooseRouter(
  { model, o, layers }: RunContext,
  data: LoadedData,
  clusters: Clusters,
): Promise<Routing> {
  const { train, test } = data;
  const { assignments, k, truth } = clusters;
  const sources: FeatureSource[] =
    o.routerInput === 'auto' ? (layers > 1 ? ['embed', 'layer:1'] : ['embed']) : [o.routerInput];
  const kinds: RouterKind[] = o.router === 'auto' ? [...ROUTER_KINDS] : [o.router];
  const candidates: TrainedRouter[] = [];
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
      candidates.push({
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
  const chosen = candidates.reduce((a, b) =>
    b.cvAccuracy > a.cvAccuracy + 1e-12 ||
    (Math.abs(b.cvAccuracy - a.cvAccuracy) <= 1e-12 && b.flopsPerPrompt < a.flopsPerPrompt)
      ? b
      : a,
  );
  return { candidates, chosen, routed: chosen.predictions };
}

interface Evaluation {
  /** In report order: uniform and amp-oracle on train, then dense, uniform, amp-routed, amp-oracle on test. */
  records: EvaluationRecord[];
  onTest: TestEvaluation;
  uniformOnTrain: Pass;
  matching: AmpReport['matching'];
  curves: AmpReport['curves'];
}

/**
 * 5. Evaluation: on train (leakage-prone) and on test, the routed profiles matched to the uniform profile's
 * achieved sparsity on test, and both profiles' curves at further target sparsities.
 */
async function evaluateProfiles(
  ctx: RunContext,
  data: LoadedData,
  clusters: Clusters,
  calibrated: CalibratedProfiles,
  routing: Routing,
  timer: StageTimer,
): Promise<Evaluation> {
  const onTrain = await evaluateOnTrain(ctx, data.train.items, clusters.assignments, calibrated);
  timer.lap('evaluate train');
  await breathe();
  const onTest = await evaluateOnTest(ctx, data.test.items, clusters.truth, calibrated, routing);
  timer.lap('evaluate test');
  const curves = await measureCurves(ctx, data, clusters.truth, calibrated, routing.routed, onTest);
  timer.lap('curves');
  const { target, iterations, best } = onTest.matching;
  return {
    records: [
      onTrain.uniform,
      onTrain.ampOracle,
      onTest.dense,
      onTest.uniform,
      onTest.ampRouted,
      onTest.ampOracle,
    ],
    onTest,
    uniformOnTrain: onTrain.uniformPass,
    matching: {
      uniformAchieved: target,
      tolerance: ctx.o.tolerance,
      iterations: iterations.map(({ shift, achieved }) => ({ shift, achieved })),
      matched: Math.abs(best.achieved - target) <= ctx.o.tolerance,
      shift: best.shift,
    },
    curves,
  };
}

/** One scoring pass over `items`, item i under `configs[use[i]]` (undefined: dense), counted per `groups`. */
function scorePass(
  { model, o, progress }: RunContext,
  stage: string,
  items: readonly AmpItem[],
  configs: (SparsityConfig | undefined)[],
  use: readonly number[],
  groups?: readonly number[],
): Pass {
  return runPass(model, items, { configs, use, groups, maxTokens: o.maxTokens, onProgress: progress(stage) });
}

const everyItemUses = (config: number, items: readonly AmpItem[]) => items.map(() => config);

/** On train, leakage-prone: the profiles were calibrated, and clustered, on these items. */
async function evaluateOnTrain(
  ctx: RunContext,
  items: readonly AmpItem[],
  assignments: readonly number[],
  calibrated: CalibratedProfiles,
) {
  const { sparsity } = ctx.o;
  const uniformPass = scorePass(
    ctx,
    'uniform on train',
    items,
    [calibrated.uniformAt(0)],
    everyItemUses(0, items),
    assignments,
  );
  const uniform = evaluationRecord('uniform', 'train', items, uniformPass, 0, sparsity);
  await breathe();
  const oraclePass = scorePass(
    ctx,
    'amp-oracle on train',
    items,
    calibrated.clustersAt(0),
    assignments,
    assignments,
  );
  const ampOracle = evaluationRecord('amp-oracle', 'train', items, oraclePass, 0, sparsity);
  return { uniformPass, uniform, ampOracle };
}

interface TestEvaluation {
  dense: EvaluationRecord;
  uniform: EvaluationRecord;
  ampRouted: EvaluationRecord;
  ampOracle: EvaluationRecord;
  densePass: Pass;
  uniformPass: Pass;
  matching: Matching;
}

/** On test: dense, uniform, routed AMP at the matched shift, and the oracle (true clusters) at the same shift. */
async function evaluateOnTest(
  ctx: RunContext,
  items: readonly AmpItem[],
  truth: readonly number[],
  calibrated: CalibratedProfiles,
  routing: Routing,
): Promise<TestEvaluation> {
  const { sparsity } = ctx.o;
  const { routed } = routing;
  const densePass = scorePass(ctx, 'dense on test', items, [undefined], everyItemUses(0, items));
  const dense = evaluationRecord('dense', 'test', items, densePass, 0, sparsity);
  await breathe();
  const uniformPass = scorePass(
    ctx,
    'uniform on test',
    items,
    [calibrated.uniformAt(0)],
    everyItemUses(0, items),
    truth,
  );
  const uniform = evaluationRecord('uniform', 'test', items, uniformPass, 0, sparsity);
  await breathe();
  const routedAt = (shift: number) =>
    scorePass(
      ctx,
      `amp-routed on test (shift ${shift.toFixed(4)})`,
      items,
      calibrated.clustersAt(shift),
      routed,
      routed,
    );
  const matching = await matchAchievedSparsity(routedAt, uniformPass.achievedSparsity, ctx.o);
  const { best } = matching;
  const ampRouted = evaluationRecord(
    'amp-routed',
    'test',
    items,
    best.pass,
    best.shift,
    sparsity,
    routing.chosen.secondsPerPrompt,
  );
  await breathe();
  // The oracle at the matched shift differs from routed AMP in the routing only.
  const oraclePass = scorePass(
    ctx,
    'amp-oracle on test',
    items,
    calibrated.clustersAt(best.shift),
    truth,
    truth,
  );
  const ampOracle = evaluationRecord('amp-oracle', 'test', items, oraclePass, best.shift, sparsity);
  return { dense, uniform, ampRouted, ampOracle, densePass, uniformPass, matching };
}

/**
 * Curves on test, each sorted by achieved sparsity: the uniform profile at its own allocation, routed AMP at every
 * matching pass, and both at every --curve target (the same shift of their allocations).
 */
async function measureCurves(
  ctx: RunContext,
  data: LoadedData,
  truth: readonly number[],
  calibrated: CalibratedProfiles,
  routed: readonly number[],
  onTest: TestEvaluation,
): Promise<AmpReport['curves']> {
  const { o } = ctx;
  const items = data.test.items;
  const point = (p: Pass, shift: number): CurvePoint => {
    const overall = labelledMetrics(items, p.scores).overall;
    return {
      target: clamp(o.sparsity + shift),
      shift,
      sparsity: p.achievedSparsity,
      value: metricValue(data.metric, overall),
      nllPerToken: overall.nllPerToken,
      gflopsPerToken: p.gflopsPerToken,
    };
  };
  const uniform: CurvePoint[] = [point(onTest.uniformPass, 0)];
  const ampRouted: CurvePoint[] = onTest.matching.iterations.map((it) => point(it.pass, it.shift));
  for (const t of o.curve) {
    await breathe();
    const shift = t - o.sparsity;
    const u = scorePass(
      ctx,
      `uniform on test at ${t}`,
      items,
      [calibrated.uniformAt(shift)],
      everyItemUses(0, items),
      truth,
    );
    uniform.push(point(u, shift));
    const a = scorePass(
      ctx,
      `amp-routed on test at ${t}`,
      items,
      calibrated.clustersAt(shift),
      routed,
      routed,
    );
    ampRouted.push(point(a, shift));
  }
  uniform.sort((a, b) => a.sparsity - b.sparsity);
  ampRouted.sort((a, b) => a.sparsity - b.sparsity);
  return { uniform, ampRouted };
}

interface MatchingPass {
  shift: number;
  achieved: number;
  pass: Pass;
}

interface Matching {
  /** The uniform profile's achieved sparsity on test. */
  target: number;
  iterations: MatchingPass[];
  /** The pass closest to the target. */
  best: MatchingPass;
}

/**
 * Matching: one shift of every cluster's allocation, by secant steps, until the routed achieved sparsity is within
 * the tolerance of `target` or the passes run out. Only compute counts steer it, never the metric.
 */
async function matchAchievedSparsity(
  routedAt: (shift: number) => Pass,
  target: number,
  o: Pick<Resolved, 'sparsity' | 'tolerance' | 'matchIterations'>,
): Promise<Matching> {
  const iterations: MatchingPass[] = [];
  const measure = (shift: number) => {
    const pass = routedAt(shift);
    iterations.push({ shift, achieved: pass.achievedSparsity, pass });
    return pass;
  };
  let pass = measure(0);
  while (Math.abs(pass.achievedSparsity - target) > o.tolerance && iterations.length < o.matchIterations) {
    await breathe();
    const [a, b] = iterations.slice(-2);
    // Secant on the last two points; the first step assumes achieved moves one for one with the shift.
    const slope =
      b && Math.abs(b.shift - a!.shift) > 1e-9 ? (b.achieved - a!.achieved) / (b.shift - a!.shift) : 1;
    const last = iterations.at(-1)!;
    const shift = last.shift + (target - last.achieved) / (slope > 0.05 ? slope : 1);
    // Keep the target sparsity (sparsity + shift) in [0, 0.99].
    pass = measure(Math.max(-o.sparsity, Math.min(0.99 - o.sparsity, shift)));
  }
  const best = iterations.reduce((x, y) =>
    Math.abs(y.achieved - target) < Math.abs(x.achieved - target) ? y : x,
  );
  return { target, iterations, best };
}

function evaluationRecord(
  name: string,
  data: 'train' | 'test',
  items: readonly AmpItem[],
  pass: Pass,
  shift: number,
  sparsity: number,
  routerSeconds = 0,
): EvaluationRecord {
  return {
    name,
    data,
    leakageProne: data === 'train' && name !== 'dense',
    shift,
    targetSparsity: name === 'dense' ? 0 : clamp(sparsity + shift),
    achievedSparsity: pass.achievedSparsity,
    gflopsPerToken: pass.gflopsPerToken,
    secondsPerItem: pass.secondsPerItem,
    routerSecondsPerItem: routerSeconds,
    ...labelledMetrics(items, pass.scores),
  };
}

/** The number a report compares: perplexity for passages, accuracy for tasks. */
function metricValue(metric: AmpReport['metric'], m: Metrics): number {
  return metric === 'perplexity' ? m.perplexity : m.accuracy!;
}

interface StageResults {
  data: LoadedData;
  clusters: Clusters;
  calibrated: CalibratedProfiles;
  routing: Routing;
  evaluation: Evaluation;
}

/** 6. Report: the report document (report.json) and its four answers (report.ts). */
function buildReport(
  ctx: RunContext,
  stages: StageResults,
  timings: Record<string, number>,
  started: number,
): AmpReport {
  const { model, o, layers } = ctx;
  const { data, clusters, calibrated, routing, evaluation } = stages;
  const { train, test, testSpec, metric } = data;
  const { assignments, truth, projection, k } = clusters;
  const { routed } = routing;
  const matched = evaluation.onTest.matching.best.pass;
  const base: Omit<AmpReport, 'answers'> = {
    format: 'wina-amp',
    version: 1,
    command: o.command,
    model: model.info.source,
    fingerprint: fingerprint(model),
    architecture: model.info.architecture,
    method: o.method,
    sparsity: o.sparsity,
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
    clustering: clusteringSection(o, data, clusters),
    projection: {
      explainedVariance: projection.explainedVariance,
      train: train.items.map((it, i) => ({
        id: it.id,
        label: it.label,
        cluster: assignments[i]!,
        x: projection.train[i]![0]!,
        y: projection.train[i]![1] ?? 0,
      })),
      test: test.items.map((it, i) => ({
        id: it.id,
        label: it.label,
        cluster: truth[i]!,
        routed: routed[i]!,
        x: projection.test[i]![0]!,
        y: projection.test[i]![1] ?? 0,
      })),
    },
    allocations: {
      projections: [...PROJECTIONS],
      uniform: grid(
        layers,
        (l, p) => calibrated.uniform.allocation[l]?.[p as keyof PerLayer[number]] ?? 0,
      ) as number[][],
      clusters: calibrated.clusters.map(
        (cp) => grid(layers, (l, p) => cp.allocation[l]?.[p as keyof PerLayer[number]] ?? 0) as number[][],
      ),
    },
    achieved: {
      uniformOnTrain: evaluation.uniformOnTrain.groupCounts.map((c) => sparsityGrid(layers, c)),
      routedOnTest: Array.from({ length: k }, (_, c) =>
        sparsityGrid(layers, matched.groupCounts[c] ?? { kept: {}, total: {} }),
      ),
    },
    router: routerSection(data, clusters, routing, evaluation.onTest.densePass),
    evaluations: evaluation.records,
    matching: evaluation.matching,
    curves: evaluation.curves,
    comparison: comparisonSection(metric, evaluation),
    timings,
    seconds: (performance.now() - started) / 1000,
  };
  return { ...base, answers: answerQuestions(base) };
}

function clusteringSection(o: Resolved, data: LoadedData, clusters: Clusters): AmpReport['clustering'] {
  const { train, test, trainLabels } = data;
  const { k, assignments, truth, members, searched, nullSearch, testSizes } = clusters;
  const labels = [...new Set(trainLabels)];
  const table = contingency(assignments, trainLabels);
  return {
    features: `mean and standard deviation of log2 ${o.method} score per layer and projection (${clusters.keys.length} x 2), standardised over the training items`,
    dimensions: clusters.dimensions,
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
    candidates: clusters.candidates,
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
  };
}

function routerSection(
  data: LoadedData,
  clusters: Clusters,
  routing: Routing,
  denseOnTest: Pass,
): AmpReport['router'] {
  const { test } = data;
  const { k, truth, testSizes } = clusters;
  const { chosen, routed } = routing;
  const routerRecord = (c: TrainedRouter): RouterCandidate => ({
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
  const meanPromptTokens = test.items.reduce((n, it) => n + it.prompt.length, 0) / test.items.length;
  return {
    source: chosen.source,
    kind: chosen.kind,
    chosenBy: routing.candidates.length > 1 ? 'cross-validation' : 'option',
    candidates: routing.candidates.map(routerRecord),
    testAccuracy: chosen.testAccuracy,
    majorityBaseline: Math.max(...testSizes) / Math.max(1, test.items.length),
    confusion,
    predictions: routed,
    truth,
    flopsPerPrompt: chosen.flopsPerPrompt,
    secondsPerPrompt: chosen.secondsPerPrompt,
    flopsShareOfPrefill: chosen.flopsPerPrompt / (denseOnTest.gflopsPerToken * 1e9 * meanPromptTokens),
  };
}

/** Routed AMP against the uniform profile on test, at the matched shift. */
function comparisonSection(metric: AmpReport['metric'], evaluation: Evaluation): AmpReport['comparison'] {
  const { onTest, curves } = evaluation;
  const matched = onTest.matching.best.pass;
  const valueOf = (m: Metrics) => metricValue(metric, m);
  return {
    metric,
    uniform: valueOf(onTest.uniform.overall),
    ampRouted: valueOf(onTest.ampRouted.overall),
    ampOracle: valueOf(onTest.ampOracle.overall),
    dense: valueOf(onTest.dense.overall),
    achieved: {
      uniform: onTest.uniform.achievedSparsity,
      ampRouted: onTest.ampRouted.achievedSparsity,
      ampOracle: onTest.ampOracle.achievedSparsity,
    },
    nll: pairedNllDelta(onTest.uniformPass.scores, matched.scores),
    ...(metric === 'accuracy'
      ? { accuracy: pairedAccuracyDelta(onTest.uniformPass.scores, matched.scores) }
      : {}),
    interpolated: interpolate(
      curves.ampRouted,
      curves.uniform.find((p) => p.shift === 0)!,
    ),
    latency: {
      uniform: onTest.uniform.secondsPerItem,
      ampRouted: onTest.ampRouted.secondsPerItem + onTest.ampRouted.routerSecondsPerItem,
    },
  };
}

/** 6. amp.json: the chosen router and one profile per cluster, for --profile in generate / eval / serve. */
function buildAmpProfile(
  { o }: RunContext,
  { data, clusters, calibrated, routing }: StageResults,
): AmpProfile {
  return {
    format: AMP_PROFILE_FORMAT,
    version: 1,
    model: calibrated.uniform.model,
    method: o.method,
    sparsity: o.sparsity,
    router: routing.chosen.router,
    clusters: calibrated.clusters.map((profile, c) => ({
      id: c,
      size: clusters.members[c]!.length,
      labels: countLabels(clusters.members[c]!.map((i) => data.train.items[i]!)),
      profile,
    })),
    calibration: { data: o.train, samples: data.train.items.length, seqLen: o.seqLen },
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
