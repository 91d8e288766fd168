// Small per-token kernels (norms, rotary embedding, activation, residual): memory-light, single-threaded.
import { exp4, hsum } from './simd';

/** out[t] = x[t] / rms(x[t]) * weight for T rows of length d. */
export function rmsnorm(out: usize, x: usize, weight: usize, eps: f64, d: i32, tokens: i32): void {
  const vecEnd = d & ~7;
  for (let t = 0; t < tokens; t++) {
    const row = x + ((<usize>t * <usize>d) << 2);
    const dst = out + ((<usize>t * <usize>d) << 2);
    let a = f32x4.splat(0);
    let b = f32x4.splat(0);
    for (let i = 0; i < vecEnd; i += 8) {
      const v0 = v128.load(row + ((<usize>i) << 2));
      const v1 = v128.load(row + ((<usize>i) << 2), 16);
      a = f32x4.add(a, f32x4.mul(v0, v0));
      b = f32x4.add(b, f32x4.mul(v1, v1));
    }
    let ss = <f64>hsum(f32x4.add(a, b));
    for (let i = vecEnd; i < d; i++) {
      const v = <f64>load<f32>(row + ((<usize>i) << 2));
      ss += v * v;
    }
    const scale = <f32>(1.0 / Math.sqrt(ss / <f64>d + eps));
    const s = f32x4.splat(scale);
    for (let i = 0; i < vecEnd; i += 4) {
      const off = (<usize>i) << 2;
      v128.store(dst + off, f32x4.mul(f32x4.mul(v128.load(row + off), s), v128.load(weight + off)));
    }
    for (let i = vecEnd; i < d; i++) {
      const off = (<usize>i) << 2;
      store<f32>(dst + off, load<f32>(row + off) * scale * load<f32>(weight + off));
    }
  }
}

/** Rotary embedding, Hugging Face convention: element i pairs with i + rotaryDim / 2 in each head. */
export function rope(
  x: usize,
  tokens: i32,
  heads: i32,
  headDim: i32,
  rotaryDim: i32,
  cos: usize,
  sin: usize,
  startPos: i32,
): void {
  const half = rotaryDim >> 1;
  const vecEnd = half & ~3;
  const halfBytes = (<usize>half) << 2;
  for (let t = 0; t < tokens; t++) {
    const table = (<usize>(startPos + t) * <usize>half) << 2;
    for (let h = 0; h < heads; h++) {
      const base = x + ((<usize>(t * heads + h) * <usize>headDim) << 2);
      for (let i = 0; i < vecEnd; i += 4) {
        const off = (<usize>i) << 2;
        const c = v128.load(cos + table + off);
        const s = v128.load(sin + table + off);
        const a = v128.load(base + off);
        const b = v128.load(base + halfBytes + off);
        v128.store(base + off, f32x4.sub(f32x4.mul(a, c), f32x4.mul(b, s)));
        v128.store(base + halfBytes + off, f32x4.add(f32x4.mul(b, c), f32x4.mul(a, s)));
      }
      for (let i = vecEnd; i < half; i++) {
        const off = (<usize>i) << 2;
        const c = load<f32>(cos + table + off);
        const s = load<f32>(sin + table + off);
        const a = load<f32>(base + off);
        const b = load<f32>(base + halfBytes + off);
        store<f32>(base + off, a * c - b * s);
        store<f32>(base + halfBytes + off, b * c + a * s);
      }
    }
  }
}

/** gate <- silu(gate) * up. */
export function swiglu(gate: usize, up: usize, n: i32): void {
  const vecEnd = n & ~3;
  const one = f32x4.splat(1);
  for (let i = 0; i < vecEnd; i += 4) {
    const off = (<usize>i) << 2;
    const g = v128.load(gate + off);
    const silu = f32x4.div(g, f32x4.add(one, exp4(f32x4.neg(g))));
    v128.store(gate + off, f32x4.mul(silu, v128.load(up + off)));
  }
  for (let i = vecEnd; i < n; i++) {
    const off = (<usize>i) << 2;
    const g = f32x4.splat(load<f32>(gate + off));
    const silu = f32x4.div(g, f32x4.add(one, exp4(f32x4.neg(g))));
    store<f32>(gate + off, f32x4.extract_lane(silu, 0) * load<f32>(up + off));
  }
}

/** x += y over n elements. */
export function addInPlace(x: usize, y: usize, n: i32): void {
  const vecEnd = n & ~3;
  for (let i = 0; i < vecEnd; i += 4) {
    const off = (<usize>i) << 2;
    v128.store(x + off, f32x4.add(v128.load(x + off), v128.load(y + off)));
  }
  for (let i = vecEnd; i < n; i++) {
    const off = (<usize>i) << 2;
    store<f32>(x + off, load<f32>(x + off) + load<f32>(y + off));
  }
}
