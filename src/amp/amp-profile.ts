/**
 * WINA-AMP profile files: one WINA profile per cluster plus the router that picks a cluster from a prompt. What
 * `wina amp run` writes (amp.json) and generate / eval (and, through `routeConfig`, the server) load with
 * --profile, routing each prompt to its cluster's profile at run time.
 */
import fs from 'node:fs';
import { fail } from '../errors.js';
import type { Model } from '../model/model.js';
import { applyWina, SparseModel, SparsityStats } from '../sparsity/apply.js';
import type { SparsityConfig } from '../sparsity/config.js';
import { checkProfile, fingerprint, type Profile, profileConfig } from '../sparsity/profile.js';
import {
  type FeatureSource,
  parseFeatureSource,
  promptFeatures,
  route,
  type Router,
  ROUTER_KINDS,
} from './router.js';
import { isRegularFile, readInputJson, writeOutputFile } from '../io/files.js';

export const AMP_PROFILE_FORMAT = 'wina-amp-profile';

export interface AmpCluster {
  id: number;
  /** Training samples in the cluster, and how many of each label. */
  size: number;
  labels: Record<string, number>;
  profile: Profile;
}

export interface AmpProfile {
  format: typeof AMP_PROFILE_FORMAT;
  version: 1;
  model: Profile['model'];
  method: Profile['method'];
  /** Target sparsity the cluster profiles were calibrated for. */
  sparsity: number;
  router: Router;
  clusters: AmpCluster[];
  /** Where it came from (training data, options). */
  calibration: { data: string; samples: number; seqLen: number };
}

export function writeAmpProfile(file: string, p: AmpProfile): void {
  writeOutputFile(file, JSON.stringify(p), '--out');
}

/** Whether a file is an AMP profile (its "format"), without judging it otherwise. */
export function isAmpProfileFile(file: string): boolean {
  if (!isRegularFile(file)) return false;
  const fd = fs.openSync(file, 'r');
  try {
    const head = Buffer.alloc(200);
    const n = fs.readSync(fd, head, 0, head.length, 0);
    return /^\s*\{\s*"format"\s*:\s*"wina-amp-profile"/.test(head.toString('utf8', 0, n));
  } finally {
    fs.closeSync(fd);
  }
}

const isNumberArray = (v: unknown, n: number) =>
  Array.isArray(v) &&
  v.length === n &&
  v.every((x) => typeof x === 'number' && (Number.isFinite(x) || x === Infinity));

/** Reads and checks an AMP profile; with a model, also that it (and every cluster profile) was made for it. */
export function readAmpProfile(file: string, model?: Model): AmpProfile {
  return checkAmpProfile(readInputJson(file, 'AMP profile'), file, model);
}

export function checkAmpProfile(value: unknown, file: string, model?: Model): AmpProfile {
  const p = value as AmpProfile;
  const where = `AMP profile ${file}`;
  if (p?.format !== AMP_PROFILE_FORMAT)
    fail(`${file} is not an AMP profile (no "format": "${AMP_PROFILE_FORMAT}")`);
  if (p.version !== 1) fail(`${where} has version ${p.version}; this wina reads version 1`);
  if (!Array.isArray(p.clusters) || p.clusters.length === 0) fail(`${where} has no clusters`);
  const r = p.router;
  if (typeof r !== 'object' || r === null) fail(`${where} has no router`);
  if (!(ROUTER_KINDS as readonly string[]).includes(r.kind))
    fail(`${where}: router kind must be one of ${ROUTER_KINDS.join(', ')}, got ${JSON.stringify(r.kind)}`);
  if (r.clusters !== p.clusters.length)
    fail(`${where}: the router chooses among ${r.clusters} clusters but the file has ${p.clusters.length}`);
  const d = Array.isArray(r.mean) ? r.mean.length : 0;
  if (d === 0 || !isNumberArray(r.mean, d) || !isNumberArray(r.std, d))
    fail(`${where}: router mean and std must be equal-length lists of numbers`);
  if (
    r.kind === 'centroid' &&
    !(
      Array.isArray(r.centroids) &&
      r.centroids.length === r.clusters &&
      r.centroids.every((c) => isNumberArray(c, d))
    )
  )
    fail(`${where}: a centroid router needs ${r.clusters} centroids of ${d} numbers`);
  if (
    r.kind === 'softmax' &&
    !(
      Array.isArray(r.weights) &&
      r.weights.length === r.clusters &&
      r.weights.every((w) => isNumberArray(w, d)) &&
      isNumberArray(r.bias, r.clusters)
    )
  )
    fail(
      `${where}: a softmax router needs ${r.clusters} weight rows of ${d} numbers and ${r.clusters} biases`,
    );
  if (model) {
    if (p.model?.fingerprint !== fingerprint(model))
      fail(
        `${where} was made for another model (${p.model?.architecture ?? 'unknown'}, fingerprint ${p.model?.fingerprint}), not ${model.info.source}`,
      );
    const source = parseFeatureSource(String(r.source), model.config.numLayers);
    if (d !== model.config.hiddenSize)
      fail(
        `${where}: router features have ${d} numbers, the model's hidden size is ${model.config.hiddenSize}`,
      );
    r.source = source;
  }
  p.clusters.forEach((c, i) => {
    if (c?.id !== i) fail(`${where}: cluster ${i} has id ${JSON.stringify(c?.id)}`);
    checkProfile(c.profile, `cluster ${i} of ${where}`, model);
  });
  return p;
}

/** The cluster a prompt routes to. */
export function routePrompt(amp: AmpProfile, model: Model, promptIds: readonly number[]): number {
  return route(amp.router, promptFeatures(model, promptIds, amp.router.source as FeatureSource));
}

/** The config of each cluster (its profile's, or re-derived at another sparsity from its histograms). */
export function clusterConfigs(
  amp: AmpProfile,
  overrides: { sparsity?: number; prefill?: SparsityConfig['prefill'] } = {},
): SparsityConfig[] {
  return amp.clusters.map((c) => profileConfig(c.profile, overrides));
}

/**
 * The sparsity config for one prompt: its cluster's profile. What a server calls per request before applyWina.
 */
export function routeConfig(
  amp: AmpProfile,
  model: Model,
  promptIds: readonly number[],
  overrides: { sparsity?: number; prefill?: SparsityConfig['prefill'] } = {},
): SparsityConfig {
  return profileConfig(amp.clusters[routePrompt(amp, model, promptIds)]!.profile, overrides);
}

/**
 * The model seen through every cluster's sparse projections, routing each new sequence (a forward from an empty
 * cache: a prompt, a perplexity window) to its cluster's; continuations of that sequence (decode steps, choices
 * after a shared context) keep it. Every cluster counts into one set of stats; `sparsity` is the first cluster's.
 */
export class RoutedModel extends SparseModel {
  /** Clusters chosen so far, one per sequence started. */
  readonly routed: number[] = [];
  private current = 0;

  constructor(
    base: Model,
    readonly amp: AmpProfile,
    readonly clusters: SparseModel[],
    stats: SparsityStats,
  ) {
    super(
      base,
      {
        linear: (layer, proj, lin, x, tokens, y) =>
          this.clusters[this.current]!.linear(layer, proj, lin, x, tokens, y),
        onNewSequence: (ids) => this.route(ids),
      },
      clusters[0]!.sparsity,
      stats,
    );
  }

  /** Routes `promptIds` now (they start a sequence) and returns the cluster. */
  route(promptIds: readonly number[]): number {
    this.current = routePrompt(this.amp, this, promptIds);
    this.routed.push(this.current);
    return this.current;
  }

  /**
   * The view of the cluster `promptIds` routes to, for callers that run a prompt in pieces (the server prefills
   * in chunks: the forward hook would see the first chunk only).
   */
  clusterFor(promptIds: readonly number[]): SparseModel {
    return this.clusters[this.route(promptIds)]!;
  }
}

export function applyAmp(
  model: Model,
  amp: AmpProfile,
  overrides: { sparsity?: number; prefill?: SparsityConfig['prefill'] } = {},
): RoutedModel {
  const stats = new SparsityStats();
  const clusters = clusterConfigs(amp, overrides).map((config) => applyWina(model, config, { stats }));
  return new RoutedModel(model, amp, clusters, stats);
}
