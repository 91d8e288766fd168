/**
 * One model, many requests, each with its own sparsity, and none leaking into the next.
 *
 * applyWina computes column norms (a pass over every weight) and allocates kernel memory that is never freed,
 * so applying it per request would cost both on every request. Instead each method is applied once, its sparse
 * LinearFn kept aside, and a request installs it for its generation with its own sparsity written into that
 * application's config (the LinearFn reads the config's sparsities on every call, through sparsityOf). After
 * the generation the model is dense again; the next request installs what it asks for.
 */
import type { AppliedAmp } from '../amp/amp-profile.js';
import type { Model } from '../model/model.js';
import type { LinearFn } from '../model/transformer.js';
import { type AppliedSparsity, applyWina } from '../sparsity/apply.js';
import { type Method, type PrefillPolicy, validateSparsityConfig } from '../sparsity/config.js';

function isRouted(a: AppliedSparsity): a is AppliedAmp {
  return typeof (a as Partial<AppliedAmp>).route === 'function';
}

/** What a request asks for: the server's default, dense, or a method at a uniform top-k sparsity. */
export type SparsityChoice = { method: 'dense' } | { method: Exclude<Method, 'dense'>; sparsity: number };

interface Installable {
  applied: AppliedSparsity;
  linear: LinearFn;
}

export class SparsitySwitch {
  private readonly dense: LinearFn;
  private readonly defaultSetting: Installable | undefined;
  private readonly byMethod = new Map<Method, Installable>();

  /** `applied`: the server's default sparsity, currently installed on the model (undefined: dense). */
  constructor(
    private readonly model: Model,
    applied: AppliedSparsity | undefined,
    private readonly prefill: PrefillPolicy = applied?.config.prefill ?? 'all',
  ) {
    const transformer = model.transformer;
    this.defaultSetting = applied && { applied, linear: transformer.linear };
    applied?.remove();
    this.dense = transformer.linear;
  }

  get defaultConfig() {
    return this.defaultSetting?.applied.config;
  }

  /**
   * Installs `choice` (undefined: the server's default) with fresh statistics and returns its application
   * (undefined when dense). Call restore() when the generation ends.
   */
  install(
    choice: SparsityChoice | undefined,
    promptIds: readonly number[] = [],
  ): AppliedSparsity | undefined {
    const transformer = this.model.transformer;
    transformer.linear = this.dense;
    let setting = this.defaultSetting;
    // A WINA-AMP default routes each prompt to its cluster's sparse projections.
    if (!choice && setting && isRouted(setting.applied)) setting.applied.route(promptIds);
    if (choice) {
      if (choice.method === 'dense') return undefined;
      setting = this.forMethod(choice.method);
      const config = { ...setting.applied.config, globalSparsity: choice.sparsity };
      validateSparsityConfig(config, this.model.config.numLayers);
      setting.applied.config.globalSparsity = choice.sparsity;
    }
    if (!setting) return undefined;
    setting.applied.stats.reset();
    transformer.linear = setting.linear;
    return setting.applied;
  }

  restore(): void {
    this.model.transformer.linear = this.dense;
  }

  private forMethod(method: Method): Installable {
    let setting = this.byMethod.get(method);
    if (!setting) {
      const transformer = this.model.transformer;
      // Applied on the dense model, so the application's remove() and its dense fallback are the dense LinearFn.
      transformer.linear = this.dense;
      const applied = applyWina(this.model, {
        method,
        globalSparsity: 0,
        mask: 'topk',
        prefill: this.prefill,
      });
      setting = { applied, linear: transformer.linear };
      transformer.linear = this.dense;
      this.byMethod.set(method, setting);
    }
    return setting;
  }
}
