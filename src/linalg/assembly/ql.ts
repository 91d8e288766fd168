// Eigenvalues of the symmetric tridiagonal (d, e) by implicit QL with Wilkinson-type shifts (EISPACK tql2, as
// JAMA and ml-matrix have it), with the plane rotations recorded instead of applied: rotatePanels applies a
// batch of them to the eigenvectors afterwards, cache-blocked. e[i] couples i and i+1; e[n-1] = 0.
//
// Resumable: the loop stops before a sweep that would overflow the batch and continues from `state`
// (l, accumulated shift f, tst1, iterations on l) on the next call.

const EPS: f64 = 2.220446049250313e-16; // 2^-52
const MAX_ITERATIONS = 60; // per eigenvalue; tql2 needs a few


@inline
function ld(p: usize, i: i32): f64 {
  return load<f64>(p + ((<usize>i) << 3));
}


@inline
function st(p: usize, i: i32, v: f64): void {
  store<f64>(p + ((<usize>i) << 3), v);
}

// Runs sweeps until done or the batch is full. Sweep s rotates rows (i, i+1) for i = m_s - 1 down to l_s with
// (c, s) pairs stored in that order at cs. Returns the number of sweeps recorded, or -1 if an eigenvalue did
// not converge. state[0] = l reaches n when every eigenvalue has converged (d then holds them, unsorted).
export function qlSweeps(
  n: i32,
  d: usize,
  e: usize,
  state: usize,
  sweepL: usize,
  sweepM: usize,
  cs: usize,
  maxSweeps: i32,
  maxRotations: i32,
): i32 {
  let l = <i32>load<f64>(state);
  let f = load<f64>(state, 8);
  let tst1 = load<f64>(state, 16);
  let iter = <i32>load<f64>(state, 24);
  let sweeps = 0;
  let rotations = 0;
  let failed = false;
  while (l < n) {
    if (iter == 0) tst1 = max(tst1, abs(ld(d, l)) + abs(ld(e, l)));
    let m = l;
    while (m < n - 1 && abs(ld(e, m)) > EPS * tst1) m++;
    if (m == l) {
      st(d, l, ld(d, l) + f);
      st(e, l, 0);
      l++;
      iter = 0;
      continue;
    }
    if (sweeps == maxSweeps || rotations + (m - l) > maxRotations) break;
    if (++iter > MAX_ITERATIONS) {
      failed = true;
      break;
    }
    // Implicit shift.
    let g = ld(d, l);
    let p = (ld(d, l + 1) - g) / (2 * ld(e, l));
    let r = Math.hypot(p, 1);
    if (p < 0) r = -r;
    st(d, l, ld(e, l) / (p + r));
    st(d, l + 1, ld(e, l) * (p + r));
    const dl1 = ld(d, l + 1);
    let h = g - ld(d, l);
    for (let i = l + 2; i < n; i++) st(d, i, ld(d, i) - h);
    f += h;
    // Implicit QL transformation.
    p = ld(d, m);
    let c: f64 = 1;
    let c2: f64 = 1;
    let c3: f64 = 1;
    const el1 = ld(e, l + 1);
    let s: f64 = 0;
    let s2: f64 = 0;
    let out = cs + ((<usize>rotations) << 4);
    for (let i = m - 1; i >= l; i--) {
      c3 = c2;
      c2 = c;
      s2 = s;
      const ei = ld(e, i);
      g = c * ei;
      h = c * p;
      r = Math.hypot(p, ei);
      st(e, i + 1, s * r);
      s = ei / r;
      c = p / r;
      const di = ld(d, i);
      p = c * di - s * g;
      st(d, i + 1, h + s * (c * g + s * di));
      store<f64>(out, c);
      store<f64>(out, s, 8);
      out += 16;
    }
    p = (-s * s2 * c3 * el1 * ld(e, l)) / dl1;
    st(e, l, s * p);
    st(d, l, c * p);
    store<i32>(sweepL + ((<usize>sweeps) << 2), l);
    store<i32>(sweepM + ((<usize>sweeps) << 2), m);
    sweeps++;
    rotations += m - l;
  }
  store<f64>(state, <f64>l);
  store<f64>(state, f, 8);
  store<f64>(state, tst1, 16);
  store<f64>(state, <f64>iter, 24);
  return failed ? -1 : sweeps;
}
