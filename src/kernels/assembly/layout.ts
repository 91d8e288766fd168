// Load-time layout changes and the bandwidth probe.

/**
 * dst [cols, rows] = transpose of src [rows, cols], for 2- or 4-byte elements. Threads split the source
 * columns [begin, end); 16x16 tiles keep both sides' cache lines in use.
 */
export function transpose(
  begin: i32,
  end: i32,
  _slot: i32,
  src: usize,
  dst: usize,
  rows: i32,
  cols: i32,
  bytes: i32,
): void {
  for (let c0 = begin; c0 < end; c0 += 16) {
    const c1 = min(end, c0 + 16);
    for (let r0 = 0; r0 < rows; r0 += 16) {
      const r1 = min(rows, r0 + 16);
      for (let c = c0; c < c1; c++) {
        for (let r = r0; r < r1; r++) {
          const from = <usize>r * <usize>cols + <usize>c;
          const to = <usize>c * <usize>rows + <usize>r;
          if (bytes == 2) store<u16>(dst + (to << 1), load<u16>(src + (from << 1)));
          else store<u32>(dst + (to << 2), load<u32>(src + (from << 2)));
        }
      }
    }
  }
}

/**
 * Sums bytes [begin * 256, end * 256) of base as i32 lanes into out + slot * 16 (the read bandwidth probe).
 * The range is read as `streams` interleaved sequential streams: cores reach more bandwidth with several
 * streams in flight (as a matvec has: one per row) than with one.
 */
export function readSum(begin: i32, end: i32, slot: i32, base: usize, out: usize, streams: i32): void {
  let a = i32x4.splat(0);
  let b = i32x4.splat(0);
  let c = i32x4.splat(0);
  let d = i32x4.splat(0);
  const span = (<usize>(end - begin) / <usize>streams) << 8;
  const first = base + ((<usize>begin) << 8);
  for (let off: usize = 0; off < span; off += 64) {
    for (let s = 0; s < streams; s++) {
      const p = first + <usize>s * span + off;
      a = i32x4.add(a, v128.load(p));
      b = i32x4.add(b, v128.load(p, 16));
      c = i32x4.add(c, v128.load(p, 32));
      d = i32x4.add(d, v128.load(p, 48));
    }
  }
  v128.store(out + ((<usize>slot) << 4), i32x4.add(i32x4.add(a, b), i32x4.add(c, d)));
}
