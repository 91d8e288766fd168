/**
 * WINA's orthogonal transform (SliceGPT-style, as the paper's public code does it): rotate the residual stream
 * of every block into the basis of right singular vectors of the block's first linear, so that the rotated
 * matrix W Q = U S has orthogonal columns whose norms are the singular values. Dense outputs stay the same:
 *
 * 1. Every RMSNorm weight g is folded into the linears that read the normalised stream (W' = W diag(g)) and
 *    becomes ones; RMSNorm with unit weight commutes with any orthogonal Q: rmsnorm(x Q) = rmsnorm(x) Q.
 * 2. Q_attn(l) = V of k_proj (Phi-3: the fused qkv), Q_mlp(l) = V of gate_proj (Phi-3: gate_up). The residual
 *    stream entering layer l's attention lives in basis Q_attn(l) (x' = x Q_attn), the one entering its MLP in
 *    Q_mlp(l). Readers rotate their inputs (W' = W Q), writers their outputs (W' = Q^T W, b' = Q^T b), and the
 *    residual path changes basis through a d x d shortcut before each residual add.
 *
 * Row-vector convention throughout: a linear is y = x W^T with W [out, in]; a shortcut S is stored as the
 * [out, in] matrix the forward pass applies (x <- x S^T), so S = Q_to^T Q_from.
 *
 * Q comes from the symmetric eigendecomposition of the Gram matrix W^T W (both float64, src/linalg: our own
 * WebAssembly, since ml-matrix's EVD took 474 s for one d = 4096 matrix), eigenvectors sorted by decreasing
 * eigenvalue: the same V as the SVD W = U S V^T, with the null space of a short matrix (k_proj has fewer rows
 * than columns under GQA) completed to a full orthonormal basis. The rotations themselves (W Q, Q^T W and
 * the shortcuts) are float32 matrix products there too, threads and SIMD: they round like the forward pass
 * does, far inside the 1e-4 that dense logits must keep.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fail } from '../errors.js';
import {
  checkOutputFolder,
  isRegularFile,
  readInputBytes,
  SIZE_LIMITS,
  writeOutputFolder,
} from '../io/files.js';
import { readJsonObject } from '../io/json.js';
import { FORMATS, type Quantization, QUANTIZERS, quantizerOf, savedValues } from '../kernels/formats.js';
import { Q8_GROUP } from '../kernels/q8.js';
import { type TensorToWrite, writeSafetensors } from '../io/safetensors-writer.js';
import type { Tensor } from '../kernels/tensor.js';
import type { Kernels } from '../kernels/kernels.js';
import { widen } from '../kernels/reference.js';
import { WasmKernels } from '../kernels/wasm.js';
import { eigh } from '../linalg/eigh.js';
import { gramMatrix, matmulAB, matmulABt, type Operand, operand } from '../linalg/gemm.js';
import { Linalg } from '../linalg/runtime.js';
import type { ModelConfig, Projection } from '../model/config.js';
import type { Model } from '../model/model.js';
import { type LayerWeights, type Linear, parameterCount } from '../model/weights.js';

export interface TransformOptions {
  /** Called after each layer is rotated (progress). */
  onLayer?: (done: number, total: number) => void;
}

export interface TransformReport {
  /** Wall time of the whole transform. */
  seconds: number;
  /** Of which the Gram matrices and their eigendecompositions (float64, src/linalg). */
  decompositionSeconds: number;
  /** The two d x d shortcut products per layer the forward pass now does: 2 * 2 * d * d * numLayers. */
  extraFlopsPerToken: number;
  layers: number;
}

/** Marker written into config.json of a saved transformed checkpoint. */
export const TRANSFORM_MARKER = 'wina_transform';
/** config.json's note that the matrices are saved as q8 (I8 values + `NAME_scale`), for `wina quantize`. */
export const QUANTIZATION_MARKER = 'wina_quantization';

/** A d x d orthonormal basis, row-major: row c is the c-th basis vector (singular values decreasing). */
type Basis = Float64Array;

/**
 * Rewrites `model.transformer.weights` in place (every weight becomes F32, allocated with the kernels' `alloc`)
 * so that the residual stream is rotated per block; logits are unchanged up to rounding. The config and the
 * tokenizer are left alone (a tied classifier is untied in the weights only). Run it before applying sparsity:
 * WINA's column norms are read from the weights when sparsity is applied.
 */
export function orthogonalTransform(model: Model, opts: TransformOptions = {}): TransformReport {
  // The rotations are folded into the weights, which must then be quantized again: not done yet.
  const w = model.transformer.weights;
  const matrices = [w.embed, ...w.layers.flatMap((l) => Object.values(l.proj).map((p) => p.weight))];
  if (matrices.some((t) => quantizerOf(t.dtype)))
    fail(
      'the orthogonal transform of a quantized model is not supported yet: use --transform without --quantize',
    );
  try {
    return transform(model, opts);
  } finally {
    Linalg.close(); // its workers and memory (a few hundred MB at d = 2048) are not needed afterwards
  }
}

/**
 * Quantizes the matrices of a transformed model (its weights are F32): `--quantize` with `--transform` loads the
 * model unquantized, transforms it, then quantizes, so the rotations act on the original weights and are
 * quantized once. The shortcut rotations stay F32 (two d x d products per layer, a small share of the bytes).
 */
export function quantizeTransformed(model: Model, quantization: Quantization): void {
  const q = QUANTIZERS[quantization];
  const w = model.transformer.weights;
  const alloc = model.transformer.kernels.alloc;
  const quantized = (t: Tensor, name: string): Tensor => {
    q.checkShape(name, t.shape);
    const [out, inDim] = t.shape as [number, number];
    return q.quantize(out, inDim, (o, dst) => widen(t, o * inDim, dst), alloc);
  };
  let matrices = 0;
  w.embed = quantized(w.embed, 'model.embed_tokens.weight');
  matrices += w.embed.shape[0]! * w.embed.shape[1]!;
  w.layers.forEach((layer, l) => {
    for (const name of Object.keys(layer.proj) as Projection[]) {
      const block = ['q', 'k', 'v', 'o'].includes(name) ? 'self_attn' : 'mlp';
      const weight = quantized(layer.proj[name].weight, `model.layers.${l}.${block}.${name}_proj.weight`);
      layer.proj[name] = { ...layer.proj[name], weight };
      matrices += weight.shape[0]! * weight.shape[1]!;
    }
  });
  w.lmHead = { ...w.lmHead, weight: quantized(w.lmHead.weight, 'lm_head.weight') };
  matrices += w.lmHead.weight.shape[0]! * w.lmHead.weight.shape[1]!;
  const rest = model.info.parameters - matrices;
  model.info.dtypes = { F32: rest, [q.dtype]: matrices };
  model.info.weightBytes = 4 * rest + matrices * FORMATS[q.dtype].bytes;
}

function transform(model: Model, opts: TransformOptions): TransformReport {
  const started = performance.now();
  const cfg = model.config;
  const w = model.transformer.weights;
  const kernels = model.transformer.kernels;
  const d = cfg.hiddenSize;
  const L = cfg.numLayers;
  if (w.layers.some((layer) => layer.attnShortcut || layer.mlpShortcut)) {
    fail('the model is already orthogonally transformed');
  }
  if (w.layers.some((layer) => Object.values(layer.proj).some((p) => p.weight.layout === 'input-major'))) {
    fail('the orthogonal transform needs row-major weights: load the model without --layout input-major');
  }
  checkCapacity(model);
  const fusedQkv = isFused(model, ['q', 'k', 'v']);
  const fusedGateUp = isFused(model, ['gate', 'up']);
  const attnSource: Projection[] = fusedQkv ? ['q', 'k', 'v'] : ['k'];
  const mlpSource: Projection[] = fusedGateUp ? ['gate', 'up'] : ['gate'];
  let decompositionSeconds = 0;
  const basisOf = (layer: LayerWeights, projs: Projection[], g: Float32Array): Basis => {
    const t = performance.now();
    const q = principalBasis(
      projs.map((p) => layer.proj[p].weight),
      g,
      d,
    );
    decompositionSeconds += (performance.now() - t) / 1000;
    return q;
  };
  const ones = new Float32Array(d).fill(1);

  let qAttn = basisOf(w.layers[0]!, attnSource, w.layers[0]!.attnNorm);
  w.embed = rotateInputs(kernels, [w.embed], ones, qAttn)[0]!;
  for (let l = 0; l < L; l++) {
    const layer = w.layers[l]!;
    const p = layer.proj;
    const qMlp = basisOf(layer, mlpSource, layer.mlpNorm);
    const next = l + 1 < L ? w.layers[l + 1]! : undefined;
    const qNext = next ? basisOf(next, attnSource, next.attnNorm) : qMlp;

    // Attention: reads basis Q_attn(l), writes Q_mlp(l).
    const [q, k, v] = rotateInputs(
      kernels,
      [p.q.weight, p.k.weight, p.v.weight],
      layer.attnNorm,
      qAttn,
      fusedQkv,
    );
    p.q = { ...p.q, weight: q! };
    p.k = { ...p.k, weight: k! };
    p.v = { ...p.v, weight: v! };
    p.o = rotateOutputs(kernels, p.o, qMlp);
    layer.attnShortcut = change(kernels, qAttn, qMlp, d);
    layer.attnNorm.fill(1);

    // MLP: reads Q_mlp(l), writes Q_attn(l + 1) (the last layer keeps Q_mlp: no shortcut needed).
    const [gate, up] = rotateInputs(kernels, [p.gate.weight, p.up.weight], layer.mlpNorm, qMlp, fusedGateUp);
    p.gate = { ...p.gate, weight: gate! };
    p.up = { ...p.up, weight: up! };
    p.down = rotateOutputs(kernels, p.down, qNext);
    if (next) layer.mlpShortcut = change(kernels, qMlp, qNext, d);
    layer.mlpNorm.fill(1);

    qAttn = qNext;
    opts.onLayer?.(l + 1, L);
  }
  // The classifier reads the last basis; untied from the embedding by construction (a new tensor).
  const [head] = rotateInputs(kernels, [w.lmHead.weight], w.finalNorm, qAttn);
  w.lmHead = { ...w.lmHead, weight: head! };
  w.finalNorm.fill(1);

  // The model now holds untied F32 weights plus the shortcut rotations.
  cfg.tieEmbeddings = false;
  const shortcuts = w.layers.reduce(
    (n, l) => n + (l.attnShortcut?.data.length ?? 0) + (l.mlpShortcut?.data.length ?? 0),
    0,
  );
  model.info.parameters = parameterCount(w) + shortcuts;
  model.info.dtypes = { F32: model.info.parameters };
  model.info.weightBytes = 4 * model.info.parameters;

  return {
    seconds: (performance.now() - started) / 1000,
    decompositionSeconds,
    extraFlopsPerToken: 2 * 2 * d * d * L,
    layers: L,
  };
}

/**
 * The F32 weights are new allocations beside the loaded ones (the kernels' allocator frees nothing): find out
 * now, not after minutes of work, whether they fit in WebAssembly's 4 GiB.
 */
function checkCapacity(model: Model): void {
  const kernels = model.transformer.kernels;
  // Unshared (single-thread) memory reserves its whole size up front: its length says nothing of its use.
  if (!(kernels instanceof WasmKernels) || !(kernels.memory.buffer instanceof SharedArrayBuffer)) return;
  const w = model.transformer.weights;
  const d = model.config.hiddenSize;
  const tied = w.lmHead.weight === w.embed;
  const shortcuts = (2 * model.config.numLayers - 1) * d * d;
  const added = 4 * (parameterCount(w) + (tied ? w.embed.data.length : 0) + shortcuts);
  const free = kernels.bytesFree;
  if (added > free) {
    const gib = (bytes: number) => (bytes / 2 ** 30).toFixed(1);
    fail(
      `the transformed model needs ${gib(added)} GiB of F32 weights beside those already loaded, ` +
        `more than the ${gib(free)} GiB of WebAssembly memory left: transform it in JavaScript memory with the ` +
        'reference kernels (WINA_KERNELS=reference)',
    );
  }
}

function isFused(model: Model, group: Projection[]): boolean {
  return model.info.fused.some((g) => g.length === group.length && g.every((p, i) => p === group[i]));
}

/** A [rows, cols] tensor (any dtype) as a float32 operand of the linear-algebra products. */
function tensorOperand(t: Tensor): Operand {
  const [rows, cols] = t.shape as [number, number];
  return { rows, cols, read: (first, out) => widen(t, first * cols, out) };
}

/** Row-stacked tensors [W_1; W_2; ...] as one operand. */
function stacked(parts: Tensor[]): Operand {
  if (parts.length === 1) return tensorOperand(parts[0]!);
  const ops = parts.map(tensorOperand);
  const cols = ops[0]!.cols;
  const rows = ops.reduce((n, o) => n + o.rows, 0);
  return {
    rows,
    cols,
    read(first, out) {
      let at = 0; // first row of the current part
      let done = 0; // rows written
      const want = out.length / cols;
      for (const o of ops) {
        const lo = Math.max(first + done, at);
        const hi = Math.min(first + want, at + o.rows);
        if (lo < hi) {
          o.read(lo - at, out.subarray(done * cols, (done + hi - lo) * cols));
          done += hi - lo;
        }
        at += o.rows;
      }
    },
  };
}

/**
 * V of the row-stacked matrix [W_1; W_2; ...] diag(g): eigenvectors of its Gram matrix (float64) sorted by
 * decreasing eigenvalue (= squared singular value), a full d x d orthonormal basis with the null space of a
 * short matrix completed. Row-major with row c the c-th basis vector (column c of V).
 */
export function principalBasis(parts: Tensor[], g: Float32Array | undefined, d: number): Basis {
  for (const t of parts)
    if (t.shape[1] !== d) fail(`principal basis: expected ${d} columns, got [${t.shape}]`);
  return eigh(gramMatrix(stacked(parts), g), d).vectors;
}

function allocF32(kernels: Kernels, n: number): Float32Array {
  const bytes = kernels.alloc(n * 4);
  return new Float32Array(bytes.buffer, bytes.byteOffset, n);
}

/**
 * W' = W diag(g) Q for each [rows, d] tensor (the readers of a rotated stream): W' = W B^T with
 * B = Q^T diag(g) (row c of B is basis vector c scaled by g). With `fused`, the results are row views of one
 * array, as the loader gives Phi-3's fused projections.
 */
function rotateInputs(
  kernels: Kernels,
  tensors: Tensor[],
  g: Float32Array,
  q: Basis,
  fused = false,
): Tensor[] {
  const d = Math.sqrt(q.length);
  const b = new Float32Array(d * d);
  for (let c = 0; c < d; c++) for (let i = 0; i < d; i++) b[c * d + i] = q[c * d + i]! * g[i]!;
  const rowsOf = tensors.map((t) => t.shape[0]!);
  const separate = (n: number) => allocF32(kernels, n * d);
  const whole = fused ? separate(rowsOf.reduce((a, r) => a + r, 0)) : undefined;
  let first = 0;
  return tensors.map((t, n) => {
    const rows = rowsOf[n]!;
    const out = whole ? whole.subarray(first * d, (first + rows) * d) : separate(rows);
    first += rows;
    matmulABt(tensorOperand(t), operand(b, d, d), out);
    return { dtype: 'F32', shape: [rows, d], data: out };
  });
}

/** W' = Q^T W (and b' = Q^T b) for a [d, in] linear writing into a rotated stream. */
function rotateOutputs(kernels: Kernels, lin: Linear, q: Basis): Linear {
  const [d, inDim] = lin.weight.shape as [number, number];
  const out = allocF32(kernels, d * inDim);
  // Row j of Q^T is basis vector j.
  matmulAB(operand(q, d, d), tensorOperand(lin.weight), out);
  const weight: Tensor = { dtype: 'F32', shape: [d, inDim], data: out };
  if (!lin.bias) return { weight };
  const bias = allocF32(kernels, d);
  for (let j = 0; j < d; j++) {
    let s = 0;
    for (let i = 0; i < d; i++) s += q[j * d + i]! * lin.bias[i]!;
    bias[j] = s;
  }
  return { weight, bias };
}

/** The shortcut from basis `from` to basis `to` as the [out, in] matrix the forward pass applies: to^T from. */
function change(kernels: Kernels, from: Basis, to: Basis, d: number): Tensor {
  const out = allocF32(kernels, d * d);
  // (to^T from)[j, k] = to_j . from_k, the basis vectors being rows.
  matmulABt(operand(to, d, d), operand(from, d, d), out);
  return { dtype: 'F32', shape: [d, d], data: out };
}

// ---------------------------------------------------------------------------------------------------------
// Saving a transformed model as a Hugging Face folder.

const TOKENIZER_FILES = [
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'tokenizer.model',
  'generation_config.json',
  'chat_template.jinja',
];

/** What a checkpoint folder written here holds: an earlier one in the same folder may be replaced. */
export const CHECKPOINT_FILES = [
  'config.json',
  'generation_config.json',
  'model.safetensors',
  ...TOKENIZER_FILES,
];

/** Where saveCheckpoint may write `dir` (checked before the transform's minutes of work). */
export function checkCheckpointFolder(model: Model, dir: string, flag = '--out'): void {
  checkOutputFolder(dir, flag, { replaceable: CHECKPOINT_FILES, sources: [modelFolder(model)] });
}

function modelFolder(model: Model): string {
  return model.info.format === 'hf' ? model.info.source : path.dirname(model.info.source);
}

/**
 * Writes the model as a Hugging Face checkpoint folder, built whole in a temporary folder beside `dir` and renamed
 * into place, so an interrupted save leaves `dir` as it was; never into the model's own folder.
 */
export function saveCheckpoint(model: Model, dir: string, flag = '--out'): void {
  const sources = [modelFolder(model)];
  writeOutputFolder(dir, flag, { replaceable: CHECKPOINT_FILES, sources }, (tmp) =>
    writeCheckpoint(model, tmp),
  );
}

/**
 * Writes the (transformed) model as a Hugging Face folder: config.json (untied, with a `wina_transform` marker),
 * model.safetensors (F32; shortcuts as `model.layers.N.attn_shortcut.weight` / `mlp_shortcut.weight`) and the
 * tokenizer files of the source folder when the model came from one. Only this engine reads the shortcuts.
 */
function writeCheckpoint(model: Model, dir: string): void {
  const cfg = model.config;
  const w = model.transformer.weights;
  const fusedQkv = isFused(model, ['q', 'k', 'v']);
  const fusedGateUp = isFused(model, ['gate', 'up']);
  const tensors: TensorToWrite[] = [];
  const add = (name: string, parts: (Tensor | Float32Array)[]) => tensors.push(...toWrite(name, parts));
  add('model.embed_tokens.weight', [w.embed]);
  w.layers.forEach((layer, l) => {
    const pre = `model.layers.${l}`;
    const p = layer.proj;
    const linear = (name: string, lin: Linear) => {
      add(`${name}.weight`, [lin.weight]);
      if (lin.bias) add(`${name}.bias`, [lin.bias]);
    };
    add(`${pre}.input_layernorm.weight`, [layer.attnNorm]);
    add(`${pre}.post_attention_layernorm.weight`, [layer.mlpNorm]);
    if (fusedQkv) {
      add(`${pre}.self_attn.qkv_proj.weight`, [p.q.weight, p.k.weight, p.v.weight]);
      if (p.q.bias) fail('saving fused qkv biases is not supported');
    } else {
      for (const proj of ['q', 'k', 'v'] as const) linear(`${pre}.self_attn.${proj}_proj`, p[proj]);
    }
    linear(`${pre}.self_attn.o_proj`, p.o);
    if (fusedGateUp) {
      add(`${pre}.mlp.gate_up_proj.weight`, [p.gate.weight, p.up.weight]);
      if (p.gate.bias) fail('saving fused gate_up biases is not supported');
    } else {
      linear(`${pre}.mlp.gate_proj`, p.gate);
      linear(`${pre}.mlp.up_proj`, p.up);
    }
    linear(`${pre}.mlp.down_proj`, p.down);
    if (layer.attnShortcut) add(`${pre}.attn_shortcut.weight`, [layer.attnShortcut]);
    if (layer.mlpShortcut) add(`${pre}.mlp_shortcut.weight`, [layer.mlpShortcut]);
  });
  add('model.norm.weight', [w.finalNorm]);
  const tied = w.lmHead.weight === w.embed;
  if (!tied) add('lm_head.weight', [w.lmHead.weight]);
  if (w.lmHead.bias) add('lm_head.bias', [w.lmHead.bias]);

  const sourceDir = model.info.format === 'hf' ? model.info.source : undefined;
  const config = sourceDir
    ? readJsonObject(path.join(sourceDir, 'config.json'), 'config', SIZE_LIMITS.config)
    : hfConfigOf(cfg);
  config.tie_word_embeddings = tied;
  config.torch_dtype = 'float32';
  if ('dtype' in config) config.dtype = 'float32';
  const transformed = w.layers.some((layer) => layer.attnShortcut || layer.mlpShortcut);
  if (transformed) config[TRANSFORM_MARKER] = { method: 'orthogonal', shortcuts: true };
  const quantizer = w.layers[0] && quantizerOf(Object.values(w.layers[0].proj)[0]!.weight.dtype);
  const quantized = quantizer !== undefined;
  if (quantizer)
    config[QUANTIZATION_MARKER] = {
      format: quantizer.dtype.toLowerCase(),
      group_size: Q8_GROUP,
      values: `NAME (${quantizer.stored}): ${quantizer.packing}`,
      scales: 'NAME_scale (F32 [out, in / 32])',
    };
  writeJson(path.join(dir, 'config.json'), config);
  if (sourceDir) {
    for (const name of TOKENIZER_FILES) {
      const from = path.join(sourceDir, name);
      if (isRegularFile(from))
        fs.writeFileSync(path.join(dir, name), readInputBytes(from, name, SIZE_LIMITS.json));
    }
  } else {
    const gen = {
      bos_token_id: cfg.bosId,
      eos_token_id: cfg.eosIds.length === 1 ? cfg.eosIds[0] : cfg.eosIds,
    };
    writeJson(path.join(dir, 'generation_config.json'), gen);
  }
  writeSafetensors(path.join(dir, 'model.safetensors'), tensors, {
    format: 'pt',
    wina: transformed ? 'orthogonal-transform' : quantized ? quantizer.dtype.toLowerCase() : 'export',
  });
}

/**
 * Safetensors entries from row-stacked parts (Phi-3's fused matrices) or a vector, written as F32; a q8 weight
 * as its I8 values and F32 `NAME_scale` (see q8.ts).
 */
function toWrite(name: string, parts: (Tensor | Float32Array)[]): TensorToWrite[] {
  const tensors: Tensor[] = parts.map((p) =>
    p instanceof Float32Array ? { dtype: 'F32', shape: [p.length], data: p } : p,
  );
  const quantizer = quantizerOf(tensors[0]!.dtype);
  if (quantizer && tensors[0]!.dtype === quantizer.dtype) {
    const saved = savedValues(tensors, quantizer);
    const [rows, inDim] = [tensors.reduce((s, t) => s + t.shape[0]!, 0), tensors[0]!.shape[1]!];
    return [
      {
        name,
        dtype: quantizer.stored,
        shape: [rows, quantizer.valueBytes(inDim)],
        fill: (out, start) => saved.values(start, out),
      },
      {
        name: `${name}_scale`,
        dtype: 'F32',
        shape: [rows, inDim / Q8_GROUP],
        fill: (out, start) =>
          saved.scales(start, new Float32Array(out.buffer, out.byteOffset, out.byteLength / 4)),
      },
    ];
  }
  if (tensors[0]!.layout === 'input-major' || quantizer)
    fail('saving a model loaded with --layout input-major is not supported: load it with the row layout');
  return [toWriteFloat(name, tensors)];
}

function toWriteFloat(name: string, tensors: Tensor[]): TensorToWrite {
  const cols = tensors[0]!.shape.length === 1 ? undefined : tensors[0]!.shape[1]!;
  const rows = tensors.reduce((s, t) => s + t.shape[0]!, 0);
  const shape = cols === undefined ? [rows] : [rows, cols];
  const width = cols ?? 1;
  return {
    name,
    dtype: 'F32',
    shape,
    fill(out, start) {
      // Elements [start, start + dst.length) of the stacked parts.
      const dst = new Float32Array(out.buffer, out.byteOffset, out.byteLength / 4);
      let at = 0;
      for (const t of tensors) {
        const n = t.shape[0]! * width;
        const lo = Math.max(start, at);
        const hi = Math.min(start + dst.length, at + n);
        if (lo < hi) widen(t, lo - at, dst.subarray(lo - start, hi - start));
        at += n;
      }
    },
  };
}

/** config.json for a model that did not come from one (llama2.c checkpoints). */
function hfConfigOf(cfg: ModelConfig): Record<string, unknown> {
  if (cfg.modelType !== 'llama' || cfg.rope.type !== 'default') {
    fail(
      `cannot write config.json for a ${cfg.modelType} model with ${cfg.rope.type} RoPE without its source`,
    );
  }
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: cfg.hiddenSize,
    intermediate_size: cfg.intermediateSize,
    num_hidden_layers: cfg.numLayers,
    num_attention_heads: cfg.numHeads,
    num_key_value_heads: cfg.numKvHeads,
    head_dim: cfg.headDim,
    vocab_size: cfg.vocabSize,
    max_position_embeddings: cfg.maxPositions,
    rms_norm_eps: cfg.rmsNormEps,
    rope_theta: cfg.rope.theta,
    attention_bias: cfg.qkvBias,
    mlp_bias: cfg.mlpBias,
    hidden_act: 'silu',
    bos_token_id: cfg.bosId,
    eos_token_id: cfg.eosIds.length === 1 ? cfg.eosIds[0] : cfg.eosIds,
  };
}

/** Inside the temporary folder that is renamed into place whole. */
function writeJson(file: string, value: object): void {
  fs.writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`);
}
