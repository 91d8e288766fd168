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
const FILES: { name: string; tokenizer?: string }[] = [
  { name: 'stories260K-f32' },
  { name: 'tinystories-656k-f32' },
  { name: 'tinystories-656k-q8_0' },
  // Its byte-level BPE vocabulary (tokenizer.ggml.model gpt2) is not read from GGUF yet: the HF one is the same.
  { name: 'llama-28m-mixed-q8_0', tokenizer: sharedPath('models', 'llama-28m-mixed') },
];

describe('GGUF checkpoints against llama.cpp', () => {
  for (const { name, tokenizer } of FILES) {
    test(`${name}: logits of the file's own weights, llama.cpp's logits and its greedy tokens`, async (t) => {
      const model = await loadModelFor(t, fixture(`${name}.gguf`), { tokenizer });
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
    });
  }

  test('the dtypes are converted as stored: Q8_0 blocks become q8 groups, F32 stays F32', async (t) => {
    const q8 = await loadModelFor(t, fixture('tinystories-656k-q8_0.gguf'));
    assert.equal(q8.transformer.weights.layers[0]!.proj.q.weight.dtype, 'Q8');
    assert.equal(q8.transformer.weights.embed.dtype, 'Q8');
    const f32 = await loadModelFor(t, fixture('stories260K-f32.gguf'));
    assert.equal(f32.transformer.weights.layers[0]!.proj.q.weight.dtype, 'F32');
  });
});

describe('GGUF SentencePiece tokenizer (tokenizer.ggml.model llama) against llama.cpp', () => {
  const tokens = JSON.parse(fs.readFileSync(fixture('tokens.json'), 'utf8')) as Record<
    string,
    { text: string; ids: number[] | null }[]
  >;
  for (const [model, file] of [
    ['stories260K', 'stories260K-f32.gguf'],
    ['tinystories-656k', 'tinystories-656k-f32.gguf'],
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
  test('a tensor type this wina does not read yet is named', () => {
    assertUserError(
      ['info', '--model', fixture('llama-28m-mixed-q4_k_m.gguf')],
      /is Q[456]_K; this wina reads/,
    );
  });
  test('a tokenizer it does not read yet says to pass --tokenizer', () => {
    assertUserError(['info', '--model', fixture('llama-28m-mixed-q8_0.gguf')], /"gpt2" is not supported yet/);
  });
});
