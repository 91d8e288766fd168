// Applies a batch of recorded QL sweeps to the eigenvector matrix Z (row i = eigenvector i of the
// tridiagonal), held as panels of 8 columns: panel p is an n x 8 block, rows 64 bytes apart. A panel (32 KB
// per 512 rows) stays in cache for the whole batch, so Z is read and written once per batch instead of once
// per sweep; panels are independent, so threads split them with no synchronisation.
//
// Rotation i of a sweep (i = m-1 down to l) sets row i+1 <- s row_i + c row_{i+1} and
// row i <- c row_i - s row_{i+1}. Consecutive rotations share a row, so the row they share stays in
// registers (h below): each rotation loads one row and stores one.
import { fma2, fnma2 } from './simd';

export const PANEL: i32 = 8;

export function rotatePanels(
  begin: i32,
  end: i32,
  _slot: i32,
  z: usize,
  n: i32,
  sweeps: i32,
  sweepL: usize,
  sweepM: usize,
  cs: usize,
): void {
  const panelBytes = (<usize>n) << 6;
  for (let pnl = begin; pnl < end; pnl++) {
    const base = z + <usize>pnl * panelBytes;
    let r = cs;
    for (let sw = 0; sw < sweeps; sw++) {
      const l = load<i32>(sweepL + ((<usize>sw) << 2));
      const m = load<i32>(sweepM + ((<usize>sw) << 2));
      let row = base + ((<usize>m) << 6);
      let h0 = v128.load(row);
      let h1 = v128.load(row, 16);
      let h2 = v128.load(row, 32);
      let h3 = v128.load(row, 48);
      for (let i = m - 1; i >= l; i--) {
        const c = v128.load64_splat(r);
        const s = v128.load64_splat(r, 8);
        r += 16;
        const next = row - 64;
        const x0 = v128.load(next);
        const x1 = v128.load(next, 16);
        const x2 = v128.load(next, 32);
        const x3 = v128.load(next, 48);
        v128.store(row, fma2(s, x0, f64x2.mul(c, h0)));
        v128.store(row, fma2(s, x1, f64x2.mul(c, h1)), 16);
        v128.store(row, fma2(s, x2, f64x2.mul(c, h2)), 32);
        v128.store(row, fma2(s, x3, f64x2.mul(c, h3)), 48);
        h0 = fnma2(s, h0, f64x2.mul(c, x0));
        h1 = fnma2(s, h1, f64x2.mul(c, x1));
        h2 = fnma2(s, h2, f64x2.mul(c, x2));
        h3 = fnma2(s, h3, f64x2.mul(c, x3));
        row = next;
      }
      v128.store(row, h0);
      v128.store(row, h1, 16);
      v128.store(row, h2, 32);
      v128.store(row, h3, 48);
    }
  }
}

// Z = I in panel layout (n rows, panels * 8 columns; columns past n stay zero).
export function panelIdentity(begin: i32, end: i32, _slot: i32, z: usize, n: i32): void {
  const panelBytes = (<usize>n) << 6;
  for (let pnl = begin; pnl < end; pnl++) {
    const base = z + <usize>pnl * panelBytes;
    memory.fill(base, 0, panelBytes);
    for (let c = 0; c < PANEL; c++) {
      const i = pnl * PANEL + c;
      if (i < n) store<f64>(base + ((<usize>i) << 6) + ((<usize>c) << 3), 1);
    }
  }
}

// Row-major out[r, :] = row perm[r] of the panel matrix (row stride ld), for rows r in [begin, end).
export function unpanel(
  begin: i32,
  end: i32,
  _slot: i32,
  z: usize,
  n: i32,
  perm: usize,
  out: usize,
  ld: i32,
): void {
  const panelBytes = (<usize>n) << 6;
  const full = n & ~(PANEL - 1);
  for (let r = begin; r < end; r++) {
    const src = z + ((<usize>load<i32>(perm + ((<usize>r) << 2))) << 6);
    const dst = out + ((<usize>r * <usize>ld) << 3);
    let c = 0;
    for (; c < full; c += PANEL) {
      const p = src + <usize>(c / PANEL) * panelBytes;
      const o = dst + ((<usize>c) << 3);
      v128.store(o, v128.load(p));
      v128.store(o, v128.load(p, 16), 16);
      v128.store(o, v128.load(p, 32), 32);
      v128.store(o, v128.load(p, 48), 48);
    }
    for (; c < n; c++) {
      store<f64>(
        dst + ((<usize>c) << 3),
        load<f64>(src + <usize>(c / PANEL) * panelBytes + ((<usize>(c % PANEL)) << 3)),
      );
    }
  }
}
