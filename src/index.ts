/** The library API: what `import ... from 'wina'` gives. The CLI is a thin shell over these. */
export { WinaError } from './io/errors.js';
export { sharedPath } from './io/paths.js';
export { type ModelLocation, resolveModel } from './io/resolve.js';
export { openSafetensorsFolder, SafetensorsFile, type TensorSource } from './io/safetensors.js';
export type { DType, Tensor } from './io/tensor.js';
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
} from './model/model.js';
export { Sampler, type SamplingOptions } from './model/sampling.js';
export { type ForwardOptions, type LinearFn, Transformer } from './model/transformer.js';
export { loadTokenizer, StreamDecoder, type TextTokenizer } from './tokenizer/index.js';
