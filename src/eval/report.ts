/** Tables of evaluation results: aligned text for the terminal, Markdown for results/RESULTS.md, JSON. */
import type { EvalReport, EvalResult } from './harness.js';

/** Digits that suit a metric's scale: accuracies 4, perplexities 3 (or 4 significant when small). */
export function formatValue(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  if (abs >= 1000) return value.toFixed(1);
  if (abs >= 10) return value.toFixed(3);
  return value.toFixed(4);
}

export function formatMetric(r: Pick<EvalResult, 'value' | 'stderr'>): string {
  return r.stderr === null ? formatValue(r.value) : `${formatValue(r.value)} ± ${formatValue(r.stderr)}`;
}

const HEADER = ['task', 'metric', 'method', 'sparsity', 'value ± stderr', 'achieved', 'GFLOPs/token', 'n'];

function cells(r: EvalResult): string[] {
  return [
    r.task,
    r.metric,
    r.method,
    r.sparsity.toFixed(2),
    formatMetric(r),
    r.achievedSparsity.toFixed(3),
    r.gflopsPerToken.toPrecision(4),
    String(r.n),
  ];
}

/** Rows grouped by task and metric, then in grid order (dense first). */
export function sortResults(results: readonly EvalResult[]): EvalResult[] {
  const taskOrder = [...new Set(results.map((r) => r.task))];
  const metricOrder = [...new Set(results.map((r) => r.metric))];
  return results
    .map((r, i) => ({ r, i }))
    .sort(
      (a, b) =>
        taskOrder.indexOf(a.r.task) - taskOrder.indexOf(b.r.task) ||
        metricOrder.indexOf(a.r.metric) - metricOrder.indexOf(b.r.metric) ||
        a.i - b.i,
    )
    .map(({ r }) => r);
}

/** An aligned plain-text table. */
export function textTable(results: readonly EvalResult[]): string {
  const rows = [HEADER, ...sortResults(results).map(cells)];
  const widths = HEADER.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const right = new Set([3, 4, 5, 6, 7]);
  const line = (r: string[]) =>
    r
      .map((cell, c) => (right.has(c) ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!)))
      .join('  ')
      .trimEnd();
  return [line(rows[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n');
}

export function markdownTable(results: readonly EvalResult[]): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  return [
    `| ${HEADER.join(' | ')} |`,
    `|${HEADER.map((_, c) => (c >= 3 ? '---:' : '---')).join('|')}|`,
    ...sortResults(results).map((r) => `| ${cells(r).map(esc).join(' | ')} |`),
  ].join('\n');
}

export function markdownReport(report: EvalReport, o: { command?: string; title?: string } = {}): string {
  const parts = [
    `## ${o.title ?? `Evaluation of ${report.model}`}`,
    '',
    ...(o.command ? ['```', o.command, '```', ''] : []),
    `Model fingerprint \`${report.fingerprint}\`; wall time ${report.seconds.toFixed(1)} s ` +
      `(${report.cache.misses} results computed, ${report.cache.hits} from the cache).`,
    '',
    markdownTable(report.results),
    '',
  ];
  if (report.subtasks.length) parts.push('### Per subtask', '', markdownTable(report.subtasks), '');
  return parts.join('\n');
}

/** The `--json` document: the eight documented fields per row. */
export function jsonResults(results: readonly EvalResult[]): { results: Omit<EvalResult, 'n'>[] } {
  return {
    results: results.map(
      ({ task, method, sparsity, metric, value, stderr, achievedSparsity, gflopsPerToken }) => ({
        task,
        method,
        sparsity,
        metric,
        value,
        stderr,
        achievedSparsity,
        gflopsPerToken,
      }),
    ),
  };
}
