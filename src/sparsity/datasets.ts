/**
 * Text samples for calibration and evaluation: a plain text file (cut into token windows), a jsonl file (one
 * sample per line, its text from the first known field) or a folder of text files (one sample per file, labelled
 * by the folder each file sits in).
 */
import path from 'node:path';
import type { TextTokenizer } from '../tokenizer/tokenizer.js';
import { fail } from '../errors.js';
import { listInputFiles, readInputText, statInput } from '../io/files.js';

export interface Sample {
  id: string;
  /** Known group of the sample (corpus domain, task, subject), used to judge clusters. */
  label?: string;
  ids: number[];
}

export interface SampleOptions {
  seqLen: number;
  /** At most this many samples (evenly spread over the data set). */
  samples?: number;
  /** Prefix each sample with BOS. */
  bos?: number;
}

const TEXT_FIELDS = ['text', 'query', 'question', 'context', 'prompt', 'content'];

function jsonlTexts(file: string): { text: string; label?: string }[] {
  return readInputText(file, 'data file')
    .split('\n')
    .filter((line) => line.trim())
    .map((line, i) => {
      let row: Record<string, unknown>;
      try {
        row = JSON.parse(line);
      } catch {
        fail(`${file}:${i + 1} is not valid JSON`);
      }
      const field = TEXT_FIELDS.find((f) => typeof row[f] === 'string');
      if (!field) fail(`${file}:${i + 1} has none of the text fields ${TEXT_FIELDS.join(', ')}`);
      const label = ['domain', 'label', 'subject', 'task']
        .map((f) => row[f])
        .find((v) => typeof v === 'string');
      return { text: row[field] as string, label: label as string | undefined };
    });
}

function spread<T>(items: T[], n: number | undefined): T[] {
  if (!n || n >= items.length) return items;
  return Array.from({ length: n }, (_, i) => items[Math.floor((i * items.length) / n)]!);
}

export function loadSamples(source: string, tokenizer: TextTokenizer, o: SampleOptions): Sample[] {
  const isFolder = statInput(source, 'data set').isDirectory();
  if (!Number.isInteger(o.seqLen) || o.seqLen < 2)
    fail(`sequence length must be a whole number >= 2, got ${o.seqLen}`);
  const room = o.bos === undefined ? o.seqLen : o.seqLen - 1;
  const withBos = (ids: number[]) => (o.bos === undefined ? ids : [o.bos, ...ids]);
  const encode = (text: string) => tokenizer.encode(text.replace(/\r\n/g, '\n'), { addSpecial: false });

  if (isFolder) {
    const files = listInputFiles(source, ['.txt', '.md', '.jsonl'], 'data file');
    if (files.length === 0) fail(`data folder ${source} has no .txt, .md or .jsonl files`);
    const samples = files.flatMap((file) => {
      const label = path.relative(source, path.dirname(file)).split(path.sep)[0] || undefined;
      if (file.endsWith('.jsonl')) return fromJsonl(file, label);
      const ids = encode(readInputText(file, 'data file')).slice(0, room);
      return ids.length ? [{ id: path.relative(source, file), label, ids: withBos(ids) }] : [];
    });
    return spread(samples, o.samples);
  }

  function fromJsonl(file: string, folderLabel?: string): Sample[] {
    return jsonlTexts(file).map((row, i) => ({
      id: `${path.basename(file)}:${i + 1}`,
      label: row.label ?? folderLabel,
      ids: withBos(encode(row.text).slice(0, room)),
    }));
  }

  if (source.endsWith('.jsonl')) return spread(fromJsonl(source), o.samples);
  const ids = encode(readInputText(source, 'data set'));
  const windows: Sample[] = [];
  for (let at = 0; at + room <= ids.length || (at === 0 && ids.length > 0); at += room) {
    windows.push({ id: `${path.basename(source)}@${at}`, ids: withBos(ids.slice(at, at + room)) });
  }
  return spread(windows, o.samples);
}
