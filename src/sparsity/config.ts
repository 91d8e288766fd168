import { fail } from '../errors.js';
import { PROJECTIONS, type Projection } from '../model/config.js';
import type { AdaptiveOptions, MaskMode } from './masks.js';

export const METHODS = ['dense', 'teal', 'wina', 'wina-paper', 'cats'] as const;
export type Method = (typeof METHODS)[number];
/** all: every prompt token sparse (the fixtures); none: prompt dense; paper: all but the first 1% of tokens. */
export type PrefillPolicy = 'all' | 'none' | 'paper';
export const MASKS = ['topk', 'threshold', 'adaptive'] as const;

/**
 * wina: score |x_i| * ||W[:, i]|| on every projection. wina-paper: what microsoft/wina runs: column norms only on
 * k and gate (Phi-3: the fused qkv and gate_up), |x_i| elsewhere. teal: |x_i|. cats: |SiLU(gate)| of the MLP's
 * intermediate neurons, one mask for up's rows and down's inputs.
 */
export const WEIGHTED: Record<Method, (proj: Projection) => boolean> = {
  dense: () => false,
  teal: () => false,
  wina: () => true,
  'wina-paper': (proj) => proj === 'k' || proj === 'gate',
  cats: () => false,
};

/** Which inputs each projection keeps. Sparsity s keeps k = floor(d * (1 - s)) of d inputs per token. */
export interface SparsityConfig {
  method: Method;
  /** Sparsity of every projection unless overridden. */
  globalSparsity: number;
  /** By type: attention (q, k, v, o) and ffn (gate, up, down). */
  allocation?: { attention?: number; ffn?: number };
  /** Per projection name, e.g. { down: 0.3 }. */
  projections?: Partial<Record<Projection, number>>;
  /** Per layer and projection, e.g. { 0: { q: 0.1 } }: the most specific setting wins. */
  layers?: Record<number, Partial<Record<Projection, number>>>;
  prefill?: PrefillPolicy;
  /** topk (default): k per token; threshold: calibrated score thresholds; adaptive: per-token mass tolerance. */
  mask?: MaskMode;
  /** Per layer and projection, for mask 'threshold' (from a calibration profile). */
  thresholds?: Record<number, Partial<Record<Projection, number>>>;
  adaptive?: AdaptiveOptions;
}

function checkSparsity(value: unknown, where: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value >= 1) {
    fail(`${where} must be a sparsity in [0, 1), got ${JSON.stringify(value)}`);
  }
  return value;
}

function checkProjections(map: Record<string, unknown>, where: string): void {
  for (const [name, value] of Object.entries(map)) {
    if (!(PROJECTIONS as readonly string[]).includes(name)) {
      fail(`${where}: unknown projection "${name}" (known: ${PROJECTIONS.join(', ')})`);
    }
    checkSparsity(value, `${where}.${name}`);
  }
}

export function validateSparsityConfig(c: SparsityConfig, numLayers: number): SparsityConfig {
  if (!(METHODS as readonly string[]).includes(c.method)) {
    fail(`unknown sparsity method "${c.method}" (known: ${METHODS.join(', ')})`);
  }
  checkSparsity(c.globalSparsity, 'sparsity');
  if (c.allocation?.attention !== undefined) checkSparsity(c.allocation.attention, 'allocation.attention');
  if (c.allocation?.ffn !== undefined) checkSparsity(c.allocation.ffn, 'allocation.ffn');
  checkProjections(c.projections ?? {}, 'projections');
  for (const [layer, map] of Object.entries(c.layers ?? {})) {
    const l = Number(layer);
    if (!Number.isInteger(l) || l < 0 || l >= numLayers)
      fail(`layers: layer ${layer} is outside 0..${numLayers - 1}`);
    checkProjections(map, `layers.${layer}`);
  }
  if (c.prefill !== undefined && !['all', 'none', 'paper'].includes(c.prefill)) {
    fail(`prefill must be all, none or paper, got ${JSON.stringify(c.prefill)}`);
  }
  if (c.mask !== undefined && !(MASKS as readonly string[]).includes(c.mask)) {
    fail(`mask must be one of ${MASKS.join(', ')}, got ${JSON.stringify(c.mask)}`);
  }
  if (c.mask === 'threshold') {
    for (let l = 0; l < numLayers; l++) {
      for (const p of PROJECTIONS) {
        const t = c.thresholds?.[l]?.[p];
        const needed = sparsityOf(c, l, p) > 0 && !(c.method === 'cats' && p === 'down'); // CATS: up's mask
        if (needed && (typeof t !== 'number' || !(t >= 0))) {
          fail(
            `mask threshold needs a calibrated threshold for layer ${l} ${p}: pass a profile from wina calibrate`,
          );
        }
      }
    }
  }
  if (c.mask === 'adaptive') {
    const a =
      c.adaptive ?? fail('mask adaptive needs adaptive options { tolerance, minSparsity, maxSparsity }');
    if (!(a.tolerance >= 0 && a.tolerance < 1))
      fail(`adaptive tolerance must be in [0, 1), got ${a.tolerance}`);
    checkSparsity(a.minSparsity, 'adaptive.minSparsity');
    checkSparsity(a.maxSparsity, 'adaptive.maxSparsity');
    if (a.minSparsity > a.maxSparsity) fail('adaptive.minSparsity must not exceed adaptive.maxSparsity');
  }
  return c;
}

const ATTENTION: readonly Projection[] = ['q', 'k', 'v', 'o'];

export function sparsityOf(c: SparsityConfig, layer: number, proj: Projection): number {
  if (c.method === 'dense') return 0;
  if (c.method === 'cats' && proj !== 'up' && proj !== 'down') return 0;
  const byType = ATTENTION.includes(proj) ? c.allocation?.attention : c.allocation?.ffn;
  return c.layers?.[layer]?.[proj] ?? c.projections?.[proj] ?? byType ?? c.globalSparsity;
}
