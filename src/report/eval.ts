/** The report of `wina eval --out` (or `--json`) results: metric vs sparsity per method, compute per token. */
import type { EvalReport, EvalResult } from '../eval/harness.js';
import { formatMetric, sortResults } from '../eval/report.js';
import {
  type ChartSpec,
  colorFor,
  formatNumber,
  lineChart,
  type Point,
  scatterChart,
  type Section,
  type Series,
  type Table,
} from './charts.js';
import { isObject, type ReportKind, type ReportSource, rowsWith } from './kinds.js';

/** `wina eval --out` writes the full report; `--json` only the rows (without n). */
export type EvalDocument = Partial<Omit<EvalReport, 'results'>> & {
  command?: string;
  results: (Omit<EvalResult, 'n'> & { n?: number })[];
};

type Row = EvalDocument['results'][number];

export const SPARSITY_X_CHOICES = [
  { key: 'sparsity', label: 'target sparsity' },
  { key: 'achieved', label: 'achieved sparsity' },
  { key: 'gflops', label: 'GFLOPs per token' },
];

const lowerIsBetter = (metric: string) => /perplexity|bits_per_byte/.test(metric);

function pointOf(r: Row): Point {
  return {
    x: r.sparsity,
    y: r.value,
    stderr: r.stderr,
    alt: { achieved: r.achievedSparsity, gflops: r.gflopsPerToken },
  };
}

/** One series per method in order of appearance; a method with one point (dense) is drawn as a marker. */
export function methodSeries(rows: readonly Row[], point: (r: Row) => Point = pointOf): Series[] {
  const methods = [...new Set(rows.map((r) => r.method))];
  return methods.map((method) => {
    const own = rows.filter((r) => r.method === method).sort((a, b) => a.sparsity - b.sparsity);
    const single = own.length === 1;
    return {
      label: method,
      color: colorFor(method),
      dashed: method.includes('+'),
      line: !single,
      marker: single ? 'rectRot' : 'circle',
      pointRadius: single ? 6 : 3,
      points: own.map(point),
    };
  });
}

function metricTable(rows: readonly Row[]): Table {
  return {
    columns: ['method', 'sparsity', 'value ± stderr', 'achieved', 'GFLOPs/token', 'n'],
    rows: rows.map((r) => [
      r.method,
      r.sparsity.toFixed(2),
      formatMetric(r),
      r.achievedSparsity.toFixed(3),
      r.gflopsPerToken.toPrecision(4),
      r.n === undefined ? '–' : String(r.n),
    ]),
  };
}

function metricCharts(results: readonly Row[]): ChartSpec[] {
  const sorted = sortResults(results as EvalResult[]) as Row[];
  const keys = [...new Set(sorted.map((r) => `${r.task}\u0000${r.metric}`))];
  return keys.map((key) => {
    const [task, metric] = key.split('\u0000') as [string, string];
    const rows = sorted.filter((r) => r.task === task && r.metric === metric);
    const lower = lowerIsBetter(metric);
    return lineChart({
      title: `${task}: ${metric}`,
      x: { label: SPARSITY_X_CHOICES[0]!.label },
      y: {
        label: `${metric} (${lower ? 'lower' : 'higher'} is better)`,
        log: /perplexity/.test(metric) && rows.every((r) => r.value > 0),
      },
      series: methodSeries(rows),
      xChoices: SPARSITY_X_CHOICES,
      table: metricTable(rows),
    });
  });
}

/** Achieved sparsity and GFLOPs per token of each (task, setting): one point per task, coloured by method. */
function computeCharts(results: readonly Row[]): ChartSpec[] {
  const seen = new Set<string>();
  const cells = results.filter((r) => {
    const key = `${r.task}\u0000${r.method}\u0000${r.sparsity}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  const chart = (title: string, label: string, value: (r: Row) => number, digits: (v: number) => string) => {
    const series = methodSeries(cells, (r) => ({ x: r.sparsity, y: value(r), note: r.task })).map((s) => ({
      ...s,
      line: false,
      pointRadius: 4,
    }));
    return scatterChart({
      title,
      x: { label: 'target sparsity' },
      y: { label },
      groups: series,
      table: {
        columns: ['task', 'method', 'sparsity', label],
        rows: cells.map((r) => [r.task, r.method, r.sparsity.toFixed(2), digits(value(r))]),
      },
    });
  };
  return [
    chart(
      'Achieved sparsity',
      'achieved sparsity',
      (r) => r.achievedSparsity,
      (v) => v.toFixed(3),
    ),
    chart(
      'Compute per token',
      'GFLOPs per token',
      (r) => r.gflopsPerToken,
      (v) => v.toPrecision(4),
    ),
  ];
}

export function evalSections(doc: EvalDocument, source: ReportSource): Section[] {
  const meta: [string, string][] = [];
  if (doc.command) meta.push(['command', doc.command]);
  if (doc.model) meta.push(['model', doc.model]);
  if (doc.fingerprint) meta.push(['fingerprint', doc.fingerprint]);
  if (typeof doc.seconds === 'number') {
    const cache = isObject(doc.cache)
      ? `; ${doc.cache.misses} results computed, ${doc.cache.hits} from the cache`
      : '';
    meta.push(['wall time', `${formatNumber(doc.seconds)} s${cache}`]);
  }
  const tables: Table[] = [];
  if (Array.isArray(doc.subtasks) && doc.subtasks.length > 0) {
    tables.push({
      caption: 'Per subtask',
      columns: ['task', 'metric', 'method', 'sparsity', 'value ± stderr', 'achieved', 'GFLOPs/token', 'n'],
      rows: sortResults(doc.subtasks).map((r) => [
        r.task,
        r.metric,
        r.method,
        r.sparsity.toFixed(2),
        formatMetric(r),
        r.achievedSparsity.toFixed(3),
        r.gflopsPerToken.toPrecision(4),
        String(r.n),
      ]),
    });
  }
  return [
    {
      title: `Evaluation: ${source.name}`,
      meta,
      charts: [...metricCharts(doc.results), ...computeCharts(doc.results)],
      tables,
    },
  ];
}

export const evalKind: ReportKind<EvalDocument> = {
  kind: 'eval',
  description: 'eval results (wina eval --out or --json)',
  detect: (doc): doc is EvalDocument =>
    isObject(doc) &&
    rowsWith(doc.results, {
      task: 'string',
      method: 'string',
      metric: 'string',
      sparsity: 'number',
      value: 'number?',
      achievedSparsity: 'number',
      gflopsPerToken: 'number',
    }),
  summary: (doc) => ({
    command: doc.command,
    model: doc.model,
    fingerprint: doc.fingerprint,
    seconds: doc.seconds,
  }),
  sections: evalSections,
};
