/**
 * One vocabulary of sparsity options for generate, eval, bench and serve: --method, --sparsity, --mask,
 * --prefill, --transform, --profile, and the adaptive mask's --tolerance / --min-sparsity / --max-sparsity.
 */
import { isQuantization, type Quantization, QUANTIZATIONS } from '../kernels/formats.js';
import { createHash } from 'node:crypto';
import {
  type RoutedModel,
  applyAmp,
  isAmpProfileFile,
  readAmpProfile,
  routePrompt,
} from '../amp/amp-profile.js';
import type { Setting } from '../eval/harness.js';
import { fail } from '../errors.js';
import { readInputBytes, SIZE_LIMITS } from '../io/files.js';
import type { Model } from '../model/model.js';
import { applyWina, type SparseModel } from '../sparsity/apply.js';
import { MASKS, METHODS, type Method, type PrefillPolicy, type SparsityConfig } from '../sparsity/config.js';
import type { MaskMode } from '../sparsity/masks.js';
import { profileConfig, readProfile } from '../sparsity/profile.js';
import { orthogonalTransform, quantizeTransformed } from '../sparsity/transform.js';
import { number } from './args.js';
import type { BenchSetting } from '../eval/bench.js';

export const SPARSITY_OPTIONS = {
  method: { type: 'string' },
  sparsity: { type: 'string' },
  mask: { type: 'string' },
  prefill: { type: 'string' },
  transform: { type: 'boolean' },
  profile: { type: 'string' },
  tolerance: { type: 'string' },
  'min-sparsity': { type: 'string' },
  'max-sparsity': { type: 'string' },
} as const;

export const SPARSITY_USAGE =
  '[--method dense|teal|wina|wina-paper|cats] [--sparsity S] [--mask topk|threshold|adaptive] [--prefill all|none|paper] [--transform] [--profile FILE]';

type Values = Record<string, string | boolean | undefined>;

export function parseMethod(value: string): Method {
  if (!(METHODS as readonly string[]).includes(value))
    fail(`unknown method "${value}" (known: ${METHODS.join(', ')})`);
  return value as Method;
}

/** The sparsity config the options ask for, or undefined for a dense run. */
export function sparsityConfigFrom(o: Values, model: Model): SparsityConfig | undefined {
  const sparsity = number(o.sparsity, '--sparsity');
  const prefill = o.prefill as PrefillPolicy | undefined;
  if (prefill !== undefined && !['all', 'none', 'paper'].includes(prefill)) {
    fail(`--prefill must be all, none or paper, got ${prefill}`);
  }
  if (typeof o.profile === 'string') {
    const profile = readProfile(o.profile, model);
    if (o.method !== undefined && o.method !== profile.method) {
      fail(`--method ${o.method} differs from the profile's method ${profile.method}`);
    }
    return profileConfig(profile, { sparsity, prefill: prefill ?? 'all' });
  }
  const adaptiveFlags = ['tolerance', 'min-sparsity', 'max-sparsity'].filter((f) => o[f] !== undefined);
  if (adaptiveFlags.length > 0 && o.mask !== 'adaptive')
    fail(`--${adaptiveFlags[0]} applies to --mask adaptive only`);
  // A sparse mask or sparsity asked for without a method means WINA, never a silent dense run.
  const method =
    o.method === undefined
      ? sparsity || o.mask !== undefined
        ? 'wina'
        : 'dense'
      : parseMethod(o.method as string);
  if (method === 'dense') {
    if (o.mask !== undefined || sparsity) fail('--method dense takes no --mask or --sparsity');
    return undefined;
  }
  const mask = (o.mask ?? 'topk') as MaskMode;
  if (!(MASKS as readonly string[]).includes(mask))
    fail(`--mask must be one of ${MASKS.join(', ')}, got ${mask}`);
  if (mask === 'threshold')
    fail('--mask threshold needs calibrated thresholds: pass --profile from wina calibrate');
  if (mask !== 'adaptive' && sparsity === undefined) fail(`--method ${method} needs --sparsity`);
  const config: SparsityConfig = { method, globalSparsity: sparsity ?? 0, mask, prefill: prefill ?? 'all' };
  if (mask === 'adaptive') {
    config.adaptive = {
      tolerance: number(o.tolerance, '--tolerance') ?? 0.05,
      minSparsity: number(o['min-sparsity'], '--min-sparsity') ?? 0,
      maxSparsity: number(o['max-sparsity'], '--max-sparsity') ?? 0.9,
    };
  }
  return config;
}

/** --quantize as loadModel takes it: with --transform the model loads unquantized and is quantized after it. */
export function quantizeOnLoad(o: Values): Quantization | undefined {
  const q = o.quantize as string | undefined;
  if (q !== undefined && !isQuantization(q))
    fail(`quantize must be one of ${QUANTIZATIONS.join(', ')}, got ${q}`);
  return o.transform ? undefined : q;
}

/**
 * --transform: the orthogonal transform, then --quantize's quantization (see quantizeOnLoad). Returns the
 * FLOPs per token the shortcut rotations add.
 */
export function transformOption(o: Values, model: Model): number {
  if (!o.transform) return 0;
  const { extraFlopsPerToken } = orthogonalTransform(model);
  const q = quantizeOnLoad({ ...o, transform: false });
  if (q) quantizeTransformed(model, q);
  return extraFlopsPerToken;
}

/**
 * Applies the options' transform and sparsity to the model. `sparsity` is undefined for a dense run;
 * `extraFlopsPerToken` counts the transform's shortcut rotations.
 */
export function applySparsityOptions(
  o: Values,
  model: Model,
  promptIds?: readonly number[],
): { sparsity: SparseModel | undefined; extraFlopsPerToken: number; cluster?: number } {
  // The transform changes the weights the column norms are computed from, so it comes first.
  const extraFlopsPerToken = transformOption(o, model);
  if (isAmpProfile(o)) {
    // WINA-AMP: the prompt is routed to its cluster, whose profile then applies.
    if (!promptIds) fail('an AMP profile routes prompts: this command has none (use a single profile)');
    const amp = readAmpOptions(o, model);
    const cluster = routePrompt(amp, model, promptIds);
    const config = profileConfig(amp.clusters[cluster]!.profile, ampOverrides(o, amp.sparsity));
    return { sparsity: applyWina(model, config), extraFlopsPerToken, cluster };
  }
  const config = sparsityConfigFrom(o, model);
  return { sparsity: config ? applyWina(model, config) : undefined, extraFlopsPerToken };
}

/**
 * For a long-running command (serve): installs every cluster's profile of the AMP profile in --profile; each new
 * prompt is routed to its cluster.
 */
export function applyAmpOptions(
  o: Values,
  model: Model,
): { sparsity: RoutedModel; extraFlopsPerToken: number } {
  const extraFlopsPerToken = transformOption(o, model);
  const amp = readAmpOptions(o, model);
  return { sparsity: applyAmp(model, amp, ampOverrides(o, amp.sparsity)), extraFlopsPerToken };
}

/** Whether --profile names a WINA-AMP profile (cluster profiles + router) rather than a single profile. */
export function isAmpProfile(o: Values): boolean {
  return typeof o.profile === 'string' && isAmpProfileFile(o.profile);
}

function readAmpOptions(o: Values, model: Model) {
  const amp = readAmpProfile(o.profile as string, model);
  if (o.method !== undefined && o.method !== amp.method)
    fail(`--method ${o.method} differs from the AMP profile's method ${amp.method}`);
  if (o.mask !== undefined && o.mask !== 'threshold')
    fail(`--mask ${o.mask}: an AMP profile's cluster profiles use calibrated thresholds`);
  return amp;
}

function ampOverrides(o: Values, own: number): { sparsity?: number; prefill: PrefillPolicy } {
  const sparsity = number(o.sparsity, '--sparsity');
  const prefill = (o.prefill ?? 'all') as PrefillPolicy;
  if (!['all', 'none', 'paper'].includes(prefill))
    fail(`--prefill must be all, none or paper, got ${prefill}`);
  return { sparsity: sparsity === own ? undefined : sparsity, prefill };
}

/**
 * eval's grid with an AMP profile: dense (unless --methods leaves it out) and, at each sparsity, every prompt
 * routed to its cluster's profile (re-derived from the cluster's histograms at sparsities other than its own).
 */
export function ampSweepSettings(o: Values, model: Model, sparsities: readonly number[]): Setting[] {
  if (o.transform) fail('--transform changes the weights an AMP profile was calibrated on');
  const amp = readAmpOptions(o, model);
  const methods = ((o.methods as string | undefined) ?? `dense,${amp.method}`).split(',');
  for (const m of methods)
    if (m !== 'dense' && m !== amp.method)
      fail(`--methods: with an AMP profile only dense and ${amp.method} (routed) apply, got ${m}`);
  const digest = createHash('sha256')
    .update(readInputBytes(o.profile as string, 'AMP profile', SIZE_LIMITS.json))
    .digest('hex')
    .slice(0, 24);
  const settings: Setting[] = methods.includes('dense') ? [{ method: 'dense', sparsity: 0 }] : [];
  if (!methods.includes(amp.method)) return settings;
  for (const sparsity of new Set(sparsities.filter((s) => s > 0))) {
    const overrides = ampOverrides({ ...o, sparsity: String(sparsity) }, amp.sparsity);
    settings.push({
      method: `${amp.method}-amp`,
      sparsity,
      custom: { key: { amp: digest, ...overrides }, apply: (m) => applyAmp(m, amp, overrides) },
    });
  }
  return settings;
}

/**
 * The grid of --methods x --sparsity (dense once; sparsities of 0 only for dense), each cell's config built by the
 * shared sparsity options (--profile, --mask, --prefill, adaptive), so eval and bench speak one vocabulary.
 * Without --methods: dense and the profile's method, else dense and wina.
 */
export function sweepSettings(
  o: Record<string, string | boolean | undefined>,
  model: Model,
  sparsities: readonly number[],
): BenchSetting[] {
  const profileMethod = typeof o.profile === 'string' ? readProfile(o.profile, model).method : undefined;
  const methods = parseMethods(
    (o.methods ?? o.method ?? (profileMethod ? `dense,${profileMethod}` : 'dense,wina')) as string,
  );
  const settings: BenchSetting[] = [];
  if (methods.includes('dense')) settings.push({ method: 'dense', sparsity: 0 });
  for (const method of new Set(methods)) {
    if (method === 'dense') continue;
    for (const sparsity of new Set(sparsities.filter((s) => s > 0))) {
      const config = sparsityConfigFrom({ ...o, method, sparsity: String(sparsity) }, model);
      settings.push({ method, sparsity, config });
    }
  }
  return settings;
}

export function parseList(value: string, flag: string): number[] {
  return value.split(',').map((v) => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n < 0 || n >= 1)
      fail(`${flag}: ${JSON.stringify(v)} is not a sparsity in [0, 1)`);
    return n;
  });
}

export function parseMethods(value: string): Method[] {
  return value.split(',').map((m) => {
    if (!(METHODS as readonly string[]).includes(m))
      fail(`--methods: unknown method "${m}" (known: ${METHODS.join(', ')})`);
    return m as Method;
  });
}
