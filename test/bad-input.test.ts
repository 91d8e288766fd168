/**
 * Bad input of every kind, through the real CLI (a child process) and, where natural, through the library:
 * each must be one line on stderr naming the problem, exit code 2, never a stack trace.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { WinaError } from '../src/errors.js';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { loadModel } from '../src/model/model.js';
import { validateSampling } from '../src/model/sampling.js';
import { assertUserError, runCli } from './cli-helpers.js';
import { fixtureDir, loadModelFor, sharedPath } from './helpers.js';

const LLAMA3 = fixtureDir('llama3');
const STORIES = sharedPath('models/stories260K');

let tmpRoot = '';

/** A fresh folder under the temporary root. */
function tmpFolder(name: string): string {
  const dir = path.join(tmpRoot, name);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

/** A folder with the llama3 fixture's config.json and tokenizer.json and the given model.safetensors. */
function modelFolder(name: string, safetensors: Buffer, config?: Record<string, unknown>): string {
  const dir = tmpFolder(name);
  if (config) fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
  else fs.copyFileSync(path.join(LLAMA3, 'config.json'), path.join(dir, 'config.json'));
  fs.copyFileSync(path.join(LLAMA3, 'tokenizer.json'), path.join(dir, 'tokenizer.json'));
  fs.writeFileSync(path.join(dir, 'model.safetensors'), safetensors);
  return dir;
}

/** 8-byte little-endian header length, the JSON header, then the data. */
function safetensorsBytes(header: unknown, data: Buffer = Buffer.alloc(0)): Buffer {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([length, json, data]);
}

/** A valid safetensors file of the given tensors (in their stored dtype). */
function writeSafetensors(
  tensors: { name: string; dtype: string; shape: number[]; bytes: Buffer }[],
): Buffer {
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.bytes.length] };
    offset += t.bytes.length;
  }
  return safetensorsBytes(header, Buffer.concat(tensors.map((t) => t.bytes)));
}

function fixtureTensorsWithout(drop: string) {
  const st = SafetensorsFile.open(path.join(LLAMA3, 'model.safetensors'));
  try {
    return st
      .names()
      .filter((name) => name !== drop)
      .map((name) => {
        const t = st.read(name);
        return {
          name,
          dtype: t.dtype,
          shape: t.shape,
          bytes: Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength),
        };
      });
  } finally {
    st.close();
  }
}

function llama3Config(): Record<string, unknown> {
  return JSON.parse(fs.readFileSync(path.join(LLAMA3, 'config.json'), 'utf8'));
}

/** CLI and library both refuse the model folder with a one-line message containing `phrase`. */
async function assertBadModel(dir: string, phrase: string | RegExp): Promise<void> {
  assertUserError(['info', '--model', dir], phrase);
  await assert.rejects(loadModel(dir), (e: unknown) => {
    assert.ok(e instanceof WinaError, `not a WinaError: ${e}`);
    if (typeof phrase === 'string') assert.ok(e.message.includes(phrase), e.message);
    else assert.match(e.message, phrase);
    return true;
  });
}

before(() => {
  tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'wina-'));
});

after(() => {
  fs.rmSync(tmpRoot, { recursive: true, force: true });
});

describe('bad model paths', () => {
  test('missing path', async () => {
    await assertBadModel('/nonexistent/x', 'does not exist');
    assertUserError(['generate', '--model', '/nonexistent/x'], '/nonexistent/x does not exist');
  });

  test('folder without config.json', async () => {
    await assertBadModel(tmpFolder('empty'), 'has no config.json');
  });

  test('unsupported architecture lists the supported ones', async () => {
    const config = { ...llama3Config(), architectures: ['GPT2LMHeadModel'], model_type: 'gpt2' };
    const dir = modelFolder('gpt2', fs.readFileSync(path.join(LLAMA3, 'model.safetensors')), config);
    await assertBadModel(dir, /unsupported architecture GPT2LMHeadModel .*LlamaForCausalLM/);
  });

  test('hub id neither local nor cached, offline', async () => {
    const cache = tmpFolder('empty-hub-cache');
    const id = 'someorg/some-model-that-does-not-exist';
    const env = { HF_HUB_CACHE: cache, HF_HUB_OFFLINE: '1' };
    const line = assertUserError(['info', '--model', id], id, env);
    assert.match(line, /not in the local Hugging Face cache/);
    assert.match(line, /offline/);
    const saved = { cache: process.env.HF_HUB_CACHE, offline: process.env.HF_HUB_OFFLINE };
    Object.assign(process.env, env);
    try {
      await assert.rejects(loadModel(id), WinaError);
    } finally {
      for (const [key, value] of [
        ['HF_HUB_CACHE', saved.cache],
        ['HF_HUB_OFFLINE', saved.offline],
      ] as const) {
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
      }
    }
  });
});

describe('corrupt safetensors', () => {
  const f32x2 = { dtype: 'F32', shape: [2], data_offsets: [0, 8] };
  const cases: [string, Buffer, string][] = [
    ['shorter than 8 bytes', Buffer.from([1, 2, 3, 4]), 'is truncated'],
    [
      'header length larger than the file',
      Buffer.concat([Buffer.from([0xe8, 0x03, 0, 0, 0, 0, 0, 0]), Buffer.from('{"a":1}')]),
      'runs past the end of the file',
    ],
    ['header not valid JSON', safetensorsBytes('{"w": {"dtype": "F32",'), 'header is not valid JSON'],
    [
      'data_offsets out of range',
      safetensorsBytes({ w: f32x2 }, Buffer.alloc(4)),
      'out of range of the file',
    ],
    [
      'unknown dtype',
      safetensorsBytes({ w: { ...f32x2, dtype: 'Q4' } }, Buffer.alloc(8)),
      'unknown dtype "Q4"',
    ],
    [
      'byte count does not match shape x dtype',
      safetensorsBytes({ w: { ...f32x2, shape: [3] } }, Buffer.alloc(8)),
      'has 8 bytes for shape [3] F32',
    ],
  ];
  for (const [name, bytes, phrase] of cases) {
    test(name, async () => {
      await assertBadModel(modelFolder(name.replace(/\W+/g, '-'), bytes), phrase);
    });
  }

  test('truncated copy of a real model.safetensors', async () => {
    const full = fs.readFileSync(path.join(LLAMA3, 'model.safetensors'));
    await assertBadModel(
      modelFolder('truncated', full.subarray(0, full.length >> 1)),
      'out of range of the file',
    );
  });
});

describe('checkpoint does not match its config', () => {
  test('missing tensor', async () => {
    const missing = 'model.layers.1.mlp.up_proj.weight';
    const dir = modelFolder('missing-tensor', writeSafetensors(fixtureTensorsWithout(missing)));
    await assertBadModel(dir, `missing tensor ${missing}`);
  });

  test('the tensors written by the test writer load (control for the case above)', async (t) => {
    const dir = modelFolder('all-tensors', writeSafetensors(fixtureTensorsWithout('')));
    const model = await loadModelFor(t, dir);
    assert.equal(model.config.intermediateSize, 176);
  });

  test('mis-shaped tensor (intermediate_size 160 instead of 176)', async () => {
    const config = { ...llama3Config(), intermediate_size: 160 };
    const dir = modelFolder('mis-shaped', fs.readFileSync(path.join(LLAMA3, 'model.safetensors')), config);
    await assertBadModel(
      dir,
      /tensor model\.layers\.0\.mlp\.\w+\.weight has shape \[.*\] but the config implies/,
    );
  });

  test('sharded index naming a missing shard', async () => {
    const source = fixtureDir('llama3', 'sharded');
    const dir = tmpFolder('sharded');
    for (const f of fs.readdirSync(source)) {
      if (f.endsWith('.safetensors')) fs.symlinkSync(path.join(source, f), path.join(dir, f));
      else if (f.endsWith('.json') && f !== 'model.safetensors.index.json') {
        fs.copyFileSync(path.join(source, f), path.join(dir, f));
      }
    }
    const index = JSON.parse(fs.readFileSync(path.join(source, 'model.safetensors.index.json'), 'utf8'));
    index.weight_map['model.norm.weight'] = 'model-00009-of-00008.safetensors';
    fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify(index));
    await assertBadModel(dir, 'shard model-00009-of-00008.safetensors named in');
  });
});

describe('llama2.c', () => {
  test('truncated checkpoint', async () => {
    const dir = tmpFolder('llama2c-truncated');
    const full = fs.readFileSync(path.join(STORIES, 'stories260K.bin'));
    fs.writeFileSync(path.join(dir, 'stories260K.bin'), full.subarray(0, full.length >> 1));
    fs.copyFileSync(path.join(STORIES, 'tok512.bin'), path.join(dir, 'tok512.bin'));
    await assertBadModel(dir, /checkpoint .*stories260K\.bin is truncated/);
  });
});

describe('generation options', () => {
  test('prompt longer than the context window', async (t) => {
    const words = 'the little dog ran to the park and saw a big red ball'.split(' ');
    const prompt = Array.from({ length: 600 }, (_, i) => words[i % words.length]).join(' ');
    assertUserError(['generate', '--model', STORIES, '--prompt', prompt], /but the context window is 512$/);
    const model = await loadModelFor(t, STORIES);
    assert.throws(() => model.encodePrompt(prompt), WinaError);
  });

  const options: [string[], string][] = [
    [['--temperature', '-1'], 'temperature must be >= 0'],
    [['--temperature', 'abc'], '--temperature must be a number'],
    [['--top-p', '0'], 'top-p must be in (0, 1]'],
    [['--top-p', '1.5'], 'top-p must be in (0, 1]'],
    [['--top-k', '-3'], 'top-k must be a whole number'],
    [['--top-k', '2.5'], '--top-k must be a whole number'],
    [['--max-tokens', '-1'], 'max tokens must be a whole number >= 0'],
    [['--seed', '-5'], 'seed must be a whole number >= 0'],
    [['--bogus', '1'], "Unknown option '--bogus'"],
  ];
  for (const [args, phrase] of options) {
    test(`invalid option ${args.join(' ')}`, () => {
      assertUserError(['generate', '--model', STORIES, '--max-tokens', '2', ...args], phrase);
    });
  }

  test('library-level sampling checks', () => {
    assert.throws(() => validateSampling({ temperature: -1 }), WinaError);
    assert.throws(() => validateSampling({ topP: 0 }), WinaError);
    assert.throws(() => validateSampling({ topP: 1.5 }), WinaError);
    assert.throws(() => validateSampling({ topK: -3 }), WinaError);
    assert.throws(() => validateSampling({ topK: 2.5 }), WinaError);
    assert.throws(() => validateSampling({ seed: -5 }), WinaError);
  });

  test('max tokens at library level', async (t) => {
    const model = await loadModelFor(t, STORIES);
    await assert.rejects(async () => {
      for await (const _ of model.generate('', { maxTokens: -1 })) {
        // never reached
      }
    }, WinaError);
  });

  test('missing --model', () => {
    assertUserError(['generate', '--prompt', 'hi'], '--model is required');
    assertUserError(['info'], '--model is required');
  });
});

test('unknown command exits 2', () => {
  const r = runCli(['frobnicate']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown command "frobnicate"/);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
});

describe('bad input to calibrate, eval, bench, synth, transform and the sparsity options', () => {
  const sample = sharedPath('data', 'tinystories', 'tinystories_sample.txt');
  const cases: [string[], string | RegExp][] = [
    [['calibrate', '--model', STORIES, '--data', '/nonexistent/data.txt'], 'does not exist'],
    [['calibrate', '--model', STORIES, '--data', sample, '--method', 'magic'], '--method must be one of'],
    [['calibrate', '--model', STORIES, '--data', sample, '--sparsity', '1'], '--sparsity must be in [0, 1)'],
    [['eval', '--model', STORIES, '--tasks', 'nope'], 'unknown task "nope"'],
    [['bench', '--model', STORIES, '--sparsity', '1.5'], 'is not a sparsity in [0, 1)'],
    [['synth', '--out', os.tmpdir(), '--shape', 'nope'], 'unknown --shape nope'],
    [['transform', '--model', STORIES], '--out is required'],
    [['generate', '--model', STORIES, '--method', 'magic', '--sparsity', '0.5'], 'unknown method "magic"'],
    [['generate', '--model', STORIES, '--method', 'wina'], '--method wina needs --sparsity'],
    [
      ['generate', '--model', STORIES, '--method', 'wina', '--sparsity', '0.5', '--mask', 'threshold'],
      'needs calibrated thresholds',
    ],
    [
      ['generate', '--model', STORIES, '--profile', '/nonexistent/profile.json'],
      'profile /nonexistent/profile.json does not exist',
    ],
    [
      ['generate', '--model', STORIES, '--prefill', 'sometimes', '--sparsity', '0.5'],
      '--prefill must be all, none or paper',
    ],
    [['generate', '--model', STORIES, '--layout', 'diagonal'], 'layout must be row or input-major'],
  ];
  for (const [args, phrase] of cases) {
    test(args.slice(0, 1).concat(args.slice(3)).join(' '), () => {
      assertUserError(args, phrase);
    });
  }
});
