/**
 * GGUF checkpoints written by llama.cpp's own tools (../shared/fixtures/gguf, see its README), against what
 * llama.cpp computes from them: logits over a float64 forward with the file's own dequantized weights
 * (`logits64`) and llama.cpp's logits, its 16 greedy tokens, and its tokenizations of fixed strings.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { WinaError } from '../src/errors.js';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { assertUserError } from './cli-helpers.js';
import { loadModelFor, relativeL2, sharedPath } from './helpers.js';

const fixture = (...parts: string[]) => sharedPath('fixtures', 'gguf', ...parts);
const SUMMARY = JSON.parse(fs.readFileSync(fixture('summary.json'), 'utf8')) as Record<
  string,
  { tensor_types: Record<string, number> }
>;
// Q4_0 and Q4_K_M also hold Q6_K, Q4_K and Q5_0 tensors (widened to F32 as ggml dequantizes them).
const FILES = [
  'stories260K-f32',
  'tinystories-656k-f32',
  'tinystories-656k-q8_0',
  'llama-28m-mixed-q8_0',
  'llama-28m-mixed-q4_0',
  'llama-28m-mixed-q4_k_m',
];

describe('GGUF checkpoints against llama.cpp', () => {
  for (const name of FILES) {
    test(`${name}: logits of the file's own weights, llama.cpp's logits and its greedy tokens`, async (t) => {
      const model = await loadModelFor(t, fixture(`${name}.gguf`));
      const reference = SafetensorsFile.open(fixture(`${name}.reference.safetensors`));
      const exact = SafetensorsFile.open(fixture(`${name}.logits64.safetensors`));
      const ids = reference.readInts('ids');
      const logits = model.forward(ids);
      const own = relativeL2(logits, exact.read('logits64').data as Float32Array);
      assert.ok(own <= 1e-4, `relative L2 to the float64 forward of the file's weights: ${own}`);
      const llamaCpp = relativeL2(logits, reference.read('logits').data as Float32Array);
      assert.ok(llamaCpp <= 2e-2, `relative L2 to llama.cpp's logits: ${llamaCpp}`);
      const greedy: number[] = [];
      for await (const token of model.generate(ids, {
        maxTokens: 16,
        temperature: 0,
        stopAtEos: false,
      }))
        if (token.id >= 0) greedy.push(token.id);
      assert.deepEqual(greedy, reference.readInts('greedy'));
      assert.equal(model.info.format, 'gguf');
      // Every tensor read, by type, as llama.cpp's load log counts them.
      const lower = (r: Record<string, number>) =>
        Object.fromEntries(Object.entries(r).map(([k, v]) => [k.toLowerCase(), v]));
      assert.deepEqual(lower(model.info.fileTypes!), lower(SUMMARY[name].tensor_types));
    });
  }

  test('the dtypes: Q8_0 / Q4_0 blocks become q8 / q4 groups, F32 stays F32, K-quants widen to F32', async (t) => {
    const q8 = await loadModelFor(t, fixture('tinystories-656k-q8_0.gguf'));
    assert.equal(q8.transformer.weights.layers[0]!.proj.q.weight.dtype, 'Q8');
    assert.equal(q8.transformer.weights.embed.dtype, 'Q8');
    const f32 = await loadModelFor(t, fixture('stories260K-f32.gguf'));
    assert.equal(f32.transformer.weights.layers[0]!.proj.q.weight.dtype, 'F32');
    const q4 = await loadModelFor(t, fixture('llama-28m-mixed-q4_0.gguf'));
    assert.equal(q4.transformer.weights.layers[0]!.proj.q.weight.dtype, 'Q4');
    assert.equal(q4.transformer.weights.embed.dtype, 'F32'); // Q6_K, widened
  });
});

describe('GGUF tokenizers (SentencePiece and byte-level BPE) against llama.cpp', () => {
  const tokens = JSON.parse(fs.readFileSync(fixture('tokens.json'), 'utf8')) as Record<
    string,
    { text: string; ids: number[] | null }[]
  >;
  for (const [model, file] of [
    ['stories260K', 'stories260K-f32.gguf'],
    ['tinystories-656k', 'tinystories-656k-f32.gguf'],
    ['llama-28m-mixed', 'llama-28m-mixed-q8_0.gguf'],
  ] as const) {
    test(`${model}: llama.cpp's ids for every string it encodes, a clear error where it cannot`, async (t) => {
      const { tokenizer } = await loadModelFor(t, fixture(file), { kernels: 'reference' });
      for (const { text, ids } of tokens[model]!) {
        if (ids === null) assert.throws(() => tokenizer.encode(text), WinaError, JSON.stringify(text));
        else assert.deepEqual(tokenizer.encode(text), ids, JSON.stringify(text));
      }
    });
  }
});

describe('bad GGUF files: one line, exit code 2', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wina-gguf-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const good = fs.readFileSync(fixture('stories260K-f32.gguf'));
  const write = (name: string, bytes: Uint8Array) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, bytes);
    return file;
  };
  const cases: [string, Uint8Array, RegExp][] = [
    ['bad-magic.gguf', Buffer.concat([Buffer.from('GGUX'), good.subarray(4)]), /not a readable GGUF file/],
    ['truncated-header.gguf', good.subarray(0, 200), /not a readable GGUF file/],
    ['truncated-data.gguf', good.subarray(0, good.length - 1000), /lies past the end of the file/],
  ];
  for (const [name, bytes, message] of cases) {
    test(name, () => {
      assertUserError(['info', '--model', write(name, bytes)], message);
    });
  }
  /** The file with tensor `name`'s GGML type set to `type` (its info: name, n_dims, dims, type, offset). */
  const withType = (name: string, type: number) => {
    const bytes = Buffer.from(good);
    const at = bytes.indexOf(Buffer.from(name)) + name.length;
    const dims = bytes.readUInt32LE(at);
    bytes.writeUInt32LE(type, at + 4 + 8 * dims);
    return bytes;
  };
  test('a tensor type this wina does not read is named', () => {
    const file = write('q2k.gguf', withType('blk.0.attn_q.weight', 10));
    assertUserError(['info', '--model', file], /tensor blk\.0\.attn_q\.weight is Q2_K; this wina reads/);
  });
  test('a shape that is not whole blocks of its type', () => {
    const file = write('blocks.gguf', withType('output_norm.weight', 12));
    assertUserError(
      ['info', '--model', file],
      /output_norm\.weight has rows of 64 values, not whole Q4_K blocks/,
    );
  });
});
