/**
 * The evaluation harness: metrics on hand-made cases whose answers are known independently, the scoring
 * protocols (lm-eval's rolling windows, the MODEL_CARD's chunks) on stubs and on the real stories260K, the
 * perplexity of the fixture ids (3.624), and `wina eval` end to end through the CLI.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { hashKey, ResultCache, stableStringify } from '../src/eval/cache.js';
import { achievedSparsity, projectionSizes } from '../src/eval/compute.js';
import {
  mmluPrompt,
  parseCsv,
  readChoiceJsonl,
  readStories,
  wikitextDetokenize,
  wikitextDocuments,
} from '../src/eval/data.js';
import {
  argmax,
  extractAnswer,
  gsm8kExactMatch,
  macroAverage,
  meanWithStderr,
  perplexityMetrics,
  sampleStddev,
  scoreChoiceItem,
  stderrOfMean,
  wordCount,
} from '../src/eval/metrics.js';
import { jsonResults, markdownTable } from '../src/eval/report.js';
import {
  chunkedWindows,
  type CacheLike,
  rollingWindows,
  Scorer,
  type ScoringModel,
} from '../src/eval/scoring.js';
import { encodeChoices, selectIndices } from '../src/eval/tasks.js';
import { validate } from '../src/index.js';
import { loadModel, type Model } from '../src/model/model.js';
import { applyWina } from '../src/sparsity/apply.js';
import { loadTokenizer } from '../src/tokenizer/index.js';
import { fixtureDir, Reference, sharedPath } from './helpers.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = path.join(REPO_ROOT, 'bin', 'wina.js');
const STORIES = sharedPath('models', 'stories260K');
const close = (a: number, b: number, tol = 1e-12) => Math.abs(a - b) <= tol * Math.max(1, Math.abs(b));

describe('metrics (hand-made cases)', () => {
  test('2-choice item: acc from log-likelihoods set by construction', () => {
    const item = (ll0: number, ll1: number) =>
      scoreChoiceItem(
        [
          { loglikelihood: ll0, text: 'yes' },
          { loglikelihood: ll1, text: 'no!' },
        ],
        1,
      );
    assert.deepEqual(item(-3, -1), { acc: 1, accNorm: 1 });
    assert.deepEqual(item(-1, -3), { acc: 0, accNorm: 0 });
    // A tie goes to the first choice (numpy's argmax), so gold 1 loses it.
    assert.deepEqual(item(-2, -2), { acc: 0, accNorm: 0 });
  });

  test('acc and acc_norm differ by construction (normalised by UTF-8 bytes)', () => {
    // "a": 1 byte, ll -2 -> -2 per byte; "bbbbbbbbbb": 10 bytes, ll -5 -> -0.5 per byte.
    const choices = [
      { loglikelihood: -2, text: 'a' },
      { loglikelihood: -5, text: 'bbbbbbbbbb' },
    ];
    assert.deepEqual(scoreChoiceItem(choices, 0), { acc: 1, accNorm: 0 });
    assert.deepEqual(scoreChoiceItem(choices, 1), { acc: 0, accNorm: 1 });
    // Bytes, not characters: "é" is 2 bytes, so -3 / 2 = -1.5 beats "ab"'s -4 / 2 = -2 and "e"'s -1.6.
    const accented = [
      { loglikelihood: -1.6, text: 'e' },
      { loglikelihood: -3, text: 'é' },
      { loglikelihood: -4, text: 'ab' },
    ];
    assert.deepEqual(scoreChoiceItem(accented, 1), { acc: 0, accNorm: 1 });
    assert.throws(() => scoreChoiceItem(choices, 2), RangeError);
  });

  test('standard error of the mean of a known sample', () => {
    // [1, 0, 1, 1]: mean 0.75, sample variance (3 * 0.0625 + 0.5625) / 3 = 0.25, stderr 0.5 / 2 = 0.25.
    assert.equal(sampleStddev([1, 0, 1, 1]), 0.5);
    assert.equal(stderrOfMean([1, 0, 1, 1]), 0.25);
    assert.deepEqual(meanWithStderr([1, 0, 1, 1]), { value: 0.75, stderr: 0.25, n: 4 });
    // [2, 4, 4, 4, 5, 5, 7, 9]: mean 5, sum of squares 32, sample variance 32 / 7.
    assert.ok(close(stderrOfMean([2, 4, 4, 4, 5, 5, 7, 9]), Math.sqrt(32 / 7) / Math.sqrt(8)));
    assert.ok(Number.isNaN(stderrOfMean([1])));
    assert.equal(argmax([1, 3, 3, 2]), 1);
  });

  test('macro average over groups', () => {
    const m = macroAverage([
      { value: 0.5, stderr: 0.3, n: 10 },
      { value: 1, stderr: 0.4, n: 30 },
    ]);
    assert.equal(m.value, 0.75);
    assert.ok(close(m.stderr, 0.25)); // sqrt(0.09 + 0.16) / 2
    assert.equal(m.n, 40);
  });

  test('perplexities and bits per byte from known NLL totals', () => {
    // 10 tokens of probability 1/2 each: NLL = 10 ln 2.
    const m = perplexityMetrics({ nll: 10 * Math.LN2, tokens: 10, words: 5, bytes: 20 });
    assert.ok(close(m.token_perplexity, 2));
    assert.ok(close(m.word_perplexity, 4));
    assert.ok(close(m.byte_perplexity, Math.SQRT2));
    assert.ok(close(m.bits_per_byte, 0.5));
    assert.ok(close(Math.log2(m.byte_perplexity), m.bits_per_byte));
  });

  test('word count as lm-eval (len(re.split(r"\\s+", doc)))', () => {
    assert.equal(wordCount(' = Robert Boulter = \n Robert'), 6); // Python: ['', '=', 'Robert', 'Boulter', '=', 'Robert']
    assert.equal(wordCount('a b  c\n'), 4); // ['a', 'b', 'c', '']
    assert.equal(wordCount(''), 1);
  });

  test('GSM8K final numbers on real-looking strings', () => {
    const reference =
      'Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.\n#### 72';
    assert.equal(extractAnswer(reference), '72');
    assert.equal(extractAnswer(' She earned 0.2 x 50 = $10.\n#### 10'), '10');
    assert.equal(extractAnswer(' The total is $1,234.50.'), '1234.50');
    assert.equal(extractAnswer(' So he has 5 apples left. The answer is 5...'), '5');
    assert.equal(extractAnswer(' It drops by -3 degrees, then 12.'), '12');
    assert.equal(extractAnswer(' The temperature is -3.'), '-3');
    assert.equal(extractAnswer(' I do not know.'), undefined);
    assert.equal(gsm8kExactMatch(' 48 + 24 = 72 clips.', reference), 1);
    assert.equal(gsm8kExactMatch(' 48 + 24 = 73 clips.', reference), 0);
    assert.equal(gsm8kExactMatch(' The answer is 1,000.', 'x\n#### 1000'), 1);
    assert.equal(gsm8kExactMatch(' nothing', 'x\n#### 1000'), 0);
  });
});

describe('data handling', () => {
  test('CSV with quotes, commas and newlines', () => {
    assert.deepEqual(parseCsv('a,b\n"x, y","say ""hi""\nthere"\r\n1,\n'), [
      ['a', 'b'],
      ['x, y', 'say "hi"\nthere'],
      ['1', ''],
    ]);
  });

  test('wikitext documents split at top-level headings, detokenized as lm-eval', () => {
    const raw =
      ' \r\n = First = \r\n Text @-@ like , this . \r\n = = Section = = \r\n More ( here ) . \r\n = Second = \r\n End \r\n';
    const docs = wikitextDocuments(raw);
    assert.equal(docs.length, 2);
    assert.equal(docs[0], ' = First = \n Text @-@ like , this . \n = = Section = = \n More ( here ) . ');
    assert.equal(docs[1], ' = Second = \n End \n');
    assert.equal(wikitextDetokenize(docs[0]!), ' = First =\nText-like, this.\n== Section ==\nMore (here). ');
  });

  test('the real data sets read', () => {
    const stories = readStories(sharedPath('data', 'tinystories', 'tinystories_sample.txt'));
    assert.ok(
      stories.length >= 2 &&
        stories.every((s) => s.text === s.text.trim() && !s.text.includes('<|endoftext|>')),
    );
    const arc = readChoiceJsonl(sharedPath('data', 'mc', 'arc_easy.jsonl'), '\nAnswer:');
    assert.match(arc[0]!.context, /^Question: .*\?\nAnswer:$/s);
    const q = { question: ' What is 1+1? ', choices: ['1', '2', '3', '4'], answer: 1 };
    assert.equal(
      mmluPrompt('high_school_mathematics', q, [
        { question: 'Q?', choices: ['a', 'b', 'c', 'd'], answer: 3 },
      ]),
      'The following are multiple choice questions (with answers) about high school mathematics.\n\n' +
        'Q?\nA. a\nB. b\nC. c\nD. d\nAnswer: D\n\nWhat is 1+1?\nA. 1\nB. 2\nC. 3\nD. 4\nAnswer:',
    );
  });

  test('limit subsets: first, evenly spread, seeded random', () => {
    assert.deepEqual(selectIndices(10, { limit: 3, subset: 'first', seed: 0 }), [0, 1, 2]);
    assert.deepEqual(selectIndices(10, { limit: 3, subset: 'spread', seed: 0 }), [0, 3, 6]);
    assert.deepEqual(selectIndices(10, { limit: 0.25, subset: 'first', seed: 0 }), [0, 1, 2]); // ceil(2.5)
    const a = selectIndices(100, { limit: 5, subset: 'random', seed: 7 });
    assert.deepEqual(a, selectIndices(100, { limit: 5, subset: 'random', seed: 7 }));
    assert.notDeepEqual(a, selectIndices(100, { limit: 5, subset: 'random', seed: 8 }));
    assert.equal(new Set(a).size, 5);
  });

  test('cache keys ignore key order; entries round-trip', () => {
    assert.equal(stableStringify({ b: 1, a: [{ d: 2, c: 3 }] }), '{"a":[{"c":3,"d":2}],"b":1}');
    assert.equal(hashKey({ x: 1, y: 2 }), hashKey({ y: 2, x: 1 }));
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wina-cache-'));
    try {
      const cache = new ResultCache(dir);
      assert.equal(cache.get({ k: 1 }), undefined);
      cache.set({ k: 1 }, { v: 42 });
      assert.deepEqual(cache.get({ k: 1 }), { v: 42 });
      assert.deepEqual(
        fs.readdirSync(dir).filter((f) => f.endsWith('.tmp')),
        [],
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** A model whose every distribution is uniform, recording each forward call. */
function uniformStub(vocab: number, maxPositions: number) {
  const calls: { ids: number[]; start: number }[] = [];
  const model: ScoringModel = {
    config: { maxPositions, vocabSize: vocab },
    newCache: (): CacheLike => ({
      length: 0,
      truncate(n: number) {
        this.length = Math.min(this.length, n);
      },
      release() {},
    }),
    forward(ids, opts) {
      const cache = opts.cache!;
      calls.push({ ids: [...ids], start: cache.length });
      assert.ok(cache.length + ids.length <= maxPositions, 'past the context window');
      cache.length += ids.length;
      return new Float32Array((opts.lastOnly ? 1 : ids.length) * vocab);
    },
  };
  return { model, calls };
}

describe('scoring protocols', () => {
  test('rolling windows: lm-eval docstring example (max_seq_len 3, context_len 2)', () => {
    const P = -1;
    assert.deepEqual(rollingWindows([0, 1, 2, 3, 4, 5, 6, 7, 8], P, 3, 2), [
      { context: [P], targets: [0, 1, 2] },
      { context: [1, 2], targets: [3, 4] },
      { context: [3, 4], targets: [5, 6] },
      { context: [5, 6], targets: [7, 8] },
    ]);
  });

  test('rolling windows: lm-eval default (context_len 1): disjoint, the last window keeps full context', () => {
    const tokens = Array.from({ length: 10 }, (_, i) => i);
    assert.deepEqual(rollingWindows(tokens, -1, 4), [
      { context: [-1], targets: [0, 1, 2, 3] },
      { context: [3], targets: [4, 5, 6, 7] },
      { context: [5, 6, 7], targets: [8, 9] },
    ]);
    assert.deepEqual(rollingWindows([], -1, 4), []);
  });

  test('chunked (MODEL_CARD): consecutive 1023-token chunks, each after BOS, no overlap', () => {
    const tokens = Array.from({ length: 2500 }, (_, i) => 3 + (i % 500));
    const windows = chunkedWindows(tokens, 1, 1023);
    assert.deepEqual(
      windows.map((w) => w.targets.length),
      [1023, 1023, 454],
    );
    assert.ok(windows.every((w) => w.context.length === 1 && w.context[0] === 1));
    assert.deepEqual(
      windows.flatMap((w) => w.targets),
      tokens,
    );
    // Scored by a model with a 1024-token window: each forward is BOS + the chunk minus its last token, in a
    // fresh cache; a uniform model's perplexity is its vocabulary size.
    const { model, calls } = uniformStub(512, 1024);
    const scorer = new Scorer(model);
    let nll = 0;
    for (const w of windows) nll -= scorer.scoreWindow(w).loglikelihood;
    assert.deepEqual(
      calls.map((c) => [c.start, c.ids.length, c.ids[0]]),
      [
        [0, 1023, 1],
        [0, 1023, 1],
        [0, 454, 1],
      ],
    );
    assert.deepEqual(calls[1]!.ids.slice(1), tokens.slice(1023, 2045));
    assert.ok(close(Math.exp(nll / tokens.length), 512, 1e-9));
    assert.equal(scorer.usage.tokens, 2500);
  });

  test('chunked on a short real text: boundaries and BOS', () => {
    const tokenizer = loadTokenizer(sharedPath('models', 'stories260K', 'tok512.bin'));
    const text = 'Once upon a time, there was a little dog.\r\nHe liked to run.';
    const tokens = tokenizer.encode(text.replace(/\r\n/g, '\n'), { addSpecial: false });
    assert.notEqual(tokens[0], 1, 'no special tokens in the text');
    const windows = chunkedWindows(tokens, 1, 7);
    assert.equal(windows.length, Math.ceil(tokens.length / 7));
    windows.forEach((w, i) => {
      assert.deepEqual(w.context, [1]);
      assert.deepEqual(w.targets, tokens.slice(7 * i, 7 * i + 7));
    });
  });

  test('choices share the context through the KV cache (calls and cut from the left)', () => {
    const { model, calls } = uniformStub(16, 8);
    const scorer = new Scorer(model);
    const scores = scorer.continuations([1, 2, 3], [[4], [5, 6, 7]]);
    // One pass over the context (last logits only), then the second choice's first two tokens after it.
    assert.deepEqual(calls, [
      { ids: [1, 2, 3], start: 0 },
      { ids: [5, 6], start: 3 },
    ]);
    assert.ok(close(scores[0]!.loglikelihood, -Math.log(16)));
    assert.ok(close(scores[1]!.loglikelihood, -3 * Math.log(16)));
    // Context 7 + continuation 3 > 8 + 1: lm-eval keeps the last 9 tokens, i.e. the context's last 6.
    calls.length = 0;
    scorer.continuations([1, 2, 3, 4, 5, 6, 7], [[8, 9, 10]]);
    assert.deepEqual(calls, [
      { ids: [2, 3, 4, 5, 6, 7], start: 0 },
      { ids: [8, 9], start: 6 },
    ]);
  });
});

describe('stories260K', () => {
  let model: Model;
  before(async () => {
    model = await loadModel(STORIES);
  });
  after(() => model?.close());

  test('perplexity of the fixture ids is 3.624 (every token after the first)', () => {
    const ids = new Reference(fixtureDir('stories260K-hf')).ids('ids');
    assert.equal(ids.length, 256);
    const scorer = new Scorer(model);
    const ll = scorer.scoreWindow({ context: ids.slice(0, 1), targets: ids.slice(1) }).loglikelihood;
    const ppl = Math.exp(-ll / 255);
    assert.ok(Math.abs(ppl - 3.624) < 0.001, `perplexity ${ppl}`);
    // The same ids as lm-eval's rolling windows (prefix BOS, the story's tokens), one window.
    const windows = rollingWindows(ids.slice(1), ids[0]!, model.config.maxPositions);
    assert.equal(windows.length, 1);
    assert.ok(close(scorer.scoreWindow(windows[0]!).loglikelihood, ll, 1e-9));
  });

  test('shared-context scores equal one pass over context + continuation', () => {
    const enc = encodeChoices(
      model.tokenizer,
      'Once upon a time, there was a little ',
      [' dog.', ' girl named Lily who liked to play.'],
      1,
      1,
    );
    assert.equal(enc.context[0], 1, 'BOS first');
    // The trailing space moved to the continuation: the context does not end with a space token.
    assert.deepEqual(
      enc.context.slice(1),
      model.tokenizer.encode('Once upon a time, there was a little', { addSpecial: false }),
    );
    const scorer = new Scorer(model);
    const shared = scorer.continuations(enc.context, enc.continuations);
    enc.continuations.forEach((cont, i) => {
      const alone = scorer.scoreWindow({ context: enc.context, targets: cont }).loglikelihood;
      assert.ok(Math.abs(shared[i]!.loglikelihood - alone) < 1e-4, `${shared[i]!.loglikelihood} vs ${alone}`);
    });
  });

  test('achieved sparsity from the recorded counts equals applyWina.achieved()', () => {
    const applied = applyWina(model, { method: 'wina', globalSparsity: 0.5, projections: { down: 0.25 } });
    applied.forward([1, 403, 407, 261, 378]);
    const counts = {
      kept: Object.fromEntries(applied.stats.kept),
      total: Object.fromEntries(applied.stats.total),
    };
    assert.ok(close(achievedSparsity(projectionSizes(model), counts), applied.achieved(), 1e-12));
  });

  test('validate(model, { benchmark }) returns the result rows', async () => {
    const report = await validate(model, {
      benchmark: 'mmlu_anatomy',
      limit: 2,
      shots: 1,
      methods: ['dense', 'teal'],
      sparsities: [0.5],
      cache: false,
    });
    assert.deepEqual(
      report.results.map((r) => [r.task, r.method, r.sparsity, r.metric, r.n]),
      [
        ['mmlu_anatomy', 'dense', 0, 'acc', 2],
        ['mmlu_anatomy', 'teal', 0.5, 'acc', 2],
      ],
    );
    const [dense, teal] = report.results;
    assert.equal(dense!.achievedSparsity, 0);
    assert.ok(Math.abs(teal!.achievedSparsity - 0.5) < 0.02, `achieved ${teal!.achievedSparsity}`);
    assert.ok(teal!.gflopsPerToken < dense!.gflopsPerToken);
    assert.ok(markdownTable(report.results).includes('| mmlu_anatomy | acc | dense | 0.00 |'));
    assert.deepEqual(Object.keys(jsonResults(report.results).results[0]!).sort(), [
      'achievedSparsity',
      'gflopsPerToken',
      'method',
      'metric',
      'sparsity',
      'stderr',
      'task',
      'value',
    ]);
  });

  test('gsm8k: greedy generation, stop strings, exact match', async () => {
    const report = await validate(model, {
      benchmark: 'gsm8k',
      limit: 1,
      shots: 1,
      maxTokens: 24,
      cache: false,
    });
    assert.equal(report.results.length, 1);
    assert.equal(report.results[0]!.metric, 'exact_match');
    assert.ok([0, 1].includes(report.results[0]!.value));
  });
});

describe('wina eval (CLI)', () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wina-eval-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const run = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    spawnSync(process.execPath, [BIN, 'eval', ...args], {
      cwd: dir,
      encoding: 'utf8',
      env: { ...process.env, WINA_DEBUG: '', ...env },
    });

  test('tinystories,piqa x dense,wina 0.5: JSON shape, files, and the cache on a second run', () => {
    const args = [
      '--model',
      STORIES,
      '--tasks',
      'tinystories,piqa',
      '--methods',
      'dense,wina',
      '--sparsity',
      '0.5',
    ];
    const first = run([...args, '--limit', '5', '--json', '--out', 'results.json', '--md', 'results.md']);
    assert.equal(first.status, 0, first.stderr);
    assert.equal(first.stdout.trimEnd().split('\n').length, 1, 'stdout is one JSON line');
    const out = JSON.parse(first.stdout) as { results: Record<string, unknown>[] };
    assert.deepEqual(Object.keys(out), ['results']);
    const keys = [
      'task',
      'method',
      'sparsity',
      'metric',
      'value',
      'stderr',
      'achievedSparsity',
      'gflopsPerToken',
    ];
    for (const r of out.results) assert.deepEqual(Object.keys(r), keys);
    const rows = out.results.map((r) => `${r.task} ${r.method} ${r.sparsity} ${r.metric}`);
    for (const m of ['token_perplexity', 'word_perplexity', 'byte_perplexity', 'bits_per_byte']) {
      assert.ok(rows.includes(`tinystories dense 0 ${m}`) && rows.includes(`tinystories wina 0.5 ${m}`), m);
    }
    for (const m of ['acc', 'acc_norm'])
      assert.ok(rows.includes(`piqa dense 0 ${m}`) && rows.includes(`piqa wina 0.5 ${m}`));
    assert.equal(out.results.length, 12);
    const acc = out.results.find((r) => r.task === 'piqa' && r.metric === 'acc' && r.method === 'wina')!;
    assert.equal(typeof acc.stderr, 'number');
    assert.ok(Math.abs((acc.achievedSparsity as number) - 0.5) < 0.02);
    const ppl = out.results.find(
      (r) => r.task === 'tinystories' && r.metric === 'token_perplexity' && r.method === 'dense',
    )!;
    assert.equal(ppl.stderr, null);
    assert.ok((ppl.value as number) > 1 && (ppl.value as number) < 20);
    assert.match(first.stderr, /4 results computed, 0 reused from the cache/);

    const file = JSON.parse(fs.readFileSync(path.join(dir, 'results.json'), 'utf8'));
    assert.equal(file.results.length, 12);
    assert.match(
      fs.readFileSync(path.join(dir, 'results.md'), 'utf8'),
      /\| tinystories \| token_perplexity \| dense \|/,
    );
    assert.ok(fs.readdirSync(path.join(dir, '.wina-cache', 'eval')).length === 4);

    const second = run([...args, '--limit', '5', '--json']);
    assert.equal(second.status, 0, second.stderr);
    assert.match(second.stderr, /0 results computed, 4 reused from the cache/);
    assert.deepEqual(JSON.parse(second.stdout), out);

    // Another sparsity reuses dense and the existing cell; only the new cells run.
    const third = run([...args.slice(0, -1), '0.5,0.25', '--limit', '5', '--json']);
    assert.equal(third.status, 0, third.stderr);
    assert.match(third.stderr, /2 results computed, 4 reused from the cache/);
  });

  test('bad input: one line, exit 2', () => {
    const expectError = (args: string[], phrase: RegExp, env: NodeJS.ProcessEnv = {}) => {
      const r = run(args, env);
      assert.equal(r.status, 2, `exit ${r.status}: ${r.stderr}`);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0]!, /^wina eval: /);
      assert.match(lines[0]!, phrase);
    };
    expectError(['--model', STORIES, '--tasks', 'nosuchtask'], /unknown task "nosuchtask"/);
    expectError(
      ['--model', STORIES, '--tasks', 'piqa', '--sparsity', '0.5,abc'],
      /--sparsity: "abc" is not a sparsity/,
    );
    expectError(
      ['--model', STORIES, '--tasks', 'piqa', '--sparsity', '1.5'],
      /--sparsity: "1.5" is not a sparsity/,
    );
    expectError(['--model', STORIES, '--tasks', 'piqa', '--methods', 'dense,fast'], /unknown method "fast"/);
    expectError(
      ['--model', STORIES, '--tasks', 'piqa', '--protocol', 'sliding'],
      /--protocol must be rolling or chunked/,
    );
    expectError(['--model', STORIES, '--tasks', 'piqa', '--limit', '-2'], /limit must be/);
    expectError(['--tasks', 'piqa'], /--model is required/);
    expectError(['--model', STORIES, '--tasks', 'piqa'], /data file .*piqa\.jsonl does not exist/, {
      WINA_SHARED: dir,
    });
  });
});
