// Which inputs a sparse matvec keeps, by score_i = |x_i| * norm_i computed in double (as the TypeScript
// reference does, so the kept sets agree exactly), in O(d). Kept indices are written in ascending order.
// normsKind: 0 = no norms (score |x_i|), 1 = F32 norms, 2 = F64 norms.

@inline
function score(x: usize, norms: usize, normsKind: i32, i: i32): f64 {
  let s = <f64>abs<f32>(load<f32>(x + ((<usize>i) << 2)));
  if (normsKind == 1) s *= <f64>load<f32>(norms + ((<usize>i) << 2));
  else if (normsKind == 2) s *= load<f64>(norms + ((<usize>i) << 3));
  return s + 0.0; // -0 -> +0, so equal scores have equal keys
}

// Unsigned keys in the same order as the scores.
@inline
function key(s: f64): u64 {
  const b = reinterpret<u64>(s);
  return b >> 63 ? ~b : b | ((<u64>1) << 63);
}

const DIGIT_BITS: u64 = 11;
const BUCKETS: i32 = 1 << 11;


@inline
function keysBytes(d: i32): usize {
  return (((<usize>d) << 3) + 63) & ~63;
}


@inline
function candidatesBytes(d: i32): usize {
  return (((<usize>d) << 2) + 63) & ~63;
}

/** Bytes of scratch selectTopK needs for d inputs; its first BUCKETS * 4 bytes must be zero on the first call. */
export function selectScratchBytes(d: i32): usize {
  return keysBytes(d) + candidatesBytes(d) + ((<usize>BUCKETS) << 2);
}


@inline
function digit(k: u64, shift: u64): i32 {
  return <i32>((k >> shift) & (<u64>(BUCKETS - 1)));
}

const FEW: i32 = 48;

/** The need-th highest key among the candidates (insertion sort, descending; count <= FEW). */
function nthHighest(keys: usize, candidates: usize, count: i32, need: i32): u64 {
  for (let j = 1; j < count; j++) {
    const c = load<i32>(candidates + ((<usize>j) << 2));
    const kc = load<u64>(keys + ((<usize>c) << 3));
    let m = j - 1;
    while (m >= 0 && load<u64>(keys + ((<usize>load<i32>(candidates + ((<usize>m) << 2))) << 3)) < kc) {
      store<i32>(candidates + ((<usize>(m + 1)) << 2), load<i32>(candidates + ((<usize>m) << 2)));
      m--;
    }
    store<i32>(candidates + ((<usize>(m + 1)) << 2), c);
  }
  return load<u64>(keys + ((<usize>load<i32>(candidates + ((<usize>(need - 1)) << 2))) << 3));
}

/**
 * Keeps the k highest scores, ties going to the lower index (as a stable sort would). A radix select over
 * the 64-bit keys, 11 bits at a time from the top, finds the k-th highest key; after the first digit only
 * the keys that share the chosen prefix are rescanned. One last pass compacts.
 */
export function selectTopK(
  x: usize,
  norms: usize,
  normsKind: i32,
  d: i32,
  k: i32,
  kept: usize,
  scratch: usize,
): i32 {
  if (k <= 0) return 0;
  if (k >= d) {
    for (let i = 0; i < d; i++) store<i32>(kept + ((<usize>i) << 2), i);
    return d;
  }
  // The histogram comes first, at a fixed place whatever d is: zero on entry (fresh memory) and left zero.
  const hist = scratch;
  const keys = hist + ((<usize>BUCKETS) << 2);
  const candidates = keys + keysBytes(d);
  for (let i = 0; i < d; i++) store<u64>(keys + ((<usize>i) << 3), key(score(x, norms, normsKind, i)));
  let threshold: u64 = 0;
  let need = k; // how many keys equal to or below the prefix found so far are still to be kept
  let count = d; // candidates: all keys at first, then those in the chosen bucket
  for (let shift: i64 = 64 - <i64>DIGIT_BITS; ; shift -= <i64>DIGIT_BITS) {
    const s = <u64>max<i64>(shift, 0);
    // Only the buckets in [lo, hi] are touched: walk and clear just those (keys of real scores share a few
    // exponents, so this is a handful, where a full pass over 2048 buckets cost more than a small matvec).
    let lo = BUCKETS;
    let hi = -1;
    for (let j = 0; j < count; j++) {
      const i = shift == 64 - <i64>DIGIT_BITS ? j : load<i32>(candidates + ((<usize>j) << 2));
      const g = digit(load<u64>(keys + ((<usize>i) << 3)), s);
      if (g < lo) lo = g;
      if (g > hi) hi = g;
      const h = hist + ((<usize>g) << 2);
      store<i32>(h, load<i32>(h) + 1);
    }
    let b = hi;
    for (;;) {
      const c = load<i32>(hist + ((<usize>b) << 2));
      if (c >= need) break;
      need -= c;
      b--;
    }
    memory.fill(hist + ((<usize>lo) << 2), 0, (<usize>(hi - lo + 1)) << 2);
    threshold |= (<u64>b) << s;
    if (s == 0) break;
    // Keep only the candidates in bucket b (the list shrinks in place).
    let n = 0;
    for (let j = 0; j < count; j++) {
      const i = shift == 64 - <i64>DIGIT_BITS ? j : load<i32>(candidates + ((<usize>j) << 2));
      if (digit(load<u64>(keys + ((<usize>i) << 3)), s) == b) {
        store<i32>(candidates + ((<usize>n) << 2), i);
        n++;
      }
    }
    count = n;
    // Few candidates left: sorting them beats more passes, each of which clears and walks 2048 buckets (the
    // per-call cost that dominated small models).
    if (count <= FEW) {
      threshold = nthHighest(keys, candidates, count, need);
      let above = 0; // candidates strictly above the threshold: all of them are kept
      for (let j = 0; j < count; j++) {
        if (load<u64>(keys + ((<usize>load<i32>(candidates + ((<usize>j) << 2))) << 3)) > threshold) above++;
      }
      need -= above;
      break;
    }
  }
  let n = 0;
  for (let i = 0; i < d; i++) {
    const kk = load<u64>(keys + ((<usize>i) << 3));
    if (kk > threshold || (kk == threshold && need-- > 0)) {
      store<i32>(kept + ((<usize>n) << 2), i);
      n++;
    }
  }
  return n;
}

/** Keeps every input whose score exceeds the threshold. */
export function selectThreshold(
  x: usize,
  norms: usize,
  normsKind: i32,
  d: i32,
  threshold: f64,
  kept: usize,
): i32 {
  let n = 0;
  for (let i = 0; i < d; i++) {
    if (score(x, norms, normsKind, i) > threshold) {
      store<i32>(kept + ((<usize>n) << 2), i);
      n++;
    }
  }
  return n;
}

// Prefill: the masked input rows of a dense matmul, one token per row, tokens [begin, end) of this chunk.
// out's row t holds x's kept inputs and zeros elsewhere; counts[t] = how many were kept.

/** Bytes of one chunk's scratch for maskTopK: selectTopK's scratch, then a kept list. */
export function maskScratchBytes(d: i32): usize {
  return selectScratchBytes(d) + candidatesBytes(d);
}


@inline
function writeMasked(x: usize, kept: usize, n: i32, out: usize, d: i32): void {
  memory.fill(out, 0, (<usize>d) << 2);
  for (let j = 0; j < n; j++) {
    const o = (<usize>load<i32>(kept + ((<usize>j) << 2))) << 2;
    store<f32>(out + o, load<f32>(x + o));
  }
}

/** Top-k per row as selectTopK; chunk `slot` uses scratch + slot * maskScratchBytes(d) (zero when fresh). */
export function maskTopK(
  begin: i32,
  end: i32,
  slot: i32,
  x: usize,
  norms: usize,
  normsKind: i32,
  d: i32,
  k: i32,
  out: usize,
  counts: usize,
  scratch: usize,
): void {
  const base = scratch + <usize>slot * maskScratchBytes(d);
  const kept = base + selectScratchBytes(d);
  for (let t = begin; t < end; t++) {
    const row = <usize>t * ((<usize>d) << 2);
    const n = selectTopK(x + row, norms, normsKind, d, k, kept, base);
    writeMasked(x + row, kept, n, out + row, d);
    store<i32>(counts + ((<usize>t) << 2), n);
  }
}

/** Scores above the threshold per row, as selectThreshold. */
export function maskThreshold(
  begin: i32,
  end: i32,
  slot: i32,
  x: usize,
  norms: usize,
  normsKind: i32,
  d: i32,
  threshold: f64,
  out: usize,
  counts: usize,
): void {
  for (let t = begin; t < end; t++) {
    const row = <usize>t * ((<usize>d) << 2);
    let n = 0;
    memory.fill(out + row, 0, (<usize>d) << 2);
    for (let i = 0; i < d; i++) {
      if (score(x + row, norms, normsKind, i) > threshold) {
        store<f32>(out + row + ((<usize>i) << 2), load<f32>(x + row + ((<usize>i) << 2)));
        n++;
      }
    }
    store<i32>(counts + ((<usize>t) << 2), n);
  }
}
