/**
 * The shape of a WINA-AMP report (report.json, `"format": "wina-amp"`): written by the pipeline (experiment.ts),
 * read by the answers and the Markdown (report.ts) and by the HTML report (src/report/amp.ts). A module of its own
 * so that none of them imports another to learn it.
 */
import type { Method } from '../sparsity/config.js';
import type { Metrics, PairedDelta } from './evaluate.js';
import type { FeatureSource, RouterKind } from './router.js';

export interface Answer {
  question: string;
  /** yes / weakly / partly / no, as the rule in `summary` gives it. */
  verdict: string;
  summary: string;
}

export interface Answers {
  clusters: Answer;
  labels: Answer;
  routing: Answer;
  profiles: Answer;
}

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
