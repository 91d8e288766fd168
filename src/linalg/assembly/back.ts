// Eigenvectors of A from those of the tridiagonal: each row z (an eigenvector of T) becomes
// z H_{n-3} ... H_0 = (Q z^T)^T. Reflectors go in groups of NB (LAPACK's compact WY form, dlarft + dlarfb):
// H_kl ... H_kh = I - V T V^T, so z <- z - ((z V) T^T) V^T, two products in which each element of z is read
// and written once per group instead of once per reflector. Rows are independent: threads split them.
import { dots42, fnma2 } from './simd';

export const NB: i32 = 16;
const BLOCK_ROWS = 16;


@inline
function at(a: usize, ld: i32, i: i32, j: i32): usize {
  return a + ((<usize>i * <usize>ld + <usize>j) << 3);
}

// Group g holds reflectors kl = g * NB .. kl + NB - 1 (those with tau = 0 are zero vectors, harmless) as rows
// of vt over columns kl+1 .. kl+1+len4 (len4 = n - kl - 1 rounded up to 4, zeros past n and before each
// vector's leading 1), and T (NB x NB, upper) at tmat + g * NB * NB. meta[g] = byte offset in vt, or -1.
export function backPrepare(
  a: usize,
  ld: i32,
  n: i32,
  tau: usize,
  groups: i32,
  vt: usize,
  meta: usize,
  tmat: usize,
): void {
  let off: usize = 0;
  for (let g = 0; g < groups; g++) {
    const kl = g * NB;
    const len = n - kl - 1;
    const len4 = (len + 3) & ~3;
    const base = vt + off;
    let any = false;
    for (let i = 0; i < NB && kl + i <= n - 3; i++)
      any = any || load<f64>(tau + ((<usize>(kl + i)) << 3)) != 0;
    // A group of identities (the dropped trailing block) is skipped.
    store<i32>(meta + ((<usize>g) << 2), any ? <i32>off : -1);
    if (!any) continue;
    memory.fill(base, 0, (<usize>NB * <usize>len4) << 3);
    for (let i = 0; i < NB; i++) {
      const p = kl + i;
      if (p > n - 3) break;
      if (load<f64>(tau + ((<usize>p) << 3)) == 0) continue;
      // v_p[c] for c = kl+1+i .. n-1 is A[p, kl+1+i ..].
      memory.copy(
        base + ((<usize>i * <usize>len4 + <usize>i) << 3),
        at(a, ld, p, p + 1),
        (<usize>(len - i)) << 3,
      );
    }
    // T: T[i, i] = tau_i, T[0..i, i] = -tau_i T[0..i, 0..i] (V[:, 0..i]^T v_i).
    const t = tmat + ((<usize>g * NB * NB) << 3);
    memory.fill(t, 0, (NB * NB) << 3);
    for (let i = 0; i < NB; i++) {
      const p = kl + i;
      const ti = p <= n - 3 ? load<f64>(tau + ((<usize>p) << 3)) : 0;
      store<f64>(t + ((<usize>(i * NB + i)) << 3), ti);
      if (ti == 0) continue;
      const vi = base + ((<usize>i * <usize>len4) << 3);
      for (let j = 0; j < i; j++) {
        // y_j = -tau_i (v_j . v_i)
        const vj = base + ((<usize>j * <usize>len4) << 3);
        let s: f64 = 0;
        for (let c = i; c < len; c++)
          s += load<f64>(vj + ((<usize>c) << 3)) * load<f64>(vi + ((<usize>c) << 3));
        store<f64>(t + ((<usize>(j * NB + i)) << 3), -ti * s);
      }
      // T[0..i, i] = T[0..i, 0..i] y (upper triangular, in place from the top).
      for (let j = 0; j < i; j++) {
        let s: f64 = 0;
        for (let l = j; l < i; l++)
          s += load<f64>(t + ((<usize>(j * NB + l)) << 3)) * load<f64>(t + ((<usize>(l * NB + i)) << 3));
        store<f64>(t + ((<usize>(j * NB + i)) << 3), s);
      }
    }
    off += (<usize>NB * <usize>len4) << 3;
  }
}

// z_r[c..c+4] -= sum_j w[r, j] vt_j[c..c+4] for four rows.
@inline
function update44(z0: usize, z1: usize, z2: usize, z3: usize, vt: usize, len4: i32, w: usize): void {
  const row = (<usize>NB) << 3;
  const vrow = (<usize>len4) << 3;
  for (let c = 0; c < len4; c += 4) {
    const o = (<usize>c) << 3;
    let a0 = v128.load(z0 + o);
    let b0 = v128.load(z0 + o, 16);
    let a1 = v128.load(z1 + o);
    let b1 = v128.load(z1 + o, 16);
    let a2 = v128.load(z2 + o);
    let b2 = v128.load(z2 + o, 16);
    let a3 = v128.load(z3 + o);
    let b3 = v128.load(z3 + o, 16);
    let v = vt + o;
    let ww = w;
    for (let j = 0; j < NB; j++) {
      const x = v128.load(v);
      const y = v128.load(v, 16);
      let s = v128.load64_splat(ww);
      a0 = fnma2(s, x, a0);
      b0 = fnma2(s, y, b0);
      s = v128.load64_splat(ww + row);
      a1 = fnma2(s, x, a1);
      b1 = fnma2(s, y, b1);
      s = v128.load64_splat(ww + 2 * row);
      a2 = fnma2(s, x, a2);
      b2 = fnma2(s, y, b2);
      s = v128.load64_splat(ww + 3 * row);
      a3 = fnma2(s, x, a3);
      b3 = fnma2(s, y, b3);
      v += vrow;
      ww += 8;
    }
    v128.store(z0 + o, a0);
    v128.store(z0 + o, b0, 16);
    v128.store(z1 + o, a1);
    v128.store(z1 + o, b1, 16);
    v128.store(z2 + o, a2);
    v128.store(z2 + o, b2, 16);
    v128.store(z3 + o, a3);
    v128.store(z3 + o, b3, 16);
  }
}

// Bytes of scratch per slot: w for BLOCK_ROWS rows.
export function backScratchBytes(): i32 {
  return BLOCK_ROWS * NB * 8 * 2;
}

// Rows [begin, end) (multiples of 4 but the last chunk; z has zero rows past n up to a multiple of 4) of z
// (row stride ldz >= n rounded up to 4, plus 4: a group's columns may run 3 past n into zero padding).
export function backTransform(
  begin: i32,
  end: i32,
  slot: i32,
  z: usize,
  ldz: i32,
  n: i32,
  groups: i32,
  vt: usize,
  meta: usize,
  tmat: usize,
  scratch: usize,
): void {
  const w = scratch + <usize>slot * <usize>backScratchBytes();
  const w2 = w + ((BLOCK_ROWS * NB) << 3);
  for (let b0 = begin; b0 < end; b0 += BLOCK_ROWS) {
    const b1 = min(end, b0 + BLOCK_ROWS);
    for (let g = groups - 1; g >= 0; g--) {
      const kl = g * NB;
      const len4 = (n - kl - 1 + 3) & ~3;
      const off = load<i32>(meta + ((<usize>g) << 2));
      if (off < 0) continue;
      const v = vt + <usize>off;
      const t = tmat + ((<usize>g * NB * NB) << 3);
      // w = z V (rows b0..b1 in groups of four; the row count is a multiple of 4 by the padding).
      for (let r = b0; r < b1; r += 4) {
        const z0 = at(z, ldz, r, kl + 1);
        const wr = w + ((<usize>(r - b0) * NB) << 3);
        for (let i = 0; i < NB; i += 2) {
          const vi = v + ((<usize>i * <usize>len4) << 3);
          dots42(
            z0,
            z0 + ((<usize>ldz) << 3),
            z0 + ((<usize>ldz) << 4),
            z0 + <usize>ldz * 24,
            vi,
            vi + ((<usize>len4) << 3),
            len4,
            wr + ((<usize>i) << 3),
            (<usize>NB) << 3,
            0,
          );
        }
      }
      // w2 = w T^T: w2[r, j] = sum_{i >= j} w[r, i] T[j, i].
      for (let r = 0; r < b1 - b0; r++) {
        const wr = w + ((<usize>r * NB) << 3);
        const w2r = w2 + ((<usize>r * NB) << 3);
        for (let j = 0; j < NB; j++) {
          let s: f64 = 0;
          const tj = t + ((<usize>j * NB) << 3);
          for (let i = j; i < NB; i++)
            s += load<f64>(wr + ((<usize>i) << 3)) * load<f64>(tj + ((<usize>i) << 3));
          store<f64>(w2r + ((<usize>j) << 3), s);
        }
      }
      // z -= w2 V^T.
      for (let r = b0; r < b1; r += 4) {
        const z0 = at(z, ldz, r, kl + 1);
        update44(
          z0,
          z0 + ((<usize>ldz) << 3),
          z0 + ((<usize>ldz) << 4),
          z0 + <usize>ldz * 24,
          v,
          len4,
          w2 + ((<usize>(r - b0) * NB) << 3),
        );
      }
    }
  }
}
