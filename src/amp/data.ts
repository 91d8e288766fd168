/**
 * WINA-AMP's data: training and test items with a known label, from one of three kinds of spec.
 *
 * - `PATH`: a .jsonl file, a text file or a folder, read as calibration data is (`loadSamples`): one passage per
 *   jsonl row or file, cut to its first --seq-len tokens; the label is the row's domain / label / subject / task
 *   field, else the first-level subfolder (else the file name). Metric: perplexity of the passage.
 * - `passages:PATH`: every .txt / .md file under PATH cut into consecutive passages of exactly --seq-len tokens
 *   (BOS included, the short tail dropped), labelled by the first-level subfolder. Metric: perplexity.
 * - `tasks:T1,T2,...` (hellaswag, piqa, arc_easy, arc_challenge, openbookqa, copa, siqa, boolq, gsm8k, mmlu,
 *   mmlu_<subject>): evaluation items labelled by task (MMLU: by subject), each task's items shuffled (seeded) and
 *   split by item, the first `split` share for training and the rest for test. The prompt is what lm-eval
 *   scores the choices after; GSM8K is generated greedily. Metric: accuracy.
 *
 * `perLabel` keeps that many items of each label, evenly spread (passages) or the first of the shuffle (tasks).
 */
import path from 'node:path';
import { type ChoiceItem, readText, toLf } from '../eval/data.js';
import {
  choiceTaskItems,
  encodeChoiceItem,
  encodeChoices,
  gsm8kFewShotPrompt,
  MC_TASKS,
  readGsm8kData,
} from '../eval/tasks.js';
import { seededRandom } from '../io/random.js';
import { loadSamples } from '../sparsity/datasets.js';
import { fail } from '../errors.js';
import type { Model } from '../model/model.js';
import { listInputFiles, statInput } from '../io/files.js';

export type ItemKind = 'text' | 'choice' | 'generate';

export interface AmpItem {
  id: string;
  label: string;
  kind: ItemKind;
  /** Token ids known before decoding (BOS first where the model has one): what is signed and routed on. */
  prompt: number[];
  /** choice: each choice's tokens after the prompt; generate: the reference answer's tokens. */
  continuations?: number[][];
  /** choice: the choices' texts (acc_norm divides by their length) and the gold index. */
  choices?: string[];
  gold?: number;
  /** generate (GSM8K): the reference answer, ending in "#### N". */
  answer?: string;
}

export type Side = 'train' | 'test';

export interface DataOptions {
  /** Tokens of a passage (BOS included). */
  seqLen: number;
  /** Items kept per label (all when absent). */
  perLabel?: number;
  /** Tasks: share of each task's items on the training side. */
  split: number;
  seed: number;
  /** GSM8K exemplars from its train split (default 0: the model saw "Question: ...\nAnswer:" in training). */
  shots: number;
  /** GSM8K: new tokens at most; the prompt keeps its last context - maxTokens tokens. */
  maxTokens: number;
}

export const TASK_ITEMS = ['hellaswag', ...Object.keys(MC_TASKS), 'gsm8k', 'mmlu', 'mmlu_<subject>'];

export interface ItemSet {
  spec: string;
  kind: 'text' | 'tasks';
  items: AmpItem[];
}

export function loadItems(spec: string, side: Side, model: Model, o: DataOptions): ItemSet {
  if (!(Number.isInteger(o.seqLen) && o.seqLen >= 2 && o.seqLen <= model.config.maxPositions))
    fail(`--seq-len must be a whole number in 2..${model.config.maxPositions}, got ${o.seqLen}`);
  if (o.perLabel !== undefined && !(Number.isInteger(o.perLabel) && o.perLabel >= 1))
    fail(`items per label must be a whole number >= 1, got ${o.perLabel}`);
  let items: AmpItem[];
  let kind: ItemSet['kind'] = 'text';
  if (spec.startsWith('tasks:')) {
    kind = 'tasks';
    items = taskItems(spec.slice('tasks:'.length), side, model, o);
  } else if (spec.startsWith('passages:')) {
    items = passageItems(spec.slice('passages:'.length), model, o);
  } else {
    items = pathItems(spec, model, o);
  }
  if (items.length === 0) fail(`${spec} gave no items`);
  return { spec, kind, items };
}

/** Evenly spread `n` of each label's items, labels in order of first appearance. */
function perLabel(items: AmpItem[], n: number | undefined): AmpItem[] {
  const groups = new Map<string, AmpItem[]>();
  for (const item of items) {
    let g = groups.get(item.label);
    if (!g) groups.set(item.label, (g = []));
    g.push(item);
  }
  return [...groups.values()].flatMap((g) =>
    n === undefined || n >= g.length
      ? g
      : Array.from({ length: n }, (_, i) => g[Math.floor((i * g.length) / n)]!),
  );
}

function bosOf(model: Model): number[] {
  return model.config.bosId === undefined ? [] : [model.config.bosId];
}

function pathItems(source: string, model: Model, o: DataOptions): AmpItem[] {
  const samples = loadSamples(source, model.tokenizer, { seqLen: o.seqLen, bos: model.config.bosId });
  const fallback = path.basename(source).replace(/\.[^.]*$/, '');
  const items = samples
    .filter((s) => s.ids.length >= 2)
    .map((s): AmpItem => ({ id: s.id, label: s.label ?? fallback, kind: 'text', prompt: s.ids }));
  return perLabel(items, o.perLabel);
}

function passageItems(root: string, model: Model, o: DataOptions): AmpItem[] {
  if (!root) fail('passages: (empty path) does not exist');
  const files = statInput(root, 'passages').isDirectory()
    ? listInputFiles(root, ['.txt', '.md'], 'passages file')
    : [root];
  if (files.length === 0) fail(`passages: ${root} has no .txt or .md files`);
  const bos = bosOf(model);
  const length = o.seqLen - bos.length;
  const items: AmpItem[] = [];
  for (const file of files) {
    const relative = path.relative(root, file);
    const parts = relative.split(path.sep);
    const label = parts.length > 1 ? parts[0]! : path.basename(root).replace(/\.[^.]*$/, '');
    const ids = model.tokenizer.encode(toLf(readText(file)), { addSpecial: false });
    for (let at = 0; at + length <= ids.length; at += length)
      items.push({
        id: `${relative || path.basename(file)}@${at}`,
        label,
        kind: 'text',
        prompt: [...bos, ...ids.slice(at, at + length)],
      });
  }
  return perLabel(items, o.perLabel);
}

/** A stable 32-bit hash of a name, to give each task its own shuffle. */
function hashName(name: string): number {
  let h = 2166136261;
  for (const ch of name) h = Math.imul(h ^ ch.codePointAt(0)!, 16777619) >>> 0;
  return h;
}

/** The indices of one side of a seeded split of `count` items. */
export function splitIndices(count: number, name: string, side: Side, split: number, seed: number): number[] {
  const order = Array.from({ length: count }, (_, i) => i);
  const random = seededRandom((seed * 1000003 + hashName(name)) >>> 0);
  for (let i = count - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const cut = Math.round(count * split);
  return side === 'train' ? order.slice(0, cut) : order.slice(cut);
}

function taskItems(list: string, side: Side, model: Model, o: DataOptions): AmpItem[] {
  if (!(o.split > 0 && o.split < 1)) fail(`--split must be in (0, 1), got ${o.split}`);
  const names = list
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
  if (names.length === 0) fail('tasks: needs at least one task (tasks:hellaswag,piqa,...)');
  const maxLength = model.config.maxPositions;
  if (!(Number.isInteger(o.maxTokens) && o.maxTokens >= 1 && o.maxTokens < maxLength))
    fail(`--max-tokens must be a whole number in 1..${maxLength - 1}, got ${o.maxTokens}`);
  const bosId = model.config.bosId;
  const fallback = bosId ?? model.config.eosIds[0];
  const fits = (ids: number[]) => ids.slice(-(maxLength - 1));

  const choiceGroup = (name: string, label: string, all: ChoiceItem[]): AmpItem[] =>
    splitIndices(all.length, name, side, o.split, o.seed)
      .slice(0, o.perLabel)
      .map((index) => {
        const item = all[index]!;
        const enc = encodeChoiceItem(model.tokenizer, item, bosId, fallback);
        return {
          id: `${name}:${index}`,
          label,
          kind: 'choice',
          prompt: fits(enc.context),
          continuations: enc.continuations,
          choices: item.choices,
          gold: item.gold,
        };
      });

  const items: AmpItem[] = [];
  for (const name of names) {
    if (name === 'gsm8k') {
      items.push(...gsm8kItems(side, model, o));
      continue;
    }
    // MMLU is always 0-shot here: --shots is GSM8K's.
    const units = choiceTaskItems(name, 0);
    if (!units) fail(`tasks: unknown task "${name}" (known: ${TASK_ITEMS.join(', ')})`);
    // Split per unit (MMLU: per subject), labelled by task or subject.
    for (const unit of units) items.push(...choiceGroup(unit.name, unit.subject ?? unit.name, unit.items));
  }
  return items;
}

function gsm8kItems(side: Side, model: Model, o: DataOptions): AmpItem[] {
  const { test, train } = readGsm8kData(o.shots);
  if (!(Number.isInteger(o.shots) && o.shots >= 0 && o.shots <= train.length))
    fail(`--shots must be a whole number in 0..${train.length || 'the GSM8K train size'}, got ${o.shots}`);
  const bosId = model.config.bosId;
  const keep = model.config.maxPositions - o.maxTokens;
  return splitIndices(test.length, 'gsm8k', side, o.split, o.seed)
    .slice(0, o.perLabel)
    .map((index) => {
      const item = test[index]!;
      // The prompt `wina eval` gives this item with the same seed and shots.
      const text = gsm8kFewShotPrompt(item, index, train, o.shots, o.seed);
      const enc = encodeChoices(
        model.tokenizer,
        text,
        [` ${item.answer}`],
        bosId,
        bosId ?? model.config.eosIds[0],
      );
      return {
        id: `gsm8k:${index}`,
        label: 'gsm8k',
        kind: 'generate',
        prompt: enc.context.slice(-keep),
        continuations: enc.continuations,
        answer: item.answer,
      };
    });
}
