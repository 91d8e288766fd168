/**
 * Symmetric eigendecomposition in float64, in our WebAssembly (src/linalg/assembly). No maintained npm library
 * does this fast: ml-matrix (EVD, EISPACK's tred2 + tql2 in plain JavaScript) took 474 s for one d = 4096
 * matrix on the project's 2-core machine, and the transform needs two per layer.
 *
 * The same method as ml-matrix and LAPACK's dsyev, arranged for memory traffic and SIMD:
 * 1. Householder tridiagonalisation, blocked as LAPACK's dsytrd (panels of 32 reflectors, one symmetric
 *    matrix-vector product per reflector over the upper triangle, one rank-64 update per panel), then, once
 *    the trailing block fits in cache, unblocked steps with each rank-2 update fused with the next product.
 * 2. Implicit QL (EISPACK tql2) on the tridiagonal: the scalar recurrence records its plane rotations, which
 *    are applied in batches to the eigenvectors held as 8-column panels that stay in cache through a batch.
 * 3. The reflectors applied to the eigenvector rows in groups of 16 (compact WY: two products per group).
 * Every phase but the scalar recurrences is split over threads (runtime.ts). Figures are in BENCHMARKS.md.
 */
import { Linalg } from './runtime.js';

export interface Eigen {
  /** Eigenvalues in decreasing order (ties keep the solver's order). */
  values: Float64Array;
  /** Row-major n x n: row i is the unit eigenvector of values[i]; the rows are orthonormal. */
  vectors: Float64Array;
}

/** Seconds spent in each phase of one `eigh` call. */
export interface EighPhases {
  tridiagonal: number;
  ql: number;
  back: number;
}

/** Rotations per batch: each batch costs one pass over the eigenvectors. */
const BATCH_ROTATIONS = 1 << 16;
const BATCH_SWEEPS = 1 << 12;
const PANEL = 8;
const EPS = 2 ** -52;

/**
 * Eigenvalues and eigenvectors of the symmetric n x n matrix `a` (row-major; its upper triangle is read and
 * taken as mirrored). Backward stable: the residual ||A V - V Λ|| and ||V V^T - I|| are a modest multiple of
 * float64 rounding times ||A|| and 1. `phases`, when given, receives the time of each phase.
 */
export function eigh(a: Float64Array, n: number, phases?: EighPhases): Eigen {
  if (!Number.isInteger(n) || n < 0 || a.length < n * n) {
    throw new RangeError(`eigh: need an n x n matrix, got ${a.length} values for n = ${n}`);
  }
  if (n === 0) return { values: new Float64Array(0), vectors: new Float64Array(0) };
  if (n === 1) return { values: Float64Array.of(a[0]!), vectors: Float64Array.of(1) };
  const la = Linalg.get();
  const mark = la.mark();
  try {
    // Rows padded to a multiple of 4 (zeros): the blocked update works on 4 x 2 tiles.
    const ld = Math.ceil(n / 4) * 4;
    const A = la.f64(ld * ld);
    A.fill(0);
    for (let i = 0; i < n; i++) A.set(a.subarray(i * n, (i + 1) * n), i * ld);
    const d = la.f64(n);
    const e = la.f64(n);
    const tau = la.f64(n);
    let t0 = performance.now();
    const lap = () => {
      const t = performance.now();
      const s = (t - t0) / 1000;
      t0 = t;
      return s;
    };
    tridiagonalise(la, A, ld, n, d, e, tau);
    if (phases) phases.tridiagonal = lap();

    const panels = Math.ceil(n / PANEL);
    const z = la.f64(panels * PANEL * n);
    la.parallel('panelIdentity', panels, 1, panels * PANEL * n, z.byteOffset, n);
    solveTridiagonal(la, n, d, e, z);
    if (phases) phases.ql = lap();

    const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => d[y]! - d[x]! || x - y);
    const perm = la.i32(n);
    perm.set(order);
    const vectors = backTransform(la, A.byteOffset, ld, n, tau, z, perm);
    if (phases) phases.back = lap();
    return { values: Float64Array.from(order, (i) => d[i]!), vectors };
  } finally {
    la.release(mark);
  }
}

/** Reflectors per group of the back-transformation (src/linalg/assembly/back.ts). */
const BACK_NB = 16;

/**
 * The eigenvectors of A, row r from row perm[r] of the panel matrix z (eigenvectors of T) times the
 * reflectors, as a plain row-major n x n array.
 */
function backTransform(
  la: Linalg,
  ap: number,
  ld: number,
  n: number,
  tau: Float64Array,
  z: Float64Array,
  perm: Int32Array,
): Float64Array {
  const w = la.wasm;
  let last = n - 3; // the last reflector that is not the identity
  while (last >= 0 && tau[last] === 0) last--;
  const groups = Math.ceil((last + 1) / BACK_NB);
  const n4 = Math.ceil(n / 4) * 4;
  const ldz = n4 + 4; // a group's columns run up to 3 past n: zero padding
  let vtLength = 0;
  for (let g = 0; g < groups; g++) vtLength += BACK_NB * (Math.ceil((n - g * BACK_NB - 1) / 4) * 4);
  const vt = la.f64(vtLength);
  const meta = la.i32(Math.max(1, groups));
  const tmat = la.f64(Math.max(1, groups) * BACK_NB * BACK_NB);
  w.backPrepare(ap, ld, n, tau.byteOffset, groups, vt.byteOffset, meta.byteOffset, tmat.byteOffset);
  const zr = la.f64(n4 * ldz).fill(0);
  la.parallel('unpanel', n, 1, n * n, z.byteOffset, n, perm.byteOffset, zr.byteOffset, ldz);
  const scratch = la.alloc(la.maxChunks * w.backScratchBytes());
  const args = [zr.byteOffset, ldz, n, groups, vt.byteOffset, meta.byteOffset, tmat.byteOffset, scratch];
  la.parallel('backTransform', n4, 4, 2 * n * n * (last + 1), ...args);
  const out = new Float64Array(n * n);
  for (let r = 0; r < n; r++) out.set(zr.subarray(r * ldz, r * ldz + n), r * n);
  return out;
}

/** Panel width of the blocked reduction, and the trailing size below which the fused unblocked one runs. */
const NB = 32;
const NX = 256;

/**
 * A (upper triangle, row stride ld) -> T: d diagonal, e[0..n-2] off-diagonal; reflector k left in row k of
 * A from column k+1 on, tau[k] beside it.
 *
 * Once the trailing block is below sqrt(n) eps ||A||_F it is taken as zero (tau = 0 from there on: no more
 * reflectors, nothing for QL to rotate there). That perturbs A by less than LAPACK's test bound for a
 * backward-stable solver (n eps ||A||_1), and it is what makes rank-deficient Gram matrices cheap: a k_proj
 * under GQA (512 x 2048) leaves rounding noise, about 3 eps ||A||_F, after 512 steps.
 */
function tridiagonalise(
  la: Linalg,
  A: Float64Array,
  ld: number,
  n: number,
  d: Float64Array,
  e: Float64Array,
  tau: Float64Array,
): void {
  const w = la.wasm;
  const mark = la.mark();
  const ap = A.byteOffset;
  const [dp, ep, tp] = [d.byteOffset, e.byteOffset, tau.byteOffset];
  let k0 = 0;
  if (n > NX) {
    const negligible = n * EPS * EPS * w.trailingNorm2(ap, ld, 0, n); // (sqrt(n) eps ||A||_F)^2
    const wb = la.f64(NB * ld).byteOffset;
    const ypart = la.f64(la.maxChunks * ld).byteOffset;
    const p = la.f64(2 * NB * ld).byteOffset;
    const q = la.f64(2 * NB * ld).byteOffset;
    for (; n - k0 > NX; k0 += NB) {
      for (let j = k0; j < k0 + NB; j++) {
        if (j > k0) w.panelRow(ap, ld, n, k0, j, wb, ld);
        d[j] = A[j * ld + j]!;
        w.trdHouse(ap, ld, n, j, tp, ep);
        const rows = n - j - 1;
        const chunks = la.parallel(
          'panelSymv',
          Math.ceil(rows / 2),
          1,
          (rows * rows) / 2,
          ap,
          ld,
          n,
          j,
          ypart,
          ld,
        );
        w.panelW(ap, ld, n, k0, j, wb, ld, ypart, ld, chunks, tp);
      }
      const rb = (k0 + NB) & ~3;
      w.panelPack(ap, ld, n, k0, NB, wb, ld, rb, ld, p, q);
      const m = ld - rb;
      la.parallel('panelUpdate', Math.ceil(m / 8), 1, m * m * NB, ap, ld, rb, ld, p, q, 2 * NB);
      const k1 = k0 + NB;
      if (w.trailingNorm2(ap, ld, k1, n) <= negligible) {
        d.fill(0, k1);
        e.fill(0, k1);
        tau.fill(0, k1);
        la.release(mark);
        return;
      }
    }
  }
  w.mirrorBlock(ap, ld, k0, n);
  const pv = la.f64(n).byteOffset;
  const wv = la.f64(n).byteOffset;
  d[k0] = A[k0 * ld + k0]!;
  w.trdHouse(ap, ld, n, k0, tp, ep);
  const m0 = n - k0 - 1;
  la.parallel('trdSymv', m0, 1, m0 * m0, ap, ld, n, k0, pv, tp);
  for (let k = k0; k + 3 <= n; k++) {
    w.trdStep(ap, ld, n, k, pv, wv, tp, dp, ep);
    const rows = n - k - 2;
    la.parallel('trdUpdate', rows, 2, rows * rows, ap, ld, n, k, wv, pv, tp);
  }
  d[n - 1] = A[(n - 1) * ld + n - 1]!;
  e[n - 1] = 0;
  la.release(mark);
}

/** Eigenvalues of T into d (unsorted); its eigenvectors accumulated into the panel matrix z (started at I). */
function solveTridiagonal(la: Linalg, n: number, d: Float64Array, e: Float64Array, z: Float64Array): void {
  const w = la.wasm;
  const panels = Math.ceil(n / PANEL);
  const maxRotations = Math.max(BATCH_ROTATIONS, n);
  const state = la.f64(4);
  state.fill(0);
  const sweepL = la.i32(BATCH_SWEEPS);
  const sweepM = la.i32(BATCH_SWEEPS);
  const cs = la.f64(2 * maxRotations);
  for (;;) {
    const sweeps = w.qlSweeps(
      n,
      d.byteOffset,
      e.byteOffset,
      state.byteOffset,
      sweepL.byteOffset,
      sweepM.byteOffset,
      cs.byteOffset,
      BATCH_SWEEPS,
      maxRotations,
    );
    if (sweeps < 0) throw new Error(`eigh: the QL iteration did not converge (n = ${n})`);
    if (sweeps > 0) {
      let rotations = 0;
      for (let s = 0; s < sweeps; s++) rotations += sweepM[s]! - sweepL[s]!;
      const args = [z.byteOffset, n, sweeps, sweepL.byteOffset, sweepM.byteOffset, cs.byteOffset];
      la.parallel('rotatePanels', panels, 1, rotations * PANEL * panels, ...args);
    }
    if (state[0]! >= n) return;
  }
}
