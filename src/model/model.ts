import { isQuantization, type Quantization, QUANTIZATIONS } from '../kernels/formats.js';
import fs from 'node:fs';
import path from 'node:path';
import { fail, WinaError } from '../errors.js';
import { SIZE_LIMITS } from '../io/files.js';
import { readJsonObject } from '../io/json.js';
import { Llama2cCheckpoint } from './llama2c.js';
import { GgufCheckpoint, ggufConfig, ggufTokenizer } from './gguf.js';
import { type ModelLocation, resolveModel } from '../io/resolve.js';
import { openSafetensorsFolder, type TensorSource } from '../io/safetensors.js';
import type { WeightData } from '../kernels/formats.js';
import { type Kernels, referenceKernels } from '../kernels/kernels.js';
import { WasmKernels } from '../kernels/wasm.js';
import { yieldToEventLoop } from '../runtime/platform.js';
import { loadTokenizer } from '../tokenizer/index.js';
import { StreamDecoder } from '../tokenizer/stream.js';
import type { TextTokenizer } from '../tokenizer/tokenizer.js';
import { checkFiniteLogits } from './finite.js';
import { tokenIds } from './architectures/hf-config.js';
import { ARCHITECTURES, architectureOf } from './architectures/index.js';
import type { ModelConfig, Projection } from './config.js';
import { KVCache, KVPool } from './kv-cache.js';
import { Sampler, type SamplingOptions } from './sampling.js';
import { type ForwardOptions, type LinearFn, Transformer } from './transformer.js';
import { type ModelWeights, parameterCount, WeightReader } from './weights.js';

export interface ModelInfo {
  source: string;
  format: 'hf' | 'llama2c' | 'gguf';
  architecture: string;
  parameters: number;
  /** Stored dtypes of the weights and how many elements each holds. */
  dtypes: Record<string, number>;
  weightBytes: number;
  /** GGUF: tensors of each GGML type read from the file (Q4_0, Q6_K, ...). */
  fileTypes?: Record<string, number>;
  /** Projections the checkpoint stores as one matrix (Phi-3: q+k+v, gate+up); they share one sparsity mask. */
  fused: Projection[][];
  config: ModelConfig;
}

export interface GenerateOptions extends SamplingOptions {
  /** New tokens at most (default: until EOS or the end of the context window). */
  maxTokens?: number;
  /** Stop at the tokenizer's end-of-sequence ids (default true). */
  stopAtEos?: boolean;
  signal?: AbortSignal;
}

export interface GeneratedToken {
  id: number;
  /** Text this token adds to the output (may be empty while a multi-byte character is incomplete). */
  text: string;
}

/**
 * How a model view runs its projections: the LinearFn every projection goes through, and for routed sparsity
 * (WINA-AMP) a hook called with the ids of each new sequence (a forward from an empty cache) before it runs.
 */
export interface Projections {
  linear: LinearFn;
  onNewSequence?: (ids: readonly number[]) => void;
}

export class Model {
  readonly config: ModelConfig;
  /** Shared by every view of the model. */
  private readonly memory: {
    kvPool: KVPool;
    /** The cache of forward() calls that pass none: reused, so scoring many sequences allocates nothing. */
    scratchCache?: KVCache;
  };

  /** `view`: the model `of` seen through other projections (its weights, caches and kernels shared). */
  constructor(
    readonly transformer: Transformer,
    readonly tokenizer: TextTokenizer,
    readonly info: ModelInfo,
    private readonly view?: Projections & { of: Model },
  ) {
    this.config = transformer.cfg;
    const kernels = transformer.kernels;
    this.memory = view?.of.memory ?? { kvPool: new KVPool((n) => kernels.f32(n)) };
  }

  /** Every projection goes through this: the dense matmul, or a view's sparse LinearFn (see withProjections). */
  get linear(): LinearFn {
    return this.view?.linear ?? this.transformer.dense;
  }

  /** This model with its projections through `projections` (sparsity as a value: this model is unchanged). */
  withProjections(projections: Projections): Model {
    return new Model(this.transformer, this.tokenizer, this.info, { ...projections, of: this });
  }

  /**
   * A cache with room for `capacity` positions to start with (it grows when needed). Call `release()` when done
   * with it so its memory serves the next cache (a forgotten one is recycled once garbage-collected).
   */
  newCache(capacity = 64): KVCache {
    return new KVCache(this.config, capacity, this.memory.kvPool);
  }

  /** Stops the kernels' worker threads (of every view of this model). */
  close(): void {
    this.transformer.kernels.close();
  }

  /** Logits [ids.length, vocab] of a fresh sequence (or of `cache`'s continuation). */
  forward(ids: readonly number[], opts: ForwardOptions & { cache?: KVCache } = {}): Float32Array {
    let cache = opts.cache;
    if (!cache) {
      cache = this.memory.scratchCache ??= this.newCache(ids.length);
      cache.truncate(0);
    }
    return this.run(ids, cache, opts);
  }

  private run(ids: readonly number[], cache: KVCache, opts: ForwardOptions): Float32Array {
    if (cache.length === 0) this.view?.onNewSequence?.(ids);
    return checkFiniteLogits(
      this.transformer.forward(ids, cache, opts, this.linear),
      this.transformer.weights,
    );
  }

  /** Fails when `text` cannot encode to fewer tokens than the context window, without tokenizing it. */
  checkPromptLength(text: string): void {
    const limit = this.config.maxPositions * this.tokenizer.maxTokenChars;
    if (text.length > limit)
      fail(
        `prompt has ${text.length} characters, more than ${this.config.maxPositions} tokens of at most ` +
          `${this.tokenizer.maxTokenChars} characters can hold, but the context window is ${this.config.maxPositions}`,
      );
  }

  encodePrompt(prompt: string | readonly number[]): number[] {
    if (typeof prompt === 'string') this.checkPromptLength(prompt);
    const ids = typeof prompt === 'string' ? this.tokenizer.encode(prompt) : [...prompt];
    if (ids.length === 0) {
      if (this.config.bosId === undefined)
        fail('the prompt is empty and the model has no BOS token to start from');
      ids.push(this.config.bosId);
    }
    if (ids.length >= this.config.maxPositions) {
      fail(`prompt has ${ids.length} tokens but the context window is ${this.config.maxPositions}`);
    }
    return ids;
  }

  /** Prefills the prompt in one batched pass, then decodes one token at a time, yielding each as it comes. */
  async *generate(
    prompt: string | readonly number[],
    opts: GenerateOptions = {},
  ): AsyncGenerator<GeneratedToken> {
    const sampler = new Sampler(opts);
    const ids = this.encodePrompt(prompt);
    const maxTokens = opts.maxTokens ?? this.config.maxPositions;
    if (!Number.isInteger(maxTokens) || maxTokens < 0)
      fail(`max tokens must be a whole number >= 0, got ${maxTokens}`);
    const stops = opts.stopAtEos === false ? [] : this.tokenizer.eosIds;
    // Room for what this call may use, up to 1024 new tokens; the cache grows beyond that only if needed.
    const cache = this.newCache(ids.length + Math.min(maxTokens, RESERVED_NEW_TOKENS));
    try {
      const decoder = new StreamDecoder(this.tokenizer, { skipSpecial: true, context: ids });
      let logits = this.run(ids, cache, { lastOnly: true });
      for (let n = 0; n < maxTokens && !opts.signal?.aborted; n++) {
        const id = sampler.sample(logits);
        if (stops.includes(id)) break;
        yield { id, text: decoder.push(id) };
        if (cache.length >= this.config.maxPositions) break;
        // Let the event loop run (a server notices a client that went away).
        await yieldToEventLoop();
        logits = this.run([id], cache, { lastOnly: true });
      }
      const rest = decoder.flush();
      if (rest) yield { id: -1, text: rest };
    } finally {
      cache.release();
    }
  }
}

/** New tokens whose KV cache generate() reserves up front (a huge context window must not be reserved whole). */
const RESERVED_NEW_TOKENS = 1024;

export interface LoadOptions {
  /** Tokenizer file or folder, when it is not beside the weights. */
  tokenizer?: string;
  /**
   * Where weights live and which kernels run them: 'wasm' (default: WebAssembly SIMD on a worker per core),
   * 'reference' (plain TypeScript), or a Kernels object. $WINA_KERNELS overrides the default.
   */
  kernels?: Kernels | 'wasm' | 'reference';
  /** Threads of the WebAssembly kernels (default: one per core). */
  threads?: number;
  /**
   * 'input-major' stores the seven projections transposed only, as column-sparse decode reads them: half the
   * memory of keeping both layouts (needed for ~1B-parameter BF16 models in the 4 GiB WebAssembly memory);
   * dense products then run on the input-major kernel. Default 'row'.
   */
  layout?: 'row' | 'input-major';
  /**
   * Quantize the matrices on load, with one scale per group of 32 inputs as llama.cpp quantizes them: 'q8' (int8,
   * GGUF Q8_0's blocks) or 'q4' (4-bit, GGUF Q4_0's blocks); norms and biases stay F32. Needs input sizes that
   * are multiples of 32.
   */
  quantize?: Quantization;
}

/** Loads a model from a local folder or file, a shared model name, or a hub id. */
export async function loadModel(spec: string, opts: LoadOptions = {}): Promise<Model> {
  const location = await resolveModel(spec);
  const choice = opts.kernels ?? (process.env.WINA_KERNELS as 'wasm' | 'reference' | undefined) ?? 'wasm';
  if (choice !== 'wasm' && choice !== 'reference' && typeof choice === 'string') {
    fail(`unknown kernels "${choice}" (wasm or reference)`);
  }
  const kernels =
    choice === 'wasm'
      ? await WasmKernels.create({ threads: opts.threads })
      : choice === 'reference'
        ? referenceKernels
        : choice;
  try {
    const resolved = { ...opts, kernels };
    if (location.format === 'gguf') return await loadGguf(location.file, resolved);
    return location.format === 'hf' ? loadHf(location.dir, resolved) : loadLlama2c(location, resolved);
  } catch (e) {
    if (kernels !== opts.kernels) kernels.close();
    throw e;
  }
}

function loadHf(dir: string, opts: LoadOptions & { kernels: Kernels }): Model {
  const raw = readJsonObject(path.join(dir, 'config.json'), 'config', SIZE_LIMITS.config);
  const { name, arch } = architectureOf(raw);
  const config = arch.parseConfig(raw);
  const genFile = path.join(dir, 'generation_config.json');
  if (fs.existsSync(genFile)) {
    const gen = readJsonObject(genFile, 'generation config', SIZE_LIMITS.config);
    const where = (key: string) => `generation_config.json: ${key}`;
    if (gen.eos_token_id != null)
      config.eosIds = tokenIds(gen.eos_token_id, where('eos_token_id'), config.vocabSize);
    if (gen.bos_token_id != null)
      config.bosId = tokenIds(gen.bos_token_id, where('bos_token_id'), config.vocabSize)[0];
  }
  // The tokenizer first: it is cheap, and a mismatch should not wait for gigabytes of weights.
  const tokenizer = loadTokenizer(opts.tokenizer ?? dir, {
    bosId: config.bosId,
    eosIds: config.eosIds,
    vocabSize: config.vocabSize,
  });
  if (tokenizer.vocabSize > config.vocabSize)
    fail(
      `the tokenizer in ${opts.tokenizer ?? dir} has ${tokenizer.vocabSize} tokens but the model's vocabulary (vocab_size) has ` +
        `${config.vocabSize}: they do not belong together`,
    );
  if (config.eosIds.length === 0) config.eosIds = tokenizer.eosIds;
  if (config.bosId === undefined) config.bosId = tokenizer.bosId;
  const kernels = opts.kernels;
  const { weights, dtypes } = readWeights(openSafetensorsFolder(dir), opts, (r) =>
    arch.loadWeights(r, config),
  );
  return new Model(
    new Transformer(config, weights, kernels),
    tokenizer,
    describe(dir, 'hf', name, config, weights, dtypes, arch.fused ?? []),
  );
}

async function loadGguf(file: string, opts: LoadOptions & { kernels: Kernels }): Promise<Model> {
  const checkpoint = await GgufCheckpoint.open(file);
  try {
    const { architecture, raw } = ggufConfig(checkpoint);
    const { arch } = architectureOf(raw);
    let config: ModelConfig;
    try {
      config = arch.parseConfig(raw);
    } catch (e) {
      // The checks name config.json's keys; here they came from the GGUF metadata.
      if (e instanceof WinaError) fail(`${file}: GGUF metadata, as ${e.message}`);
      throw e;
    }
    const tokenizer = opts.tokenizer
      ? loadTokenizer(opts.tokenizer, {
          bosId: config.bosId,
          eosIds: config.eosIds,
          vocabSize: config.vocabSize,
        })
      : ggufTokenizer(checkpoint, config);
    const { weights, dtypes } = readWeights(checkpoint, opts, (r) => arch.loadWeights(r, config));
    const info = describe(file, 'gguf', architecture, config, weights, dtypes, arch.fused ?? []);
    info.fileTypes = checkpoint.typesRead;
    return new Model(new Transformer(config, weights, opts.kernels), tokenizer, info);
  } finally {
    checkpoint.close();
  }
}

function loadLlama2c(
  location: Extract<ModelLocation, { format: 'llama2c' }>,
  opts: LoadOptions & { kernels: Kernels },
): Model {
  const checkpoint = Llama2cCheckpoint.open(location.checkpoint);
  const config = checkpoint.config;
  const kernels = opts.kernels;
  const { weights, dtypes } = readWeights(checkpoint, opts, (r) =>
    ARCHITECTURES.LlamaForCausalLM!.loadWeights(r, config),
  );
  const tokenizerFile = opts.tokenizer ?? location.tokenizer;
  if (!tokenizerFile) fail(`no llama2.c tokenizer (tokenizer.bin or tok*.bin) beside ${location.checkpoint}`);
  const tokenizer = loadTokenizer(tokenizerFile, { vocabSize: config.vocabSize });
  const info = describe(
    location.checkpoint,
    'llama2c',
    'LlamaForCausalLM (llama2.c)',
    config,
    weights,
    dtypes,
    [],
  );
  return new Model(new Transformer(config, weights, kernels), tokenizer, info);
}

function readWeights(
  source: TensorSource,
  opts: LoadOptions & { kernels: Kernels },
  load: (r: WeightReader) => ModelWeights,
): { weights: ModelWeights; dtypes: Record<string, number> } {
  if (opts.layout !== undefined && opts.layout !== 'row' && opts.layout !== 'input-major') {
    fail(`layout must be row or input-major, got ${opts.layout}`);
  }
  if (opts.quantize !== undefined && !isQuantization(opts.quantize))
    fail(`quantize must be one of ${QUANTIZATIONS.join(', ')}, got ${opts.quantize}`);
  const reader = new WeightReader(source, opts.kernels.alloc, opts.layout === 'input-major', opts.quantize);
  try {
    return { weights: load(reader), dtypes: reader.dtypes };
  } finally {
    source.close();
  }
}

function describe(
  source: string,
  format: ModelInfo['format'],
  architecture: string,
  config: ModelConfig,
  weights: ModelWeights,
  dtypes: Record<string, number>,
  fused: Projection[][],
): ModelInfo {
  // Fused Phi-3 matrices are row views of one array: count each stored array once.
  const arrays = new Set<WeightData>();
  const add = (data: WeightData) => {
    const whole = [...arrays].find(
      (a) =>
        a.buffer === data.buffer &&
        a.byteOffset <= data.byteOffset &&
        a.byteOffset + a.byteLength >= data.byteOffset + data.byteLength,
    );
    if (!whole) arrays.add(data);
  };
  add(weights.embed.data);
  add(weights.lmHead.weight.data);
  add(weights.finalNorm);
  for (const layer of weights.layers) {
    add(layer.attnNorm);
    add(layer.mlpNorm);
    for (const p of Object.values(layer.proj)) {
      add(p.weight.data);
      if (p.bias) add(p.bias);
    }
  }
  const weightBytes = [...arrays].reduce((sum, a) => sum + a.byteLength, 0);
  return {
    source,
    format,
    architecture,
    parameters: parameterCount(weights),
    dtypes,
    weightBytes,
    fused,
    config,
  };
}
