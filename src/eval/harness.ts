/**
 * The evaluation grid: every task under every sparsity setting (dense once), each (task unit, setting) scored
 * once and cached, then reduced to result rows (task, method, sparsity, metric, value, stderr, achieved
 * sparsity, GFLOPs per token). `validate(model, { benchmark })` is the one-call library form.
 */
import type { Quantization } from '../kernels/formats.js';
import path from 'node:path';
import { fail } from '../errors.js';
import type { Model } from '../model/model.js';
import { applyWina, type SparseModel } from '../sparsity/apply.js';
import { METHODS, type Method, type SparsityConfig, validateSparsityConfig } from '../sparsity/config.js';
import { fingerprint } from '../sparsity/profile.js';
import { orthogonalTransform, quantizeTransformed } from '../sparsity/transform.js';
import { yieldToEventLoop } from '../runtime/platform.js';
import { ResultCache } from './cache.js';
import { achievedSparsity, addCounts, computeShape, gflopsPerToken, type KeptCounts } from './compute.js';
import { macroAverage, meanWithStderr, type MeanWithStderr } from './metrics.js';
import { Scorer, type Usage } from './scoring.js';
import {
  DEFAULT_TASK_OPTIONS,
  PROTOCOLS,
  resolveTask,
  SUBSETS,
  type Task,
  type TaskOptions,
  type UnitScore,
} from './tasks.js';

/** One column of the grid: a label and the sparsity config it applies (none: dense). */
export interface Setting {
  method: string;
  sparsity: number;
  config?: SparsityConfig;
  /**
   * Sparsity that one config cannot express (WINA-AMP: each prompt routed to its cluster's profile): installed by
   * `apply`, identified in the result cache by `key`.
   */
  custom?: { key: unknown; apply: (model: Model) => SparseModel };
}

export interface EvalResult {
  task: string;
  method: string;
  sparsity: number;
  metric: string;
  value: number;
  stderr: number | null;
  achievedSparsity: number;
  gflopsPerToken: number;
  /** Items scored (documents, chunks, questions). */
  n: number;
}

export interface EvalOptions extends Partial<TaskOptions> {
  tasks: string[];
  /** Explicit grid columns; otherwise dense (when listed) plus every other method at every sparsity > 0. */
  settings?: Setting[];
  methods?: Method[];
  sparsities?: number[];
  /** Result cache folder (default .wina-cache/eval in the working directory); false: no cache. */
  cache?: string | false;
  /** Apply the orthogonal transform to the model first (in place) and count its extra FLOPs. */
  transform?: boolean;
  /** With `transform`: quantize the matrices after it (the model is then loaded unquantized). */
  quantizeAfterTransform?: Quantization;
  onProgress?: (done: number, total: number) => void;
}

export interface EvalReport {
  model: string;
  fingerprint: string;
  results: EvalResult[];
  /** Per-subject rows of grouped tasks (MMLU), in the same format. */
  subtasks: EvalResult[];
  /** Results (unit x setting) taken from the cache and computed. */
  cache: { dir: string | null; hits: number; misses: number };
  seconds: number;
}

/** Bumped when a change alters results, so old cache entries are not reused. */
const CACHE_VERSION = 1;

/** Dense once, then every other method at every sparsity above 0 (the bench grid). */
export function gridSettings(methods: readonly Method[], sparsities: readonly number[]): Setting[] {
  for (const m of methods)
    if (!(METHODS as readonly string[]).includes(m))
      fail(`unknown method "${m}" (known: ${METHODS.join(', ')})`);
  for (const s of sparsities)
    if (!(Number.isFinite(s) && s >= 0 && s < 1)) fail(`sparsity ${s} is not in [0, 1)`);
  const out: Setting[] = [];
  if (methods.includes('dense')) out.push({ method: 'dense', sparsity: 0 });
  for (const method of methods) {
    if (method === 'dense') continue;
    for (const sparsity of sparsities)
      if (sparsity > 0) out.push({ method, sparsity, config: { method, globalSparsity: sparsity } });
  }
  return out;
}

function taskOptions(o: Partial<TaskOptions>): TaskOptions {
  const t = {
    ...DEFAULT_TASK_OPTIONS,
    ...Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)),
  } as TaskOptions;
  if (!(PROTOCOLS as readonly string[]).includes(t.protocol))
    fail(`protocol must be ${PROTOCOLS.join(' or ')}, got ${JSON.stringify(t.protocol)}`);
  if (!(SUBSETS as readonly string[]).includes(t.subset))
    fail(`subset must be ${SUBSETS.join(', ')}, got ${JSON.stringify(t.subset)}`);
  if (
    t.limit !== undefined &&
    !(Number.isFinite(t.limit) && t.limit > 0 && (t.limit < 1 || Number.isInteger(t.limit)))
  )
    fail(`limit must be a whole number >= 1 or a fraction in (0, 1), got ${t.limit}`);
  if (t.shots !== undefined && !(Number.isInteger(t.shots) && t.shots >= 0))
    fail(`shots must be a whole number >= 0, got ${t.shots}`);
  if (!(Number.isSafeInteger(t.seed) && t.seed >= 0)) fail(`seed must be a whole number >= 0, got ${t.seed}`);
  return t;
}

interface CellScore {
  score: UnitScore;
  counts: KeptCounts;
  usage: Usage;
  seconds: number;
}

export async function evaluate(model: Model, o: EvalOptions): Promise<EvalReport> {
  const started = performance.now();
  if (o.tasks.length === 0) fail('no tasks given');
  const opts = taskOptions(o);
  const settings = o.settings ?? gridSettings(o.methods ?? ['dense'], o.sparsities ?? []);
  if (settings.length === 0)
    fail('no sparsity settings to evaluate (methods other than dense need a sparsity above 0)');
  for (const s of settings) if (s.config) validateSparsityConfig(s.config, model.config.numLayers);

  const maxLength = model.config.maxPositions;
  const prefix = model.config.bosId ?? model.config.eosIds[0];
  // Every task's data is read (and checked) before anything runs.
  const tasks: Task[] = [...new Set(o.tasks)].map((name) =>
    resolveTask(name, opts, model.tokenizer, maxLength, prefix),
  );

  const extraFlops = o.transform ? orthogonalTransform(model).extraFlopsPerToken : 0;
  if (o.transform && o.quantizeAfterTransform) quantizeTransformed(model, o.quantizeAfterTransform);
  const shape = computeShape(model, extraFlops);
  const print = fingerprint(model);
  const cache =
    o.cache === false ? undefined : new ResultCache(o.cache ?? path.resolve('.wina-cache', 'eval'));
  const label = (s: Setting) => (o.transform ? `${s.method}+transform` : s.method);

  // A unit named twice (mmlu and mmlu_anatomy) is scored once.
  const units = [...new Map(tasks.flatMap((t) => t.units).map((u) => [u.name, u])).values()];
  const total = settings.length * units.reduce((s, u) => s + u.items, 0);
  let done = 0;
  let computed = 0;
  let reused = 0;
  o.onProgress?.(0, total);
  const scores = new Map<string, CellScore>(); // `${setting index}/${unit name}`
  for (const [si, setting] of settings.entries()) {
    const keyOf = (unitKey: Record<string, unknown>) => ({
      version: CACHE_VERSION,
      model: print,
      transform: Boolean(o.transform),
      config: setting.config ?? (setting.custom ? { custom: setting.custom.key } : null),
      unit: unitKey,
    });
    const todo = units.filter((u) => {
      const hit = cache?.get<CellScore>(keyOf(u.key));
      if (!hit) return true;
      reused++;
      scores.set(`${si}/${u.name}`, hit);
      done += u.items;
      o.onProgress?.(done, total);
      return false;
    });
    if (todo.length === 0) continue;
    const applied = setting.custom
      ? setting.custom.apply(model)
      : setting.config
        ? applyWina(model, setting.config)
        : undefined;
    const view = applied ?? model;
    for (const unit of todo) {
      applied?.stats.reset();
      const scorer = new Scorer(view, { slidingWindow: model.config.slidingWindow });
      const t0 = performance.now();
      const score = unit.run({
        scorer,
        tokenizer: model.tokenizer,
        bosId: model.config.bosId,
        eosIds: model.config.eosIds,
        onItem: () => o.onProgress?.(++done, total),
      });
      const cell: CellScore = {
        score,
        counts: {
          kept: Object.fromEntries(applied?.stats.kept ?? []),
          total: Object.fromEntries(applied?.stats.total ?? []),
        },
        usage: { ...scorer.usage },
        seconds: (performance.now() - t0) / 1000,
      };
      scores.set(`${si}/${unit.name}`, cell);
      computed++;
      cache?.set(keyOf(unit.key), cell);
      // Let the event loop breathe between units (signals, progress output).
      await yieldToEventLoop();
    }
  }

  const results: EvalResult[] = [];
  const subtasks: EvalResult[] = [];
  for (const task of tasks) {
    for (const [si, setting] of settings.entries()) {
      const cells = task.units.map((u) => scores.get(`${si}/${u.name}`)!);
      const counts = cells.reduce<KeptCounts>((a, c) => addCounts(a, c.counts), { kept: {}, total: {} });
      const usage = cells.reduce<Usage>(
        (a, c) => ({ tokens: a.tokens + c.usage.tokens, attended: a.attended + c.usage.attended }),
        {
          tokens: 0,
          attended: 0,
        },
      );
      const row = (
        taskName: string,
        metric: string,
        value: number,
        stderr: number | null,
        n: number,
        c = counts,
        u = usage,
      ): EvalResult => ({
        task: taskName,
        method: label(setting),
        sparsity: setting.sparsity,
        metric,
        value,
        stderr: stderr !== null && Number.isFinite(stderr) ? stderr : null,
        achievedSparsity: setting.config || setting.custom ? achievedSparsity(shape.sizes, c) : 0,
        gflopsPerToken: gflopsPerToken(shape, c, u),
        n,
      });
      if (task.group) {
        for (const [i, unit] of task.units.entries()) {
          const c = cells[i]!;
          for (const [metric, m] of Object.entries(c.score.metrics))
            subtasks.push(row(unit.name, metric, m.value, m.stderr, c.score.n, c.counts, c.usage));
        }
        const metrics = Object.keys(cells[0]?.score.samples ?? {});
        for (const metric of metrics) {
          const groups: MeanWithStderr[] = cells.map((c) => meanWithStderr(c.score.samples![metric]!));
          const macro = macroAverage(groups);
          results.push(row(task.name, metric, macro.value, macro.stderr, macro.n));
          const pooled = meanWithStderr(cells.flatMap((c) => c.score.samples![metric]!));
          results.push(row(task.name, `${metric}_micro`, pooled.value, pooled.stderr, pooled.n));
        }
      } else {
        const c = cells[0]!;
        for (const [metric, m] of Object.entries(c.score.metrics))
          results.push(row(task.name, metric, m.value, m.stderr, c.score.n));
      }
    }
  }
  return {
    model: model.info.source,
    fingerprint: print,
    results,
    subtasks,
    cache: { dir: cache?.dir ?? null, hits: reused, misses: computed },
    seconds: (performance.now() - started) / 1000,
  };
}

export interface ValidateOptions extends Omit<EvalOptions, 'tasks'> {
  /** A task name (mmlu, hellaswag, wikitext2, ...) or several. */
  benchmark: string | string[];
}

/**
 * Evaluates a model on a benchmark under each sparsity setting (default: the model dense; pass `methods` and
 * `sparsities`, or `settings`, for a grid). Applies and removes sparsity itself: pass a model without any.
 */
export async function validate(model: Model, o: ValidateOptions): Promise<EvalReport> {
  const { benchmark, ...rest } = o;
  return evaluate(model, { ...rest, tasks: [benchmark].flat() });
}
