import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { type TensorToWrite, writeSafetensors } from '../src/io/safetensors-writer.js';
import { type LoadOptions, loadModel } from '../src/model/model.js';
import {
  FIXTURE_ARCHS,
  fixtureDir,
  loadModelFor,
  maxAbsDiff,
  Reference,
  relativeL2,
  sharedPath,
} from './helpers.js';

async function greedy(
  modelPath: string,
  prompt: number[],
  n: number,
  opts: LoadOptions = {},
): Promise<number[]> {
  const model = await loadModel(modelPath, opts);
  try {
    const ids: number[] = [];
    for await (const t of model.generate(prompt, { temperature: 0, maxTokens: n, stopAtEos: false })) {
      if (t.id >= 0) ids.push(t.id);
    }
    return ids;
  } finally {
    model.close();
  }
}

for (const arch of FIXTURE_ARCHS) {
  describe(`${arch} fixture`, () => {
    const ref = new Reference(fixtureDir(arch));

    test('f32 logits match float64 reference within 1e-4', async (t) => {
      const model = await loadModelFor(t, fixtureDir(arch));
      assert.deepEqual(Object.keys(model.info.dtypes), ['F32']);
      for (const seq of ['a', 'b']) {
        const err = maxAbsDiff(model.forward(ref.ids(`ids_${seq}`)), ref.floats(`logits64_${seq}`));
        assert.ok(err <= 1e-4, `ids_${seq}: max abs error ${err}`);
      }
    });

    test('bf16 logits within 2e-2 relative L2', async (t) => {
      const model = await loadModelFor(t, fixtureDir(arch, 'bf16'));
      assert.deepEqual(Object.keys(model.info.dtypes), ['BF16']);
      for (const seq of ['a', 'b']) {
        const err = relativeL2(model.forward(ref.ids(`ids_${seq}`)), ref.floats(`logits64_${seq}`));
        assert.ok(err <= 2e-2, `ids_${seq}: relative L2 ${err}`);
      }
    });

    // The sharded fixture holds the bf16 weights widened to F32 (checked bit for bit here), so it is held to
    // the bf16 tolerance against the reference and to exact agreement with the bf16 model.
    test('sharded f32 checkpoint loads every shard', async (t) => {
      const sharded = await loadModelFor(t, fixtureDir(arch, 'sharded'));
      const bf16 = await loadModelFor(t, fixtureDir(arch, 'bf16'));
      assert.deepEqual(Object.keys(sharded.info.dtypes), ['F32']);
      for (const seq of ['a', 'b']) {
        const logits = sharded.forward(ref.ids(`ids_${seq}`));
        assert.ok(relativeL2(logits, ref.floats(`logits64_${seq}`)) <= 2e-2);
        assert.ok(maxAbsDiff(logits, bf16.forward(ref.ids(`ids_${seq}`))) <= 1e-6);
      }
    });

    test('hidden states match', async (t) => {
      const model = await loadModelFor(t, fixtureDir(arch));
      for (const seq of ['a', 'b']) {
        const hidden: Float32Array[] = [];
        model.forward(ref.ids(`ids_${seq}`), { onHidden: (i, h) => (hidden[i] = h) });
        assert.equal(hidden.length, model.config.numLayers + 1);
        hidden.forEach((h, i) => {
          const err = maxAbsDiff(h, ref.floats(`hidden_${seq}_${i}`));
          assert.ok(err <= 1e-4, `hidden_${seq}_${i}: max abs error ${err}`);
        });
      }
    });

    test('greedy decoding with the KV cache reproduces transformers', async () => {
      const expected = ref.ids('greedy');
      assert.deepEqual(await greedy(fixtureDir(arch), ref.ids('prompt'), expected.length), expected);
    });

    test('decode step by step equals the batched prefill', async (t) => {
      const model = await loadModelFor(t, fixtureDir(arch));
      const ids = ref.ids('ids_a').slice(0, 12);
      const batched = model.forward(ids);
      const cache = model.newCache();
      const vocab = model.config.vocabSize;
      ids.forEach((id, t) => {
        const step = model.forward([id], { cache });
        assert.ok(maxAbsDiff(step, batched.subarray(t * vocab, (t + 1) * vocab)) <= 1e-5);
      });
    });
  });
}

describe('stories260K', () => {
  const ref = new Reference(fixtureDir('stories260K-hf'));

  for (const [name, path] of [
    ['llama2.c checkpoint', sharedPath('models', 'stories260K')],
    ['Hugging Face conversion', fixtureDir('stories260K-hf')],
  ]) {
    const tokenizer = { tokenizer: sharedPath('models', 'stories260K', 'tok512.bin') };
    test(`${name}: logits match float64 reference within 1e-4`, async (t) => {
      const model = await loadModelFor(t, path!, tokenizer);
      const err = maxAbsDiff(model.forward(ref.ids('ids')), ref.floats('logits64'));
      assert.ok(err <= 1e-4, `max abs error ${err}`);
    });

    test(`${name}: greedy from BOS`, async () => {
      const expected = ref.ids('greedy_from_bos');
      assert.deepEqual(
        await greedy(path!, [expected[0]!], expected.length - 1, tokenizer),
        expected.slice(1),
      );
    });
  }
});

/** float32 -> IEEE half bits, rounding to nearest even (as torch's .half()). */
function toHalf(value: number): number {
  const f = new Float32Array([value]);
  const x = new Uint32Array(f.buffer)[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rounded = (mant + half - 1 + ((mant >>> shift) & 1)) >>> shift;
    return sign | rounded;
  }
  const rounded = mant + 0xfff + ((mant >>> 13) & 1);
  return (sign | (e << 10)) + (rounded >>> 13);
}

/** The llama3 fixture converted to F16 in `dir`, with `poison` bits at one element of one tensor if given. */
function writeF16Copy(dir: string, poison?: { name: string; index: number; bits: number }): void {
  const src = SafetensorsFile.open(fixtureDir('llama3', 'model.safetensors'));
  const tensors: TensorToWrite[] = src.names().map((name) => {
    const data = src.read(name).data as Float32Array;
    return {
      name,
      dtype: 'F16',
      shape: src.info(name).shape,
      fill(out, start) {
        const bits = new Uint16Array(out.buffer, out.byteOffset, out.length / 2);
        for (let i = 0; i < bits.length; i++) bits[i] = toHalf(data[start + i]!);
        const at = poison && poison.name === name ? poison.index - start : -1;
        if (at >= 0 && at < bits.length) bits[at] = poison!.bits;
      },
    };
  });
  writeSafetensors(path.join(dir, 'model.safetensors'), tensors);
  for (const f of ['config.json', 'tokenizer.json'])
    fs.copyFileSync(fixtureDir('llama3', f), path.join(dir, f));
}

test('F16 checkpoints load and run (llama3 fixture converted to F16)', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wina-f16-'));
  try {
    writeF16Copy(dir);
    const model = await loadModelFor(t, dir);
    assert.deepEqual(Object.keys(model.info.dtypes), ['F16']);
    const ref = new Reference(fixtureDir('llama3'));
    const err = relativeL2(model.forward(ref.ids('ids_a')), ref.floats('logits64_a'));
    assert.ok(err <= 5e-3, `relative L2 ${err}`);
    model.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

// The F16 kernels read exponent 31 as a finite weight (kernels/assembly/simd.ts), so loading must refuse it.
test('an F16 NaN or Inf weight is refused at load, the tensor named', async () => {
  const name = 'model.layers.1.mlp.down_proj.weight';
  for (const bits of [0x7e00, 0x7c00, 0xfc00, 0x7c01]) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wina-f16-bad-'));
    try {
      writeF16Copy(dir, { name, index: 17, bits });
      await assert.rejects(
        loadModel(dir),
        new RegExp(`tensor ${name.replaceAll('.', '\\.')} holds NaN or Inf values`),
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
});
