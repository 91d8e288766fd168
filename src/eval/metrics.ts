/**
 * The metrics of the evaluation harness, as pure functions of per-item numbers (no model in here), following
 * lm-evaluation-harness (lm_eval/api/metrics.py and the task files):
 *
 * - multiple choice: acc = [argmax_i ll_i = gold], acc_norm = [argmax_i ll_i / len_i = gold] with len_i the
 *   UTF-8 byte length of choice i (lm-eval: len() of the choice string, the same for ASCII), ties to the first
 *   index (numpy's argmax);
 * - the standard error of a mean: the sample standard deviation (n - 1) over sqrt(n) (lm-eval's mean_stderr);
 * - perplexities: exp(NLL / count) with count = tokens, words or bytes, bits per byte = NLL / bytes / ln 2
 *   (lm-eval's weighted_perplexity and bits_per_byte over documents: sums first, then the ratio);
 * - GSM8K: the final number of a generation (after "####", else the last number), normalised as lm-eval's
 *   exact_match with regexes_to_ignore [",", "\\$", "(?s).*#### ", "\\.$"], compared as strings.
 */

export function mean(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  let sum = 0;
  for (const v of values) sum += v;
  return sum / values.length;
}

/** Sample standard deviation (divisor n - 1); NaN below two values. */
export function sampleStddev(values: readonly number[]): number {
  const n = values.length;
  if (n < 2) return Number.NaN;
  const m = mean(values);
  let ss = 0;
  for (const v of values) ss += (v - m) ** 2;
  return Math.sqrt(ss / (n - 1));
}

/** Standard error of the mean: sample stddev / sqrt(n) (lm-eval's mean_stderr); NaN below two values. */
export function stderrOfMean(values: readonly number[]): number {
  return sampleStddev(values) / Math.sqrt(values.length);
}

/** Index of the largest value; the first one on ties (as numpy.argmax). */
export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

export function utf8Bytes(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

export interface ChoiceScore {
  /** Sum of the log-probabilities of the continuation's tokens given the context. */
  loglikelihood: number;
  /** The continuation's text without the target delimiter (its length normalises acc_norm). */
  text: string;
}

/** acc and acc_norm of one multiple-choice item. */
export function scoreChoiceItem(
  choices: readonly ChoiceScore[],
  gold: number,
): { acc: number; accNorm: number } {
  if (choices.length === 0) throw new RangeError('an item needs at least one choice');
  if (!Number.isInteger(gold) || gold < 0 || gold >= choices.length)
    throw new RangeError(`gold ${gold} is not one of the ${choices.length} choices`);
  const ll = choices.map((c) => c.loglikelihood);
  // lm-eval divides by the length as is; an empty choice (length 0) would give +-inf, as there.
  const norm = choices.map((c) => c.loglikelihood / utf8Bytes(c.text));
  return { acc: argmax(ll) === gold ? 1 : 0, accNorm: argmax(norm) === gold ? 1 : 0 };
}

export interface MeanWithStderr {
  value: number;
  /** NaN when fewer than two items. */
  stderr: number;
  n: number;
}

export function meanWithStderr(values: readonly number[]): MeanWithStderr {
  return { value: mean(values), stderr: stderrOfMean(values), n: values.length };
}

/** Unweighted mean over groups (MMLU subjects), stderr sqrt(sum se_i^2) / k (independent groups). */
export function macroAverage(groups: readonly MeanWithStderr[]): MeanWithStderr {
  const k = groups.length;
  const value = mean(groups.map((g) => g.value));
  const stderr = Math.sqrt(groups.reduce((s, g) => s + g.stderr ** 2, 0)) / k;
  return { value, stderr, n: groups.reduce((s, g) => s + g.n, 0) };
}

/** Negative log-likelihood totals of a perplexity task, summed over its documents. */
export interface NllTotals {
  /** Sum over scored tokens of -log p (natural log). */
  nll: number;
  /** Scored tokens. */
  tokens: number;
  /** Words of the documents (lm-eval: len(re.split(r"\s+", doc))). */
  words: number;
  /** UTF-8 bytes of the documents. */
  bytes: number;
}

export interface PerplexityMetrics {
  token_perplexity: number;
  word_perplexity: number;
  byte_perplexity: number;
  bits_per_byte: number;
}

export function perplexityMetrics(t: NllTotals): PerplexityMetrics {
  return {
    token_perplexity: Math.exp(t.nll / t.tokens),
    word_perplexity: Math.exp(t.nll / t.words),
    byte_perplexity: Math.exp(t.nll / t.bytes),
    bits_per_byte: t.nll / t.bytes / Math.LN2,
  };
}

/** lm-eval's word count of a wikitext document: len(re.split(r"\s+", text)) (empty ends count). */
export function wordCount(text: string): number {
  return text.split(/\s+/).length;
}

/** lm-eval's gsm8k "strict-match" pattern: the number after "#### ". */
const AFTER_HASHES = /#### (-?[0-9.,]+)/;
/** A number as written in a solution: optional sign and dollar, digits with thousands commas, decimals. */
const NUMBER = /-?\$?[0-9][0-9,]*(?:\.[0-9]+)?/g;

/**
 * The final answer of a GSM8K solution or generation: the number after "####" when there is one, else the last
 * number in the text (lm-eval's flexible-extract takes the last match of `(-?[$0-9.,]{2,})|(-?[0-9]+)`; the
 * pattern here requires a digit, so an ellipsis is not taken for a number). Normalised; undefined when none.
 */
export function extractAnswer(text: string): string | undefined {
  const strict = AFTER_HASHES.exec(text);
  if (strict) return normalizeNumber(strict[1]!);
  const all = text.match(NUMBER);
  return all ? normalizeNumber(all.at(-1)!) : undefined;
}

/** lm-eval's regexes_to_ignore for gsm8k: drop commas and "$", then one trailing period. */
export function normalizeNumber(text: string): string {
  return text.replace(/,/g, '').replace(/\$/g, '').replace(/\.$/, '').trim();
}

/** Exact match of a generation against a GSM8K reference answer (its "#### N"). */
export function gsm8kExactMatch(generation: string, reference: string): number {
  const want = extractAnswer(reference);
  const got = extractAnswer(generation);
  return want !== undefined && got === want ? 1 : 0;
}
