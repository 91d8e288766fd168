/**
 * GGML's block formats that wina has no kernels for yet, widened to F32 exactly as ggml's dequantize_row_*
 * computes them (ggml-quants.c: the same products in the same order, each rounded to float32), so a model gets
 * llama.cpp's own weights. K-quants hold 256 values per block; Q4_1 / Q5_0 / Q5_1 32.
 */
import { fail } from '../errors.js';
import { f16ToF32 } from '../kernels/formats.js';

const f32 = Math.fround;

export interface BlockFormat {
  name: string;
  block: number;
  bytes: number;
  /** Widens the blocks of `src` into `out` (out.length = blocks * block). */
  widen(src: DataView, out: Float32Array): void;
}

const f16 = (v: DataView, at: number): number => f16ToF32(v.getUint16(at, true));

/** ggml's get_scale_min_k4: the 6-bit scale and minimum of sub-block j from a K-quant block's 12 scale bytes. */
function scaleMin(v: DataView, at: number, j: number): [number, number] {
  const q = (k: number) => v.getUint8(at + k);
  if (j < 4) return [q(j) & 63, q(j + 4) & 63];
  return [(q(j + 4) & 0xf) | ((q(j - 4) >> 6) << 4), (q(j + 4) >> 4) | ((q(j) >> 6) << 4)];
}

const Q4_1: BlockFormat = {
  name: 'Q4_1',
  block: 32,
  bytes: 20,
  widen(v, out) {
    for (let b = 0, y = 0; y < out.length; b += 20, y += 32) {
      const d = f16(v, b);
      const m = f16(v, b + 2);
      for (let j = 0; j < 16; j++) {
        const q = v.getUint8(b + 4 + j);
        out[y + j] = f32(f32((q & 0xf) * d) + m);
        out[y + j + 16] = f32(f32((q >> 4) * d) + m);
      }
    }
  },
};

function q5(withMin: boolean): BlockFormat {
  const bytes = withMin ? 24 : 22;
  return {
    name: withMin ? 'Q5_1' : 'Q5_0',
    block: 32,
    bytes,
    widen(v, out) {
      for (let b = 0, y = 0; y < out.length; b += bytes, y += 32) {
        const d = f16(v, b);
        const m = withMin ? f16(v, b + 2) : 0;
        const hAt = b + (withMin ? 4 : 2);
        const qh = v.getUint32(hAt, true);
        for (let j = 0; j < 16; j++) {
          const q = v.getUint8(hAt + 4 + j);
          const h0 = ((qh >>> j) << 4) & 0x10;
          const h1 = (qh >>> (j + 12)) & 0x10;
          if (withMin) {
            out[y + j] = f32(f32(((q & 0xf) | h0) * d) + m);
            out[y + j + 16] = f32(f32(((q >> 4) | h1) * d) + m);
          } else {
            out[y + j] = f32((((q & 0xf) | h0) - 16) * d);
            out[y + j + 16] = f32((((q >> 4) | h1) - 16) * d);
          }
        }
      }
    },
  };
}

/** Q4_K / Q5_K: 8 sub-blocks of 32 with 6-bit scales and minimums: y = d * sc * q - dmin * m. */
function kQuant(bits: 4 | 5): BlockFormat {
  const bytes = bits === 4 ? 144 : 176;
  return {
    name: `Q${bits}_K`,
    block: 256,
    bytes,
    widen(v, out) {
      for (let b = 0, y = 0; y < out.length; b += bytes) {
        const d = f16(v, b);
        const min = f16(v, b + 2);
        const scales = b + 4;
        const qh = b + 16;
        let ql = bits === 4 ? b + 16 : b + 48;
        for (let j = 0, is = 0, u1 = 1, u2 = 2; j < 256; j += 64, is += 2, ql += 32, u1 <<= 2, u2 <<= 2) {
          const [sc1, m1] = scaleMin(v, scales, is);
          const [sc2, m2] = scaleMin(v, scales, is + 1);
          const d1 = f32(d * sc1);
          const min1 = f32(min * m1);
          const d2 = f32(d * sc2);
          const min2 = f32(min * m2);
          for (let l = 0; l < 32; l++) {
            const high = bits === 5 && v.getUint8(qh + l) & u1 ? 16 : 0;
            out[y++] = f32(f32(d1 * ((v.getUint8(ql + l) & 0xf) + high)) - min1);
          }
          for (let l = 0; l < 32; l++) {
            const high = bits === 5 && v.getUint8(qh + l) & u2 ? 16 : 0;
            out[y++] = f32(f32(d2 * ((v.getUint8(ql + l) >> 4) + high)) - min2);
          }
        }
      }
    },
  };
}

/** Q6_K: 16 sub-blocks of 16 with int8 scales: y = d * sc * (q - 32). */
const Q6_K: BlockFormat = {
  name: 'Q6_K',
  block: 256,
  bytes: 210,
  widen(v, out) {
    for (let b = 0, y = 0; y < out.length; b += 210, y += 256) {
      const d = f16(v, b + 208);
      for (let n = 0; n < 2; n++) {
        const ql = b + n * 64;
        const qh = b + 128 + n * 32;
        const sc = b + 192 + n * 8;
        const at = y + n * 128;
        for (let l = 0; l < 32; l++) {
          const is = l >> 4;
          const h = v.getUint8(qh + l);
          const lo = v.getUint8(ql + l);
          const hi = v.getUint8(ql + l + 32);
          const q1 = ((lo & 0xf) | ((h & 3) << 4)) - 32;
          const q2 = ((hi & 0xf) | (((h >> 2) & 3) << 4)) - 32;
          const q3 = ((lo >> 4) | (((h >> 4) & 3) << 4)) - 32;
          const q4 = ((hi >> 4) | (((h >> 6) & 3) << 4)) - 32;
          const s = (k: number) => f32(d * v.getInt8(sc + is + k));
          out[at + l] = f32(s(0) * q1);
          out[at + l + 32] = f32(s(2) * q2);
          out[at + l + 64] = f32(s(4) * q3);
          out[at + l + 96] = f32(s(6) * q4);
        }
      }
    }
  },
};

/** By GGML type number. */
export const WIDENED: Record<number, BlockFormat> = {
  3: Q4_1,
  6: q5(false),
  7: q5(true),
  12: kQuant(4),
  13: kQuant(5),
  14: Q6_K,
};

export const WIDENED_NAMES = new Set(Object.values(WIDENED).map((f) => f.name));

export function widenBlocks(format: BlockFormat, raw: Uint8Array, count: number): Float32Array {
  if (raw.length !== (count / format.block) * format.bytes)
    fail(`${format.name}: ${raw.length} bytes for ${count} values`);
  const out = new Float32Array(count);
  format.widen(new DataView(raw.buffer, raw.byteOffset, raw.byteLength), out);
  return out;
}
