/**
 * GGUF checkpoints (llama.cpp, ollama, LM Studio) of Llama-family and Qwen2 models: the header and metadata
 * through @huggingface/gguf, tensor data read on demand. Tensors are presented under Hugging Face names, so the
 * architecture files load them unchanged: F32 / F16 / BF16 as stored, Q8_0 and Q4_0 as the values and `_scale`
 * tensors of a `wina quantize` checkpoint (their blocks are q8's and q4's groups: the conversion is exact, the
 * F16 scales widened to F32), the other block formats widened to F32 (gguf-dequantize.ts). llama.cpp rotates
 * adjacent pairs of a Llama head where Hugging Face rotates halves, so q / k rows are permuted back.
 */
import fs from 'node:fs';
import { gguf, type GGUFParseOutput } from '@huggingface/gguf';
import { fail, WinaError } from '../errors.js';
import { openInputFile, readExactly } from '../io/files.js';
import type { TensorInfo, TensorSource } from '../io/safetensors.js';
import { f16ToF32, FORMATS } from '../kernels/formats.js';
import { type Allocate, numel, type Tensor } from '../kernels/tensor.js';
import { HfTokenizer } from '../tokenizer/hf.js';
import { Llama2cTokenizer } from '../tokenizer/llama2c.js';
import type { TextTokenizer } from '../tokenizer/tokenizer.js';
import type { RawConfig } from './architectures/hf-config.js';
import { WIDENED, widenBlocks } from './gguf-dequantize.js';
import { pairsToHalves } from './rope.js';
import type { ModelConfig } from './config.js';

/**
 * GGML tensor types read here, with their block sizes (elements, bytes): stored as they are (F32, F16, BF16),
 * as q8 / q4 groups (Q8_0, Q4_0: the same blocks), or widened to F32 (the formats wina has no kernels for yet).
 */
const TYPES: Record<number, { name: string; block: number; bytes: number } | undefined> = {
  0: { name: 'F32', block: 1, bytes: 4 },
  1: { name: 'F16', block: 1, bytes: 2 },
  2: { name: 'Q4_0', block: 32, bytes: 18 },
  8: { name: 'Q8_0', block: 32, bytes: 34 },
  30: { name: 'BF16', block: 1, bytes: 2 },
  ...WIDENED,
};
const KNOWN_NAMES: Record<number, string> = { 10: 'Q2_K', 11: 'Q3_K', 15: 'Q8_K' };
const READABLE = Object.values(TYPES).map((t) => t!.name);
const isGrouped = (type: number) => type === 2 || type === 8;

/** GGUF tensor names (without `.weight` / `.bias`) to Hugging Face's. */
const GLOBAL_NAMES: Record<string, string> = {
  token_embd: 'model.embed_tokens',
  output_norm: 'model.norm',
  output: 'lm_head',
};
const LAYER_NAMES: Record<string, string> = {
  attn_norm: 'input_layernorm',
  ffn_norm: 'post_attention_layernorm',
  attn_q: 'self_attn.q_proj',
  attn_k: 'self_attn.k_proj',
  attn_v: 'self_attn.v_proj',
  attn_output: 'self_attn.o_proj',
  ffn_gate: 'mlp.gate_proj',
  ffn_up: 'mlp.up_proj',
  ffn_down: 'mlp.down_proj',
};

/** Our [out, in] name for a GGUF tensor name, or undefined for tensors we do not use (rope_freqs, ...). */
function hfName(name: string): string | undefined {
  const m = /^(?:blk\.(\d+)\.)?([a-z_]+)\.(weight|bias)$/.exec(name);
  if (!m) return undefined;
  const [, layer, base, kind] = m;
  const mapped = layer === undefined ? GLOBAL_NAMES[base!] : LAYER_NAMES[base!];
  if (!mapped) return undefined;
  return layer === undefined ? `${mapped}.${kind}` : `model.layers.${layer}.${mapped}.${kind}`;
}

interface Entry {
  gguf: string;
  type: number;
  /** Ours: [out, in] (GGUF lists the fastest dimension first). */
  shape: number[];
  offset: number;
  bytes: number;
  /** Heads whose q / k rows go from adjacent pairs back to halves. */
  ropeHeads?: number;
}

export class GgufCheckpoint implements TensorSource {
  private readonly entries = new Map<string, Entry>();
  /** The last Q8_0 / Q4_0 tensor split into values and scales, until its scales are taken. */
  private split: { entry: Entry; values: Uint8Array; scales: Uint8Array } | undefined;
  /** Tensors read so far per GGML type (what `wina info` lists as the file's types). */
  readonly typesRead: Record<string, number> = {};
  private fd: number;

  private constructor(
    readonly file: string,
    /** Every key as read: numbers, bigints (64-bit fields), strings, booleans, arrays. */
    readonly metadata: Record<string, unknown>,
    tensors: GGUFParseOutput['tensorInfos'],
    dataOffset: number,
  ) {
    const { fd, size } = openInputFile(file, 'GGUF file');
    this.fd = fd;
    const arch = String(metadata['general.architecture']);
    const heads = Number(metadata[`${arch}.attention.head_count`]);
    const kvHeads = Number(metadata[`${arch}.attention.head_count_kv`] ?? heads);
    for (const t of tensors) {
      const type = TYPES[t.dtype];
      const shape = t.shape.map(Number).reverse();
      // Llama 3.1's long-context RoPE is stored as per-frequency factors: ignoring them would be silently wrong.
      if (/^rope_(freqs|factors)/.test(t.name))
        fail(`${file}: RoPE frequency factors (${t.name}) are not supported yet`);
      const name = hfName(t.name);
      if (!name) continue;
      if (!type)
        fail(
          `${file}: tensor ${t.name} is ${KNOWN_NAMES[t.dtype] ?? `GGML type ${t.dtype}`}; this wina reads ${READABLE.join(', ')}`,
        );
      const n = numel(shape);
      const inDim = shape.at(-1)!;
      if (type.block > 1 && inDim % type.block !== 0)
        fail(`${file}: tensor ${t.name} has rows of ${inDim} values, not whole ${type.name} blocks`);
      const bytes = (n / type.block) * type.bytes;
      const offset = dataOffset + Number(t.offset);
      if (offset + bytes > size) fail(`${file}: tensor ${t.name} lies past the end of the file (truncated?)`);
      const rope = arch === 'llama' && /\.attn_[qk]\.weight$/.test(t.name);
      this.entries.set(name, {
        gguf: t.name,
        type: t.dtype,
        shape,
        offset,
        bytes,
        ropeHeads: rope ? (t.name.includes('attn_q') ? heads : kvHeads) : undefined,
      });
    }
  }

  static async open(file: string): Promise<GgufCheckpoint> {
    let parsed: GGUFParseOutput;
    try {
      parsed = await gguf(file, { allowLocalFile: true });
    } catch (e) {
      if (e instanceof WinaError) throw e;
      fail(`${file} is not a readable GGUF file: ${(e as Error).message}`);
    }
    const m = parsed.metadata as unknown as Record<string, unknown>;
    // The parser pads a short read with zeros: a cut header shows as missing tensors or keys.
    if (parsed.tensorInfos.length !== Number(m.tensor_count) || typeof m['general.architecture'] !== 'string')
      fail(`${file} is not a readable GGUF file: its header is truncated or incomplete`);
    return new GgufCheckpoint(
      file,
      parsed.metadata as unknown as Record<string, unknown>,
      parsed.tensorInfos,
      Number(parsed.tensorDataOffset),
    );
  }

  names(): string[] {
    return [...this.entries.keys()].flatMap((n) => (this.blocked(n) ? [n, `${n}_scale`] : [n]));
  }

  has(name: string): boolean {
    const scaleOf = name.endsWith('_scale') ? name.slice(0, -'_scale'.length) : undefined;
    return this.entries.has(name) || (scaleOf !== undefined && this.blocked(scaleOf));
  }

  info(name: string): TensorInfo {
    const e = this.entries.get(name);
    if (!e) {
      const of = this.entryOf(name.slice(0, -'_scale'.length));
      return { dtype: 'F32', shape: [of.shape[0]!, of.shape[1]! / 32] };
    }
    const type = TYPES[e.type]!.name;
    if (e.type in WIDENED) return { dtype: 'F32', shape: e.shape };
    if (type === 'Q8_0') return { dtype: 'I8', shape: e.shape };
    if (type === 'Q4_0') return { dtype: 'U8', shape: [e.shape[0]!, e.shape[1]! / 2] };
    return { dtype: type, shape: e.shape };
  }

  /** F32, F16 and BF16 tensors as stored, the others widened to F32 (q / k rows of a Llama permuted). */
  read(name: string, allocate: Allocate = (n) => new Uint8Array(n)): Tensor {
    const e = this.entryOf(name);
    const widened = WIDENED[e.type];
    const dtype = widened ? 'F32' : (TYPES[e.type]!.name as 'F32' | 'F16' | 'BF16');
    if (isGrouped(e.type))
      fail(`${this.file}: tensor ${e.gguf} is ${TYPES[e.type]!.name}, read as values and scales`);
    const stored = this.raw(e);
    const raw = widened ? new Uint8Array(widenBlocks(widened, stored, numel(e.shape)).buffer) : stored;
    const bytes = allocate(raw.length);
    inHfRowOrder(raw, bytes, e);
    return { dtype, shape: e.shape, data: FORMATS[dtype].view(bytes) };
  }

  /**
   * A Q8_0 / Q4_0 tensor's values ([out, in] int8, or [out, in / 2] nibbles), or its `_scale` (F32 [out, in /
   * 32]). The weight reader asks for both in a row: the blocks are read from the file and split once.
   */
  readBytes(name: string): Uint8Array {
    const isScale = !this.entries.has(name) && name.endsWith('_scale');
    const e = this.entryOf(isScale ? name.slice(0, -'_scale'.length) : name);
    if (this.split?.entry !== e) this.split = { entry: e, ...this.splitBlocks(e) };
    const part = isScale ? this.split.scales : this.split.values;
    if (isScale) this.split = undefined;
    return part;
  }

  /** The values and the F32 scales of a Q8_0 / Q4_0 tensor's blocks (each an F16 scale, then its values). */
  private splitBlocks(e: Entry): { values: Uint8Array; scales: Uint8Array } {
    const type = TYPES[e.type]!;
    const raw = this.raw(e);
    const blocks = raw.length / type.bytes;
    const valueBytes = type.bytes - 2;
    const values = new Uint8Array(blocks * valueBytes);
    const scales = new Float32Array(blocks);
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    for (let b = 0; b < blocks; b++) {
      const at = b * type.bytes;
      scales[b] = f16ToF32(view.getUint16(at, true));
      values.set(raw.subarray(at + 2, at + type.bytes), b * valueBytes);
    }
    const scaleBytes = new Uint8Array(scales.buffer);
    if (e.ropeHeads === undefined) return { values, scales: scaleBytes };
    const ordered = { values: new Uint8Array(values.length), scales: new Uint8Array(scaleBytes.length) };
    inHfRowOrder(values, ordered.values, e);
    inHfRowOrder(scaleBytes, ordered.scales, e);
    return ordered;
  }

  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }

  private blocked(name: string): boolean {
    const e = this.entries.get(name);
    return e !== undefined && isGrouped(e.type);
  }

  private entryOf(name: string): Entry {
    return this.entries.get(name) ?? fail(`tensor ${name} is not in ${this.file}`);
  }

  /** The tensor's stored bytes, counted among the types read. */
  private raw(e: Entry): Uint8Array {
    const type = TYPES[e.type]!.name;
    this.typesRead[type] = (this.typesRead[type] ?? 0) + 1;
    const raw = new Uint8Array(e.bytes);
    readExactly(this.fd, raw, e.offset, this.file);
    return raw;
  }
}

/** Copies `src` into `dst`, a Llama q / k weight's rows from llama.cpp's order to Hugging Face's. */
function inHfRowOrder(src: Uint8Array, dst: Uint8Array, e: Entry): void {
  if (e.ropeHeads === undefined) dst.set(src);
  else pairsToHalves(src, dst, e.ropeHeads, src.length / e.shape[0]!);
}

/** The GGUF metadata as the config.json keys parseHfConfig reads (its checks then apply alike). */
export function ggufConfig(g: GgufCheckpoint): { architecture: string; raw: RawConfig } {
  const m = g.metadata;
  const arch = String(m['general.architecture']);
  const ARCHITECTURES: Record<string, string> = {
    llama: 'LlamaForCausalLM',
    qwen2: 'Qwen2ForCausalLM',
  };
  // Phi-3's GGUF fuses q / k / v and gate / up under other names, with long-RoPE factors as tensors: not read yet.
  const architecture =
    ARCHITECTURES[arch] ??
    fail(
      `${g.file}: GGUF architecture "${arch}" is not supported (${Object.keys(ARCHITECTURES).join(', ')})`,
    );
  const key = (k: string) => m[`${arch}.${k}`];
  const num = (v: unknown) => (typeof v === 'bigint' ? Number(v) : v);
  const tokens = m['tokenizer.ggml.tokens'];
  const heads = num(key('attention.head_count'));
  const hidden = num(key('embedding_length'));
  const raw: RawConfig = {
    architectures: [architecture],
    hidden_size: hidden,
    intermediate_size: num(key('feed_forward_length')),
    num_hidden_layers: num(key('block_count')),
    num_attention_heads: heads,
    num_key_value_heads: num(key('attention.head_count_kv')) ?? heads,
    rms_norm_eps: num(key('attention.layer_norm_rms_epsilon')),
    rope_theta: num(key('rope.freq_base')) ?? 10000,
    max_position_embeddings: num(key('context_length')),
    vocab_size: num(key('vocab_size')) ?? (Array.isArray(tokens) ? tokens.length : undefined),
    tie_word_embeddings: !g.has('lm_head.weight'),
    bos_token_id: num(m['tokenizer.ggml.bos_token_id']),
    eos_token_id: num(m['tokenizer.ggml.eos_token_id']),
  };
  const keyLength = num(key('attention.key_length'));
  if (keyLength !== undefined) raw.head_dim = keyLength;
  const slidingWindow = num(key('attention.sliding_window'));
  if (slidingWindow !== undefined) raw.sliding_window = slidingWindow;
  const scaling = m[`${arch}.rope.scaling.type`];
  if (scaling !== undefined && scaling !== 'none')
    fail(`${g.file}: RoPE scaling "${String(scaling)}" in GGUF files is not supported yet`);
  return { architecture, raw };
}

/** The tokenizer the GGUF metadata describes. */
export function ggufTokenizer(g: GgufCheckpoint, config: ModelConfig): TextTokenizer {
  const m = g.metadata;
  const model = m['tokenizer.ggml.model'];
  const tokens = m['tokenizer.ggml.tokens'];
  if (!Array.isArray(tokens) || tokens.length === 0 || tokens.some((t) => typeof t !== 'string'))
    fail(`${g.file} holds no tokenizer (tokenizer.ggml.tokens); pass --tokenizer`);
  if (tokens.length > config.vocabSize)
    fail(
      `${g.file}: the tokenizer has ${tokens.length} tokens but the model's vocabulary has ${config.vocabSize}`,
    );
  const num = (v: unknown) => (typeof v === 'bigint' ? Number(v) : typeof v === 'number' ? v : undefined);
  if (model === 'llama') {
    const scores = m['tokenizer.ggml.scores'];
    if (!Array.isArray(scores) || scores.length !== tokens.length)
      fail(`${g.file}: tokenizer.ggml.scores must hold a score per token`);
    const template = m['tokenizer.chat_template'];
    return Llama2cTokenizer.fromPieces(tokens as string[], scores as number[], {
      bosId: config.bosId,
      eosIds: config.eosIds,
      unkId: num(m['tokenizer.ggml.unknown_token_id']),
      addSpacePrefix: m['tokenizer.ggml.add_space_prefix'] !== false,
      chatTemplate: typeof template === 'string' ? template : undefined,
      source: g.file,
    });
  }
  if (model === 'gpt2') return byteLevelBpe(g, tokens as string[], config);
  fail(
    `${g.file}: GGUF tokenizer model "${String(model)}" is not supported (llama, gpt2 are); pass --tokenizer`,
  );
}

/**
 * Pre-tokenizer regexes by `tokenizer.ggml.pre` (the names llama.cpp's llama-vocab.cpp gives them): the text is
 * split by the regex, then mapped to GPT-2's byte alphabet, as the Hugging Face tokenizers do. null: GPT-2's own
 * regex, which ByteLevel applies itself.
 */
const PRE_TOKENIZERS: Record<string, string | null> = {
  'gpt-2': null,
  'llama-bpe':
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  qwen2:
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
};
const CONTROL = 3;
const USER_DEFINED = 4;

/**
 * A byte-level BPE vocabulary (`tokenizer.ggml.model` gpt2: GPT-2, Llama 3, Qwen2) as the tokenizer.json that
 * @huggingface/tokenizers runs: tokens and merges as stored, control tokens special, BOS added when
 * `add_bos_token` says so.
 */
function byteLevelBpe(g: GgufCheckpoint, tokens: string[], config: ModelConfig): TextTokenizer {
  const m = g.metadata;
  const merges = m['tokenizer.ggml.merges'];
  if (!Array.isArray(merges) || merges.some((x) => typeof x !== 'string'))
    fail(`${g.file}: a gpt2 tokenizer needs tokenizer.ggml.merges`);
  const pre = String(m['tokenizer.ggml.pre'] ?? 'gpt-2');
  if (!(pre in PRE_TOKENIZERS))
    fail(
      `${g.file}: GGUF pre-tokenizer "${pre}" is not supported (${Object.keys(PRE_TOKENIZERS).join(', ')}); pass --tokenizer`,
    );
  const regex = PRE_TOKENIZERS[pre];
  const types = m['tokenizer.ggml.token_type'];
  const special = tokens.flatMap((content, id) =>
    Array.isArray(types) && (types[id] === CONTROL || types[id] === USER_DEFINED)
      ? [{ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }]
      : [],
  );
  const bos = config.bosId;
  const bosToken = bos === undefined ? undefined : tokens[bos];
  const addBos = m['tokenizer.ggml.add_bos_token'] !== false && bosToken !== undefined;
  const byteLevel = {
    type: 'ByteLevel',
    add_prefix_space: false,
    trim_offsets: true,
    use_regex: regex === null,
  };
  const split = { type: 'Split', pattern: { Regex: regex }, behavior: 'Isolated', invert: false };
  const bosStep = { SpecialToken: { id: bosToken, type_id: 0 } };
  const json = {
    version: '1.0',
    added_tokens: special,
    normalizer: null,
    pre_tokenizer: regex === null ? byteLevel : { type: 'Sequence', pretokenizers: [split, byteLevel] },
    post_processor: addBos
      ? {
          type: 'TemplateProcessing',
          single: [bosStep, { Sequence: { id: 'A', type_id: 0 } }],
          pair: [bosStep, { Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
          special_tokens: { [bosToken]: { id: bosToken, ids: [bos], tokens: [bosToken] } },
        }
      : null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: Object.fromEntries(tokens.map((t, id) => [t, id])),
      merges,
    },
  };
  const template = m['tokenizer.chat_template'];
  try {
    return new HfTokenizer(json, typeof template === 'string' ? { chat_template: template } : {}, {
      bosId: bos,
      eosIds: config.eosIds,
    });
  } catch (e) {
    fail(`${g.file}: its gpt2 tokenizer could not be built: ${(e as Error).message}`);
  }
}
