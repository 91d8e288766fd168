/**
 * llama2.c checkpoints (`run.c`'s format): 7 int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size,
 * seq_len; a negative vocab_size means an untied classifier follows), then float32 weights in a fixed order.
 * Exposed as a TensorSource under Hugging Face Llama names, with wq/wk rows permuted from llama2.c's
 * interleaved RoPE pairs (i, i+1) to Hugging Face's rotated halves (i, i + headDim/2).
 */
import fs from 'node:fs';
import type { ModelConfig } from './config.js';
import { fail } from '../errors.js';
import { openInputFile, readExactly } from '../io/files.js';
import type { TensorInfo, TensorSource } from '../io/safetensors.js';
import type { Allocate, Tensor } from '../kernels/tensor.js';
import { pairsToHalves } from './rope.js';

interface Entry {
  shape: number[];
  offset: number;
  /** Permute rows per head (wq, wk): the number of heads. */
  ropeHeads?: number;
}

export class Llama2cCheckpoint implements TensorSource {
  readonly config: ModelConfig;
  private readonly entries = new Map<string, Entry>();

  private constructor(
    readonly file: string,
    private fd: number,
    size: number,
  ) {
    if (size < 28) fail(`llama2.c checkpoint ${file} is truncated: no header`);
    const header = Buffer.alloc(28);
    readExactly(fd, header, 0, file);
    const [dim, hidden, layers, heads, kvHeads, signedVocab, seqLen] = Array.from({ length: 7 }, (_, i) =>
      header.readInt32LE(i * 4),
    ) as [number, number, number, number, number, number, number];
    const vocab = Math.abs(signedVocab);
    const fields = `header ${[dim, hidden, layers, heads, kvHeads, signedVocab, seqLen]}`;
    if ([dim, hidden, layers, heads, kvHeads, vocab, seqLen].some((v) => v <= 0))
      fail(`${file} is not a llama2.c checkpoint (${fields}: every field must be positive)`);
    if (dim % heads !== 0 || (dim / heads) % 2 !== 0)
      fail(
        `llama2.c checkpoint ${file}: dim ${dim} must be n_heads ${heads} times an even head size (${fields})`,
      );
    if (kvHeads > heads || heads % kvHeads !== 0)
      fail(
        `llama2.c checkpoint ${file}: n_heads ${heads} is not a multiple of n_kv_heads ${kvHeads} (${fields})`,
      );
    const headDim = dim / heads;
    const kvDim = kvHeads * headDim;
    this.config = {
      modelType: 'llama',
      hiddenSize: dim,
      intermediateSize: hidden,
      numLayers: layers,
      numHeads: heads,
      numKvHeads: kvHeads,
      headDim,
      vocabSize: vocab,
      maxPositions: seqLen,
      rmsNormEps: 1e-5,
      rope: { type: 'default', theta: 10000, rotaryDim: headDim },
      tieEmbeddings: signedVocab > 0,
      qkvBias: false,
      oBias: false,
      mlpBias: false,
      slidingWindow: 0,
      bosId: 1,
      eosIds: [2],
    };

    let offset = 28;
    const add = (name: string, shape: number[], ropeHeads?: number) => {
      this.entries.set(name, { shape, offset, ropeHeads });
      offset += shape.reduce((a, b) => a * b, 1) * 4;
    };
    // Each block of the file stacks one kind of weight for all layers.
    const perLayer = (suffix: string, shape: number[], ropeHeads?: number) => {
      for (let l = 0; l < layers; l++) add(`model.layers.${l}.${suffix}`, shape, ropeHeads);
    };
    add('model.embed_tokens.weight', [vocab, dim]);
    perLayer('input_layernorm.weight', [dim]);
    perLayer('self_attn.q_proj.weight', [dim, dim], heads);
    perLayer('self_attn.k_proj.weight', [kvDim, dim], kvHeads);
    perLayer('self_attn.v_proj.weight', [kvDim, dim]);
    perLayer('self_attn.o_proj.weight', [dim, dim]);
    perLayer('post_attention_layernorm.weight', [dim]);
    perLayer('mlp.gate_proj.weight', [hidden, dim]);
    perLayer('mlp.down_proj.weight', [dim, hidden]);
    perLayer('mlp.up_proj.weight', [hidden, dim]);
    add('model.norm.weight', [dim]);
    offset += seqLen * headDim * 4; // freq_cis_real and freq_cis_imag (unused: RoPE is recomputed)
    if (signedVocab < 0) add('lm_head.weight', [vocab, dim]);
    if (offset > size)
      fail(`llama2.c checkpoint ${file} is truncated: ${size} bytes, the header implies ${offset}`);
    // An exact size: a header that miscounts the layers (or another format) would read weights from wrong places.
    if (offset < size)
      fail(
        `llama2.c checkpoint ${file} has ${size - offset} bytes more than its header implies (${offset}): ` +
          `the header does not describe this file (${fields})`,
      );
  }

  static open(file: string): Llama2cCheckpoint {
    const { fd, size } = openInputFile(file, 'llama2.c checkpoint');
    try {
      return new Llama2cCheckpoint(file, fd, size);
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
  }

  names(): string[] {
    return [...this.entries.keys()];
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  info(name: string): TensorInfo {
    const e = this.entries.get(name) ?? fail(`tensor ${name} is not in ${this.file}`);
    return { dtype: 'F32', shape: e.shape };
  }

  read(name: string, allocate: Allocate = (n) => new Uint8Array(n)): Tensor {
    const e = this.entries.get(name) ?? fail(`tensor ${name} is not in ${this.file}`);
    const n = e.shape.reduce((a, b) => a * b, 1);
    const raw = new Uint8Array(n * 4);
    readExactly(this.fd, raw, e.offset, this.file);
    const bytes = allocate(n * 4);
    if (e.ropeHeads === undefined) bytes.set(raw);
    else pairsToHalves(raw, bytes, e.ropeHeads, e.shape[1]! * 4);
    const data = new Float32Array(bytes.buffer, bytes.byteOffset, n);
    return { dtype: 'F32', shape: e.shape, data };
  }

  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }
}
