/** The report of `wina bench --out` (or `--json`) results: tokens/s vs sparsity per method, speedup over dense. */
import type { BenchResult } from '../eval/bench.js';
import { type ChartSpec, formatNumber, lineChart, type Section, type Series, type Table } from './charts.js';
import { methodSeries } from './eval.js';
import { isObject, type ReportKind, type ReportSource, rowsWith } from './kinds.js';

export interface BenchDocument {
  command?: string;
  model?: string;
  kernels?: string;
  results: BenchResult[];
}

const X_CHOICES = [
  { key: 'sparsity', label: 'target sparsity' },
  { key: 'achieved', label: 'achieved sparsity' },
];

type Speed = 'decodeTokensPerSecond' | 'prefillTokensPerSecond';

/** Series of one measured quantity, shaped as eval's rows so both draw methods alike. */
function speedSeries(results: readonly BenchResult[], value: (r: BenchResult) => number): Series[] {
  return methodSeries(
    results.map((r) => ({
      task: '',
      metric: '',
      method: r.method,
      sparsity: r.sparsity,
      value: value(r),
      stderr: null,
      achievedSparsity: r.achievedSparsity,
      gflopsPerToken: 0,
    })),
    (r) => ({ x: r.sparsity, y: r.value, alt: { achieved: r.achievedSparsity } }),
  );
}

function speedTable(results: readonly BenchResult[], dense: BenchResult | undefined): Table {
  const ratio = (r: BenchResult, k: Speed) => (dense ? `${(r[k] / dense[k]).toFixed(2)}x` : '–');
  return {
    columns: [
      'method',
      'sparsity',
      'achieved',
      'decode tok/s',
      'vs dense',
      'prefill tok/s',
      'vs dense',
      'peak RSS MiB',
    ],
    rows: results.map((r) => [
      r.method,
      String(r.sparsity),
      r.achievedSparsity.toFixed(3),
      r.decodeTokensPerSecond.toFixed(2),
      ratio(r, 'decodeTokensPerSecond'),
      r.prefillTokensPerSecond.toFixed(1),
      ratio(r, 'prefillTokensPerSecond'),
      (r.peakMemoryBytes / 2 ** 20).toFixed(0),
    ]),
  };
}

export function benchSections(doc: BenchDocument, source: ReportSource): Section[] {
  const results = doc.results;
  const dense = results.find((r) => r.method === 'dense');
  const table = speedTable(results, dense);
  const speedChart = (title: string, k: Speed, label: string): ChartSpec =>
    lineChart({
      title,
      x: { label: X_CHOICES[0]!.label },
      y: { label, min: 0 },
      series: speedSeries(results, (r) => r[k]),
      xChoices: X_CHOICES,
      table,
    });
  const charts = [
    speedChart('Decode speed', 'decodeTokensPerSecond', 'decode tokens/s (higher is better)'),
    speedChart('Prefill speed', 'prefillTokensPerSecond', 'prefill tokens/s (higher is better)'),
  ];
  if (dense) {
    const sparse = results.filter((r) => r !== dense);
    // Dense itself stays in the decode series: its point (0, 1) is the line to beat.
    const decode = speedSeries(results, (r) => r.decodeTokensPerSecond / dense.decodeTokensPerSecond);
    const prefill = speedSeries(sparse, (r) => r.prefillTokensPerSecond / dense.prefillTokensPerSecond).map(
      (s) => ({ ...s, label: `${s.label} prefill`, dashed: true, marker: 'triangle' as const }),
    );
    charts.push(
      lineChart({
        title: 'Speedup over dense',
        x: { label: X_CHOICES[0]!.label },
        y: { label: 'tokens/s ÷ dense tokens/s' },
        series: [
          ...decode.map((s) => (s.label === 'dense' ? s : { ...s, label: `${s.label} decode` })),
          ...prefill,
        ],
        xChoices: X_CHOICES,
        table: {
          columns: ['method', 'sparsity', 'decode speedup', 'prefill speedup'],
          rows: sparse.map((r) => [
            r.method,
            String(r.sparsity),
            formatNumber(r.decodeTokensPerSecond / dense.decodeTokensPerSecond),
            formatNumber(r.prefillTokensPerSecond / dense.prefillTokensPerSecond),
          ]),
        },
      }),
    );
  }
  const meta: [string, string][] = [];
  if (doc.command) meta.push(['command', doc.command]);
  if (doc.model) meta.push(['model', doc.model]);
  if (doc.kernels) meta.push(['kernels', doc.kernels]);
  if (!dense) meta.push(['speedup', 'not shown: no dense row to compare with']);
  return [{ title: `Speed: ${source.name}`, meta, charts, tables: [] }];
}

export const benchKind: ReportKind<BenchDocument> = {
  kind: 'bench',
  description: 'bench results (wina bench --out or --json)',
  detect: (doc): doc is BenchDocument =>
    isObject(doc) &&
    rowsWith(doc.results, {
      method: 'string',
      sparsity: 'number',
      achievedSparsity: 'number',
      decodeTokensPerSecond: 'number',
      prefillTokensPerSecond: 'number',
      peakMemoryBytes: 'number',
    }),
  summary: (doc) => ({ command: doc.command, model: doc.model }),
  sections: benchSections,
};
