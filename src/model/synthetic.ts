/**
 * Random-weight checkpoints of real model shapes, written as Hugging Face folders, for speed benchmarks where
 * no real checkpoint of that size can be downloaded. Only the shapes and the dtype matter for speed.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fail } from '../errors.js';
import { checkOutputFolder, writeOutputFolder } from '../io/files.js';
import { type TensorToWrite, writeSafetensors } from '../io/safetensors-writer.js';
import type { DType } from '../kernels/tensor.js';

export interface SyntheticShape {
  hiddenSize: number;
  numLayers: number;
  intermediateSize: number;
  numHeads: number;
  numKvHeads: number;
  vocabSize: number;
  tieEmbeddings: boolean;
  maxPositions: number;
}

/** Known shapes (vocab 32000 as in the llama.cpp measurements of ../shared/NOTES-performance.md). */
export const SHAPES: Record<string, SyntheticShape> = {
  'llama-1b': {
    hiddenSize: 2048,
    numLayers: 16,
    intermediateSize: 8192,
    numHeads: 32,
    numKvHeads: 8,
    vocabSize: 32000,
    tieEmbeddings: false,
    maxPositions: 4096,
  },
  'smollm-135m': {
    hiddenSize: 576,
    numLayers: 30,
    intermediateSize: 1536,
    numHeads: 9,
    numKvHeads: 3,
    vocabSize: 32000,
    tieEmbeddings: false,
    maxPositions: 2048,
  },
  'llama-7b': {
    hiddenSize: 4096,
    numLayers: 32,
    intermediateSize: 11008,
    numHeads: 32,
    numKvHeads: 32,
    vocabSize: 32000,
    tieEmbeddings: false,
    maxPositions: 4096,
  },
  tiny: {
    hiddenSize: 64,
    numLayers: 2,
    intermediateSize: 176,
    numHeads: 4,
    numKvHeads: 2,
    vocabSize: 512,
    tieEmbeddings: false,
    maxPositions: 256,
  },
};

/** Byte-level tokenizer (256 byte tokens + 3 specials, no merges): enough to encode any prompt. */
function byteTokenizer(): object {
  const printable = [...range(33, 127), ...range(161, 173), ...range(174, 256)];
  const vocab: Record<string, number> = { '<unk>': 0, '<s>': 1, '</s>': 2 };
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    const code = printable.includes(b) ? b : 256 + extra++;
    vocab[String.fromCharCode(code)] = 3 + b;
  }
  const special = (id: number, content: string) => ({
    id,
    content,
    special: true,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
  });
  return {
    version: '1.0',
    added_tokens: [special(0, '<unk>'), special(1, '<s>'), special(2, '</s>')],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges: [],
    },
  };
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i);
}

/** Uniform weights with standard deviation 1/sqrt(fan-in) (keeps activations O(1)); norms are ones. */
function randomTensor(name: string, shape: number[], dtype: DType, seed: number): TensorToWrite {
  let state = (seed ^ hash(name)) >>> 0 || 1;
  const scale = Math.sqrt(3 / shape[shape.length - 1]!) / 2 ** 31;
  const isNorm = shape.length === 1;
  const f32 = new Float32Array(1);
  const bits = new Uint32Array(f32.buffer);
  return {
    name,
    dtype,
    shape,
    fill(out) {
      if (dtype === 'F32') {
        const v = new Float32Array(out.buffer, out.byteOffset, out.length / 4);
        for (let i = 0; i < v.length; i++) {
          state ^= state << 13;
          state ^= state >>> 17;
          state ^= state << 5;
          v[i] = isNorm ? 1 : (state | 0) * scale;
        }
        return;
      }
      if (dtype !== 'BF16' && dtype !== 'F16') fail(`synth writes F32, BF16 or F16, not ${dtype}`);
      const v = new Uint16Array(out.buffer, out.byteOffset, out.length / 2);
      for (let i = 0; i < v.length; i++) {
        state ^= state << 13;
        state ^= state >>> 17;
        state ^= state << 5;
        f32[0] = isNorm ? 1 : (state | 0) * scale;
        v[i] = dtype === 'BF16' ? bits[0]! >>> 16 : f16Truncated(bits[0]!);
      }
    },
  };
}

/** F32 bits -> F16 bits, truncating the mantissa and flushing what F16 cannot hold as a normal to zero. */
function f16Truncated(f32Bits: number): number {
  const sign = (f32Bits >>> 16) & 0x8000;
  const exp = ((f32Bits >>> 23) & 0xff) - 112;
  if (exp <= 0) return sign;
  if (exp >= 31) return sign | 0x7bff;
  return sign | (exp << 10) | ((f32Bits >>> 13) & 0x3ff);
}

function hash(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}

const SYNTHETIC_FILES = ['config.json', 'tokenizer.json', 'model.safetensors'];

/** Where writeSyntheticModel may write `dir`: absent, empty, or an earlier synthetic model. */
export function checkSyntheticFolder(dir: string, flag = '--out'): void {
  checkOutputFolder(dir, flag, { replaceable: SYNTHETIC_FILES });
}

/**
 * Writes config.json, tokenizer.json and model.safetensors of a random Llama into `dir`, built in a temporary
 * folder beside it and renamed into place whole.
 */
export function writeSyntheticModel(
  dir: string,
  shape: SyntheticShape,
  dtype: DType,
  seed: number,
  onProgress?: (done: number, total: number) => void,
): void {
  const { hiddenSize: d, intermediateSize: ff, numHeads, numKvHeads, vocabSize } = shape;
  if (d % numHeads !== 0 || numHeads % numKvHeads !== 0)
    fail('hidden must divide by heads, heads by KV heads');
  const headDim = d / numHeads;
  const kvDim = numKvHeads * headDim;
  const tensors: TensorToWrite[] = [];
  const add = (name: string, dims: number[]) => tensors.push(randomTensor(name, dims, dtype, seed));
  add('model.embed_tokens.weight', [vocabSize, d]);
  for (let l = 0; l < shape.numLayers; l++) {
    const p = `model.layers.${l}`;
    add(`${p}.input_layernorm.weight`, [d]);
    add(`${p}.self_attn.q_proj.weight`, [d, d]);
    add(`${p}.self_attn.k_proj.weight`, [kvDim, d]);
    add(`${p}.self_attn.v_proj.weight`, [kvDim, d]);
    add(`${p}.self_attn.o_proj.weight`, [d, d]);
    add(`${p}.post_attention_layernorm.weight`, [d]);
    add(`${p}.mlp.gate_proj.weight`, [ff, d]);
    add(`${p}.mlp.up_proj.weight`, [ff, d]);
    add(`${p}.mlp.down_proj.weight`, [d, ff]);
  }
  add('model.norm.weight', [d]);
  if (!shape.tieEmbeddings) add('lm_head.weight', [vocabSize, d]);

  const config = {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: d,
    intermediate_size: ff,
    num_hidden_layers: shape.numLayers,
    num_attention_heads: numHeads,
    num_key_value_heads: numKvHeads,
    head_dim: headDim,
    vocab_size: vocabSize,
    max_position_embeddings: shape.maxPositions,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    hidden_act: 'silu',
    tie_word_embeddings: shape.tieEmbeddings,
    bos_token_id: 1,
    eos_token_id: 2,
    torch_dtype: { BF16: 'bfloat16', F16: 'float16' }[dtype as string] ?? 'float32',
    wina_synthetic: { seed },
  };
  writeOutputFolder(dir, '--out', { replaceable: SYNTHETIC_FILES }, (tmp) => {
    writeJson(path.join(tmp, 'config.json'), config);
    writeJson(path.join(tmp, 'tokenizer.json'), byteTokenizer());
    writeSafetensors(
      path.join(tmp, 'model.safetensors'),
      tensors,
      { format: 'pt', wina: 'synthetic' },
      onProgress,
    );
  });
}

function writeJson(file: string, value: object): void {
  fs.writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`);
}
