/** Hyper-parameters of a decoder-only transformer, normalised from whichever file format they came in. */
export interface RopeConfig {
  type: 'default' | 'linear' | 'llama3' | 'longrope';
  theta: number;
  /** Channels of each head that are rotated (Phi-3's partial_rotary_factor; headDim otherwise). */
  rotaryDim: number;
  factor?: number;
  lowFreqFactor?: number;
  highFreqFactor?: number;
  originalMaxPositions?: number;
  shortFactor?: number[];
  longFactor?: number[];
  attentionFactor?: number;
}

export interface ModelConfig {
  /** Registry key: llama, mistral, qwen2, phi3 (llama2.c checkpoints load as llama). */
  modelType: string;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  vocabSize: number;
  maxPositions: number;
  rmsNormEps: number;
  rope: RopeConfig;
  tieEmbeddings: boolean;
  /** Biases on q/k/v (Qwen2, Llama's attention_bias), on o (Llama's attention_bias), on the MLP (mlp_bias). */
  qkvBias: boolean;
  oBias: boolean;
  mlpBias: boolean;
  /** Mistral's sliding-window attention; 0 = full causal attention. */
  slidingWindow: number;
  bosId: number | undefined;
  eosIds: number[];
}

export const PROJECTIONS = ['q', 'k', 'v', 'o', 'gate', 'up', 'down'] as const;
export type Projection = (typeof PROJECTIONS)[number];
