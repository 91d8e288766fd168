import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { WinaError } from '../src/errors.js';
import { seededRandom } from '../src/io/random.js';
import type { DType, Tensor } from '../src/kernels/tensor.js';
import { quantizeQ4 } from '../src/kernels/q4.js';
import { quantizeQ8 } from '../src/kernels/q8.js';
import * as ref from '../src/kernels/reference.js';
import { WasmKernels } from '../src/kernels/wasm.js';
import { relativeL2 } from './helpers.js';

// Random shapes and inputs from a fixed seed, so every run checks the same cases; KERNEL_TEST_SEED=N checks
// others (KERNEL_TEST_SEED=random: a fresh seed). The seed is in every failure message, to replay a failure.
const SEED_SETTING = process.env['KERNEL_TEST_SEED'] ?? '20261204';
const SEED = SEED_SETTING === 'random' ? Math.floor(Math.random() * 2 ** 31) : Number(SEED_SETTING);
if (!Number.isSafeInteger(SEED))
  throw new Error(`KERNEL_TEST_SEED must be an integer or 'random', got ${SEED_SETTING}`);
const random = seededRandom(SEED);
const int = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
const pick = <T>(xs: readonly T[]): T => xs[int(0, xs.length - 1)]!;

const TOLERANCE = 1e-5;

/**
 * max |actual - expected| relative to max |expected| (or to `magnitude`, the largest sum of |terms|, where a sum
 * may cancel); NaN (an unwritten, poisoned element) fails.
 */
function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  what: string,
  magnitude?: ArrayLike<number>,
): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let diff = 0;
  let scale = 1e-30;
  for (let i = 0; i < expected.length; i++) {
    if (Number.isNaN(actual[i]!)) assert.fail(`${what}: element ${i} is NaN (not written?), seed ${SEED}`);
    diff = Math.max(diff, Math.abs(actual[i]! - expected[i]!));
    scale = Math.max(scale, Math.abs((magnitude ?? expected)[i]!));
  }
  assert.ok(diff / scale <= TOLERANCE, `${what}: relative error ${diff / scale}, seed ${SEED}`);
}

function fillRandom(a: Float32Array, scale = 1): Float32Array {
  for (let i = 0; i < a.length; i++) a[i] = (random() * 2 - 1) * scale;
  return a;
}

/** Random finite weight bits: BF16 from random floats, F16 from random fields (subnormals included). */
function randomWeights(k: WasmKernels, dtype: DType, shape: number[]): Tensor {
  const n = shape[0]! * shape[1]!;
  if (dtype === 'F32') return { dtype, shape, data: fillRandom(k.f32(n)) };
  const bytes = k.alloc(n * 2);
  const data = new Uint16Array(bytes.buffer, bytes.byteOffset, n);
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  for (let i = 0; i < n; i++) {
    if (dtype === 'BF16') {
      f[0] = random() * 2 - 1;
      data[i] = u[0]! >>> 16;
    } else {
      data[i] = (int(0, 1) << 15) | (int(0, 15) << 10) | int(0, 1023); // |w| < 2, subnormals included
    }
  }
  return { dtype, shape, data };
}

/** A wasm view poisoned with NaN, and a heap copy of `init` for the reference. */
function poisoned(k: WasmKernels, n: number): Float32Array {
  return k.f32(n).fill(Number.NaN);
}

const heap = (a: Float32Array) => new Float32Array(a);

function kernelTests(threads: number, fusedMultiplyAdd = true): void {
  const fma = fusedMultiplyAdd ? '' : ', without fused multiply-add';
  describe(`WebAssembly kernels on ${threads} thread${threads > 1 ? 's' : ''}${fma}`, () => {
    let k: WasmKernels;
    before(async () => {
      k = await WasmKernels.create({ threads, fusedMultiplyAdd });
      k.parallelMinBytes = 0; // every kernel on every thread, even where a thread's share is empty
    });
    after(() => k.close());

    test('reports its thread count', () => assert.equal(k.threads, threads));

    test('matmul equals the reference (F32, BF16, F16; 1 and several tokens; bias)', () => {
      for (const dtype of ['F32', 'BF16', 'F16'] as const) {
        for (let trial = 0; trial < 6; trial++) {
          // Large enough shapes run on every thread; small ones on the main thread alone. The last trial's rows
          // are long enough (over 4096 inputs) for the four-rows-at-a-time path of the one-token kernels.
          const outDim = trial < 2 ? int(1, 13) : trial < 5 ? int(60, 300) : int(20, 70);
          const inDim = trial < 2 ? int(1, 40) : trial < 5 ? int(100, 700) : int(4097, 5000);
          const tokens = trial % 2 === 0 ? 1 : int(2, 5);
          const w = randomWeights(k, dtype, [outDim, inDim]);
          const x = fillRandom(k.f32(tokens * inDim));
          const bias = random() < 0.5 ? fillRandom(k.f32(outDim)) : undefined;
          const y = poisoned(k, tokens * outDim);
          k.matmul(w, x, tokens, y, bias);
          const expected = new Float32Array(tokens * outDim);
          ref.matmul(w, heap(x), tokens, expected, bias && heap(bias));
          // Rounding error is relative to the sum of |w x| (a tiny product of one output and two inputs can
          // cancel to far below its terms): the same product on absolute values (sign bits cleared).
          const abs = <T extends Float32Array | Uint16Array>(a: T, sign: number): T =>
            a.map((v) => (a instanceof Float32Array ? Math.abs(v) : v & ~sign)) as T;
          const wAbs = { ...w, data: abs(w.data as Float32Array | Uint16Array, 0x8000) };
          const magnitude = new Float32Array(tokens * outDim);
          ref.matmul(wAbs, abs(heap(x), 0), tokens, magnitude, bias && abs(heap(bias), 0));
          assertClose(y, expected, `matmul ${dtype} [${outDim}, ${inDim}] x ${tokens} tokens`, magnitude);
        }
      }
    });

    test('matmul on a row slice (unaligned weight view) equals the reference', () => {
      const w = randomWeights(k, 'BF16', [301, 517]);
      const slice: Tensor = { dtype: 'BF16', shape: [150, 517], data: w.data.subarray(517 * 3, 517 * 153) };
      const x = fillRandom(k.f32(517));
      const y = poisoned(k, 150);
      k.matmul(slice, x, 1, y);
      const expected = new Float32Array(150);
      ref.matmul(slice, heap(x), 1, expected);
      assertClose(y, expected, 'row slice');
    });

    test('toInputMajor equals the reference transpose, from wasm or heap weights', () => {
      for (const dtype of ['F32', 'BF16'] as const) {
        const w = randomWeights(k, dtype, [int(1, 90), int(1, 90)]);
        const expected = ref.toInputMajor(w);
        const fromWasm = k.toInputMajor(w);
        assert.deepEqual(fromWasm.shape, expected.shape);
        assert.deepEqual(Array.from(fromWasm.data), Array.from(expected.data));
        const heapW: Tensor = { ...w, data: w.data.slice() };
        assert.deepEqual(Array.from(k.toInputMajor(heapW).data), Array.from(expected.data));
      }
    });

    test('sparseMatvec equals the reference (F32, BF16, F16; any kept count; bias)', () => {
      for (const dtype of ['F32', 'BF16', 'F16'] as const) {
        for (let trial = 0; trial < 6; trial++) {
          const outDim = trial < 2 ? int(1, 20) : int(100, 400);
          const inDim = trial < 2 ? int(1, 40) : int(100, 500);
          const wT = k.toInputMajor(randomWeights(k, dtype, [outDim, inDim]));
          const count = trial === 0 ? 0 : int(1, inDim);
          const kept = k.i32(inDim);
          const order = Array.from({ length: inDim }, (_, i) => i).sort(() => random() - 0.5);
          kept.set(order.slice(0, count).sort((a, b) => a - b));
          const x = fillRandom(k.f32(inDim));
          const bias = random() < 0.5 ? fillRandom(k.f32(outDim)) : undefined;
          const y = poisoned(k, outDim);
          k.sparseMatvec(wT, x, kept, count, y, bias);
          const expected = new Float32Array(outDim);
          ref.sparseMatvec(wT, heap(x), kept.slice(), count, expected, bias && heap(bias));
          assertClose(y, expected, `sparseMatvec ${dtype} [${inDim}, ${outDim}] keeping ${count}`);
        }
      }
    });

    test('matmulInputMajor equals the reference and the row-major matmul (F32, BF16, F16; tokens; bias)', () => {
      for (const dtype of ['F32', 'BF16', 'F16'] as const) {
        for (let trial = 0; trial < 6; trial++) {
          const outDim = trial < 2 ? int(1, 20) : int(100, 400);
          const inDim = trial < 2 ? int(1, 40) : int(100, 500);
          const tokens = int(1, 11);
          const w = randomWeights(k, dtype, [outDim, inDim]);
          const wT = k.toInputMajor(w);
          const x = fillRandom(k.f32(tokens * inDim));
          const bias = random() < 0.5 ? fillRandom(k.f32(outDim)) : undefined;
          const y = poisoned(k, tokens * outDim);
          k.matmulInputMajor(wT, x, tokens, y, bias);
          const expected = new Float32Array(tokens * outDim);
          ref.matmulInputMajor(wT, heap(x), tokens, expected, bias && heap(bias));
          const what = `matmulInputMajor ${dtype} [${inDim}, ${outDim}] x ${tokens}`;
          assertClose(y, expected, what);
          const rowMajor = new Float32Array(tokens * outDim);
          ref.matmul(w, heap(x), tokens, rowMajor, bias && heap(bias));
          assertClose(y, rowMajor, `${what} against row-major`);
        }
      }
    });

    test('gatherMatvec equals the reference (F32, BF16, F16; any row count; other rows zero; bias)', () => {
      for (const dtype of ['F32', 'BF16', 'F16'] as const) {
        for (let trial = 0; trial < 6; trial++) {
          const outDim = trial < 2 ? int(1, 20) : trial < 5 ? int(100, 1500) : int(20, 100);
          const inDim = trial < 2 ? int(1, 40) : trial < 5 ? int(100, 500) : int(4097, 5000);
          const w = randomWeights(k, dtype, [outDim, inDim]);
          const count = trial === 0 ? 0 : int(1, outDim);
          const rows = k.i32(outDim);
          const order = Array.from({ length: outDim }, (_, i) => i).sort(() => random() - 0.5);
          rows.set(order.slice(0, count).sort((a, b) => a - b));
          const x = fillRandom(k.f32(inDim));
          const bias = random() < 0.5 ? fillRandom(k.f32(outDim)) : undefined;
          const y = poisoned(k, outDim);
          k.gatherMatvec(w, x, rows, count, y, bias);
          const expected = new Float32Array(outDim).fill(Number.NaN);
          ref.gatherMatvec(w, heap(x), rows.slice(), count, expected, bias && heap(bias));
          assertClose(y, expected, `gatherMatvec ${dtype} [${outDim}, ${inDim}] keeping ${count} rows`);
        }
      }
      const rows = k.i32(2);
      rows.set([3, 8]);
      const w = randomWeights(k, 'F32', [8, 16]);
      assert.throws(() => k.gatherMatvec(w, k.f32(16), rows, 2, k.f32(8)), /rows\[1\] = 8/);
    });

    for (const [q, quantize, inputMajor] of [
      ['q8', quantizeQ8, 'Q8T'],
      ['q4', quantizeQ4, 'Q4T'],
    ] as const) {
      test(`${q}: matmul, gatherMatvec, sparseMatvec and matmulInputMajor equal the reference`, () => {
        for (let trial = 0; trial < 8; trial++) {
          const outDim = trial < 2 ? int(1, 13) : trial < 4 ? int(60, 300) : 32 * int(2, 9);
          const inDim = 32 * (trial < 2 ? int(1, 3) : int(3, 20));
          const tokens = trial % 2 === 0 ? 1 : int(2, 5);
          const w = quantize(outDim, inDim, (_, row) => fillRandom(row, 1 + random()), k.alloc);
          const what = `[${outDim}, ${inDim}]`;
          const x = fillRandom(k.f32(tokens * inDim));
          const bias = random() < 0.5 ? fillRandom(k.f32(outDim)) : undefined;
          let y = poisoned(k, tokens * outDim);
          k.matmul(w, x, tokens, y, bias);
          let expected = new Float32Array(tokens * outDim);
          ref.matmul(w, heap(x), tokens, expected, bias && heap(bias));
          assertClose(y, expected, `${q} matmul ${what} x ${tokens} tokens`);
          // (Relative error over a few outputs is no measure: the check needs 32 or more.)
          if (tokens === 1 && outDim >= 32) {
            // One token reads x quantized per 32 (as llama.cpp): close to the F32-x product, not equal to it.
            const exact = new Float32Array(outDim);
            ref.matmulInputMajor(ref.toInputMajor(w), heap(x), 1, exact, bias && heap(bias));
            assert.ok(relativeL2(y, exact) < 2e-2, `${q} matvec ${what}: ${relativeL2(y, exact)} from F32 x`);
          }

          const rows = k.i32(outDim);
          const count = trial === 0 ? 0 : int(1, outDim);
          const order = Array.from({ length: outDim }, (_, i) => i).sort(() => random() - 0.5);
          rows.set(order.slice(0, count).sort((a, b) => a - b));
          const x1 = x.subarray(0, inDim);
          y = poisoned(k, outDim);
          k.gatherMatvec(w, x1, rows, count, y, bias);
          expected = new Float32Array(outDim).fill(Number.NaN);
          ref.gatherMatvec(w, heap(x1), rows.slice(), count, expected, bias && heap(bias));
          assertClose(y, expected, `${q} gatherMatvec ${what} keeping ${count} rows`);

          const wT = k.toInputMajor(w);
          assert.equal(wT.dtype, inputMajor);
          assert.deepEqual(Array.from(ref.toInputMajor(w).data), Array.from(wT.data));
          const kept = k.i32(inDim);
          const keep = trial === 0 ? 0 : int(1, inDim);
          const inputs = Array.from({ length: inDim }, (_, i) => i).sort(() => random() - 0.5);
          kept.set(inputs.slice(0, keep).sort((a, b) => a - b));
          y = poisoned(k, outDim);
          k.sparseMatvec(wT, x1, kept, keep, y, bias);
          expected = new Float32Array(outDim);
          ref.sparseMatvec(wT, heap(x1), kept.slice(), keep, expected, bias && heap(bias));
          assertClose(y, expected, `${q} sparseMatvec ${what} keeping ${keep}`);
          if (keep > 0 && outDim >= 32) {
            // x quantized per 32: close to the F32-x product of the same columns, not equal to it.
            const masked = new Float32Array(inDim);
            for (const i of kept.subarray(0, keep)) masked[i] = x1[i]!;
            const exact = new Float32Array(outDim);
            ref.matmulInputMajor(ref.toInputMajor(w), masked, 1, exact, bias && heap(bias));
            assert.ok(relativeL2(y, exact) < 2e-2, `${q} sparse ${what}: ${relativeL2(y, exact)} from F32 x`);
          }

          y = poisoned(k, tokens * outDim);
          k.matmulInputMajor(wT, x, tokens, y, bias);
          expected = new Float32Array(tokens * outDim);
          ref.matmulInputMajor(wT, heap(x), tokens, expected, bias && heap(bias));
          assertClose(y, expected, `${q} matmulInputMajor ${what} x ${tokens}`);
        }
      });
    }

    test('sparseMatvec gives bit-identical results on every run (chunks are summed in order)', () => {
      const wT = k.toInputMajor(randomWeights(k, 'BF16', [300, 800]));
      const kept = k.i32(800);
      for (let i = 0; i < 400; i++) kept[i] = 2 * i;
      const x = fillRandom(k.f32(800));
      const first = poisoned(k, 300);
      k.sparseMatvec(wT, x, kept, 400, first);
      const again = k.f32(300);
      for (let run = 0; run < 20; run++) {
        k.sparseMatvec(wT, x, kept, 400, again);
        assert.deepEqual(Array.from(again), Array.from(first), `run ${run}`);
      }
    });

    test('sparseMatvec rejects kept indices outside the input', () => {
      const wT = k.toInputMajor(randomWeights(k, 'F32', [8, 16]));
      const kept = k.i32(2);
      kept.set([3, 16]);
      assert.throws(() => k.sparseMatvec(wT, k.f32(16), kept, 2, k.f32(8)), /kept\[1\] = 16/);
    });

    // F16 kernels read exponent 31 as a finite weight (simd.ts); loading refuses F16 NaN / Inf (engine tests).
    test('widens every finite F16 and every BF16 bit pattern exactly (subnormals; BF16 infinities, NaN)', () => {
      for (const dtype of ['F16', 'BF16'] as const) {
        // 16 input channels x 4096 outputs hold all 65536 patterns; keeping one channel with x = 1 copies it out.
        const bytes = k.alloc(65536 * 2);
        const data = new Uint16Array(bytes.buffer, bytes.byteOffset, 65536);
        for (let i = 0; i < 65536; i++) data[i] = i;
        const wT: Tensor = { dtype, shape: [16, 4096], data };
        const x = k.f32(16).fill(1);
        const kept = k.i32(1);
        const expected = new Float32Array(4096);
        for (let c = 0; c < 16; c++) {
          kept[0] = c;
          const y = poisoned(k, 4096);
          k.sparseMatvec(wT, x, kept, 1, y);
          ref.widen(wT, c * 4096, expected);
          for (let o = 0; o < 4096; o++) {
            if (dtype === 'F16' && ((c * 4096 + o) & 0x7c00) === 0x7c00) continue;
            const a = y[o]!;
            const e = expected[o]! + 0; // the kernels add to +0, turning -0 into +0
            assert.ok(
              Object.is(a, e) || (Number.isNaN(a) && Number.isNaN(e)),
              `${dtype} bits ${c * 4096 + o}`,
            );
          }
        }
      }
    });

    test('selectTopK and selectThreshold return exactly the reference kept set', () => {
      for (let trial = 0; trial < 64; trial++) {
        const d = trial < 8 ? int(1, 9) : trial < 32 ? int(10, 200) : int(200, 3000);
        const x = k.f32(d);
        // Coarse values make many ties; the reference breaks them by lower index.
        const levels = pick([4, 16, 1 << 20]);
        for (let i = 0; i < d; i++)
          x[i] = (Math.floor(random() * levels) / levels) * (random() < 0.5 ? -1 : 1);
        const normKind = pick(['none', 'f32', 'f64'] as const);
        let norms: Float32Array | Float64Array | undefined;
        if (normKind === 'f32') norms = k.f32(d);
        if (normKind === 'f64') {
          const b = k.alloc(d * 8);
          norms = new Float64Array(b.buffer, b.byteOffset, d);
        }
        for (let i = 0; norms && i < d; i++) norms[i] = random();
        const kk = pick([0, 1, d, d + 3, int(0, d), int(0, d), Math.floor(d / 2) + 0.5]);
        const kept = k.i32(d).fill(-1);
        const expected = new Int32Array(d);
        const n = k.selectTopK(x, norms, kk, kept);
        const m = ref.selectTopK(heap(x), norms?.slice(), kk, expected);
        assert.equal(n, m, `top-k count, d ${d}, k ${kk}, seed ${SEED}`);
        assert.deepEqual(
          Array.from(kept.subarray(0, n)),
          Array.from(expected.subarray(0, m)),
          `top-k, seed ${SEED}`,
        );

        const scores = Array.from(x, (v, i) => Math.abs(v) * (norms ? norms[i]! : 1));
        const threshold = random() < 0.5 ? pick(scores) : random() * 0.5;
        const tn = k.selectThreshold(x, norms, threshold, kept);
        const tm = ref.selectThreshold(heap(x), norms?.slice(), threshold, expected);
        assert.equal(tn, tm, `threshold count, seed ${SEED}`);
        assert.deepEqual(Array.from(kept.subarray(0, tn)), Array.from(expected.subarray(0, tm)));
      }
    });

    test('maskRows keeps per row exactly the reference kept set, zeros elsewhere, and counts it', () => {
      for (let trial = 0; trial < 24; trial++) {
        const d = trial < 4 ? int(1, 9) : int(10, 1500);
        const tokens = int(1, 40);
        const x = k.f32(tokens * d);
        const levels = pick([4, 16, 1 << 20]);
        for (let i = 0; i < x.length; i++)
          x[i] = (Math.floor(random() * levels) / levels) * (random() < 0.5 ? -1 : 1);
        const norms = random() < 0.3 ? undefined : k.f32(d);
        for (let i = 0; norms && i < d; i++) norms[i] = random();
        const rule =
          random() < 0.6
            ? { topK: pick([0, 1, d, int(0, d), int(0, d), Math.floor(d / 2) + 0.5]) }
            : { threshold: random() * 0.5 };
        const out = poisoned(k, tokens * d);
        const counts = k.i32(tokens).fill(-1);
        k.maskRows(x, tokens, norms, rule, out, counts);
        const expected = new Float32Array(tokens * d);
        const expectedCounts = new Int32Array(tokens);
        ref.maskRows(heap(x), tokens, norms?.slice(), rule, expected, expectedCounts);
        const what = `d ${d} x ${tokens}, ${JSON.stringify(rule)}, seed ${SEED}`;
        assert.deepEqual(Array.from(counts), Array.from(expectedCounts), what);
        assert.ok(
          out.every((v, i) => Object.is(v, expected[i])),
          what,
        );
      }
    });

    test('rmsnorm, swiglu and addInPlace equal the reference', () => {
      for (let trial = 0; trial < 6; trial++) {
        const d = int(1, 300);
        const tokens = int(1, 4);
        const x = fillRandom(k.f32(tokens * d), 3);
        const weight = fillRandom(k.f32(d));
        const out = poisoned(k, tokens * d);
        k.rmsnorm(out, x, weight, 1e-5, tokens);
        const expected = new Float32Array(tokens * d);
        ref.rmsnorm(expected, heap(x), heap(weight), 1e-5, tokens);
        assertClose(out, expected, `rmsnorm d ${d} x ${tokens}`);

        const n = int(1, 2000);
        const gate = fillRandom(k.f32(n), pick([1, 10, 100]));
        const up = fillRandom(k.f32(n));
        const gateRef = heap(gate);
        k.swiglu(gate, up, n);
        ref.swiglu(gateRef, heap(up), n);
        assertClose(gate, gateRef, `swiglu n ${n}`);

        const sum = fillRandom(k.f32(n));
        const sumRef = heap(sum);
        k.addInPlace(sum, up, n);
        ref.addInPlace(sumRef, heap(up), n);
        assertClose(sum, sumRef, `addInPlace n ${n}`);
      }
    });

    test('rope equals the reference (rotate halves, partial rotary, several tokens)', () => {
      for (let trial = 0; trial < 6; trial++) {
        const headDim = 2 * int(1, 40);
        const rotaryDim = random() < 0.5 ? headDim : 2 * int(1, headDim / 2);
        const heads = int(1, 6);
        const tokens = int(1, 4);
        const startPos = int(0, 20);
        const half = rotaryDim / 2;
        const cos = fillRandom(k.f32((startPos + tokens) * half));
        const sin = fillRandom(k.f32((startPos + tokens) * half));
        const x = fillRandom(k.f32(tokens * heads * headDim));
        const expected = heap(x);
        k.rope(x, tokens, heads, headDim, rotaryDim, cos, sin, startPos);
        ref.rope(expected, tokens, heads, headDim, rotaryDim, heap(cos), heap(sin), startPos);
        assertClose(x, expected, `rope headDim ${headDim} rotary ${rotaryDim}`);
      }
    });

    test('attention equals the reference (GQA, causal, sliding window, several tokens)', () => {
      for (let trial = 0; trial < 11; trial++) {
        // Long prefills too (the last trials): chunks on different threads then reach different tokens.
        const long = trial >= 8;
        const kvHeads = long ? int(2, 4) : int(1, 4);
        const heads = kvHeads * (long ? 4 : int(1, 4));
        const headDim = long ? int(16, 40) : int(1, 40);
        const tokens = long ? int(60, 120) : int(1, 5);
        const startPos = trial < 2 ? int(0, 3) : int(20, 150);
        const window = random() < 0.5 ? 0 : int(1, startPos + tokens);
        const positions = startPos + tokens;
        const kCache = fillRandom(k.f32(positions * kvHeads * headDim));
        const vCache = fillRandom(k.f32(positions * kvHeads * headDim));
        const q = fillRandom(k.f32(tokens * heads * headDim), 2);
        const out = poisoned(k, tokens * heads * headDim);
        k.attention(out, q, kCache, vCache, tokens, startPos, heads, kvHeads, headDim, window);
        const expected = new Float32Array(tokens * heads * headDim);
        ref.attention(
          expected,
          heap(q),
          heap(kCache),
          heap(vCache),
          tokens,
          startPos,
          heads,
          kvHeads,
          headDim,
          window,
        );
        const what = `attention ${heads}/${kvHeads} heads, dim ${headDim}, ${tokens} at ${startPos}, window ${window}`;
        assertClose(out, expected, what);
      }
    });

    test('rejects buffers outside its memory and buffers too short', () => {
      const w = randomWeights(k, 'F32', [4, 8]);
      assert.throws(
        () => k.matmul(w, new Float32Array(8), 1, k.f32(4)),
        /x is not in the kernels' WebAssembly memory/,
      );
      assert.throws(() => k.matmul(w, k.f32(7), 1, k.f32(4)), /x has 7 elements, needs 8/);
      assert.throws(() => k.rmsnorm(k.f32(8), k.f32(8), new Float32Array(8), 1e-5, 1), /weight is not/);
    });
  });
}

kernelTests(1);
kernelTests(2);
kernelTests(2, false);

describe('WebAssembly kernel runtime', () => {
  test('alloc refuses more than the 4 GiB of wasm32 memory in one tensor, and in all with one memory', async () => {
    const k = await WasmKernels.create({ threads: 1, spaces: 1 });
    try {
      assert.throws(
        () => k.alloc(5 * 2 ** 30),
        (err: Error) => {
          assert.ok(err instanceof WinaError);
          assert.match(err.message, /model needs 5\.0 GiB of weights but WebAssembly memory stops at 4 GiB/);
          return true;
        },
      );
      const views = [k.alloc(100), k.alloc(1), k.f32(3)];
      for (const v of views) assert.equal(v.byteOffset % 64, 0);
    } finally {
      k.close();
    }
  });

  test('several memories: a tensor larger than one is refused; allocations fill one memory, then the next', async () => {
    const mib = 2 ** 20;
    const k = await WasmKernels.create({ threads: 2, spaces: 3, spaceBytes: 64 * mib });
    try {
      assert.equal(k.spaces, 3);
      assert.throws(() => k.alloc(70 * mib), /a tensor of 0\.1 GiB is larger than one WebAssembly memory/);
      const a = k.alloc(40 * mib);
      const b = k.alloc(40 * mib); // does not fit beside a (and the margin kept for scratch): the next memory
      assert.notEqual(a.buffer, b.buffer);
      k.alloc(40 * mib);
      assert.throws(() => k.alloc(40 * mib), /model needs more than the 0\.2 GiB of WebAssembly memory/);
    } finally {
      k.close();
    }
  });

  const wasmModule = JSON.stringify(new URL('../src/kernels/wasm.js', import.meta.url).href);

  test('falls back to one thread, saying so, without SharedArrayBuffer', () => {
    const script = `
      delete globalThis.SharedArrayBuffer;
      const { WasmKernels } = await import(${wasmModule});
      const k = await WasmKernels.create({ threads: 2 });
      const w = { dtype: 'F32', shape: [2, 3], data: k.f32(6).fill(1) };
      const y = k.f32(2);
      k.matmul(w, k.f32(3).fill(2), 1, y);
      console.log(k.threads, y[0], y[1]);`;
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stdout.trim(), '1 6 6');
    assert.match(run.stderr, /SharedArrayBuffer is unavailable, so the WebAssembly kernels run on 1 thread/);
  });

  test('a process that forgets close() still exits', () => {
    const script = `const { WasmKernels } = await import(${wasmModule}); await WasmKernels.create({ threads: 2 });`;
    execFileSync(process.execPath, ['--input-type=module', '-e', script], { stdio: 'pipe', timeout: 20_000 });
  });
});
