/**
 * The page: one HTML file with its styles, Chart.js, chartjs-chart-matrix, the chart specs (JSON) and the
 * runtime inlined, so it opens anywhere without a network.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { ChartSpec, Section, Table } from './charts.js';
import type { InputSummary } from './kinds.js';
import { RUNTIME } from './runtime.js';

/** The id of the <script type="application/json"> that holds the embedded data. */
export const DATA_ELEMENT_ID = 'wina-report-data';

export interface RenderedInput {
  name: string;
  kind: string;
  description: string;
  summary: InputSummary;
  modified?: Date;
}

/** The chart specs as embedded in the page (each with the id of its canvas; tables stay in the HTML). */
export interface EmbeddedData {
  title: string;
  generated: string;
  command?: string;
  inputs: { name: string; kind: string; modified?: string; summary: InputSummary }[];
  sections: { title: string; charts: (Omit<ChartSpec, 'table'> & { id: string })[] }[];
}

let libraries: string | undefined;

/** Chart.js and the matrix plug-in, read once from node_modules (resolved from here, so dist/ works too). */
function chartLibraries(): string {
  if (libraries === undefined) {
    const require = createRequire(import.meta.url);
    // Neither package exports its UMD build as a subpath; both keep it beside their main file in dist/.
    const chart = path.join(path.dirname(require.resolve('chart.js')), 'chart.umd.min.js');
    const matrix = path.join(
      path.dirname(require.resolve('chartjs-chart-matrix')),
      'chartjs-chart-matrix.min.js',
    );
    libraries = [chart, matrix]
      .map((file) => inlineScript(stripSourceMap(fs.readFileSync(file, 'utf8'))))
      .join('\n');
  }
  return libraries;
}

// A source-map comment would make developer tools look for a file that is not there.
const stripSourceMap = (js: string) => js.replace(/\n\/\/# sourceMappingURL=\S+\s*$/, '\n');

function inlineScript(js: string): string {
  return `<script>${js.replace(/<\/script/gi, '<\\/script')}</script>`;
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function tableHtml(t: Table): string {
  const head = t.columns.map((c) => `<th>${escapeHtml(c)}</th>`).join('');
  const body = t.rows.map((r) => `<tr>${r.map((c) => `<td>${escapeHtml(c)}</td>`).join('')}</tr>`).join('\n');
  const caption = t.caption ? `<caption>${escapeHtml(t.caption)}</caption>` : '';
  return `<table>${caption}<thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

function chartHtml(spec: ChartSpec, id: string): string {
  const table = spec.table
    ? `<details><summary>numbers (${spec.table.rows.length} rows)</summary>${tableHtml(spec.table)}</details>`
    : '';
  const note = spec.note ? `<p class="note">${escapeHtml(spec.note)}</p>` : '';
  const wide = spec.kind === 'heatmap' ? ' wide' : '';
  return `<figure class="card${wide}"><figcaption>${escapeHtml(spec.title)}</figcaption>
<div class="plot" style="height:${spec.height ?? 280}px"><canvas id="${id}" role="img" aria-label="${escapeHtml(spec.title)}"></canvas></div>
${note}${table}</figure>`;
}

function metaHtml(meta: [string, string][] | undefined): string {
  if (!meta?.length) return '';
  return `<dl class="meta">${meta.map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd>${escapeHtml(v)}</dd>`).join('')}</dl>`;
}

function xChoiceHtml(charts: { spec: ChartSpec; id: string }[]): string {
  const withChoices = charts.filter((c) => c.spec.xChoices && c.spec.xChoices.length > 1);
  if (withChoices.length === 0) return '';
  const choices = new Map<string, string>();
  for (const c of withChoices)
    for (const ch of c.spec.xChoices!) if (!choices.has(ch.key)) choices.set(ch.key, ch.label);
  const options = [...choices].map(
    ([k, label]) => `<option value="${escapeHtml(k)}">${escapeHtml(label)}</option>`,
  );
  return `<p class="controls"><label>x axis: <select data-x-choice data-charts="${withChoices.map((c) => c.id).join(' ')}">${options.join('')}</select></label></p>`;
}

const STYLE = `
:root { color-scheme: light; --ink: #222; --muted: #666; --line: #ddd; --card: #fff; --page: #f6f7f9; --accent: #2166ac; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--page); color: var(--ink);
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header, main { max-width: 1400px; margin: 0 auto; padding: 0 24px; }
header { padding-top: 24px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 36px 0 8px; padding-bottom: 4px; border-bottom: 2px solid var(--accent); }
.sub { color: var(--muted); margin: 0 0 12px; }
code { font: 13px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: #eef1f5; padding: 1px 4px; border-radius: 3px; overflow-wrap: anywhere; }
nav ul { margin: 8px 0; padding-left: 20px; columns: 2; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 8px 0 16px; font-size: 14px; }
dl.meta dt { color: var(--muted); }
dl.meta dd { margin: 0; word-break: break-word; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(440px, 1fr)); gap: 16px; }
.card { margin: 0; background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 12px 14px; min-width: 0; }
.card.wide { grid-column: 1 / -1; }
figcaption { font-weight: 600; margin-bottom: 6px; }
.plot { position: relative; width: 100%; }
.note { color: var(--muted); font-size: 13px; margin: 6px 0 0; }
details { margin-top: 8px; font-size: 13px; }
summary { cursor: pointer; color: var(--accent); }
table { border-collapse: collapse; margin: 8px 0; font-size: 13px; font-variant-numeric: tabular-nums; }
th, td { border-bottom: 1px solid var(--line); padding: 3px 8px; text-align: right; white-space: nowrap; }
th { background: #eef1f5; }
td:first-child, th:first-child { text-align: left; }
caption { text-align: left; font-weight: 600; padding: 4px 0; }
.tables { overflow-x: auto; }
details table { display: block; overflow-x: auto; max-height: 420px; }
.controls { margin: 4px 0 12px; }
table.inputs { width: 100%; }
table.inputs th, table.inputs td { text-align: left; white-space: normal; vertical-align: top; }
table.inputs td:nth-child(5) { white-space: nowrap; }
table.inputs td:nth-child(6) { min-width: 24em; }
footer { max-width: 1400px; margin: 40px auto 24px; padding: 0 24px; color: var(--muted); font-size: 13px; }
`;

export function renderPage(o: {
  title: string;
  generated: Date;
  command?: string;
  inputs: RenderedInput[];
  sections: Section[];
}): string {
  let n = 0;
  const placed = o.sections.map((s) => ({
    section: s,
    charts: s.charts.map((spec) => ({ spec, id: `chart-${++n}` })),
  }));
  const data: EmbeddedData = {
    title: o.title,
    generated: o.generated.toISOString(),
    command: o.command,
    inputs: o.inputs.map((i) => ({
      name: i.name,
      kind: i.kind,
      modified: i.modified?.toISOString(),
      summary: i.summary,
    })),
    sections: placed.map(({ section, charts }) => ({
      title: section.title,
      charts: charts.map(({ spec: { table: _table, ...spec }, id }) => ({ id, ...spec })),
    })),
  };
  const minutes = (d: Date) =>
    d
      .toISOString()
      .replace('T', ' ')
      .replace(/:\d\d\.\d+Z$/, ' UTC');
  const inputRows = o.inputs.map((i) =>
    [
      escapeHtml(i.name),
      `<span title="${escapeHtml(i.description)}">${escapeHtml(i.kind)}</span>`,
      escapeHtml(i.summary.model ?? '–'),
      escapeHtml(i.summary.fingerprint ?? '–'),
      i.modified ? escapeHtml(minutes(i.modified)) : '–',
      i.summary.command ? `<code>${escapeHtml(i.summary.command)}</code>` : '–',
    ]
      .map((cell) => `<td>${cell}</td>`)
      .join(''),
  );
  const inputsHead = ['file', 'kind', 'model', 'fingerprint', 'written', 'command'].map(
    (c) => `<th>${c}</th>`,
  );
  const inputsTable = `<div class="tables"><table class="inputs"><thead><tr>${inputsHead.join('')}</tr></thead>
<tbody>${inputRows.map((r) => `<tr>${r}</tr>`).join('\n')}</tbody></table></div>`;
  const nav = `<nav><ul>${placed.map((_, i) => `<li><a href="#section-${i + 1}">${escapeHtml(o.sections[i]!.title)}</a></li>`).join('')}</ul></nav>`;
  const body = placed
    .map(({ section, charts }, i) => {
      const tables = section.tables.length
        ? `<div class="tables">${section.tables.map((t) => `<details><summary>${escapeHtml(t.caption ?? 'table')} (${t.rows.length} rows)</summary>${tableHtml(t)}</details>`).join('\n')}</div>`
        : '';
      return `<section id="section-${i + 1}"><h2>${escapeHtml(section.title)}</h2>
${metaHtml(section.meta)}${xChoiceHtml(charts)}
<div class="grid">
${charts.map(({ spec, id }) => chartHtml(spec, id)).join('\n')}
</div>
${tables}</section>`;
    })
    .join('\n');
  const json = JSON.stringify(data).replace(/</g, '\\u003c');
  const generated = minutes(o.generated);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(o.title)}</title>
<style>${STYLE}</style>
</head>
<body>
<header>
<h1>${escapeHtml(o.title)}</h1>
<p class="sub">Generated ${escapeHtml(generated)}${o.command ? ` by <code>${escapeHtml(o.command)}</code>` : ''}; ${n} charts from ${o.inputs.length} input${o.inputs.length === 1 ? '' : 's'}.</p>
${inputsTable}
${nav}
</header>
<main>
${body}
</main>
<footer>Charts drawn with Chart.js and chartjs-chart-matrix (MIT), inlined in this file; it needs no network.</footer>
${chartLibraries()}
<script type="application/json" id="${DATA_ELEMENT_ID}">${json}</script>
${inlineScript(RUNTIME)}
</body>
</html>
`;
}
