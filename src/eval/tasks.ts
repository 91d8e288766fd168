/**
 * The evaluation tasks, each cut into units (one per MMLU subject, one for every other task): a unit knows its
 * items, the part of the cache key that identifies its data and options, and how to score itself with a Scorer.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fail } from '../errors.js';
import { sharedPath } from '../io/paths.js';
import type { TextTokenizer } from '../tokenizer/tokenizer.js';
import {
  type ChoiceItem,
  type Gsm8kItem,
  gsm8kPrompt,
  mmluPrompt,
  mmluSubjects,
  readChoiceJsonl,
  readGsm8k,
  readHellaswag,
  readMmluCsv,
  readStories,
  readText,
  readTextDocuments,
  type TextDocument,
  toLf,
  wikitextDetokenize,
  wikitextDocuments,
} from './data.js';
import {
  gsm8kExactMatch,
  meanWithStderr,
  type NllTotals,
  perplexityMetrics,
  scoreChoiceItem,
  utf8Bytes,
  wordCount,
} from './metrics.js';
import { chunkedWindows, rollingWindows, type Scorer, type Window } from './scoring.js';
import { seededRandom } from '../io/random.js';

export const PROTOCOLS = ['rolling', 'chunked'] as const;
export type Protocol = (typeof PROTOCOLS)[number];
export const SUBSETS = ['first', 'spread', 'random'] as const;
export type Subset = (typeof SUBSETS)[number];

export interface TaskOptions {
  /** Perplexity protocol (default rolling). */
  protocol: Protocol;
  /** rolling: tokens predicted per window after the first (lm-eval: the maximum length). */
  stride?: number;
  /** Few-shot examples for mmlu (from dev, default 0) and gsm8k (from train, default 5). */
  shots?: number;
  /** Items per task (per MMLU subject, as lm-eval's --limit); below 1: a fraction. */
  limit?: number;
  /** Which items a limit keeps: the first ones (lm-eval), evenly spaced ones, or a seeded random sample. */
  subset: Subset;
  /** Seed of the random subset and of GSM8K's exemplar draws (lm-eval's fewshot seed is 1234). */
  seed: number;
  /** Prefix BOS to multiple-choice and generation contexts (default true; lm-eval's add_bos_token). */
  bos: boolean;
  /** GSM8K: new tokens at most (lm-eval's max_gen_toks, 256). */
  maxTokens: number;
}

export const DEFAULT_TASK_OPTIONS: TaskOptions = {
  protocol: 'rolling',
  subset: 'first',
  seed: 1234,
  bos: true,
  maxTokens: 256,
};

/** What a unit needs from the model being evaluated. */
export interface UnitContext {
  scorer: Scorer;
  tokenizer: TextTokenizer;
  bosId: number | undefined;
  eosIds: number[];
  /** Called after each item. */
  onItem: () => void;
}

export interface MetricValue {
  value: number;
  /** null where lm-eval gives none (perplexities) or below two items. */
  stderr: number | null;
}

/** What a unit produces (cached as JSON). */
export interface UnitScore {
  n: number;
  metrics: Record<string, MetricValue>;
  /** Per-item values of mean metrics (acc, acc_norm, exact_match), for pooled group averages. */
  samples?: Record<string, number[]>;
  totals?: NllTotals;
}

export interface Unit {
  /** Name in the results (e.g. piqa, mmlu_anatomy). */
  name: string;
  items: number;
  /** Identifies the data and the options that change this unit's result. */
  key: Record<string, unknown>;
  run(ctx: UnitContext): UnitScore;
}

export interface Task {
  name: string;
  kind: 'perplexity' | 'choice' | 'generate';
  units: Unit[];
  /** Group metrics over the units' scores (MMLU's average); single-unit tasks report their unit's metrics. */
  group?: boolean;
}

export const MC_TASKS: Record<string, { file: string; suffix?: string }> = {
  piqa: { file: 'piqa.jsonl', suffix: 'Answer:' },
  arc_easy: { file: 'arc_easy.jsonl', suffix: '\nAnswer:' },
  arc_challenge: { file: 'arc_challenge.jsonl', suffix: '\nAnswer:' },
  openbookqa: { file: 'openbook_qa.jsonl' },
  copa: { file: 'copa.jsonl' },
  siqa: { file: 'siqa.jsonl' },
  boolq: { file: 'boolq.jsonl', suffix: '\nAnswer:' },
};

export const TASK_NAMES = [
  'wikitext2',
  'tinystories',
  'hellaswag',
  ...Object.keys(MC_TASKS),
  'mmlu',
  'mmlu_<subject>',
  'gsm8k',
] as const;

function digest(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex').slice(0, 24);
}

/** Indices of the items a limit keeps, in their original order. */
export function selectIndices(count: number, o: Pick<TaskOptions, 'limit' | 'subset' | 'seed'>): number[] {
  const all = Array.from({ length: count }, (_, i) => i);
  if (o.limit === undefined) return all;
  const n = o.limit < 1 ? Math.ceil(count * o.limit) : Math.min(count, Math.floor(o.limit));
  if (n >= count) return all;
  if (o.subset === 'first') return all.slice(0, n);
  if (o.subset === 'spread') return Array.from({ length: n }, (_, i) => Math.floor((i * count) / n));
  const rnd = seededRandom(o.seed);
  for (let i = count - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [all[i], all[j]] = [all[j]!, all[i]!];
  }
  return all.slice(0, n).sort((a, b) => a - b);
}

function select<T>(items: T[], o: TaskOptions): { item: T; index: number }[] {
  return selectIndices(items.length, o).map((index) => ({ item: items[index]!, index }));
}

/** The limit options as they enter a cache key (the seed only matters for a random subset). */
function limitKey(o: TaskOptions): Record<string, unknown> {
  return {
    limit: o.limit ?? null,
    subset: o.limit === undefined ? null : o.subset,
    seed: o.subset === 'random' ? o.seed : null,
  };
}

/**
 * lm-eval's context / continuation encoding (TemplateLM._encode_pair): trailing whitespace of the context moves
 * to the continuation; the continuation's tokens are those of encode(context + continuation) past the length of
 * encode(context). No special tokens; the context is prefixed by BOS when `prefix` is given, and an empty
 * context becomes the prefix token (BOS, else EOS) as lm-eval does.
 */
export function encodeChoices(
  tokenizer: TextTokenizer,
  context: string,
  continuations: readonly string[],
  prefix: number | undefined,
  fallbackPrefix: number | undefined,
): { context: number[]; continuations: number[][] } {
  const encode = (s: string) => tokenizer.encode(s, { addSpecial: false });
  const spaces = context.length - context.trimEnd().length;
  const ctx = context.slice(0, context.length - spaces);
  const moved = context.slice(context.length - spaces);
  let ctxIds: number[];
  let conts: number[][];
  if (context === '') {
    ctxIds = [];
    conts = continuations.map((c) => encode(c));
  } else {
    ctxIds = encode(ctx);
    conts = continuations.map((c) => encode(ctx + moved + c).slice(ctxIds.length));
  }
  if (prefix !== undefined) ctxIds = [prefix, ...ctxIds];
  if (ctxIds.length === 0) {
    const p = prefix ?? fallbackPrefix;
    if (p === undefined) fail('an empty context needs a BOS or EOS token to start from');
    ctxIds = [p];
  }
  return { context: ctxIds, continuations: conts };
}

/** A multiple-choice item as lm-eval scores it: each choice after the context, with the target delimiter " ". */
export function encodeChoiceItem(
  tokenizer: TextTokenizer,
  item: ChoiceItem,
  prefix: number | undefined,
  fallbackPrefix: number | undefined,
): { context: number[]; continuations: number[][] } {
  return encodeChoices(
    tokenizer,
    item.context,
    item.choices.map((c) => ` ${c}`),
    prefix,
    fallbackPrefix,
  );
}

function choiceUnit(
  name: string,
  all: ChoiceItem[],
  o: TaskOptions,
  extraKey: Record<string, unknown> = {},
  /** acc_norm too (MMLU's one-letter choices all have length 1: lm-eval reports acc only). */
  norm = true,
): Unit {
  const picked = select(all, o);
  // Tokenized once, on the first run, for every sparsity setting of the grid.
  let encoded: ReturnType<typeof encodeChoices>[] | undefined;
  return {
    name,
    items: picked.length,
    key: {
      task: name,
      kind: 'choice',
      data: digest(picked.map((p) => p.item)),
      bos: o.bos,
      ...extraKey,
      ...limitKey(o),
    },
    run(ctx) {
      const acc: number[] = [];
      const accNorm: number[] = [];
      encoded ??= picked.map(({ item }) =>
        encodeChoiceItem(ctx.tokenizer, item, o.bos ? ctx.bosId : undefined, ctx.bosId ?? ctx.eosIds[0]),
      );
      for (const [i, { item }] of picked.entries()) {
        const enc = encoded[i]!;
        const scores = ctx.scorer.continuations(enc.context, enc.continuations);
        const r = scoreChoiceItem(
          scores.map((s, i) => ({ loglikelihood: s.loglikelihood, text: item.choices[i]! })),
          item.gold,
        );
        acc.push(r.acc);
        accNorm.push(r.accNorm);
        ctx.onItem();
      }
      const metrics: Record<string, MetricValue> = { acc: stat(acc) };
      const samples: Record<string, number[]> = { acc };
      if (norm) {
        metrics.acc_norm = stat(accNorm);
        samples.acc_norm = accNorm;
      }
      return { n: acc.length, metrics, samples };
    },
  };
}

function stat(values: number[]): MetricValue {
  const m = meanWithStderr(values);
  return { value: m.value, stderr: Number.isFinite(m.stderr) ? m.stderr : null };
}

function perplexityUnit(
  name: string,
  docs: TextDocument[],
  o: TaskOptions,
  tokenizer: TextTokenizer,
  maxLength: number,
  prefix: number | undefined,
): Unit {
  if (prefix === undefined)
    fail(`${name}: the model has neither a BOS nor an EOS token to start documents with`);
  const encode = (text: string) => tokenizer.encode(text, { addSpecial: false });
  let windows: Window[][];
  let counted: TextDocument[] | undefined;
  let stride: number | null = null;
  if (o.protocol === 'chunked') {
    // Items are chunks (over all documents); words and bytes only when every chunk is scored.
    const chunks = docs.flatMap((d) => chunkedWindows(encode(d.text), prefix, maxLength - 1));
    const picked = select(chunks, o);
    windows = picked.map((p) => [p.item]);
    counted = picked.length === chunks.length ? docs : undefined;
  } else {
    stride = o.stride ?? maxLength;
    if (!Number.isInteger(stride) || stride < 1 || stride > maxLength)
      fail(`--stride must be a whole number in 1..${maxLength} (the model's context), got ${stride}`);
    const picked = select(docs, o);
    counted = picked.map((p) => p.item);
    windows = counted.map((d) => rollingWindows(encode(d.text), prefix, maxLength, maxLength - stride! + 1));
  }
  // Nothing to score would print a NaN perplexity and exit 0: say so instead.
  if (!windows.some((doc) => doc.length > 0)) fail(`${name} has no text to score (an empty file or folder?)`);
  const words = counted?.reduce((s, d) => s + wordCount(d.original), 0) ?? 0;
  const bytes = counted?.reduce((s, d) => s + utf8Bytes(d.original), 0) ?? 0;
  return {
    name,
    items: windows.length,
    key: {
      task: name,
      kind: 'perplexity',
      protocol: o.protocol,
      stride,
      maxLength,
      prefix,
      data: digest(windows),
      ...limitKey(o),
    },
    run(ctx) {
      let nll = 0;
      let tokens = 0;
      for (const group of windows) {
        for (const w of group) {
          nll -= ctx.scorer.scoreWindow(w).loglikelihood;
          tokens += w.targets.length;
        }
        ctx.onItem();
      }
      const totals: NllTotals = { nll, tokens, words, bytes };
      const m = perplexityMetrics(totals);
      const metrics: Record<string, MetricValue> = {
        token_perplexity: { value: m.token_perplexity, stderr: null },
      };
      if (counted) {
        metrics.word_perplexity = { value: m.word_perplexity, stderr: null };
        metrics.byte_perplexity = { value: m.byte_perplexity, stderr: null };
        metrics.bits_per_byte = { value: m.bits_per_byte, stderr: null };
      }
      return { n: windows.length, metrics, totals };
    },
  };
}

/** GSM8K's test questions, and its train split when exemplars are drawn from it (shots > 0). */
export function readGsm8kData(shots: number): { test: Gsm8kItem[]; train: Gsm8kItem[] } {
  const test = readGsm8k(sharedPath('data', 'gsm8k', 'test.jsonl'));
  const train = shots > 0 ? readGsm8k(sharedPath('data', 'gsm8k', 'train.jsonl')) : [];
  return { test, train };
}

/**
 * The prompt of GSM8K test item `index` with `shots` exemplars from train. lm-eval draws the exemplars at random
 * (fewshot seed); here each test item has its own seeded draw, so its prompt does not depend on which other
 * items a limit or a split keeps.
 */
export function gsm8kFewShotPrompt(
  item: Gsm8kItem,
  index: number,
  train: readonly Gsm8kItem[],
  shots: number,
  seed: number,
): string {
  const rnd = seededRandom((seed * 1000003 + index) >>> 0);
  const chosen = new Set<number>();
  while (chosen.size < shots) chosen.add(Math.floor(rnd() * train.length));
  return gsm8kPrompt(
    item,
    [...chosen].map((i) => train[i]!),
  );
}

function gsm8kUnit(o: TaskOptions, maxLength: number): Unit {
  const shots = o.shots ?? 5;
  const { test, train } = readGsm8kData(shots);
  if (shots > train.length && shots > 0)
    fail(`--shots ${shots} exceeds the ${train.length} GSM8K train examples`);
  if (!(Number.isInteger(o.maxTokens) && o.maxTokens >= 1 && o.maxTokens < maxLength))
    fail(`--max-tokens must be a whole number in 1..${maxLength - 1}, got ${o.maxTokens}`);
  const picked = select(test, o).map(({ item, index }) => ({
    item,
    prompt: gsm8kFewShotPrompt(item, index, train, shots, o.seed),
  }));
  const stops = ['Question:', '\n\n'];
  return {
    name: 'gsm8k',
    items: picked.length,
    key: {
      task: 'gsm8k',
      kind: 'generate',
      shots,
      maxTokens: o.maxTokens,
      bos: o.bos,
      seed: o.seed,
      data: digest(picked.map((p) => p.prompt)),
      ...limitKey(o),
    },
    run(ctx) {
      const em: number[] = [];
      for (const { item, prompt } of picked) {
        const ids = ctx.tokenizer.encode(prompt, { addSpecial: false });
        if (o.bos && ctx.bosId !== undefined) ids.unshift(ctx.bosId);
        const text = greedyUntil(ctx, ids.slice(-(maxLength - o.maxTokens)), o.maxTokens, stops);
        em.push(gsm8kExactMatch(text, item.answer));
        ctx.onItem();
      }
      return { n: em.length, metrics: { exact_match: stat(em) }, samples: { exact_match: em } };
    },
  };
}

/** Greedy decoding until EOS, a stop string or maxTokens; the text is cut before the first stop string. */
export function greedyUntil(
  ctx: UnitContext,
  prompt: number[],
  maxTokens: number,
  stops: readonly string[],
): string {
  const { scorer } = ctx;
  const vocab = scorer.model.config.vocabSize;
  const cache = scorer.model.newCache(prompt.length + maxTokens);
  const out: number[] = [];
  let text = '';
  try {
    let logits = scorer.forward(prompt, cache, true);
    for (let n = 0; n < maxTokens; n++) {
      let best = 0;
      for (let i = 1; i < vocab; i++) if (logits[i]! > logits[best]!) best = i;
      if (ctx.eosIds.includes(best)) break;
      out.push(best);
      text = ctx.tokenizer.decode(out, { skipSpecial: true });
      if (stops.some((s) => text.includes(s))) break;
      if (cache.length >= scorer.maxLength) break;
      logits = scorer.forward([best], cache, true);
    }
  } finally {
    cache.release();
  }
  for (const s of stops) text = text.split(s)[0]!;
  return text;
}

/** The items of one multiple-choice unit: a whole task's (piqa) or one MMLU subject's (mmlu_anatomy). */
export interface ChoiceUnitItems {
  /** The unit's name in results. */
  name: string;
  /** MMLU: the subject; absent for single-unit tasks. */
  subject?: string;
  items: ChoiceItem[];
}

/**
 * Where a multiple-choice task name (piqa, hellaswag, mmlu, mmlu_<subject>, ...) becomes its data files and
 * prompts, for `wina eval` and WINA-AMP alike; undefined for names that are not multiple-choice tasks. MMLU
 * prompts start with `mmluShots` dev examples.
 */
export function choiceTaskItems(name: string, mmluShots: number): ChoiceUnitItems[] | undefined {
  const mc = MC_TASKS[name];
  if (mc) return [{ name, items: readChoiceJsonl(sharedPath('data', 'mc', mc.file), mc.suffix) }];
  if (name === 'hellaswag')
    return [{ name, items: readHellaswag(sharedPath('data', 'hellaswag', 'hellaswag_val.txt')) }];
  if (name === 'mmlu') return mmluItems(mmluSubjects(sharedPath('data', 'mmlu')), mmluShots);
  if (name.startsWith('mmlu_')) {
    const subject = name.slice('mmlu_'.length);
    const subjects = mmluSubjects(sharedPath('data', 'mmlu'));
    if (!subjects.includes(subject))
      fail(`unknown MMLU subject "${subject}" (known: ${subjects.join(', ')})`);
    return mmluItems([subject], mmluShots);
  }
  return undefined;
}

function mmluItems(subjects: string[], shots: number): ChoiceUnitItems[] {
  const root = sharedPath('data', 'mmlu');
  return subjects.map((subject) => {
    const test = readMmluCsv(path.join(root, 'test', `${subject}_test.csv`));
    const dev = shots > 0 ? readMmluCsv(path.join(root, 'dev', `${subject}_dev.csv`)) : [];
    if (shots > dev.length)
      fail(`--shots ${shots} exceeds the ${dev.length} dev examples of MMLU ${subject}`);
    const items: ChoiceItem[] = test.map((q) => ({
      context: mmluPrompt(subject, q, dev.slice(0, shots)),
      choices: ['A', 'B', 'C', 'D'],
      gold: q.answer,
    }));
    return { name: `mmlu_${subject}`, subject, items };
  });
}

/** Resolves task names (or paths of text files / folders / .jsonl files) into tasks; every data file is read. */
export function resolveTask(
  name: string,
  o: TaskOptions,
  tokenizer: TextTokenizer,
  maxLength: number,
  prefix: number | undefined,
): Task {
  const mmluShots = o.shots ?? 0;
  const choices = choiceTaskItems(name, mmluShots);
  if (choices) {
    const units = choices.map((c) =>
      c.subject === undefined
        ? choiceUnit(c.name, c.items, o)
        : choiceUnit(c.name, c.items, o, { shots: mmluShots }, false),
    );
    return name === 'mmlu' ? { name, kind: 'choice', group: true, units } : { name, kind: 'choice', units };
  }
  switch (name) {
    case 'gsm8k':
      return { name, kind: 'generate', units: [gsm8kUnit(o, maxLength)] };
    case 'wikitext':
    case 'wikitext2': {
      const raw = readText(sharedPath('data', 'wikitext-2-raw', 'wiki.test.raw'));
      // rolling: lm-eval's documents, detokenized, counted before detokenization; chunked: the whole text.
      const docs =
        o.protocol === 'chunked'
          ? [{ text: toLf(raw), original: toLf(raw) }]
          : wikitextDocuments(raw).map((page) => ({ text: wikitextDetokenize(page), original: page }));
      return {
        name: 'wikitext2',
        kind: 'perplexity',
        units: [perplexityUnit('wikitext2', docs, o, tokenizer, maxLength, prefix)],
      };
    }
    case 'tinystories': {
      const docs = readStories(sharedPath('data', 'tinystories', 'tinystories_sample.txt'));
      return {
        name,
        kind: 'perplexity',
        units: [perplexityUnit(name, docs, o, tokenizer, maxLength, prefix)],
      };
    }
  }
  if (/[/\\.]/.test(name) && fs.existsSync(name)) {
    return {
      name,
      kind: 'perplexity',
      units: [perplexityUnit(name, readTextDocuments(name), o, tokenizer, maxLength, prefix)],
    };
  }
  fail(
    `unknown task "${name}" (known: ${TASK_NAMES.join(', ')}, or the path of a text file, .jsonl file or folder)`,
  );
}
