import { fail } from '../errors.js';
import type { TensorSource } from '../io/safetensors.js';
import type { Allocate } from '../kernels/tensor.js';
import { numel, type Tensor } from '../kernels/tensor.js';
import {
  FORMATS,
  formatOf,
  fromSaved,
  type Quantization,
  type Quantizer,
  QUANTIZERS,
  quantizerSavedAs,
} from '../kernels/formats.js';
import { Q8_GROUP as GROUP } from '../kernels/q8.js';
import { toInputMajor, widen } from '../kernels/reference.js';
import type { ModelConfig, Projection } from './config.js';

/** y = W x (+ b) with W of shape [out, in], kept in its stored dtype. */
export interface Linear {
  weight: Tensor;
  bias?: Float32Array;
}

export interface LayerWeights {
  attnNorm: Float32Array;
  mlpNorm: Float32Array;
  proj: Record<Projection, Linear>;
  /** Orthogonal transform only: rotations [d, d] applied to the residual stream before each residual add. */
  attnShortcut?: Tensor;
  mlpShortcut?: Tensor;
}

export interface ModelWeights {
  embed: Tensor;
  layers: LayerWeights[];
  finalNorm: Float32Array;
  lmHead: Linear;
}

/** Reads tensors by name and checks each one's shape against what the config implies. */
export class WeightReader {
  /** Elements read per stored dtype (what `wina info` reports). */
  readonly dtypes: Record<string, number> = {};

  constructor(
    readonly source: TensorSource,
    readonly allocate?: Allocate,
    /** Store the projections input-major only (half the memory of keeping both layouts for sparse decode). */
    readonly inputMajor = false,
    /** Quantize the matrices (projections, embedding, classifier) as they are read. */
    readonly quantize?: Quantization,
  ) {}

  has(name: string): boolean {
    return this.source.has(name);
  }

  tensor(name: string, shape: number[]): Tensor {
    if (this.savedQuantizer(name)) return this.saved(name, shape as [number, number], this.allocate);
    const info = this.checkShape(name, shape);
    this.count(info.dtype, info.shape);
    const t = this.source.read(name, this.allocate);
    // The F16 kernels read NaN and Inf as finite weights (kernels/assembly/simd.ts): refuse them here.
    if (t.dtype === 'F16' && FORMATS.F16.hasNonFinite(t))
      fail(`tensor ${name} holds NaN or Inf values; the checkpoint is corrupt`);
    return t;
  }

  private checkShape(name: string, shape: number[]) {
    if (!this.source.has(name)) fail(`checkpoint is missing tensor ${name}`);
    const info = this.source.info(name);
    if (info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i])) {
      fail(`tensor ${name} has shape [${info.shape}] but the config implies [${shape}]`);
    }
    return info;
  }

  /** How `name` was quantized, if it is the values of a `wina quantize` checkpoint's weight (scales beside it). */
  private savedQuantizer(name: string): Quantizer | undefined {
    return this.source.has(name) ? quantizerSavedAs(this.source.info(name).dtype) : undefined;
  }

  /** A saved quantized weight: its values and `NAME_scale` F32 [out, in / 32], as they are (no re-quantization). */
  private saved(name: string, shape: [number, number], allocate?: Allocate): Tensor {
    const q = this.savedQuantizer(name)!;
    if (shape.length !== 2)
      fail(`quantized checkpoint: ${name} is quantized but the config implies [${shape}]`);
    q.checkShape(name, shape);
    const info = this.source.info(name);
    const values = [shape[0], q.valueBytes(shape[1])];
    if (info.shape.length !== 2 || info.shape.some((d, i) => d !== values[i]))
      fail(`quantized checkpoint: ${name} is ${info.dtype} [${info.shape}] but [${shape}] needs [${values}]`);
    const scaleName = `${name}_scale`;
    const want = [shape[0], shape[1] / GROUP];
    if (!this.source.has(scaleName) || !this.source.readBytes)
      fail(`quantized checkpoint: tensor ${name} is ${info.dtype} but its scales ${scaleName} are missing`);
    const scales = this.source.info(scaleName);
    if (scales.dtype !== 'F32' || scales.shape.length !== 2 || scales.shape.some((d, i) => d !== want[i]))
      fail(
        `quantized checkpoint: ${scaleName} is ${scales.dtype} [${scales.shape}] but ${name} [${shape}] needs F32 [${want}]`,
      );
    const bytes = this.source.readBytes(name);
    // -128 is outside Q8_0's range (the kernels move x's sign onto the weights).
    if (q.stored === 'I8' && bytes.includes(0x80))
      fail(`quantized checkpoint: ${name} holds the int8 value -128, outside q8's range [-127, 127]`);
    this.count(q.dtype, shape);
    const alloc = allocate ?? ((n: number) => new Uint8Array(n));
    return fromSaved(q, bytes, this.source.readBytes(scaleName), shape, alloc);
  }

  /** Reads a [out, in] weight through ordinary memory and stores it input-major where the kernels run. */
  private transposed(name: string, shape: number[]): Tensor {
    const rowMajor = new WeightReader(this.source).tensor(name, shape);
    this.count(rowMajor.dtype, shape);
    const t = toInputMajor(rowMajor);
    const bytes = this.allocate ? this.allocate(t.data.byteLength) : new Uint8Array(t.data.byteLength);
    new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength).set(new Uint8Array(t.data.buffer));
    return { dtype: t.dtype, shape, data: FORMATS[t.dtype].view(bytes), layout: 'input-major' };
  }

  private count(dtype: string, shape: number[]): void {
    this.dtypes[dtype] = (this.dtypes[dtype] ?? 0) + shape.reduce((a, b) => a * b, 1);
  }

  /** Small vectors (norms, biases) are widened to F32 once. */
  vector(name: string, length: number): Float32Array {
    const t = this.source.has(name) ? this.source.read(name) : fail(`checkpoint is missing tensor ${name}`);
    if (t.shape.length !== 1 || t.shape[0] !== length) {
      fail(`tensor ${name} has shape [${t.shape}] but the config implies [${length}]`);
    }
    this.count(this.source.info(name).dtype, t.shape);
    const bytes = this.allocate ? this.allocate(length * 4) : new Uint8Array(length * 4);
    const out = new Float32Array(bytes.buffer, bytes.byteOffset, length);
    widen(t, 0, out);
    return out;
  }

  /**
   * A matrix [out, in] kept row-major (embedding, classifier, Phi-3's fused projections, which are sliced by
   * rows): as stored, or quantized to q8 when the reader quantizes.
   */
  matrix(name: string, shape: [number, number]): Tensor {
    if (!this.quantize || this.savedQuantizer(name)) return this.tensor(name, shape);
    return this.quantized(name, shape, this.allocate ?? ((n) => new Uint8Array(n)));
  }

  /** Reads through ordinary memory (the stored copy is not kept) and quantizes into `alloc`. */
  private quantized(name: string, shape: [number, number], alloc: (n: number) => Uint8Array): Tensor {
    if (this.savedQuantizer(name)) return this.saved(name, shape, alloc);
    const q = QUANTIZERS[this.quantize!];
    q.checkShape(name, shape);
    const stored = new WeightReader(this.source).tensor(name, shape);
    this.count(q.dtype, shape);
    const [outDim, inDim] = shape;
    return q.quantize(outDim, inDim, (o, dst) => widen(stored, o * inDim, dst), alloc);
  }

  /** A projection's weight: row-major, or input-major only, stored or quantized, as the reader is set up. */
  private projection(name: string, shape: [number, number]): Tensor {
    if (!this.quantize && !this.savedQuantizer(name))
      return this.inputMajor ? this.transposed(name, shape) : this.tensor(name, shape);
    if (!this.inputMajor) return this.matrix(name, shape);
    const rowMajor = this.quantized(name, shape, (n) => new Uint8Array(n));
    const t = formatOf(rowMajor.dtype).inputMajor!(rowMajor, this.allocate ?? ((n) => new Uint8Array(n)));
    return { ...t, shape, layout: 'input-major' };
  }

  linear(name: string, outDim: number, inDim: number, bias: boolean): Linear {
    const weight = this.projection(`${name}.weight`, [outDim, inDim]);
    return bias ? { weight, bias: this.vector(`${name}.bias`, outDim) } : { weight };
  }
}

/** Rows [first, first + count) of a [out, in] weight, without copying (Phi-3's fused projections). */
export function rowSlice(t: Tensor, first: number, count: number): Tensor {
  const inDim = t.shape[1]!;
  // Elements of `data` per row: a q8 / q4 row holds its scales after its values.
  const row = (inDim * FORMATS[t.dtype].bytes) / t.data.BYTES_PER_ELEMENT;
  return {
    dtype: t.dtype,
    shape: [count, inDim],
    data: t.data.subarray(first * row, (first + count) * row),
  };
}

/** Embedding, final norm and classifier, named as every Hugging Face Llama-family checkpoint names them. */
export function readOuterWeights(r: WeightReader, cfg: ModelConfig, layers: LayerWeights[]): ModelWeights {
  // Tied checkpoints store the shared matrix under either name (tinystories-656k keeps only lm_head).
  const tiedUnderHead = cfg.tieEmbeddings && !r.has('model.embed_tokens.weight') && r.has('lm_head.weight');
  const shape: [number, number] = [cfg.vocabSize, cfg.hiddenSize];
  const embed = r.matrix(tiedUnderHead ? 'lm_head.weight' : 'model.embed_tokens.weight', shape);
  const tied = cfg.tieEmbeddings || !r.has('lm_head.weight');
  // Never sparse, so always row-major.
  const lmHead = { weight: tied ? embed : r.matrix('lm_head.weight', shape) };
  return { embed, layers, finalNorm: r.vector('model.norm.weight', cfg.hiddenSize), lmHead };
}

export function parameterCount(w: ModelWeights): number {
  let n = numel(w.embed.shape) + w.finalNorm.length;
  if (w.lmHead.weight !== w.embed) n += numel(w.lmHead.weight.shape);
  for (const layer of w.layers) {
    n += layer.attnNorm.length + layer.mlpNorm.length;
    for (const p of Object.values(layer.proj)) n += numel(p.weight.shape) + (p.bias?.length ?? 0);
  }
  return n;
}
