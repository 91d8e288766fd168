/** The CLI as a user runs it: a child process on the real models. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadTokenizer } from '../src/tokenizer/index.js';
import { fixtureDir, Reference, sharedPath } from './helpers.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = path.join(REPO_ROOT, 'bin', 'wina.js');
const STORIES = sharedPath('models/stories260K');

function wina(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
  });
  assert.equal(r.status, 0, `wina ${args.join(' ')} exited ${r.status}; stderr:\n${r.stderr}`);
  return r;
}

/** The one JSON document on stdout. */
function json(args: string[], env: NodeJS.ProcessEnv = {}): Record<string, unknown> {
  const { stdout } = wina([...args, '--json'], env);
  assert.ok(stdout.endsWith('\n'), 'stdout does not end with a newline');
  assert.equal(stdout.trimEnd().split('\n').length, 1, `stdout is not one line:\n${stdout}`);
  return JSON.parse(stdout);
}

/** stdout of `wina generate` without its final newline. */
function generated(args: string[]): string {
  const { stdout } = wina(['generate', ...args]);
  assert.ok(stdout.endsWith('\n'), 'stdout does not end with a newline');
  return stdout.slice(0, -1);
}

describe('generate on stories260K', () => {
  const reference = new Reference(fixtureDir('stories260K-hf')).ids('greedy_from_bos');
  const greedyArgs = ['--model', STORIES, '--max-tokens', '40', '--temperature', '0'];

  test('reference greedy ids', () => {
    assert.equal(reference.length, 41);
    assert.equal(reference[0], 1);
  });

  test('greedy text equals the decoded reference ids', () => {
    const tokenizer = loadTokenizer(sharedPath('models/stories260K/tok512.bin'));
    assert.equal(generated(greedyArgs), tokenizer.decode(reference, { skipSpecial: true }));
  });

  test('--json', () => {
    const tokenizer = loadTokenizer(sharedPath('models/stories260K/tok512.bin'));
    const out = json(['generate', ...greedyArgs]);
    assert.deepEqual(Object.keys(out).sort(), [
      'achievedSparsity',
      'gflopsPerToken',
      'promptTokens',
      'text',
      'tokenIds',
      'tokens',
      'tokensPerSecond',
    ]);
    assert.equal(out.tokens, 40);
    assert.equal(out.promptTokens, 1);
    assert.equal(typeof out.tokensPerSecond, 'number');
    assert.ok((out.tokensPerSecond as number) > 0, `tokensPerSecond ${out.tokensPerSecond}`);
    assert.equal(out.achievedSparsity, 0);
    // Dense stories260K (dim 64, FFN 172, 5 layers, 8 heads of 8, 4 KV heads, vocab 512) over 41 positions:
    // 2 x projection parameters + 4 x layers x heads x headDim x mean context (21) + 2 x vocab x dim.
    const projections = 5 * (64 * 64 * 2 + 32 * 64 * 2 + 3 * 172 * 64);
    const expected = (2 * projections + 4 * 5 * 8 * 8 * 21 + 2 * 512 * 64) / 1e9;
    assert.ok(
      Math.abs((out.gflopsPerToken as number) - expected) < 1e-12,
      `${out.gflopsPerToken} vs ${expected}`,
    );
    assert.deepEqual(out.tokenIds, reference.slice(1));
    assert.equal(out.text, tokenizer.decode(reference, { skipSpecial: true }));
  });

  test('seeded sampling is reproducible', () => {
    const sampled = (seed: number) =>
      generated(['--model', STORIES, '--temperature', '0.8', '--seed', `${seed}`, '--max-tokens', '30']);
    const first = sampled(7);
    assert.ok(first.length > 0);
    assert.equal(sampled(7), first);
    assert.notEqual(sampled(8), first);
  });
});

describe('info', () => {
  test('llama-28m-mixed --json', () => {
    const out = json(['info', '--model', sharedPath('models/llama-28m-mixed')]);
    assert.equal(out.architecture, 'LlamaForCausalLM');
    assert.equal(out.parameters, 27795968); // MODEL_CARD.md
    assert.deepEqual(Object.keys(out.dtypes as object), ['BF16']);
    const config = out.config as Record<string, unknown>;
    assert.equal(config.numLayers, 8);
    assert.equal(config.hiddenSize, 512);
  });

  test('llama-28m-mixed, human form', () => {
    const { stdout } = wina(['info', '--model', sharedPath('models/llama-28m-mixed')]);
    assert.match(stdout, /LlamaForCausalLM/);
    assert.match(stdout, /27,795,968/);
  });

  test('phi3 fixture', () => {
    assert.equal(json(['info', '--model', fixtureDir('phi3')]).architecture, 'Phi3ForCausalLM');
  });

  test('stories260K (llama2.c): parameters from its header', () => {
    const header = fs.readFileSync(path.join(STORIES, 'stories260K.bin')).subarray(0, 28);
    const [dim, hidden, layers, heads, kvHeads, vocab] = Array.from({ length: 6 }, (_, i) =>
      header.readInt32LE(4 * i),
    ) as [number, number, number, number, number, number];
    assert.deepEqual([dim, hidden, layers, heads, kvHeads, vocab], [64, 172, 5, 8, 4, 512]);
    const kvDim = (kvHeads * dim) / heads;
    const perLayer = 2 * dim + 2 * dim * dim + 2 * kvDim * dim + 3 * hidden * dim;
    const expected = vocab * dim + layers * perLayer + dim; // tied classifier
    const out = json(['info', '--model', STORIES]);
    assert.equal(out.format, 'llama2c');
    assert.equal(out.parameters, expected);
  });
});

describe('tinystories-656k', () => {
  const prompt = 'Once upon a time';
  const story = (...sampling: string[]) =>
    generated([
      '--model',
      sharedPath('models/tinystories-656k'),
      '--prompt',
      prompt,
      '--max-tokens',
      '120',
      ...sampling,
    ]);
  const words = (text: string) => text.toLowerCase().match(/[a-z]+/g) ?? [];

  // The TinyStories sample alone has only 232 distinct words (a plainly coherent greedy story has 72% of its
  // words there), so the vocabulary also takes the English books of the corpus sample.
  const vocabulary = new Set(
    words(fs.readFileSync(sharedPath('data/tinystories/tinystories_sample.txt'), 'utf8')),
  );
  for (const line of fs
    .readFileSync(sharedPath('data/corpus/train-sample/books.jsonl'), 'utf8')
    .split('\n')) {
    if (line.trim()) for (const w of words(JSON.parse(line).text)) vocabulary.add(w);
  }
  const knownShare = (text: string) => {
    const newWords = words(text.slice(prompt.length));
    assert.ok(newWords.length >= 50, `only ${newWords.length} words: ${text}`);
    return newWords.filter((w) => vocabulary.has(w)).length / newWords.length;
  };

  test('greedy: a coherent story', () => {
    const text = story('--temperature', '0');
    assert.ok(text.startsWith(prompt), text);
    const known = knownShare(text);
    assert.ok(known >= 0.95, `${(100 * known).toFixed(1)}% of the words known: ${text}`);
    const sentences = text.match(/[A-Za-z][^.!?]*[a-z][^.!?]*\./g) ?? [];
    assert.ok(sentences.length >= 2, `${sentences.length} sentences: ${text}`);
  });

  test('control: sampling at temperature 3 fails the word check', () => {
    const known = knownShare(story('--temperature', '3', '--top-p', '1', '--seed', '3'));
    assert.ok(known < 0.95, `${(100 * known).toFixed(1)}% of the words known`);
  });
});

describe('hub cache resolution', () => {
  let cache = '';

  before(() => {
    cache = fs.mkdtempSync(path.join(os.tmpdir(), 'wina-'));
    const hash = '0123456789abcdef0123456789abcdef01234567';
    const repoDir = path.join(cache, 'models--testorg--tiny');
    const snapshot = path.join(repoDir, 'snapshots', hash);
    fs.mkdirSync(path.join(repoDir, 'refs'), { recursive: true });
    fs.mkdirSync(snapshot, { recursive: true });
    fs.writeFileSync(path.join(repoDir, 'refs', 'main'), hash);
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'generation_config.json']) {
      fs.symlinkSync(fixtureDir('llama3', f), path.join(snapshot, f));
    }
  });

  after(() => {
    fs.rmSync(cache, { recursive: true, force: true });
  });

  test('HF_HUB_CACHE', () => {
    const out = json(['info', '--model', 'testorg/tiny'], { HF_HUB_CACHE: cache, HF_HUB_OFFLINE: '1' });
    assert.equal(out.architecture, 'LlamaForCausalLM');
    assert.match(out.source as string, /models--testorg--tiny/);
  });

  test('HF_HOME/hub', () => {
    const home = path.join(cache, 'home');
    fs.mkdirSync(home, { recursive: true });
    fs.symlinkSync(cache, path.join(home, 'hub'));
    const env = { HF_HUB_CACHE: undefined, HF_HOME: home, HF_HUB_OFFLINE: '1' };
    assert.equal(json(['info', '--model', 'testorg/tiny'], env).architecture, 'LlamaForCausalLM');
  });
});
