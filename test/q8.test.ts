/**
 * q8 weights (`--quantize q8`): the quantizer is llama.cpp's Q8_0, so a model quantized on load computes the
 * logits of llama.cpp's own Q8_0 files (their float64 forward, ../shared/fixtures/gguf/*.logits64), and every
 * weight stays within half a quantization step.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { Q8_GROUP, quantizeQ8, roundToF16, widenQ8 } from '../src/kernels/q8.js';
import { loadModel } from '../src/model/model.js';
import { applyWina } from '../src/sparsity/apply.js';
import { orthogonalTransform, quantizeTransformed } from '../src/sparsity/transform.js';
import { assertUserError, runCli } from './cli-helpers.js';
import { fixtureDir, relativeL2, sharedPath } from './helpers.js';

describe('the q8 quantizer', () => {
  test('every weight is within half a step of its dequantized value; the scale is max |w| / 127 in F16', () => {
    const out = 7;
    const inDim = 96;
    const rows = Array.from({ length: out }, (_, o) =>
      Float32Array.from(
        { length: inDim },
        (_, i) => Math.sin(o * 131 + i * 7.3) * (1 + (o % 3)) * 10 ** -(o % 4),
      ),
    );
    const w = quantizeQ8(
      out,
      inDim,
      (o, dst) => dst.set(rows[o]!),
      (n) => new Uint8Array(n),
    );
    const row = new Float32Array(inDim);
    for (let o = 0; o < out; o++) {
      widenQ8(w, o * inDim, row);
      for (let g = 0; g < inDim / Q8_GROUP; g++) {
        const group = rows[o]!.subarray(g * Q8_GROUP, (g + 1) * Q8_GROUP);
        const amax = Math.max(...Array.from(group, Math.abs));
        const d = Math.fround(amax / 127);
        const scale = roundToF16(d);
        for (let j = 0; j < Q8_GROUP; j++) {
          const i = g * Q8_GROUP + j;
          // Half a step, plus what storing the scale in F16 (as Q8_0 does) moves a value of |q| <= 127.
          const bound = scale / 2 + 127 * Math.abs(scale - d);
          assert.ok(Math.abs(row[i]! - rows[o]![i]!) <= bound * (1 + 1e-6), `row ${o}, input ${i}`);
          assert.ok(Number.isInteger(row[i]! / scale), `row ${o}, input ${i}: not a multiple of the scale`);
        }
      }
    }
  });

  test('F16 rounding of the scale: ties to even, subnormals', () => {
    assert.equal(roundToF16(1), 1);
    assert.equal(roundToF16(1 + 2 ** -11), 1); // halfway between 1 and 1 + 2^-10: to even
    assert.equal(roundToF16(1 + 3 * 2 ** -11), 1 + 2 * 2 ** -10);
    assert.equal(roundToF16(2 ** -24 * 3.4), 2 ** -24 * 3); // subnormal F16 quantum 2^-24
    assert.equal(roundToF16(-0.1), -0.0999755859375);
  });
});

describe('models quantized on load equal llama.cpp Q8_0 files', () => {
  for (const [model, file] of [
    ['tinystories-656k', 'tinystories-656k-q8_0'],
    ['llama-28m-mixed', 'llama-28m-mixed-q8_0'],
  ] as const) {
    for (const kernels of ['wasm', 'reference'] as const) {
      test(`${model} --quantize q8 (${kernels} kernels): logits within 1e-4 of ${file}.logits64`, async () => {
        const fixture = (name: string) => sharedPath('fixtures', 'gguf', `${file}.${name}.safetensors`);
        const reference = SafetensorsFile.open(fixture('reference'));
        const target = SafetensorsFile.open(fixture('logits64'));
        try {
          const ids = reference.readInts('ids');
          const expected = target.read('logits64').data as Float32Array;
          const q8 = await loadModel(sharedPath('models', model), { quantize: 'q8', kernels });
          try {
            assert.deepEqual(Object.keys(q8.info.dtypes).sort(), [
              model === 'tinystories-656k' ? 'F32' : 'BF16',
              'Q8',
            ]);
            assert.ok(relativeL2(q8.forward(ids), expected) < 1e-4);
          } finally {
            q8.close();
          }
          // The unquantized model is far from it: the comparison tells q8 apart.
          const full = await loadModel(sharedPath('models', model), { kernels });
          try {
            assert.ok(relativeL2(full.forward(ids), expected) > 1e-3);
          } finally {
            full.close();
          }
        } finally {
          reference.close();
          target.close();
        }
      });
    }
  }

  for (const quantize of ['q8', 'q4'] as const) {
    test(`WINA on ${quantize}: decoding with the WebAssembly kernels equals the reference kernels, both layouts`, async () => {
      const tokensOf = async (kernels: 'wasm' | 'reference', layout: 'row' | 'input-major') => {
        const model = await loadModel(sharedPath('models', 'tinystories-656k'), {
          quantize,
          kernels,
          layout,
        });
        try {
          const sparse = applyWina(model, { method: 'wina', globalSparsity: 0.5 });
          const ids: number[] = [];
          for await (const t of sparse.generate('Once upon a time', { maxTokens: 16, temperature: 0 }))
            ids.push(t.id);
          assert.ok(Math.abs(sparse.achieved() - 0.5) < 0.01);
          return ids;
        } finally {
          model.close();
        }
      };
      const expected = await tokensOf('reference', 'row');
      assert.equal(expected.length, 16);
      assert.deepEqual(await tokensOf('wasm', 'row'), expected);
      assert.deepEqual(await tokensOf('wasm', 'input-major'), expected);
    });
  }
});

describe('--quantize: bad input', () => {
  test('an unknown format, an input size the group does not divide, the transform', () => {
    const tiny = sharedPath('models', 'tinystories-656k');
    assertUserError(['info', '--model', tiny, '--quantize', 'q5'], 'quantize must be one of q8, q4, got q5');
    assertUserError(
      ['generate', '--model', fixtureDir('llama3'), '--quantize', 'q8', '--max-tokens', '2'],
      /--quantize q8 needs every weight's input size to be a multiple of 32, but model\.layers\.0\.mlp\.down_proj\.weight is \[64,176\]: load this model without --quantize$/,
    );
  });

  test('the transform of an already quantized model is one line (--transform with --quantize transforms first)', async () => {
    const model = await loadModel(sharedPath('models', 'tinystories-656k'), { quantize: 'q8' });
    try {
      assert.throws(
        () => orthogonalTransform(model),
        /the orthogonal transform of a quantized model is not supported yet/,
      );
    } finally {
      model.close();
    }
  });
});

describe('--transform with --quantize: the transform on the original weights, then quantization', () => {
  test('tinystories-656k: the logits stay as near the F32 model as quantizing on load does; generate runs', async () => {
    const tiny = sharedPath('models', 'tinystories-656k');
    const full = await loadModel(tiny);
    const ids = full.tokenizer.encode(
      'Once upon a time, there was a little girl named Lily. She liked to play',
    );
    const expected = full.forward(ids);
    full.close();
    for (const q of ['q8', 'q4'] as const) {
      const onLoad = await loadModel(tiny, { quantize: q });
      const direct = relativeL2(onLoad.forward(ids), expected);
      onLoad.close();
      const model = await loadModel(tiny);
      try {
        orthogonalTransform(model);
        quantizeTransformed(model, q);
        assert.deepEqual(Object.keys(model.info.dtypes).sort(), ['F32', q.toUpperCase()]);
        // Rotated weights quantize about as well as the originals (measured: 1.25x and 1.3x the error).
        const transformed = relativeL2(model.forward(ids), expected);
        assert.ok(transformed < 1.5 * direct, `${q}: ${transformed} against ${direct} on load`);
      } finally {
        model.close();
      }
    }
    const r = runCli(['generate', '--model', tiny, '--quantize', 'q8', '--transform', '--max-tokens', '4']);
    assert.equal(r.status, 0, r.stderr);
  });
});

describe('wina quantize: a checkpoint that loads back without quantizing again', () => {
  const packing = {
    q8: 'NAME (I8): int8 q per weight, weight = q * scale (GGUF Q8_0)',
    q4:
      'NAME (U8): two 4-bit q per byte; per group of 32, byte j holds q of input j (low nibble) and j + 16 ' +
      '(high); weight = (q - 8) * scale (GGUF Q4_0)',
  };
  for (const [q, stored, valueColumns] of [
    ['q8', 'I8', 384],
    ['q4', 'U8', 192],
  ] as const) {
    test(`${q} round trip: ${stored} values and F32 NAME_scale; the logits of quantizing on load; bad files`, async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), `wina-${q}-`));
      try {
        const out = path.join(dir, `tiny-${q}`);
        const tiny = sharedPath('models', 'tinystories-656k');
        const r = runCli(['quantize', '--model', tiny, '--to', q, '--out', out]);
        assert.equal(r.status, 0, r.stderr);
        const st = SafetensorsFile.open(path.join(out, 'model.safetensors'));
        try {
          assert.deepEqual(st.info('model.layers.0.mlp.down_proj.weight'), {
            dtype: stored,
            shape: [128, valueColumns],
          });
          assert.deepEqual(st.info('model.layers.0.mlp.down_proj.weight_scale'), {
            dtype: 'F32',
            shape: [128, 12],
          });
        } finally {
          st.close();
        }
        const config = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
        assert.deepEqual(config.wina_quantization, {
          format: q,
          group_size: 32,
          values: packing[q],
          scales: 'NAME_scale (F32 [out, in / 32])',
        });
        const reference = SafetensorsFile.open(
          sharedPath('fixtures', 'gguf', 'tinystories-656k-q8_0.reference.safetensors'),
        );
        const ids = reference.readInts('ids');
        reference.close();
        const saved = await loadModel(out);
        const onLoad = await loadModel(tiny, { quantize: q });
        try {
          assert.deepEqual(Object.keys(saved.info.dtypes).sort(), ['F32', q.toUpperCase()]);
          assert.deepEqual(Array.from(saved.forward(ids)), Array.from(onLoad.forward(ids)));
        } finally {
          saved.close();
          onLoad.close();
        }

        // Scales missing or of the wrong shape, values of the wrong shape: one line naming the tensor.
        const bytes = fs.readFileSync(path.join(out, 'model.safetensors'));
        const headerLength = Number(bytes.readBigUInt64LE(0));
        const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8'));
        type Entry = { dtype: string; shape: number[]; data_offsets: number[] };
        const rewrite = (edit: (h: Record<string, Entry>) => void) => {
          const h = structuredClone(header);
          edit(h);
          const json = Buffer.from(JSON.stringify(h));
          const length = Buffer.alloc(8);
          length.writeBigUInt64LE(BigInt(json.length));
          fs.writeFileSync(
            path.join(out, 'model.safetensors'),
            Buffer.concat([length, json, bytes.subarray(8 + headerLength)]),
          );
        };
        const weight = 'model.layers.1.self_attn.o_proj.weight';
        const scale = `${weight}_scale`;
        rewrite((h) => delete h[scale]);
        assertUserError(
          ['info', '--model', out],
          `tensor ${weight} is ${stored} but its scales ${scale} are missing`,
        );
        rewrite((h) => (h[scale]!.shape = [4, 128]));
        assertUserError(
          ['info', '--model', out],
          `${scale} is F32 [4,128] but ${weight} [128,128] needs F32 [128,4]`,
        );
        rewrite((h) => {
          const e = h[weight]!;
          e.shape = [128, 32];
          e.data_offsets = [e.data_offsets[0]!, e.data_offsets[0]! + 128 * 32];
        });
        assertUserError(
          ['info', '--model', out],
          `${weight} is ${stored} [128,32] but [128,128] needs [128,${valueColumns / 3}]`,
        );
        if (q === 'q8') {
          // An int8 value of -128 (outside Q8_0's range; the kernels move x's sign onto the weights).
          const values = header['model.layers.0.mlp.down_proj.weight'] as Entry;
          const poisoned = Buffer.from(bytes);
          poisoned[8 + headerLength + values.data_offsets[0]! + 5] = 0x80;
          fs.writeFileSync(path.join(out, 'model.safetensors'), poisoned);
          assertUserError(
            ['info', '--model', out],
            'model.layers.0.mlp.down_proj.weight holds the int8 value -128, outside q8',
          );
        }
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  test('bad options', () => {
    const tiny = sharedPath('models', 'tinystories-656k');
    assertUserError(
      ['quantize', '--model', tiny, '--to', 'q5', '--out', os.tmpdir()],
      '--to must be one of q8, q4, got q5',
    );
    assertUserError(['quantize', '--model', tiny, '--out', path.join(os.tmpdir(), 'x')], '--to is required');
    assertUserError(['quantize', '--model', tiny, '--to', 'q8', '--out', tiny], "the model's own folder");
  });
});
