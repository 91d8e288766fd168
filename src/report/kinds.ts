/**
 * Kinds of input a report understands, each recognised by the shape of its JSON. Adding one (WINA-AMP results)
 * is a `ReportKind`: `detect` plus a function from the document to sections; list it in `BUILT_IN_KINDS` or call
 * `registerReportKind`.
 */
import type { Section } from './charts.js';

/** One input file (or an in-memory document) of a report. */
export interface ReportSource {
  /** File name shown in the report. */
  name: string;
  /** The path as given, for error messages. */
  path?: string;
  doc: unknown;
  /** When the file was last written (shown as the input's time). */
  modified?: Date;
}

/** What the report's header shows of one input. */
export interface InputSummary {
  command?: string;
  model?: string;
  fingerprint?: string;
  /** Wall time of the run that produced it, seconds. */
  seconds?: number;
}

export interface ReportKind<T = unknown> {
  /** Short name: 'profile', 'eval', 'bench', 'amp'. */
  kind: string;
  /** What such a file is, for headers and the error listing the known kinds. */
  description: string;
  detect(doc: unknown): doc is T;
  summary(doc: T): InputSummary;
  sections(doc: T, source: ReportSource): Section[];
}

const registered: ReportKind[] = [];

/** Adds a kind (checked before the built-in ones, so it may refine them). */
export function registerReportKind<T>(kind: ReportKind<T>): void {
  registered.unshift(kind as unknown as ReportKind);
}

export function reportKinds(builtIn: readonly ReportKind[]): ReportKind[] {
  return [...registered, ...builtIn];
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Rows that all have the given fields of the given types ('number?': a number or null, which is how JSON writes
 * an infinite perplexity); false for an empty or missing array.
 */
export function rowsWith(rows: unknown, fields: Record<string, 'string' | 'number' | 'number?'>): boolean {
  const fits = (v: unknown, type: string) =>
    type === 'number?' ? v === null || typeof v === 'number' : typeof v === type;
  return (
    Array.isArray(rows) &&
    rows.length > 0 &&
    rows.every((r) => isObject(r) && Object.entries(fields).every(([k, type]) => fits(r[k], type)))
  );
}
