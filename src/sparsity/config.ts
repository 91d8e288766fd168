import { fail } from '../io/errors.js';
import { PROJECTIONS, type Projection } from '../model/config.js';

export const METHODS = ['dense', 'teal', 'wina', 'wina-paper'] as const;
export type Method = (typeof METHODS)[number];
export type PrefillPolicy = 'all' | 'none';

/**
 * wina: score |x_i| * ||W[:, i]|| on every projection. wina-paper: what microsoft/wina runs: column norms only on
 * k and gate (Phi-3: the fused qkv and gate_up), |x_i| elsewhere. teal: |x_i|.
 */
export const WEIGHTED: Record<Method, (proj: Projection) => boolean> = {
  dense: () => false,
  teal: () => false,
  wina: () => true,
  'wina-paper': (proj) => proj === 'k' || proj === 'gate',
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
  /** Sparsify the prompt's tokens too ('all', as the reference fixtures) or only decoded tokens ('none'). */
  prefill?: PrefillPolicy;
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
  if (c.prefill !== undefined && c.prefill !== 'all' && c.prefill !== 'none') {
    fail(`prefill must be all or none, got ${JSON.stringify(c.prefill)}`);
  }
  return c;
}

const ATTENTION: readonly Projection[] = ['q', 'k', 'v', 'o'];

export function sparsityOf(c: SparsityConfig, layer: number, proj: Projection): number {
  if (c.method === 'dense') return 0;
  const byType = ATTENTION.includes(proj) ? c.allocation?.attention : c.allocation?.ffn;
  return c.layers?.[layer]?.[proj] ?? c.projections?.[proj] ?? byType ?? c.globalSparsity;
}
