/** The library API: what `import ... from 'wina'` gives. The CLI is a thin shell over these. */
export { WinaError } from './errors.js';
export { sharedPath } from './io/paths.js';
export { type ModelLocation, resolveModel } from './io/resolve.js';
export { openSafetensorsFolder, SafetensorsFile, type TensorSource } from './io/safetensors.js';
export type { DType, Tensor } from './kernels/tensor.js';
export { type Kernels, referenceKernels } from './kernels/kernels.js';
export type { ModelConfig, Projection, RopeConfig } from './model/config.js';
export { KVCache } from './model/kv-cache.js';
export {
  type GeneratedToken,
  type GenerateOptions,
  type LoadOptions,
  loadModel,
  Model,
  type ModelInfo,
  type Projections,
} from './model/model.js';
export { Sampler, type SamplingOptions } from './model/sampling.js';
export { type ForwardOptions, type LinearFn, Transformer } from './model/transformer.js';
export { loadTokenizer, StreamDecoder, type TextTokenizer } from './tokenizer/index.js';
export { applyWina, SparseModel, SparsityStats } from './sparsity/apply.js';
export { METHODS, type Method, type SparsityConfig } from './sparsity/config.js';
export { calibrate, type Calibration } from './sparsity/calibrate.js';
export { greedyAllocation } from './sparsity/greedy.js';
export { buildProfile, type Profile, profileConfig, readProfile, writeProfile } from './sparsity/profile.js';
export { orthogonalTransform, saveCheckpoint, type TransformReport } from './sparsity/transform.js';
export {
  evaluate,
  type EvalOptions,
  type EvalReport,
  type EvalResult,
  gridSettings,
  type Setting,
  validate,
  type ValidateOptions,
} from './eval/harness.js';
export {
  extractAnswer,
  type NllTotals,
  perplexityMetrics,
  scoreChoiceItem,
  stderrOfMean,
} from './eval/metrics.js';
export { jsonResults, markdownReport, textTable } from './eval/report.js';
export { chunkedWindows, rollingWindows, Scorer, type ScoringModel, type Window } from './eval/scoring.js';
export { type Protocol, type TaskOptions, TASK_NAMES } from './eval/tasks.js';
export { type RunningServer, type ServeOptions, startServer } from './server/server.js';
export {
  barChart,
  type ChartSpec,
  heatmapChart,
  histogramChart,
  lineChart,
  registerReportKind,
  renderReport,
  type ReportKind,
  type ReportSource,
  readReportSource,
  scatterChart,
  type Section,
  writeReport,
} from './report/index.js';
export {
  type AmpProfile,
  applyAmp,
  RoutedModel,
  isAmpProfileFile,
  readAmpProfile,
  routeConfig,
  routePrompt,
  writeAmpProfile,
} from './amp/amp-profile.js';
export { type AmpOptions, type AmpReport, type AmpRun, runAmp } from './amp/experiment.js';
