/**
 * Self-contained HTML reports (`wina report`): each input is recognised by its shape (eval results, bench
 * results, a calibration profile, or a registered kind), turned into sections of charts and tables, and
 * rendered into one HTML file that embeds its charting library and data.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fail } from '../errors.js';
import { readJsonObject } from '../io/json.js';
import { ampKind } from './amp.js';
import { benchKind } from './bench.js';
import type { Section } from './charts.js';
import { evalKind } from './eval.js';
import { renderPage } from './html.js';
import { type ReportKind, reportKinds, type ReportSource } from './kinds.js';
import { profileKind } from './profile.js';
import { checkOutputFile, writeOutputFile } from '../io/files.js';

export { ampKind } from './amp.js';
export * from './charts.js';
export { benchKind, benchSections, type BenchDocument } from './bench.js';
export { evalKind, evalSections, type EvalDocument, methodSeries } from './eval.js';
export { DATA_ELEMENT_ID, type EmbeddedData } from './html.js';
export {
  type InputSummary,
  isObject,
  registerReportKind,
  type ReportKind,
  type ReportSource,
  rowsWith,
} from './kinds.js';
export { histogramBins, profileKind, profileSections } from './profile.js';

/** The kinds every report knows; others join through registerReportKind. */
export const BUILT_IN_KINDS: readonly ReportKind[] = [
  profileKind as ReportKind,
  evalKind as ReportKind,
  benchKind as ReportKind,
  ampKind as ReportKind,
];

export interface ReportOptions {
  title?: string;
  /** The command that made the report, shown in its header. */
  command?: string;
  /** Defaults to now. */
  generated?: Date;
  /** Extra sections appended after the inputs' own. */
  sections?: Section[];
}

/** The kind of a document, or a one-line error naming the kinds it could have been. */
export function kindOf(source: ReportSource): ReportKind {
  const kinds = reportKinds(BUILT_IN_KINDS);
  const kind = kinds.find((k) => k.detect(source.doc));
  if (!kind) fail(`${source.path ?? source.name} is none of: ${kinds.map((k) => k.description).join('; ')}`);
  return kind;
}

/** Reads one input file: a clear one-line error when it is missing, unreadable or not JSON. */
export function readReportSource(file: string, what = 'results file'): ReportSource {
  const doc = readJsonObject(file, what);
  return { name: path.basename(file), path: file, doc, modified: fs.statSync(file).mtime };
}

/** The report's HTML: every source's sections, in order. */
export function renderReport(sources: readonly ReportSource[], o: ReportOptions = {}): string {
  if (sources.length === 0 && !o.sections?.length) fail('a report needs at least one input');
  const inputs = sources.map((source) => {
    const kind = kindOf(source);
    // detect() looks at the format marker only: a document with the marker but missing or mistyped fields
    // (hand-edited, truncated by another tool) must be one line naming it, not a TypeError.
    try {
      return {
        name: source.name,
        kind: kind.kind,
        description: kind.description,
        summary: kind.summary(source.doc),
        modified: source.modified,
        sections: kind.sections(source.doc, source),
      };
    } catch (e) {
      if (!(e instanceof TypeError || e instanceof RangeError)) throw e;
      fail(
        `${source.path ?? source.name} says it is ${kind.description} but is incomplete or malformed ` +
          `(${e.message})`,
      );
    }
  });
  return renderPage({
    title: o.title ?? 'wina report',
    generated: o.generated ?? new Date(),
    command: o.command,
    inputs,
    sections: [...inputs.flatMap((i) => i.sections), ...(o.sections ?? [])],
  });
}

/** Writes the report atomically (a temporary file renamed into place); returns its size in bytes. */
export function writeReport(file: string, sources: readonly ReportSource[], o: ReportOptions = {}): number {
  checkOutputFile(file, '-o');
  const html = renderReport(sources, o);
  writeOutputFile(file, html, '-o');
  return Buffer.byteLength(html);
}
