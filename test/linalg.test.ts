import assert from 'node:assert/strict';
import os from 'node:os';
import { describe, test } from 'node:test';
import { EVD, Matrix } from 'ml-matrix';
import { eigh } from '../src/linalg/eigh.js';
import { gramMatrix, matmulAB, matmulABt, operand } from '../src/linalg/gemm.js';
import { Linalg } from '../src/linalg/runtime.js';
import { seededRandom } from '../src/io/random.js';

// A fixed seed by default, as in the kernel tests; LINALG_TEST_SEED=N (or =random) checks other inputs. The
// seed is in every failure message so a failure can be replayed.
const SEED_SETTING = process.env['LINALG_TEST_SEED'] ?? '20261204';
const SEED = SEED_SETTING === 'random' ? Math.floor(Math.random() * 2 ** 31) : Number(SEED_SETTING);
const random = seededRandom(SEED);
const uniform = () => random() * 2 - 1;

const EPS = 2 ** -52;
/**
 * LAPACK's eigensolver tests (xCHKST with DSYT21 / DORT01) scale each error by n * eps * ||A|| (n * eps for
 * orthogonality) and accept ratios below the threshold of their standard inputs: 50. A backward-stable
 * solver stays at ratios of order 1; a wrong vector or a lost digit gives ratios of 1e3 and more.
 */
const THRESHOLD = 50;

/** Random symmetric n x n with entries in [-1, 1]. */
function randomSymmetric(n: number): Float64Array {
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) a[i * n + j] = a[j * n + i] = uniform();
  }
  return a;
}

/** W^T W for a random [rows, n] W: rank min(rows, n). */
function randomGram(rows: number, n: number): Float64Array {
  const w = Float64Array.from({ length: rows * n }, uniform);
  const g = new Float64Array(n * n);
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < n; i++) {
      const a = w[r * n + i]!;
      for (let j = 0; j < n; j++) g[i * n + j]! += a * w[r * n + j]!;
    }
  }
  return g;
}

/** Q diag(values) Q^T with Q a random orthogonal matrix (Gram-Schmidt, twice, of random vectors). */
function withSpectrum(values: number[]): Float64Array {
  const n = values.length;
  const q = Float64Array.from({ length: n * n }, uniform); // row i = vector i
  for (let i = 0; i < n; i++) {
    const qi = q.subarray(i * n, (i + 1) * n);
    for (let pass = 0; pass < 2; pass++) {
      for (let j = 0; j < i; j++) {
        const qj = q.subarray(j * n, (j + 1) * n);
        let dot = 0;
        for (let k = 0; k < n; k++) dot += qi[k]! * qj[k]!;
        for (let k = 0; k < n; k++) qi[k]! -= dot * qj[k]!;
      }
    }
    const norm = Math.hypot(...qi);
    for (let k = 0; k < n; k++) qi[k]! /= norm;
  }
  const a = new Float64Array(n * n);
  for (let v = 0; v < n; v++) {
    for (let i = 0; i < n; i++) {
      const s = values[v]! * q[v * n + i]!;
      for (let j = 0; j < n; j++) a[i * n + j]! += s * q[v * n + j]!;
    }
  }
  // Exactly symmetric (the sums above round differently in the two triangles).
  for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) a[i * n + j] = a[j * n + i]!;
  return a;
}

function norm1(a: Float64Array, n: number): number {
  let best = 0;
  for (let j = 0; j < n; j++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += Math.abs(a[i * n + j]!);
    best = Math.max(best, s);
  }
  return best;
}

/** ml-matrix's eigenvalues (EISPACK tred2 + tql2 in JavaScript), decreasing: the independent reference. */
function referenceValues(a: Float64Array, n: number): number[] {
  const rows = Array.from({ length: n }, (_, i) => Array.from(a.subarray(i * n, (i + 1) * n)));
  return new EVD(new Matrix(rows), { assumeSymmetric: true }).realEigenvalues.sort((x, y) => y - x);
}

/**
 * Checks eigh(a) against LAPACK's test ratios: residual ||A V^T - V^T diag(values)||_1 / (n eps ||A||_1),
 * orthogonality ||V V^T - I||_1 / (n eps), eigenvalues against ml-matrix (|difference| / (n eps ||A||_1):
 * both are backward stable, so each is within n eps ||A|| of the exact ones), and decreasing order.
 */
function checkEigh(a: Float64Array, n: number, what: string, expected?: number[]): void {
  const { values, vectors } = eigh(a, n);
  const tag = `${what} (n = ${n}, seed ${SEED})`;
  assert.equal(values.length, n);
  assert.equal(vectors.length, n * n);
  for (let i = 1; i < n; i++)
    assert.ok(values[i]! <= values[i - 1]!, `${tag}: values not decreasing at ${i}`);
  const scale = norm1(a, n) || 1; // the zero matrix: absolute errors
  // Residual, column norms of A V^T - V^T Λ (column j = A v_j - λ_j v_j).
  let residual = 0;
  const av = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    const v = vectors.subarray(j * n, (j + 1) * n);
    av.fill(0);
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let k = 0; k < n; k++) s += a[i * n + k]! * v[k]!;
      av[i] = s - values[j]! * v[i]!;
    }
    residual = Math.max(
      residual,
      av.reduce((s, x) => s + Math.abs(x), 0),
    );
  }
  const residualRatio = residual / (n * EPS * scale);
  assert.ok(residualRatio < THRESHOLD, `${tag}: residual ratio ${residualRatio}`);
  let orth = 0;
  for (let j = 0; j < n; j++) {
    let col = 0;
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let k = 0; k < n; k++) s += vectors[i * n + k]! * vectors[j * n + k]!;
      col += Math.abs(s - (i === j ? 1 : 0));
    }
    orth = Math.max(orth, col);
  }
  const orthRatio = orth / (n * EPS);
  assert.ok(orthRatio < THRESHOLD, `${tag}: orthogonality ratio ${orthRatio}`);
  const ref = expected ?? referenceValues(a, n);
  let diff = 0;
  for (let i = 0; i < n; i++) diff = Math.max(diff, Math.abs(values[i]! - ref[i]!));
  const valueRatio = diff / (n * EPS * scale);
  assert.ok(valueRatio < THRESHOLD, `${tag}: eigenvalue ratio ${valueRatio} against the reference`);
}

describe('eigh (symmetric eigendecomposition, float64)', () => {
  // 257+: the blocked reduction (panels of 32 while more than 256 rows remain), then the unblocked one;
  // sizes not multiples of 4 exercise the padding.
  for (const n of [3, 5, 8, 17, 64, 130, 255, 330, 331]) {
    test(`random symmetric ${n} x ${n}`, () => checkEigh(randomSymmetric(n), n, 'random symmetric'));
  }

  test('rank-deficient Gram matrices (fewer rows than columns, as k_proj under GQA)', () => {
    for (const [rows, n] of [
      [7, 40],
      [40, 128],
      [64, 301],
    ] as const) {
      const g = randomGram(rows, n);
      checkEigh(g, n, `Gram of ${rows} x ${n}`);
      // The n - rows null-space directions are completed: eigenvalues 0 up to rounding.
      const { values } = eigh(g, n);
      const scale = norm1(g, n);
      for (let i = rows; i < n; i++) assert.ok(Math.abs(values[i]!) < THRESHOLD * n * EPS * scale);
    }
  });

  test('repeated eigenvalues (exact multiplicities, both paths)', () => {
    const spectrum = (n: number) => Array.from({ length: n }, (_, i) => [3, 3, 3, -1, -1, 0.5][i % 6]!);
    for (const n of [12, 45, 300]) {
      const values = spectrum(n);
      checkEigh(
        withSpectrum(values),
        n,
        'repeated eigenvalues',
        [...values].sort((x, y) => y - x),
      );
    }
  });

  test('block diagonal: a diagonal block (identity reflectors) before a dense one', () => {
    const [k, n] = [40, 340];
    const a = new Float64Array(n * n);
    for (let i = 0; i < k; i++) a[i * n + i] = uniform() * 3;
    const dense = randomSymmetric(n - k);
    for (let i = k; i < n; i++) a.set(dense.subarray((i - k) * (n - k), (i - k + 1) * (n - k)), i * n + k);
    checkEigh(a, n, 'block diagonal');
  });

  test('diagonal input: the diagonal sorted, unit eigenvectors, exactly', () => {
    const n = 50;
    const diag = Array.from({ length: n }, (_, i) => Math.round(uniform() * 10) / 4 + (i % 3));
    const a = new Float64Array(n * n);
    diag.forEach((x, i) => (a[i * n + i] = x));
    const { values, vectors } = eigh(a, n);
    assert.deepEqual(
      Array.from(values),
      [...diag].sort((x, y) => y - x),
    );
    const seen = new Set<number>();
    for (let j = 0; j < n; j++) {
      const row = Array.from(vectors.subarray(j * n, (j + 1) * n));
      const at = row.findIndex((x) => x !== 0);
      assert.equal(Math.abs(row[at]!), 1);
      assert.equal(row.filter((x) => x !== 0).length, 1);
      assert.equal(diag[at], values[j]);
      seen.add(at);
    }
    assert.equal(seen.size, n);
  });

  test('tridiagonal input: the second-difference matrix against its closed form', () => {
    // tridiag(-1, 2, -1) has eigenvalues 2 - 2 cos(k pi / (n + 1)), k = 1..n.
    for (const n of [9, 100, 299]) {
      const a = new Float64Array(n * n);
      for (let i = 0; i < n; i++) {
        a[i * n + i] = 2;
        if (i + 1 < n) a[i * n + i + 1] = a[(i + 1) * n + i] = -1;
      }
      const exact = Array.from({ length: n }, (_, k) => 2 - 2 * Math.cos(((n - k) * Math.PI) / (n + 1)));
      checkEigh(a, n, 'second difference', exact);
    }
  });

  test('n = 1, n = 2 and the zero matrix', () => {
    assert.deepEqual(eigh(Float64Array.of(-2.5), 1), {
      values: Float64Array.of(-2.5),
      vectors: Float64Array.of(1),
    });
    // [[a, b], [b, c]]: (a + c)/2 +- sqrt(((a - c)/2)^2 + b^2).
    const [a, b, c] = [uniform(), uniform(), uniform()];
    const mid = (a + c) / 2;
    const r = Math.hypot((a - c) / 2, b);
    checkEigh(Float64Array.of(a, b, b, c), 2, '2 x 2', [mid + r, mid - r]);
    const zero = eigh(new Float64Array(36), 6);
    assert.ok(zero.values.every((v) => v === 0));
    checkEigh(new Float64Array(36), 6, 'zero matrix', [0, 0, 0, 0, 0, 0]);
  });

  test('one thread gives an equally accurate result', () => {
    Linalg.setThreads(1);
    try {
      checkEigh(randomSymmetric(301), 301, 'one thread');
    } finally {
      Linalg.setThreads(os.availableParallelism());
    }
  });

  test('rejects a matrix of the wrong size', () => {
    assert.throws(() => eigh(new Float64Array(8), 3), RangeError);
  });
});

/**
 * Float32 products: each element within the standard bound k u (|A| |B|)_ij of the exact one, u = 2^-24
 * (a sum of k products in any order; fused multiply-add only tightens it).
 */
function checkProduct(m: number, k: number, n: number, transposedB: boolean): void {
  const a = Float32Array.from({ length: m * k }, uniform);
  const b = Float32Array.from({ length: n * k }, uniform); // [n, k] for A B^T, [k, n] for A B
  const out = new Float32Array(m * n).fill(Number.NaN);
  if (transposedB) matmulABt(operand(a, m, k), operand(b, n, k), out);
  else matmulAB(operand(a, m, k), operand(b, k, n), out);
  const bAt = (i: number, j: number) => (transposedB ? b[j * k + i]! : b[i * n + j]!);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let exact = 0;
      let magnitude = 0;
      for (let t = 0; t < k; t++) {
        exact += a[i * k + t]! * bAt(t, j);
        magnitude += Math.abs(a[i * k + t]! * bAt(t, j));
      }
      const err = Math.abs(out[i * n + j]! - exact);
      const what = `${transposedB ? 'A B^T' : 'A B'} ${m}x${k}x${n} at (${i}, ${j}), seed ${SEED}`;
      assert.ok(err <= k * 2 ** -24 * magnitude, `${what}: error ${err}, bound ${k * 2 ** -24 * magnitude}`);
    }
  }
}

describe('matrix products', () => {
  test('A B^T and A B in float32 against a float64 reference', () => {
    // Odd sizes (padding), and blocks: A in row blocks of 2^22 / max(k, n) rows, B (for A B) transposed in
    // blocks of 2^22 / n rows.
    const shapes: [number, number, number][] = [
      [1, 1, 1],
      [3, 5, 7],
      [33, 17, 9],
      [130, 257, 66],
      [1100, 4099, 3],
      [3, 901, 5000],
    ];
    for (const [m, k, n] of shapes) {
      checkProduct(m, k, n, true);
      checkProduct(m, k, n, false);
    }
  });

  test('Gram matrix in float64: exact products, symmetric, scaled columns', () => {
    for (const [rows, cols] of [
      [1, 1],
      [5, 3],
      [600, 37],
      [70, 130],
    ] as const) {
      const x = Float32Array.from({ length: rows * cols }, uniform);
      const g = Float32Array.from({ length: cols }, uniform);
      for (const scale of [undefined, g]) {
        const gram = gramMatrix(operand(x, rows, cols), scale);
        for (let i = 0; i < cols; i++) {
          for (let j = 0; j < cols; j++) {
            let exact = 0;
            let magnitude = 0;
            for (let r = 0; r < rows; r++) {
              const p = x[r * cols + i]! * (scale?.[i] ?? 1) * x[r * cols + j]! * (scale?.[j] ?? 1);
              exact += p;
              magnitude += Math.abs(p);
            }
            const err = Math.abs(gram[i * cols + j]! - exact);
            // Float64 sums of exact products: within 2 rows eps of their magnitude (both sums round).
            assert.ok(
              err <= 2 * rows * EPS * magnitude,
              `gram ${rows}x${cols} (${i}, ${j}): ${err}, seed ${SEED}`,
            );
            assert.equal(gram[i * cols + j], gram[j * cols + i]);
          }
        }
      }
    }
  });
});
