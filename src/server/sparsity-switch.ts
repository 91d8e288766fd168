/**
 * One model, many requests, each with its own sparsity, and none leaking into the next.
 *
 * applyWina computes column norms (a pass over every weight) and allocates kernel memory that is never freed,
 * so applying it per request would cost both on every request. Instead each method is applied once and its
 * view kept; a request generates through the view of its method with its own sparsity written into that view's
 * config (the LinearFn reads the config's sparsities on every call, through sparsityOf). Views leave the model
 * itself dense, so nothing needs restoring after a generation.
 */
import { RoutedModel } from '../amp/amp-profile.js';
import type { Model } from '../model/model.js';
import { applyWina, type SparseModel } from '../sparsity/apply.js';
import { type Method, type PrefillPolicy, validateSparsityConfig } from '../sparsity/config.js';

/** What a request asks for: the server's default, dense, or a method at a uniform top-k sparsity. */
export type SparsityChoice = { method: 'dense' } | { method: Exclude<Method, 'dense'>; sparsity: number };

export class SparsitySwitch {
  private readonly byMethod = new Map<Method, SparseModel>();

  /** `defaultView`: the server's default sparsity (undefined: dense). */
  constructor(
    private readonly model: Model,
    private readonly defaultView: SparseModel | undefined,
    private readonly prefill: PrefillPolicy = defaultView?.sparsity.prefill ?? 'all',
  ) {}

  get defaultConfig() {
    return this.defaultView?.sparsity;
  }

  /**
   * The view `choice` asks for (undefined: the server's default; a WINA-AMP default routes the whole prompt to
   * its cluster's view), its statistics fresh; undefined when dense.
   */
  choose(choice: SparsityChoice | undefined, promptIds: readonly number[] = []): SparseModel | undefined {
    let view = this.defaultView;
    if (!choice && view instanceof RoutedModel) view = view.clusterFor(promptIds);
    if (choice) {
      if (choice.method === 'dense') return undefined;
      view = this.forMethod(choice.method);
      const config = { ...view.sparsity, globalSparsity: choice.sparsity };
      validateSparsityConfig(config, this.model.config.numLayers);
      view.sparsity.globalSparsity = choice.sparsity;
    }
    view?.stats.reset();
    return view;
  }

  private forMethod(method: Method): SparseModel {
    let view = this.byMethod.get(method);
    if (!view) {
      view = applyWina(this.model, { method, globalSparsity: 0, mask: 'topk', prefill: this.prefill });
      this.byMethod.set(method, view);
    }
    return view;
  }
}
