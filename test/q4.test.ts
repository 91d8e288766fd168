/**
 * q4 weights (`--quantize q4`): the quantizer is llama.cpp's Q4_0 (quantize_row_q4_0_ref), checked block for
 * block against the Q4_0 file llama.cpp's own llama-quantize wrote (../shared/fixtures/gguf).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describe, test } from 'node:test';
import { gguf } from '@huggingface/gguf';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { Q4_GROUP, quantizeQ4, widenQ4 } from '../src/kernels/q4.js';
import { roundToF16 } from '../src/kernels/q8.js';
import { QUANTIZERS, savedValues } from '../src/kernels/formats.js';
import { widen } from '../src/kernels/reference.js';
import { assertUserError } from './cli-helpers.js';
import { sharedPath } from './helpers.js';

const f16ToF32 = (h: number) => {
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  const sign = h & 0x8000 ? -1 : 1;
  return exp === 0 ? sign * 2 ** -14 * (frac / 1024) : sign * 2 ** (exp - 15) * (1 + frac / 1024);
};

describe('the q4 quantizer', () => {
  test('within half a step of every weight, but for those Q4_0 clamps (above +7.5 steps, opposite the largest)', () => {
    const out = 9;
    const inDim = 128;
    const rows = Array.from({ length: out }, (_, o) =>
      Float32Array.from(
        { length: inDim },
        (_, i) => Math.sin(o * 97 + i * 5.1) * (1 + (o % 3)) * 10 ** -(o % 4),
      ),
    );
    rows[0]![3] = 0; // a group with a zero, one with all zeros
    rows[1]!.fill(0, 32, 64);
    const w = quantizeQ4(
      out,
      inDim,
      (o, dst) => dst.set(rows[o]!),
      (n) => new Uint8Array(n),
    );
    const row = new Float32Array(inDim);
    let clamped = 0;
    for (let o = 0; o < out; o++) {
      widenQ4(w, o * inDim, row);
      for (let g = 0; g < inDim / Q4_GROUP; g++) {
        const group = Array.from(rows[o]!.subarray(g * Q4_GROUP, (g + 1) * Q4_GROUP));
        const max = group.reduce((m, v) => (Math.abs(v) > Math.abs(m) ? v : m), 0);
        const d = Math.fround(max / -8);
        const scale = roundToF16(d);
        for (let j = 0; j < Q4_GROUP; j++) {
          const i = g * Q4_GROUP + j;
          const v = rows[o]![i]!;
          const q = scale === 0 ? 0 : row[i]! / scale;
          assert.ok(Number.isInteger(q) && q >= -8 && q <= 7, `row ${o}, input ${i}: q = ${q}`);
          if (d !== 0 && v / d > 7.5) {
            assert.equal(q, 7, `row ${o}, input ${i}: clamped to 7`);
            clamped++;
            continue;
          }
          // Half a step, plus what storing the scale in F16 (as Q4_0 does) moves a value of |q| <= 8.
          const bound = Math.abs(scale) / 2 + 8 * Math.abs(scale - d);
          assert.ok(Math.abs(row[i]! - v) <= bound * (1 + 1e-6), `row ${o}, input ${i}`);
        }
      }
    }
    assert.ok(clamped > 0, 'the sample has values Q4_0 clamps');
  });

  test("llama-28m-mixed: every Q4_0 block equals llama.cpp's own llama-quantize output", async () => {
    const file = sharedPath('fixtures', 'gguf', 'llama-28m-mixed-q4_0.gguf');
    const { tensorInfos, tensorDataOffset } = await gguf(file, { allowLocalFile: true });
    const model = SafetensorsFile.open(sharedPath('models', 'llama-28m-mixed', 'model.safetensors'));
    const fd = fs.openSync(file, 'r');
    const config = JSON.parse(
      fs.readFileSync(sharedPath('models', 'llama-28m-mixed', 'config.json'), 'utf8'),
    );
    const names: Record<string, string> = {
      attn_q: 'self_attn.q_proj',
      attn_k: 'self_attn.k_proj',
      attn_v: 'self_attn.v_proj',
      attn_output: 'self_attn.o_proj',
      ffn_gate: 'mlp.gate_proj',
      ffn_up: 'mlp.up_proj',
      ffn_down: 'mlp.down_proj',
    };
    let tensors = 0;
    let blocks = 0;
    try {
      for (const info of tensorInfos) {
        if (info.dtype !== 2) continue; // GGML_TYPE_Q4_0 (token_embd is Q6_K in this file)
        const [, layer, kind] = info.name.match(/^blk\.(\d+)\.(\w+)\.weight$/)!;
        const inDim = Number(info.shape[0]);
        const rows = Number(info.shape[1]);
        const groups = inDim / Q4_GROUP;
        const bytes = Buffer.alloc(rows * groups * 18);
        fs.readSync(fd, bytes, 0, bytes.length, Number(tensorDataOffset + info.offset));
        const source = model.read(`model.layers.${layer}.${names[kind!]}.weight`);
        // convert_hf_to_gguf permutes q / k rows per head: GGUF row h*n + 2i + t is HF row h*n + t*n/2 + i.
        const heads =
          kind === 'attn_q' ? config.num_attention_heads : kind === 'attn_k' ? config.num_key_value_heads : 0;
        const hfRow = (r: number) => {
          if (!heads) return r;
          const n = rows / heads;
          const [h, i, t] = [Math.floor(r / n), Math.floor((r % n) / 2), r % 2];
          return h * n + t * (n / 2) + i;
        };
        const w = quantizeQ4(
          rows,
          inDim,
          (o, dst) => widen(source, hfRow(o) * inDim, dst),
          (n) => new Uint8Array(n),
        );
        // Compared as saved (row-major values, then scales), whatever the layout in memory.
        const saved = savedValues([w], QUANTIZERS.q4);
        const values = new Uint8Array((rows * inDim) / 2);
        const scales = new Float32Array(rows * groups);
        saved.values(0, values);
        saved.scales(0, scales);
        for (let r = 0; r < rows; r++) {
          for (let g = 0; g < groups; g++) {
            const at = (r * groups + g) * 18;
            const where = `${info.name} row ${r} group ${g}`;
            assert.equal(scales[r * groups + g], f16ToF32(bytes.readUInt16LE(at)), where);
            assert.deepEqual(
              values.subarray((r * groups + g) * 16, (r * groups + g + 1) * 16),
              new Uint8Array(bytes.subarray(at + 2, at + 18)),
              where,
            );
            blocks++;
          }
        }
        tensors++;
      }
    } finally {
      fs.closeSync(fd);
      model.close();
    }
    assert.equal(tensors, 56); // the file's Q4_0 tensors: 7 per layer
    assert.ok(blocks > 700_000);
  });
});

describe('--quantize q4: bad input', () => {
  test('--quantize q4: an input size the group does not divide is one line', () => {
    assertUserError(
      [
        'generate',
        '--model',
        sharedPath('fixtures', 'models', 'llama3'),
        '--quantize',
        'q4',
        '--max-tokens',
        '2',
      ],
      /--quantize q4 needs every weight's input size to be a multiple of 32, but model\.layers\.0\.mlp\.down_proj\.weight is \[64,176\]/,
    );
  });
});
