/**
 * Readers of the evaluation data sets in ../shared/data (formats in its README.md), and the text handling that
 * lm-evaluation-harness applies to them (wikitext documents and detokenizer, CSV).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fail } from '../errors.js';
import { listInputFiles, readInputText, statInput } from '../io/files.js';

export interface ChoiceItem {
  /** The context (prompt) text; each choice is scored after it with the target delimiter " ". */
  context: string;
  choices: string[];
  gold: number;
}

export interface Gsm8kItem {
  question: string;
  answer: string;
}

export interface TextDocument {
  /** Text the model scores. */
  text: string;
  /** Text whose words and bytes are counted (lm-eval: wikitext's page before detokenization). */
  original: string;
}

export function readText(file: string, what = 'data file'): string {
  if (!fs.existsSync(file) && !fs.lstatSync(file, { throwIfNoEntry: false }))
    fail(`${what} ${file} does not exist (shared data lives in $WINA_SHARED or ../shared)`);
  return readInputText(file, what);
}

/** Python's universal newlines (open(..., encoding="utf-8")): CRLF and lone CR become LF. */
export function toLf(text: string): string {
  return text.replace(/\r\n?/g, '\n');
}

export function readJsonl(file: string): Record<string, unknown>[] {
  return readText(file)
    .split('\n')
    .map((line, i) => [line, i] as const)
    .filter(([line]) => line.trim())
    .map(([line, i]) => {
      try {
        const row = JSON.parse(line);
        if (typeof row !== 'object' || row === null || Array.isArray(row)) throw new Error('not an object');
        return row as Record<string, unknown>;
      } catch {
        fail(`${file}:${i + 1} is not a JSON object`);
      }
    });
}

/** RFC 4180 CSV: quoted fields may hold commas, newlines and doubled quotes. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else field += c;
    } else if (c === '"' && field === '') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else field += c;
  }
  if (field !== '' || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

/** HellaSwag as lm-eval preprocesses it: 6 lines per item (context, gold 0-3, 4 endings). */
export function readHellaswag(file: string): ChoiceItem[] {
  const lines = toLf(readText(file)).split('\n');
  while (lines.length && lines.at(-1) === '') lines.pop();
  if (lines.length % 6 !== 0)
    fail(`${file} has ${lines.length} lines, not a multiple of 6 (6 lines per item)`);
  const items: ChoiceItem[] = [];
  for (let i = 0; i < lines.length; i += 6) {
    const gold = Number(lines[i + 1]);
    if (!Number.isInteger(gold) || gold < 0 || gold > 3)
      fail(`${file}:${i + 2}: gold must be 0..3, got ${JSON.stringify(lines[i + 1])}`);
    items.push({ context: lines[i]!, gold, choices: lines.slice(i + 2, i + 6) });
  }
  return items;
}

/**
 * data/mc/*.jsonl: `query`, `choices`, `gold`. `suffix` completes a query into lm-eval's prompt where the data
 * stops short of it (e.g. ARC's "Question: ...?" + "\nAnswer:").
 */
export function readChoiceJsonl(file: string, suffix = ''): ChoiceItem[] {
  return readJsonl(file).map((row, i) => {
    const { query, choices, gold } = row;
    const where = `${file}:${i + 1}`;
    if (typeof query !== 'string') fail(`${where}: "query" must be a string`);
    if (!Array.isArray(choices) || choices.length < 2 || !choices.every((c) => typeof c === 'string'))
      fail(`${where}: "choices" must be a list of at least two strings`);
    if (typeof gold !== 'number' || !Number.isInteger(gold) || gold < 0 || gold >= choices.length)
      fail(`${where}: "gold" must be an index into choices, got ${JSON.stringify(gold)}`);
    const context = suffix && !query.trimEnd().endsWith(suffix.trim()) ? query + suffix : query;
    return { context, choices: choices as string[], gold };
  });
}

export interface MmluQuestion {
  question: string;
  choices: string[];
  answer: number;
}

/** An MMLU CSV: header question,choice0..choice3,answer (answer 0-3). */
export function readMmluCsv(file: string): MmluQuestion[] {
  const rows = parseCsv(readText(file));
  const header = rows.shift();
  if (header?.join(',') !== 'question,choice0,choice1,choice2,choice3,answer')
    fail(`${file} does not start with the header question,choice0,choice1,choice2,choice3,answer`);
  return rows
    .filter((r) => r.length > 1 || r[0] !== '')
    .map((r, i) => {
      const answer = Number(r[5]);
      if (r.length !== 6 || !Number.isInteger(answer) || answer < 0 || answer > 3)
        fail(`${file}: row ${i + 2} is not question, 4 choices and an answer 0-3`);
      return { question: r[0]!, choices: r.slice(1, 5), answer };
    });
}

/** The subjects with a test file in an MMLU folder (data/mmlu/test/<subject>_test.csv), sorted. */
export function mmluSubjects(root: string): string[] {
  const dir = path.join(root, 'test');
  if (!fs.existsSync(dir))
    fail(`MMLU folder ${dir} does not exist (shared data lives in $WINA_SHARED or ../shared)`);
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('_test.csv'))
    .map((f) => f.slice(0, -'_test.csv'.length))
    .sort();
}

/**
 * lm-eval's MMLU prompt (mmlu/default/_default_template_yaml): description "The following are multiple choice
 * questions (with answers) about <subject with spaces>.\n\n", then `shots` dev examples (first_n sampler), each
 * doc_to_text + " " + letter, joined and followed by "\n\n", then doc_to_text of the question.
 */
export function mmluPrompt(subject: string, question: MmluQuestion, shots: readonly MmluQuestion[]): string {
  const description = `The following are multiple choice questions (with answers) about ${subject.replace(/_/g, ' ')}.\n\n`;
  const examples = shots.map((q) => `${mmluText(q)} ${'ABCD'[q.answer]}\n\n`).join('');
  return description + examples + mmluText(question);
}

/** doc_to_text: "{{question.strip()}}\nA. ...\nB. ...\nC. ...\nD. ...\nAnswer:". */
export function mmluText(q: MmluQuestion): string {
  const letters = q.choices.map((c, i) => `\n${'ABCD'[i]}. ${c}`).join('');
  return `${q.question.trim()}${letters}\nAnswer:`;
}

export function readGsm8k(file: string): Gsm8kItem[] {
  return readJsonl(file).map((row, i) => {
    if (typeof row.question !== 'string' || typeof row.answer !== 'string')
      fail(`${file}:${i + 1}: needs string fields "question" and "answer"`);
    return { question: row.question, answer: row.answer };
  });
}

/** lm-eval's gsm8k doc_to_text. */
export function gsm8kText(q: Gsm8kItem): string {
  return `Question: ${q.question}\nAnswer:`;
}

/** k-shot GSM8K prompt: exemplars "Question: q\nAnswer: a" joined by "\n\n", then the question. */
export function gsm8kPrompt(question: Gsm8kItem, shots: readonly Gsm8kItem[]): string {
  return shots.map((s) => `${gsm8kText(s)} ${s.answer}\n\n`).join('') + gsm8kText(question);
}

/** TinyStories sample: stories separated by <|endoftext|>, surrounding whitespace stripped, empty ones dropped. */
export function readStories(file: string): TextDocument[] {
  return toLf(readText(file))
    .split('<|endoftext|>')
    .map((s) => s.trim())
    .filter((s) => s)
    .map((text) => ({ text, original: text }));
}

/**
 * WikiText documents as EleutherAI/wikitext_document_level builds them from the raw file: a new document starts
 * at each top-level heading line (" = Title = ", after "= = =" -> "===" and "= =" -> "=="), holding that line
 * and every line up to the next heading; the text before the first heading is dropped when blank.
 */
export function wikitextDocuments(raw: string): string[] {
  const docs: string[] = [];
  let lines: string[] = [];
  for (const line of toLf(raw).split('\n')) {
    const r = line.replace(/= = =/g, '===').replace(/= =/g, '==').trim();
    if (r.startsWith('= ') && r.endsWith(' =')) {
      const page = lines.join('\n');
      if (page.trim()) docs.push(page);
      lines = [];
    }
    lines.push(line);
  }
  docs.push(lines.join('\n'));
  return docs;
}

/** lm-eval's wikitext_detokenizer (lm_eval/tasks/wikitext/preprocess_wikitext.py), step for step. */
export function wikitextDetokenize(page: string): string {
  let s = page;
  s = s.split("s '").join("s'");
  s = s.replace(/\/' [0-9]\//g, "/'[0-9]/");
  s = s.split(' @-@ ').join('-');
  s = s.split(' @,@ ').join(',');
  s = s.split(' @.@ ').join('.');
  s = s.split(' : ').join(': ');
  s = s.split(' ; ').join('; ');
  s = s.split(' . ').join('. ');
  s = s.split(' ! ').join('! ');
  s = s.split(' ? ').join('? ');
  s = s.split(' , ').join(', ');
  s = s.replace(/\(\s*([^)]*?)\s*\)/g, '($1)');
  s = s.replace(/\[\s*([^\]]*?)\s*\]/g, '[$1]');
  s = s.replace(/{\s*([^}]*?)\s*}/g, '{$1}');
  s = s.replace(/"\s*([^"]*?)\s*"/g, '"$1"');
  s = s.replace(/'\s*([^']*?)\s*'/g, "'$1'");
  s = s.split('= = = =').join('====');
  s = s.split('= = =').join('===');
  s = s.split('= =').join('==');
  s = s.split(' \u00b0 ').join('\u00b0');
  s = s.split(' \n').join('\n');
  s = s.split('\n ').join('\n');
  s = s.split(' N ').join(' 1 ');
  s = s.split(" 's").join("'s");
  return s;
}

/**
 * Documents of a text file, a .jsonl file (its "text" field per line) or a folder (every .txt / .md file in it,
 * recursively, one document each), CRLF -> LF.
 */
export function readTextDocuments(source: string): TextDocument[] {
  const isFolder = statInput(source, 'data set').isDirectory();
  const one = (text: string) => ({ text: toLf(text), original: toLf(text) });
  if (isFolder) {
    const files = listInputFiles(source, ['.txt', '.md'], 'data file');
    if (files.length === 0) fail(`data folder ${source} has no .txt or .md files`);
    return files.map((f) => one(readText(f)));
  }
  if (source.endsWith('.jsonl')) {
    return readJsonl(source).map((row, i) => {
      if (typeof row.text !== 'string') fail(`${source}:${i + 1} has no string field "text"`);
      return one(row.text);
    });
  }
  return [one(readText(source))];
}
