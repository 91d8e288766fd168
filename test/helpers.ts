import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { loadModel, type LoadOptions, type Model } from '../src/model/model.js';
import { sharedPath } from '../src/io/paths.js';
import { SafetensorsFile } from '../src/io/safetensors.js';

export { sharedPath };

export const FIXTURE_ARCHS = ['llama3', 'qwen2', 'mistral', 'phi3'] as const;

export function fixtureDir(...parts: string[]): string {
  return sharedPath('fixtures', 'models', ...parts);
}

/** The golden tensors of a fixture model (computed by PyTorch / transformers). */
export class Reference {
  private readonly file: SafetensorsFile;

  constructor(dir: string) {
    this.file = SafetensorsFile.open(`${dir}/reference.safetensors`);
  }

  ids(name: string): number[] {
    return this.file.readInts(name);
  }

  floats(name: string): Float32Array {
    return this.file.read(name).data as Float32Array;
  }
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'length mismatch');
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

export function relativeL2(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  assert.equal(actual.length, expected.length, 'length mismatch');
  let num = 0;
  let den = 0;
  for (let i = 0; i < actual.length; i++) {
    num += (actual[i]! - expected[i]!) ** 2;
    den += expected[i]! ** 2;
  }
  return Math.sqrt(num / den);
}

/** loadModel, closed when test `t` ends: its kernels' worker threads stop with the test, not with the file. */
export async function loadModelFor(t: TestContext, spec: string, opts?: LoadOptions): Promise<Model> {
  const model = await loadModel(spec, opts);
  t.after(() => model.close());
  return model;
}
