import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { type Sample, loadSamples } from '../src/sparsity/datasets.js';
import { WinaError } from '../src/errors.js';
import { type Model, loadModel } from '../src/model/model.js';
import { applyWina } from '../src/sparsity/apply.js';
import { calibrate } from '../src/sparsity/calibrate.js';
import { greedyAllocation } from '../src/sparsity/greedy.js';
import { Histogram } from '../src/sparsity/histogram.js';
import {
  type PerLayer,
  buildProfile,
  profileConfig,
  readProfile,
  thresholdsFor,
  uniformAllocation,
  writeProfile,
} from '../src/sparsity/profile.js';
import { fixtureDir, loadModelFor, sharedPath } from './helpers.js';

const data = (...p: string[]) => sharedPath('data', ...p);

/** Size-weighted achieved sparsity of a threshold config on samples the thresholds were not made on. */
function achievedOn(model: Model, samples: Sample[], allocation: PerLayer, thresholds: PerLayer): number {
  const applied = applyWina(model, {
    method: 'wina',
    globalSparsity: 0,
    layers: allocation,
    mask: 'threshold',
    thresholds,
  });
  for (const s of samples) applied.forward(s.ids, { lastOnly: true });
  return applied.achieved();
}

describe('histogram', () => {
  test('quantiles of a known distribution', () => {
    const h = new Histogram();
    for (let i = 1; i <= 10000; i++) h.add(i / 10000); // uniform on (0, 1]
    for (const q of [0.1, 0.25, 0.5, 0.9])
      assert.ok(Math.abs(h.quantile(q) - q) < 0.012 * q + 1e-4, `${q}: ${h.quantile(q)}`);
    assert.ok(Math.abs(h.fractionBelow(0.3) - 0.3) < 0.005);
    const back = Histogram.fromJSON(JSON.parse(JSON.stringify(h.toJSON())));
    assert.equal(back.quantile(0.37), h.quantile(0.37));
    h.add(0);
    assert.equal(h.zeros, 1);
  });
});

describe('calibration (stories260K)', async () => {
  const model = await loadModel(sharedPath('models', 'stories260K'));
  after(() => model.close());
  const train = loadSamples(data('tinystories', 'tinystories_sample.txt'), model.tokenizer, {
    seqLen: 128,
    bos: 1,
  });
  const other = [
    ...loadSamples(data('wikitext-2-raw', 'wiki.test.raw'), model.tokenizer, {
      seqLen: 128,
      bos: 1,
      samples: 4,
    }),
    ...loadSamples(data('corpus', 'train-sample', 'books.jsonl'), model.tokenizer, {
      seqLen: 128,
      bos: 1,
      samples: 4,
    }),
  ];
  const calibration = calibrate(model, train, 'wina');
  const layers = model.config.numLayers;

  test('per-sample profiles are attributed to each sample', () => {
    assert.equal(calibration.samples.length, train.length);
    assert.equal(
      calibration.tokens,
      train.reduce((n, s) => n + s.ids.length, 0),
    );
    assert.equal(Object.keys(calibration.samples[0]!.meanLog2).length, 7 * layers);
  });

  for (const target of [0.25, 0.5, 0.65]) {
    test(`thresholds from tinystories reach ${target} on wikitext + books within 2 points`, () => {
      const allocation = uniformAllocation({ method: 'wina', globalSparsity: target }, layers);
      const thresholds = thresholdsFor(calibration.histograms, (l, p) => allocation[l]![p]!, layers);
      const achieved = achievedOn(model, other, allocation, thresholds);
      assert.ok(Math.abs(achieved - target) <= 0.02, `achieved ${achieved}`);
    });
  }

  test('greedy allocation reaches 0.5 on other data within 2 points, non-uniformly', () => {
    const { allocation, trace } = greedyAllocation(model, [train[0]!], calibration.histograms, {
      method: 'wina',
      target: 0.5,
      step: 0.2,
    });
    assert.equal(trace.length, layers);
    for (const layerTrace of trace) {
      const last = layerTrace.at(-1)!;
      assert.ok(last.effectiveSparsity >= 0.5 - 1e-9 && last.effectiveSparsity < 0.6);
      assert.ok(
        layerTrace.every((s, i) => i === 0 || s.effectiveSparsity > layerTrace[i - 1]!.effectiveSparsity),
      );
    }
    const values = Object.values(allocation[0]!);
    assert.ok(Math.max(...values) - Math.min(...values) > 0.05, 'the search should not end uniform');
    const thresholds = thresholdsFor(calibration.histograms, (l, p) => allocation[l]![p]!, layers);
    const achieved = achievedOn(model, other, allocation, thresholds);
    assert.ok(Math.abs(achieved - 0.5) <= 0.02, `achieved ${achieved}`);

    // The profile's trace serves lower sparsities: its allocation at the target, a measured 0.25 below it.
    const profile = buildProfile(model, calibration, {
      sparsity: 0.5,
      allocation,
      data: 'tinystories',
      seqLen: 128,
      transform: false,
      greedy: trace,
    });
    assert.deepEqual(profileConfig(profile, { sparsity: 0.5 }).layers, allocation);
    const at25 = profileConfig(profile, { sparsity: 0.25 });
    const lower = at25.layers!;
    assert.ok(
      Object.values(lower[0]!).some((s, _, all) => s !== all[0]),
      'greedy, not uniform',
    );
    assert.ok(Object.values(lower[0]!).every((s, i) => s <= Object.values(allocation[0]!)[i]!));
    // Steps of 0.2 overshoot: the allocation aims at the mean effective sparsity of the chosen steps.
    const aimed =
      trace.reduce((sum, t) => sum + t.find((s) => s.effectiveSparsity >= 0.25)!.effectiveSparsity, 0) /
      layers;
    assert.ok(aimed >= 0.25 && aimed < 0.35, `aimed ${aimed}`);
    const achieved25 = achievedOn(model, other, lower, at25.thresholds!);
    assert.ok(Math.abs(achieved25 - aimed) <= 0.02, `achieved ${achieved25}, aimed ${aimed}`);
    // A trace that stops at 0.5 cannot serve 0.65: uniform instead.
    const at65 = profileConfig(profile, { sparsity: 0.65 }).layers!;
    assert.ok(Object.values(at65[0]!).every((s) => s === 0.65));
  });

  test('profile files round-trip and drive applyWina', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wina-profile-'));
    try {
      const allocation = uniformAllocation({ method: 'wina', globalSparsity: 0.5 }, layers);
      const profile = buildProfile(model, calibration, {
        sparsity: 0.5,
        allocation,
        data: 'tinystories',
        seqLen: 128,
        transform: false,
      });
      const file = path.join(dir, 'p.json');
      writeProfile(file, profile);
      const back = readProfile(file, model);
      const config = profileConfig(back);
      assert.equal(config.mask, 'threshold');
      const a = applyWina(model, config);
      for (const s of other) a.forward(s.ids, { lastOnly: true });
      assert.ok(Math.abs(a.achieved() - 0.5) <= 0.02);
      // A different sparsity re-derives thresholds from the stored histograms.
      const at65 = applyWina(model, profileConfig(back, { sparsity: 0.65 }));
      for (const s of other) at65.forward(s.ids, { lastOnly: true });
      assert.ok(Math.abs(at65.achieved() - 0.65) <= 0.02);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('bad profiles are refused with a clear error', async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wina-profile-'));
    try {
      const allocation = uniformAllocation({ method: 'wina', globalSparsity: 0.5 }, layers);
      const good = buildProfile(model, calibration, {
        sparsity: 0.5,
        allocation,
        data: 'x',
        seqLen: 128,
        transform: false,
      });
      const cases: [string, string, RegExp][] = [
        ['not json', '{"format": ', /not valid JSON/],
        ['not a profile', '{"hello": 1}', /not a wina profile/],
        ['future version', JSON.stringify({ ...good, version: 9 }), /version 9/],
        ['unknown method', JSON.stringify({ ...good, method: 'magic' }), /unknown method/],
        ['incomplete', JSON.stringify({ ...good, thresholds: undefined }), /incomplete/],
      ];
      for (const [name, text, message] of cases) {
        const file = path.join(dir, `${name}.json`);
        fs.writeFileSync(file, text);
        assert.throws(
          () => readProfile(file, model),
          (e: Error) => e instanceof WinaError && message.test(e.message),
          name,
        );
      }
      assert.throws(
        () => readProfile(path.join(dir, 'missing.json')),
        /profile .*missing.json does not exist/,
      );
      const file = path.join(dir, 'good.json');
      writeProfile(file, good);
      const otherModel = await loadModelFor(t, fixtureDir('llama3'));
      assert.throws(() => readProfile(file, otherModel), /made for another model/);
      assert.throws(
        () => applyWina(model, { method: 'wina', globalSparsity: 0.5, mask: 'threshold' }),
        /needs a calibrated threshold/,
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
