import { fail } from '../../io/errors.js';
import type { ModelConfig, RopeConfig } from '../config.js';

export type RawConfig = Record<string, unknown>;

function int(raw: RawConfig, key: string, fallback?: number): number {
  const v = raw[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
    fail(`config.json: ${key} must be a positive integer, got ${JSON.stringify(raw[key])}`);
  }
  return v;
}

function ids(v: unknown): number[] {
  if (typeof v === 'number') return [v];
  if (Array.isArray(v)) return v.filter((x): x is number => typeof x === 'number');
  return [];
}

/**
 * RoPE settings from either transformers 5 (`rope_parameters`, theta inside) or 4.x (`rope_theta` +
 * `rope_scaling`).
 */
function ropeConfig(raw: RawConfig, headDim: number): RopeConfig {
  const params = (raw.rope_parameters ?? raw.rope_scaling ?? {}) as Record<string, unknown>;
  const theta = (params.rope_theta ?? raw.rope_theta ?? 10000) as number;
  const type = (params.rope_type ?? params.type ?? 'default') as string;
  const partial = (params.partial_rotary_factor ?? raw.partial_rotary_factor ?? 1) as number;
  const rope: RopeConfig = { type: 'default', theta, rotaryDim: Math.floor(headDim * partial) };
  if (type === 'default') return rope;
  if (type === 'linear') return { ...rope, type, factor: params.factor as number };
  if (type === 'llama3') {
    return {
      ...rope,
      type,
      factor: params.factor as number,
      lowFreqFactor: params.low_freq_factor as number,
      highFreqFactor: params.high_freq_factor as number,
      originalMaxPositions: params.original_max_position_embeddings as number,
    };
  }
  if (type === 'longrope' || type === 'su') {
    const original = (params.original_max_position_embeddings ??
      raw.original_max_position_embeddings) as number;
    const maxPositions = raw.max_position_embeddings as number;
    return {
      ...rope,
      type: 'longrope',
      originalMaxPositions: original,
      shortFactor: params.short_factor as number[],
      longFactor: params.long_factor as number[],
      attentionFactor:
        (params.attention_factor as number | undefined) ??
        (maxPositions > original ? Math.sqrt(1 + Math.log(maxPositions / original) / Math.log(original)) : 1),
    };
  }
  fail(`config.json: rope type "${type}" is not supported (supported: default, linear, llama3, longrope)`);
}

/** The fields Llama, Mistral, Qwen2 and Phi-3 configs share. */
export function parseHfConfig(raw: RawConfig, modelType: string): ModelConfig {
  const hiddenSize = int(raw, 'hidden_size');
  const numHeads = int(raw, 'num_attention_heads');
  const numKvHeads = int(raw, 'num_key_value_heads', numHeads);
  const headDim = int(raw, 'head_dim', hiddenSize / numHeads);
  if (numHeads % numKvHeads !== 0) {
    fail(
      `config.json: num_attention_heads ${numHeads} is not a multiple of num_key_value_heads ${numKvHeads}`,
    );
  }
  const act = raw.hidden_act ?? 'silu';
  if (act !== 'silu') fail(`config.json: hidden_act "${act}" is not supported (only silu)`);
  const attentionBias = raw.attention_bias === true;
  return {
    modelType,
    hiddenSize,
    intermediateSize: int(raw, 'intermediate_size'),
    numLayers: int(raw, 'num_hidden_layers'),
    numHeads,
    numKvHeads,
    headDim,
    vocabSize: int(raw, 'vocab_size'),
    maxPositions: int(raw, 'max_position_embeddings', 2048),
    rmsNormEps: (raw.rms_norm_eps ?? 1e-6) as number,
    rope: ropeConfig(raw, headDim),
    tieEmbeddings: raw.tie_word_embeddings === true,
    qkvBias: attentionBias,
    oBias: attentionBias,
    mlpBias: raw.mlp_bias === true,
    slidingWindow: 0,
    bosId: typeof raw.bos_token_id === 'number' ? raw.bos_token_id : undefined,
    eosIds: ids(raw.eos_token_id),
  };
}
