import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import type { Tensor } from '../src/kernels/tensor.js';
import { widen } from '../src/kernels/reference.js';
import { WasmKernels } from '../src/kernels/wasm.js';
import { type LoadOptions, type Model } from '../src/model/model.js';
import { orthogonalTransform, saveCheckpoint } from '../src/sparsity/transform.js';
import { columnNorms } from '../src/sparsity/scores.js';
import {
  FIXTURE_ARCHS,
  fixtureDir,
  loadModelFor,
  maxAbsDiff,
  Reference,
  relativeL2,
  sharedPath,
} from './helpers.js';

interface Case {
  name: string;
  dir: string;
  ids: string;
  opts: LoadOptions;
}

const stories = { tokenizer: sharedPath('models', 'stories260K', 'tok512.bin') };
const CASES: Case[] = [
  ...FIXTURE_ARCHS.map((arch) => ({ name: arch, dir: fixtureDir(arch), ids: 'ids_a', opts: {} })),
  { name: 'stories260K-hf', dir: fixtureDir('stories260K-hf'), ids: 'ids', opts: stories },
];

function run(model: Model, ids: number[]): { logits: Float32Array; hidden: Float32Array[] } {
  const hidden: Float32Array[] = [];
  const logits = model.forward(ids, { onHidden: (i, h) => (hidden[i] = h) });
  return { logits, hidden };
}

/** The matrix the attention basis comes from: k_proj, or Phi-3's fused qkv (its rows stacked). */
function rows(model: Model, layer: number): { data: Float32Array; rows: number; cols: number } {
  const p = model.transformer.weights.layers[layer]!.proj;
  const fused = model.info.fused.some((g) => g.includes('k'));
  const parts: Tensor[] = fused ? [p.q.weight, p.k.weight, p.v.weight] : [p.k.weight];
  const cols = parts[0]!.shape[1]!;
  const n = parts.reduce((s, t) => s + t.shape[0]!, 0);
  const data = new Float32Array(n * cols);
  let at = 0;
  for (const t of parts) {
    widen(t, 0, data.subarray(at, at + t.data.length));
    at += t.data.length;
  }
  return { data, rows: n, cols };
}

/** Largest |<c_i, c_j>| / max_k ||c_k||^2 over column pairs i != j. */
function columnCoherence(m: { data: Float32Array; rows: number; cols: number }): number {
  const { data, rows: n, cols } = m;
  const gram = new Float64Array(cols * cols);
  for (let r = 0; r < n; r++) {
    for (let i = 0; i < cols; i++) {
      const a = data[r * cols + i]!;
      for (let j = 0; j < cols; j++) gram[i * cols + j]! += a * data[r * cols + j]!;
    }
  }
  let maxDiag = 0;
  for (let i = 0; i < cols; i++) maxDiag = Math.max(maxDiag, gram[i * cols + i]!);
  let worst = 0;
  for (let i = 0; i < cols; i++) {
    for (let j = 0; j < cols; j++) if (i !== j) worst = Math.max(worst, Math.abs(gram[i * cols + j]!));
  }
  return worst / maxDiag;
}

for (const c of CASES) {
  describe(`orthogonal transform: ${c.name}`, () => {
    const ref = new Reference(c.dir);
    const ids = ref.ids(c.ids);

    test('dense logits unchanged, hidden states rotated, k columns orthogonal, checkpoint reloads', async (t) => {
      const model = await loadModelFor(t, c.dir, c.opts);
      const before = run(model, ids);
      const tiedBefore = model.transformer.weights.lmHead.weight === model.transformer.weights.embed;
      const report = orthogonalTransform(model);
      const d = model.config.hiddenSize;
      assert.equal(report.layers, model.config.numLayers);
      assert.equal(report.extraFlopsPerToken, 4 * d * d * model.config.numLayers);
      assert.ok(report.seconds > 0);

      const w = model.transformer.weights;
      assert.notEqual(w.lmHead.weight, w.embed, 'lm_head untied');
      assert.equal(tiedBefore, c.name === 'qwen2' || c.name === 'stories260K-hf');
      assert.ok(w.finalNorm.every((g) => g === 1));
      w.layers.forEach((layer, l) => {
        assert.ok(layer.attnNorm.every((g) => g === 1) && layer.mlpNorm.every((g) => g === 1));
        assert.ok(layer.attnShortcut, `layer ${l} attention shortcut`);
        assert.equal(layer.mlpShortcut === undefined, l === w.layers.length - 1);
        for (const p of Object.values(layer.proj)) assert.equal(p.weight.dtype, 'F32');
      });

      const after = run(model, ids);
      const err = relativeL2(after.logits, before.logits);
      assert.ok(err <= 1e-4, `logits relative L2 ${err}`);
      // The residual stream really is in another basis (embeddings, between layers, after the final norm).
      for (const i of [0, 1, model.config.numLayers]) {
        const moved = relativeL2(after.hidden[i]!, before.hidden[i]!);
        assert.ok(moved > 0.1, `hidden ${i} moved only ${moved}`);
      }

      // W Q = U S: the rotated k_proj (qkv) has pairwise orthogonal columns, whose norms (WINA's column
      // weights) are the singular values, in decreasing order.
      for (let l = 0; l < model.config.numLayers; l++) {
        const m = rows(model, l);
        const coherence = columnCoherence(m);
        assert.ok(coherence <= 1e-4, `layer ${l}: column coherence ${coherence}`);
        const norms = columnNorms({ dtype: 'F32', shape: [m.rows, m.cols], data: m.data });
        for (let i = 1; i < norms.length; i++) assert.ok(norms[i]! <= norms[i - 1]! * (1 + 1e-4) + 1e-6);
      }

      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wina-transform-'));
      try {
        saveCheckpoint(model, dir);
        const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
        assert.equal(config.tie_word_embeddings, false);
        assert.ok(config.wina_transform);
        const reloaded = await loadModelFor(t, dir, c.opts);
        assert.deepEqual(reloaded.info.fused, model.info.fused);
        assert.ok(reloaded.transformer.weights.layers[0]!.attnShortcut);
        const again = run(reloaded, ids);
        assert.ok(maxAbsDiff(again.logits, after.logits) <= 1e-6, 'reloaded logits');
        assert.ok(relativeL2(again.logits, before.logits) <= 1e-4);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}

test('orthogonal transform of a llama2.c checkpoint saves as a Hugging Face folder', async (t) => {
  const ref = new Reference(fixtureDir('stories260K-hf'));
  const ids = ref.ids('ids').slice(0, 64);
  const model = await loadModelFor(t, sharedPath('models', 'stories260K'));
  const before = model.forward(ids);
  orthogonalTransform(model);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wina-transform-'));
  try {
    saveCheckpoint(model, dir);
    const reloaded = await loadModelFor(t, dir, stories);
    assert.equal(reloaded.config.bosId, 1);
    assert.ok(relativeL2(reloaded.forward(ids), before) <= 1e-4);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a model is transformed once', async (t) => {
  const model = await loadModelFor(t, fixtureDir('llama3'));
  orthogonalTransform(model);
  assert.throws(() => orthogonalTransform(model), /already/);
});

test('a transform whose F32 weights cannot fit in WebAssembly memory fails before any work', async (t) => {
  // One WebAssembly memory, filled but for its last 64 KiB (pages never touched cost no RAM).
  const model = await loadModelFor(t, fixtureDir('llama3'), {
    kernels: await WasmKernels.create({ spaces: 1 }),
  });
  const kernels = model.transformer.kernels;
  const before = model.transformer.weights.layers[0]!.proj.k.weight;
  const top = kernels.alloc(0).byteOffset;
  kernels.alloc(4 * 2 ** 30 - top - (64 << 10));
  assert.throws(() => orthogonalTransform(model), /more than the 0\.0 GiB of WebAssembly memory left/);
  assert.equal(model.transformer.weights.layers[0]!.proj.k.weight, before, 'nothing rotated');
});
