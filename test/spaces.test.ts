/**
 * Models past 4 GiB: the kernels spread weights over several WebAssembly memories (src/kernels/wasm-heap.ts).
 * Small memories here make llama-28m-mixed need several; its outputs must equal those of one memory exactly
 * (the same kernels run, in the memory of each weight, with the activations copied in and out).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { WasmKernels } from '../src/kernels/wasm.js';
import { type LoadOptions, loadModel } from '../src/model/model.js';
import { applyWina } from '../src/sparsity/apply.js';
import { sharedPath } from './helpers.js';

describe('weights spread over several WebAssembly memories', () => {
  // Memories of 16 MiB (8 for q4's 17 MB of weights), 4 of each kept for scratch; the row layout also makes the
  // input-major copies of sparse decode.
  for (const [variant, spaces, mib] of [
    [{}, 12, 16],
    [{ layout: 'input-major' }, 8, 16],
    [{ quantize: 'q4' }, 8, 8],
  ] as [LoadOptions, number, number][]) {
    test(`llama-28m-mixed ${JSON.stringify(variant)}: logits and WINA 50% decoding equal one memory's`, async () => {
      const run = async (kernels?: WasmKernels) => {
        const model = await loadModel(sharedPath('models', 'llama-28m-mixed'), { ...variant, kernels });
        try {
          const ids = model.tokenizer.encode('The history of the city begins');
          const logits = Array.from(model.forward(ids));
          const sparse = applyWina(model, { method: 'wina', globalSparsity: 0.5 });
          const tokens: number[] = [];
          for await (const t of sparse.generate('The history of', { maxTokens: 8, temperature: 0 }))
            tokens.push(t.id);
          const k = model.transformer.kernels as WasmKernels;
          const spaces = new Set(
            model.transformer.weights.layers.map((l) => k.spaceOf(l.proj.q.weight.data)),
          );
          return { logits, tokens, achieved: sparse.achieved(), spaces: spaces.size };
        } finally {
          model.close();
        }
      };
      const one = await run();
      const kernels = await WasmKernels.create({ spaces, spaceBytes: mib * 2 ** 20 });
      try {
        const many = await run(kernels);
        assert.equal(one.spaces, 1);
        assert.ok(many.spaces > 1, `the layers' weights lie in ${many.spaces} memories`);
        assert.deepEqual(many.logits, one.logits);
        assert.deepEqual(many.tokens, one.tokens);
        assert.equal(many.achieved, one.achieved);
      } finally {
        kernels.close();
      }
    });
  }
});
