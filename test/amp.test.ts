/**
 * WINA-AMP: clustering and router on synthetic data with known structure, and the whole pipeline on stories260K
 * and tinystories-656k with tiny sizes (structure and internal consistency of its outputs), the AMP profile
 * file, run-time routing in generate / eval, and bad input.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  applyAmp,
  checkAmpProfile,
  readAmpProfile,
  routeConfig,
  routePrompt,
  writeAmpProfile,
} from '../src/amp/amp-profile.js';
import {
  adjustedRandIndex,
  chooseK,
  kmeansClusters,
  purity,
  shuffleColumns,
  silhouette,
} from '../src/amp/cluster.js';
import { loadItems } from '../src/amp/data.js';
import { type AmpRun, runAmp } from '../src/amp/experiment.js';
import { markdownReport } from '../src/amp/report.js';
import {
  accuracy,
  crossValidatedAccuracy,
  featureFlops,
  promptFeatures,
  route,
  routerFlops,
  routerProbabilities,
  trainCentroidRouter,
  trainSoftmaxRouter,
} from '../src/amp/router.js';
import { seededRandom } from '../src/io/random.js';
import { WinaError } from '../src/errors.js';
import { type Model, loadModel } from '../src/model/model.js';
import { profileConfig } from '../src/sparsity/profile.js';
import { sharedPath } from './helpers.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = path.join(REPO_ROOT, 'bin', 'wina.js');

/** Seeded standard normals (Box-Muller). */
function normals(seed: number): () => number {
  const random = seededRandom(seed);
  return () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
}

/** `perClass` points around each centre, standard deviation `sd`. */
function blobs(centres: number[][], perClass: number, sd: number, seed: number) {
  const normal = normals(seed);
  const rows: number[][] = [];
  const labels: number[] = [];
  centres.forEach((c, k) => {
    for (let i = 0; i < perClass; i++) {
      rows.push(c.map((v) => v + sd * normal()));
      labels.push(k);
    }
  });
  return { rows, labels };
}

describe('clustering on synthetic data', () => {
  const centres = [
    [0, 0, 0, 0, 0],
    [20, 0, 0, 0, 0],
    [0, 20, 0, 0, 0],
    [0, 0, 20, 20, 0],
  ];
  const { rows, labels } = blobs(centres, 25, 1, 7);

  test('k-means finds well-separated blobs: ARI 1, silhouette > 0.7', () => {
    const c = kmeansClusters(rows, 4, 1);
    assert.equal(adjustedRandIndex(c.assignments, labels), 1);
    assert.equal(purity(c.assignments, labels.map(String)), 1);
    assert.ok(silhouette(rows, c.assignments) > 0.7);
    // Numbered by size (all 25), then by first appearance: the blobs in order.
    assert.deepEqual(c.assignments, labels);
  });

  test('auto-k picks the true k by silhouette', () => {
    const { best, candidates } = chooseK(rows, [2, 3, 4, 5, 6, 7], 3);
    assert.equal(best.k, 4);
    assert.deepEqual(
      candidates.map((c) => c.k),
      [2, 3, 4, 5, 6, 7],
    );
    const top = Math.max(...candidates.map((c) => c.silhouette));
    assert.equal(candidates.find((c) => c.k === 4)!.silhouette, top);
  });

  test('a null model (columns shuffled) has no such structure', () => {
    const shuffled = shuffleColumns(rows, seededRandom(5));
    for (let j = 0; j < 5; j++)
      assert.deepEqual(
        shuffled.map((r) => r[j]).sort((a, b) => a! - b!),
        rows.map((r) => r[j]).sort((a, b) => a! - b!),
      );
    assert.ok(chooseK(shuffled, [2, 3, 4, 5], 3).candidates.every((c) => c.silhouette < 0.6));
  });

  test('adjusted Rand index on hand-made cases', () => {
    // scikit-learn's documented values: 4/7, 0, -0.5, and 1 for a relabelling.
    assert.ok(Math.abs(adjustedRandIndex([0, 0, 1, 1], [0, 0, 1, 2]) - 4 / 7) < 1e-12);
    assert.ok(Math.abs(adjustedRandIndex([0, 0, 1, 2], [0, 0, 1, 1]) - 4 / 7) < 1e-12);
    assert.equal(adjustedRandIndex([0, 0, 0, 0], [0, 1, 2, 3]), 0);
    assert.ok(Math.abs(adjustedRandIndex([0, 0, 1, 1], [0, 1, 0, 1]) + 0.5) < 1e-12);
    assert.equal(adjustedRandIndex([0, 0, 1, 1, 2], ['b', 'b', 'a', 'a', 'c']), 1);
    assert.equal(adjustedRandIndex([0, 0, 0], [1, 1, 1]), 1);
  });

  test('silhouette and purity on hand-made cases (values from an independent NumPy computation)', () => {
    assert.ok(Math.abs(silhouette([[0], [1], [10], [11]], [0, 0, 1, 1]) - 0.899749373433584) < 1e-12);
    // A singleton cluster counts 0 (scikit-learn's convention).
    const two = [
      [0, 0],
      [0, 2],
      [3, 0],
      [10, 10],
      [11, 10],
      [20, 0],
    ];
    assert.ok(Math.abs(silhouette(two, [0, 0, 0, 1, 1, 2]) - 0.7000551087045214) < 1e-12);
    assert.equal(purity([0, 0, 0, 1, 1, 1], ['a', 'a', 'b', 'b', 'b', 'c']), 4 / 6);
    assert.equal(purity([0, 1, 2], ['a', 'a', 'a']), 1);
    assert.throws(() => silhouette([[0], [1]], [0, 0]), WinaError);
  });
});

describe('router on synthetic data', () => {
  const centres = [
    [0, 0, 0, 0, 0, 0, 0, 0],
    [10, 0, 0, 0, 0, 0, 0, 0],
    [0, 10, 0, 0, 0, 0, 0, 0],
  ];
  const train = blobs(centres, 20, 1, 11);
  const held = blobs(centres, 10, 1, 12);

  test('nearest centroid and softmax predict separable labels with accuracy 1', () => {
    for (const router of [
      trainCentroidRouter(train.rows, train.labels, 3, 'embed'),
      trainSoftmaxRouter(train.rows, train.labels, 3, 'embed'),
    ]) {
      assert.equal(
        accuracy(
          train.rows.map((r) => route(router, r)),
          train.labels,
        ),
        1,
        router.kind,
      );
      assert.equal(
        accuracy(
          held.rows.map((r) => route(router, r)),
          held.labels,
        ),
        1,
        router.kind,
      );
      const p = routerProbabilities(router, held.rows[0]!);
      assert.ok(Math.abs(p.reduce((a, b) => a + b, 0) - 1) < 1e-9);
      assert.equal(route(router, held.rows[0]!), p.indexOf(Math.max(...p)));
    }
    assert.equal(crossValidatedAccuracy('softmax', train.rows, train.labels, 3, 'embed'), 1);
    assert.equal(crossValidatedAccuracy('centroid', train.rows, train.labels, 3, 'embed'), 1);
  });

  test('cost accounting', () => {
    const c = trainCentroidRouter(train.rows, train.labels, 3, 'embed');
    const s = trainSoftmaxRouter(train.rows, train.labels, 3, 'embed');
    assert.equal(routerFlops(c), 2 * 8 + 3 * 3 * 8);
    assert.equal(routerFlops(s), 2 * 8 + 2 * 3 * 8 + 3 * 3);
  });
});

/** A small labelled data set from the shared corpus: a few passages per domain (train) and a few heldout texts. */
function smallCorpus(dir: string): { train: string; test: string } {
  const train = path.join(dir, 'train');
  const test = path.join(dir, 'test');
  fs.mkdirSync(train);
  for (const domain of ['books', 'code', 'math', 'reference']) {
    const lines = fs
      .readFileSync(sharedPath('data', 'corpus', 'train-sample', `${domain}.jsonl`), 'utf8')
      .split('\n');
    fs.writeFileSync(path.join(train, `${domain}.jsonl`), `${lines.slice(0, 8).join('\n')}\n`);
    const files = fs.readdirSync(sharedPath('data', 'corpus', 'heldout', domain)).sort();
    fs.mkdirSync(path.join(test, domain), { recursive: true });
    const text = fs.readFileSync(sharedPath('data', 'corpus', 'heldout', domain, files[0]!), 'utf8');
    fs.writeFileSync(path.join(test, domain, 'a.txt'), text.slice(0, 2500));
  }
  return { train, test };
}

function checkRun(run: AmpRun, model: Model, trainN: number, testN: number, tolerance: number): void {
  const r = run.report;
  const c = r.clustering;
  assert.equal(r.format, 'wina-amp');
  assert.equal(r.data.train.n, trainN);
  assert.equal(r.data.test.n, testN);
  // Clusters: sizes sum to n, the table and the projection agree with them.
  assert.equal(c.sizes.length, c.k);
  assert.equal(
    c.sizes.reduce((a, b) => a + b, 0),
    trainN,
  );
  for (const [k, row] of Object.entries(c.contingency))
    assert.equal(
      Object.values(row).reduce((a, b) => a + b, 0),
      c.sizes[Number(k)],
    );
  assert.equal(r.projection.train.length, trainN);
  assert.equal(r.projection.test.length, testN);
  const assignments = r.projection.train.map((p) => p.cluster);
  const labels = r.projection.train.map((p) => p.label);
  assert.equal(c.purity, purity(assignments, labels));
  assert.equal(c.ari, adjustedRandIndex(assignments, labels));
  assert.ok(c.silhouette >= -1 && c.silhouette <= 1);
  assert.ok(c.candidates.some((x) => x.k === c.k && x.silhouette === c.silhouette));
  assert.equal(
    c.test.sizes.reduce((a, b) => a + b, 0),
    testN,
  );
  // Router: accuracy in [0, 1] and equal to a recount from its predictions; the confusion matrix agrees.
  const router = r.router;
  assert.ok(router.testAccuracy >= 0 && router.testAccuracy <= 1);
  assert.equal(router.predictions.length, testN);
  assert.equal(
    router.testAccuracy,
    router.predictions.filter((p, i) => p === router.truth[i]).length / testN,
  );
  assert.equal(
    router.confusion.flat().reduce((a, b) => a + b, 0),
    testN,
  );
  assert.equal(router.confusion.reduce((s, row, i) => s + row[i]!, 0) / testN, router.testAccuracy);
  assert.deepEqual(
    r.projection.test.map((p) => p.routed),
    router.predictions,
  );
  for (const x of router.candidates)
    for (const a of [x.cvAccuracy, x.trainAccuracy, x.testAccuracy]) assert.ok(a >= 0 && a <= 1);
  // Achieved sparsity: calibrated on train, so on train both profiles reach the target; on test, matched.
  for (const name of ['uniform', 'amp-oracle']) {
    const e = r.evaluations.find((x) => x.name === name && x.data === 'train')!;
    assert.ok(e.leakageProne);
    assert.ok(Math.abs(e.achievedSparsity - r.sparsity) <= 0.03, `${name} on train: ${e.achievedSparsity}`);
  }
  assert.ok(r.matching.matched, JSON.stringify(r.matching));
  assert.ok(Math.abs(r.comparison.achieved.ampRouted - r.comparison.achieved.uniform) <= tolerance);
  const routed = r.evaluations.find((x) => x.name === 'amp-routed')!;
  assert.equal(routed.achievedSparsity, r.comparison.achieved.ampRouted);
  assert.ok(routed.routerSecondsPerItem > 0);
  assert.equal(r.evaluations.find((x) => x.name === 'dense')!.achievedSparsity, 0);
  // Per-label metrics cover every item.
  for (const e of r.evaluations) {
    const n = e.data === 'train' ? trainN : testN;
    assert.equal(
      Object.values(e.byLabel).reduce((s, m) => s + m.n, 0),
      n,
    );
    assert.equal(e.overall.n, n);
  }
  // Curves: sorted by achieved sparsity, one point per pass.
  assert.equal(r.curves.uniform.length, 1 + (r.options.curve as number[]).length);
  assert.equal(
    r.curves.ampRouted.length,
    r.matching.iterations.length + (r.options.curve as number[]).length,
  );
  for (const curve of [r.curves.uniform, r.curves.ampRouted])
    assert.ok(curve.every((p, i) => i === 0 || p.sparsity >= curve[i - 1]!.sparsity));
  // The routed curve read at the uniform profile's achieved sparsity lies between its neighbours.
  const read = r.comparison.interpolated;
  if (read) {
    assert.equal(read.sparsity, r.comparison.achieved.uniform);
    const nll = r.curves.ampRouted.map((p) => p.nllPerToken);
    assert.ok(read.nllPerToken >= Math.min(...nll) - 1e-12 && read.nllPerToken <= Math.max(...nll) + 1e-12);
  }
  // Heatmaps: [cluster][layer][projection].
  const layers = model.config.numLayers;
  assert.equal(r.allocations.uniform.length, layers);
  assert.equal(r.allocations.clusters.length, c.k);
  for (const grid of [...r.allocations.clusters, ...r.achieved.uniformOnTrain]) {
    assert.equal(grid.length, layers);
    assert.ok(grid.every((row) => row.length === 7));
  }
  // The AMP profile has one profile per cluster and the chosen router.
  assert.equal(run.amp.clusters.length, c.k);
  assert.deepEqual(
    run.amp.clusters.map((x) => x.size),
    c.sizes,
  );
  assert.equal(run.amp.router.kind, router.kind);
  for (const a of Object.values(r.answers)) assert.ok(a.verdict && a.summary.length > 20);
  assert.match(markdownReport(r), /## Answers/);
}

describe('WINA-AMP on stories260K (text: domains of the corpus)', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wina-amp-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const data = smallCorpus(dir);
  const model = await loadModel(sharedPath('models', 'stories260K'));
  after(() => model.close());
  const options = {
    train: data.train,
    test: `passages:${data.test}`,
    seqLen: 48,
    testPerLabel: 4,
    tolerance: 0.01,
    seed: 3,
  };
  const run = await runAmp(model, options);

  test('outputs are complete and consistent', () => {
    checkRun(run, model, 32, 16, 0.01);
    assert.equal(run.report.metric, 'perplexity');
    const r = run.report;
    for (const e of r.evaluations)
      assert.ok(e.overall.perplexity > 1 && Number.isFinite(e.overall.perplexity));
    assert.deepEqual(Object.keys(r.data.train.labels).sort(), ['books', 'code', 'math', 'reference']);
  });

  test('passages are cut deterministically at a fixed length, labelled by folder', () => {
    const items = loadItems(`passages:${data.test}`, 'test', model, {
      seqLen: 48,
      split: 0.5,
      seed: 1,
      shots: 0,
      maxTokens: 8,
    }).items;
    assert.ok(items.every((it) => it.prompt.length === 48 && it.prompt[0] === model.config.bosId));
    const again = loadItems(`passages:${data.test}`, 'test', model, {
      seqLen: 48,
      split: 0.5,
      seed: 9,
      shots: 0,
      maxTokens: 8,
    }).items;
    assert.deepEqual(again, items);
    assert.deepEqual([...new Set(items.map((i) => i.label))], ['books', 'code', 'math', 'reference']);
  });

  test('the AMP profile file round-trips, and run-time routing agrees with the experiment', () => {
    const file = path.join(dir, 'amp.json');
    writeAmpProfile(file, run.amp);
    const amp = readAmpProfile(file, model);
    const test = loadItems(`passages:${data.test}`, 'test', model, {
      seqLen: 48,
      perLabel: 4,
      split: 0.5,
      seed: 3,
      shots: 0,
      maxTokens: 128,
    }).items;
    const predicted = test.map((it) => routePrompt(amp, model, it.prompt));
    assert.deepEqual(predicted, run.report.router.predictions);
    const config = routeConfig(amp, model, test[0]!.prompt);
    assert.deepEqual(config, profileConfig(amp.clusters[predicted[0]!]!.profile));
    // applyAmp routes each new sequence as it starts.
    const applied = applyAmp(model, amp);
    for (const it of test) applied.forward(it.prompt, { lastOnly: true });
    assert.deepEqual(applied.routed, predicted);
    assert.ok(applied.achieved() > 0.3 && applied.achieved() < 0.7);
    assert.ok(!Object.prototype.hasOwnProperty.call(model.transformer, 'forward'));
    // Router features: embedding means cost tokens x hidden; an early layer adds that block's work.
    assert.equal(featureFlops(model, 10, 'embed'), 10 * model.config.hiddenSize);
    assert.ok(featureFlops(model, 10, 'layer:1') > featureFlops(model, 10, 'embed'));
    assert.equal(promptFeatures(model, [1, 2, 3], 'layer:2').length, model.config.hiddenSize);
  });

  test('bad AMP profiles are refused with a clear error', async () => {
    const good = JSON.parse(JSON.stringify(run.amp));
    const cases: [string, unknown, RegExp][] = [
      ['not an AMP profile', { format: 'wina-profile' }, /not an AMP profile/],
      ['future version', { ...good, version: 2 }, /version 2/],
      ['no clusters', { ...good, clusters: [] }, /no clusters/],
      ['router count', { ...good, router: { ...good.router, clusters: 9 } }, /among 9 clusters/],
      ['router shape', { ...good, router: { ...good.router, mean: [1, 2] } }, /mean and std|features have 2/],
      [
        'bad cluster',
        { ...good, clusters: [{ ...good.clusters[0], profile: { format: 'x' } }, ...good.clusters.slice(1)] },
        /cluster 0 .* not a wina profile/,
      ],
    ];
    for (const [name, value, message] of cases)
      assert.throws(
        () => checkAmpProfile(value, 'amp.json', model),
        (e: Error) => e instanceof WinaError && message.test(e.message),
        name,
      );
    const other = await loadModel(sharedPath('models', 'tinystories-656k'));
    try {
      assert.throws(() => checkAmpProfile(good, 'amp.json', other), /made for another model/);
    } finally {
      other.close();
    }
    const bad = path.join(dir, 'bad.json');
    fs.writeFileSync(bad, '{"format": ');
    assert.throws(() => readAmpProfile(bad), /not valid JSON/);
  });

  test('greedy allocation per cluster (the same search as the uniform profile)', async () => {
    const greedy = await runAmp(model, {
      ...options,
      trainPerLabel: 4,
      testPerLabel: 2,
      clusters: 2,
      allocation: 'greedy',
      greedySamples: 1,
      greedyStep: 0.25,
      greedyTokens: 16,
      curve: [],
      router: 'centroid',
      routerInput: 'embed',
    });
    const r = greedy.report;
    assert.equal(r.clustering.k, 2);
    assert.equal(r.clustering.chosenBy, 'option');
    assert.equal(r.router.kind, 'centroid');
    for (const profile of [greedy.uniform, ...greedy.amp.clusters.map((c) => c.profile)]) {
      assert.ok(profile.greedy && profile.greedy.length === model.config.numLayers);
      const values = Object.values(profile.allocation[0]!);
      assert.ok(Math.max(...values) > Math.min(...values), 'greedy should not end uniform');
    }
  });
});

describe('WINA-AMP on tinystories-656k (tasks, split by item)', async () => {
  const model = await loadModel(sharedPath('models', 'tinystories-656k'));
  after(() => model.close());
  const spec = 'tasks:piqa,copa,gsm8k';
  const run = await runAmp(model, {
    train: spec,
    trainPerLabel: 8,
    testPerLabel: 4,
    maxTokens: 6,
    seed: 5,
    tolerance: 0.01,
  });

  test('outputs are complete and consistent; accuracy per task', () => {
    checkRun(run, model, 24, 12, 0.01);
    const r = run.report;
    assert.equal(r.metric, 'accuracy');
    assert.equal(r.data.test.spec, spec);
    for (const e of r.evaluations) {
      for (const m of [e.overall, ...Object.values(e.byLabel)])
        assert.ok(m.accuracy! >= 0 && m.accuracy! <= 1);
      // The overall accuracy is the item-weighted mean of the tasks'.
      const byTask = Object.values(e.byLabel);
      const pooled = byTask.reduce((s, m) => s + m.accuracy! * m.n, 0) / byTask.reduce((s, m) => s + m.n, 0);
      assert.ok(Math.abs(pooled - e.overall.accuracy!) < 1e-12);
    }
    assert.ok(r.comparison.accuracy && r.comparison.accuracy.n === 12);
  });

  test('train and test items are disjoint and the split is seeded', () => {
    const o = { seqLen: 256, split: 0.5, seed: 5, shots: 0, maxTokens: 6, perLabel: 50 };
    const train = loadItems(spec, 'train', model, o).items.map((i) => i.id);
    const test = loadItems(spec, 'test', model, o).items.map((i) => i.id);
    assert.equal(train.filter((id) => test.includes(id)).length, 0);
    assert.deepEqual(
      loadItems(spec, 'train', model, o).items.map((i) => i.id),
      train,
    );
    assert.notDeepEqual(
      loadItems(spec, 'train', model, { ...o, seed: 6 }).items.map((i) => i.id),
      train,
    );
    assert.equal(train.filter((id) => id.startsWith('copa:')).length, 50);
  });
});

describe('wina amp run (CLI), and --profile amp.json in generate and eval', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wina-amp-cli-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const data = smallCorpus(dir);
  const out = path.join(dir, 'out');
  const wina = (args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });

  test('writes the report (JSON, Markdown, HTML) and the profiles', () => {
    const r = wina([
      'amp',
      'run',
      '--model',
      'stories260K',
      '--train',
      data.train,
      '--test',
      `passages:${data.test}`,
      '--seq-len',
      '40',
      '--per-label',
      '5',
      '--out',
      out,
      '--json',
    ]);
    assert.equal(r.status, 0, r.stderr);
    const summary = JSON.parse(r.stdout);
    assert.equal(summary.files.length, 5);
    for (const f of summary.files) assert.ok(fs.existsSync(f), f);
    assert.deepEqual(Object.keys(summary.answers), ['clusters', 'labels', 'routing', 'profiles']);
    const html = fs.readFileSync(path.join(out, 'report.html'), 'utf8');
    assert.match(html, /wina-report-data/);
    assert.match(html, /Sparsity per cluster/);
    assert.match(fs.readFileSync(path.join(out, 'report.md'), 'utf8'), /## Router/);
  });

  test('generate and eval route prompts with amp.json', () => {
    const amp = path.join(out, 'amp.json');
    const g = wina([
      'generate',
      '--model',
      'stories260K',
      '--profile',
      amp,
      '--prompt',
      'Once upon a time',
      '--max-tokens',
      '5',
      '--json',
    ]);
    assert.equal(g.status, 0, g.stderr);
    const generated = JSON.parse(g.stdout);
    assert.ok(Number.isInteger(generated.cluster) && generated.achievedSparsity > 0);
    const e = wina([
      'eval',
      '--model',
      'stories260K',
      '--profile',
      amp,
      '--tasks',
      'tinystories',
      '--limit',
      '3',
      '--no-cache',
      '--json',
    ]);
    assert.equal(e.status, 0, e.stderr);
    const rows = JSON.parse(e.stdout).results as { method: string; achievedSparsity: number }[];
    assert.deepEqual([...new Set(rows.map((x) => x.method))], ['dense', 'wina-amp']);
    assert.ok(rows.filter((x) => x.method === 'wina-amp').every((x) => x.achievedSparsity > 0.3));
  });

  test('serve routes each prompt with amp.json as generate does', async () => {
    const amp = path.join(out, 'amp.json');
    const prompts = ['Once upon a time', 'def main():\n    return', 'The sun was hot and the dog'];
    const expected = prompts.map((prompt) => {
      const g = wina([
        'generate',
        ...['--model', 'stories260K', '--profile', amp, '--prompt', prompt],
        ...['--max-tokens', '8', '--temperature', '0', '--json'],
      ]);
      assert.equal(g.status, 0, g.stderr);
      return JSON.parse(g.stdout) as { text: string; achievedSparsity: number; cluster: number };
    });
    const child = spawn(
      process.execPath,
      [BIN, 'serve', '--model', 'stories260K', '--profile', amp, '--port', '0', '--json'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise((resolve) => child.on('exit', resolve));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let stdout = '';
        child.stdout.on('data', (d) => {
          stdout += d;
          if (stdout.includes('\n')) resolve(JSON.parse(stdout).url);
        });
        child.on('exit', () => reject(new Error(`wina serve exited: ${stderr}`)));
      });
      const clusters = new Set(expected.map((e) => e.cluster));
      assert.ok(clusters.size > 1, `the prompts should reach different clusters: ${[...clusters]}`);
      // In an order that switches clusters between requests.
      for (const i of [0, 1, 2, 0]) {
        const res = await fetch(`${url}/v1/completions`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ prompt: prompts[i], max_tokens: 8, temperature: 0 }),
        });
        assert.equal(res.status, 200);
        const body = (await res.json()) as {
          choices: { text: string }[];
          wina: { achieved_sparsity: number };
        };
        assert.equal(body.choices[0]!.text, expected[i]!.text, `prompt ${i}`);
        assert.equal(body.wina.achieved_sparsity, expected[i]!.achievedSparsity, `prompt ${i}`);
      }
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
  });

  test('bad input: one clear line and exit code 2', () => {
    const cases: [string[], RegExp][] = [
      [['amp', 'frob'], /unknown amp command "frob"/],
      [['amp', 'run', '--model', 'stories260K'], /--train is required/],
      [['amp', 'run', '--model', 'stories260K', '--train', '/nonexistent/data'], /does not exist/],
      [['amp', 'run', '--model', 'stories260K', '--train', 'tasks:nosuchtask'], /unknown task "nosuchtask"/],
      [['amp', 'run', '--model', 'stories260K', '--train', data.train], /--test is required/],
      [
        [
          'amp',
          'run',
          '--model',
          'stories260K',
          '--train',
          data.train,
          '--test',
          data.train,
          '--clusters',
          '1',
        ],
        /clusters must be auto or a whole number >= 2/,
      ],
      [
        ['amp', 'run', '--model', 'stories260K', '--train', 'tasks:piqa', '--split', '1.5'],
        /--split must be in \(0, 1\)/,
      ],
      [
        ['amp', 'run', '--model', 'stories260K', '--train', 'tasks:piqa', '--router-input', 'layer:99'],
        /router input must be embed or layer:N/,
      ],
      [['bench', '--model', 'stories260K', '--profile', path.join(out, 'amp.json')], /is a WINA-AMP profile/],
    ];
    for (const [args, message] of cases) {
      const r = wina(args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, message);
    }
  });
});
