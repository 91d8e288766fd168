import { fail } from '../../errors.js';
import type { ModelConfig, RopeConfig } from '../config.js';

export type RawConfig = Record<string, unknown>;

const show = (v: unknown) => (v === undefined ? 'nothing' : JSON.stringify(v));

function int(raw: RawConfig, key: string, fallback?: number): number {
  const v = raw[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
    fail(`config.json: ${key} must be a positive integer, got ${show(raw[key])}`);
  }
  return v;
}

/** A finite number > 0 (rms_norm_eps, rope_theta, scaling factors); `where` names the field in the error. */
function positive(v: unknown, where: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0)
    fail(`config.json: ${where} must be a finite number > 0, got ${show(v)}`);
  return v;
}

/** bos / eos ids of config.json or generation_config.json: absent, one id or a list, each in the vocabulary. */
export function tokenIds(v: unknown, key: string, vocabSize: number): number[] {
  if (v === undefined || v === null) return [];
  const list = Array.isArray(v) ? v : [v];
  for (const id of list) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= vocabSize)
      fail(`${key} must be token ids in [0, ${vocabSize}), got ${show(v)}`);
  }
  return list as number[];
}

function bool(raw: RawConfig, key: string): boolean {
  const v = raw[key];
  if (v !== undefined && v !== null && typeof v !== 'boolean')
    fail(`config.json: ${key} must be true or false, got ${show(v)}`);
  return v === true;
}

/** Phi-3's per-channel factors: rotaryDim / 2 finite positive numbers. */
function factors(v: unknown, where: string, count: number): number[] {
  if (!Array.isArray(v) || v.length !== count)
    fail(
      `config.json: ${where} must be a list of ${count} numbers (one per rotated channel pair), got ${show(v)?.slice(0, 60)}`,
    );
  v.forEach((f, i) => positive(f, `${where}[${i}]`));
  return v as number[];
}

/**
 * RoPE settings from either transformers 5 (`rope_parameters`, theta inside) or 4.x (`rope_theta` +
 * `rope_scaling`), each field checked by type and range (a bad theta or factor would give finite garbage).
 */
function ropeConfig(raw: RawConfig, headDim: number): RopeConfig {
  const scaling = raw.rope_parameters ?? raw.rope_scaling ?? {};
  if (typeof scaling !== 'object' || scaling === null || Array.isArray(scaling))
    fail(`config.json: rope_parameters / rope_scaling must be an object, got ${show(scaling)}`);
  const params = scaling as Record<string, unknown>;
  const theta = positive(params.rope_theta ?? raw.rope_theta ?? 10000, 'rope_theta');
  const type = params.rope_type ?? params.type ?? 'default';
  if (typeof type !== 'string') fail(`config.json: rope_type must be a string, got ${show(type)}`);
  const partial = params.partial_rotary_factor ?? raw.partial_rotary_factor ?? 1;
  if (typeof partial !== 'number' || !(partial > 0 && partial <= 1))
    fail(`config.json: partial_rotary_factor must be in (0, 1], got ${show(partial)}`);
  const rotaryDim = Math.floor(headDim * partial);
  if (rotaryDim < 2 || rotaryDim % 2 !== 0)
    fail(
      `config.json: partial_rotary_factor ${partial} of head_dim ${headDim} rotates ${rotaryDim} channels; it must be an even number >= 2`,
    );
  const rope: RopeConfig = { type: 'default', theta, rotaryDim };
  const param = (key: string) => params[key];
  if (type === 'default') return rope;
  if (type === 'linear') return { ...rope, type, factor: positive(param('factor'), `rope ${type} factor`) };
  if (type === 'llama3') {
    const low = positive(param('low_freq_factor'), 'rope llama3 low_freq_factor');
    const high = positive(param('high_freq_factor'), 'rope llama3 high_freq_factor');
    if (high <= low)
      fail(`config.json: rope llama3 high_freq_factor ${high} must be above low_freq_factor ${low}`);
    return {
      ...rope,
      type,
      factor: positive(param('factor'), 'rope llama3 factor'),
      lowFreqFactor: low,
      highFreqFactor: high,
      originalMaxPositions: int(params, 'original_max_position_embeddings'),
    };
  }
  if (type === 'longrope' || type === 'su') {
    const original = int({ ...raw, ...params }, 'original_max_position_embeddings');
    const maxPositions = int(raw, 'max_position_embeddings', 2048);
    const attention = param('attention_factor');
    return {
      ...rope,
      type: 'longrope',
      originalMaxPositions: original,
      shortFactor: factors(param('short_factor'), 'rope longrope short_factor', rotaryDim / 2),
      longFactor: factors(param('long_factor'), 'rope longrope long_factor', rotaryDim / 2),
      attentionFactor:
        attention !== undefined && attention !== null
          ? positive(attention, 'rope longrope attention_factor')
          : maxPositions > original
            ? Math.sqrt(1 + Math.log(maxPositions / original) / Math.log(original))
            : 1,
    };
  }
  fail(`config.json: rope type "${type}" is not supported (supported: default, linear, llama3, longrope)`);
}

/** The fields Llama, Mistral, Qwen2 and Phi-3 configs share, each checked by type and range. */
export function parseHfConfig(raw: RawConfig, modelType: string): ModelConfig {
  const hiddenSize = int(raw, 'hidden_size');
  const numHeads = int(raw, 'num_attention_heads');
  const numKvHeads = int(raw, 'num_key_value_heads', numHeads);
  if (raw.head_dim === undefined && hiddenSize % numHeads !== 0)
    fail(
      `config.json: hidden_size ${hiddenSize} is not a multiple of num_attention_heads ${numHeads} (and no head_dim is given)`,
    );
  const headDim = int(raw, 'head_dim', hiddenSize / numHeads);
  if (numHeads % numKvHeads !== 0) {
    fail(
      `config.json: num_attention_heads ${numHeads} is not a multiple of num_key_value_heads ${numKvHeads}`,
    );
  }
  const act = raw.hidden_act ?? 'silu';
  if (act !== 'silu') fail(`config.json: hidden_act ${show(act)} is not supported (only silu)`);
  const vocabSize = int(raw, 'vocab_size');
  const attentionBias = bool(raw, 'attention_bias');
  return {
    modelType,
    hiddenSize,
    intermediateSize: int(raw, 'intermediate_size'),
    numLayers: int(raw, 'num_hidden_layers'),
    numHeads,
    numKvHeads,
    headDim,
    vocabSize,
    maxPositions: int(raw, 'max_position_embeddings', 2048),
    rmsNormEps: positive(raw.rms_norm_eps ?? 1e-6, 'rms_norm_eps'),
    rope: ropeConfig(raw, headDim),
    tieEmbeddings: bool(raw, 'tie_word_embeddings'),
    qkvBias: attentionBias,
    oBias: attentionBias,
    mlpBias: bool(raw, 'mlp_bias'),
    slidingWindow: 0,
    bosId: tokenIds(raw.bos_token_id, 'config.json: bos_token_id', vocabSize)[0],
    eosIds: tokenIds(raw.eos_token_id, 'config.json: eos_token_id', vocabSize),
  };
}

/** Mistral / Qwen2 / Phi-3's sliding_window: absent, null or a positive integer (0 = full attention). */
export function slidingWindow(raw: RawConfig): number {
  const v = raw.sliding_window;
  if (v === undefined || v === null) return 0;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0)
    fail(`config.json: sliding_window must be a whole number >= 0 or null, got ${show(v)}`);
  return v;
}
