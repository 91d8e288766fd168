/**
 * Chart specs: plain JSON that the page's script (runtime.ts) turns into Chart.js charts. Sections build them
 * with the generic builders below (line, scatter with colour groups, heatmap, histogram, bar), so a new kind of
 * results (WINA-AMP) draws its plots without touching the page or the runtime.
 */

export interface Axis {
  label: string;
  /** Logarithmic scale. */
  log?: boolean;
  min?: number;
  max?: number;
}

export interface Point {
  x: number;
  y: number;
  /** Drawn as an error bar of ± stderr when the chart has `errorBars`. */
  stderr?: number | null;
  /** Shown in the tooltip (e.g. the task of a summary point). */
  note?: string;
  /** The point's x under the chart's other `xChoices`, by key. */
  alt?: Record<string, number>;
}

export type Marker = 'circle' | 'rect' | 'rectRot' | 'triangle' | 'star';

export interface Series {
  label: string;
  points: Point[];
  /** CSS colour; default: a fixed colour per method name, else one from the palette by label. */
  color?: string;
  dashed?: boolean;
  /** Connect the points (default true for line and histogram charts, false for scatter). */
  line?: boolean;
  /** Draw as steps centred on the points (histograms). */
  stepped?: boolean;
  marker?: Marker;
  pointRadius?: number;
}

export interface HeatmapData {
  xLabels: string[];
  yLabels: string[];
  /** values[y][x]; null: no value (drawn blank). */
  values: (number | null)[][];
  /** Colour scale bounds: `min` white, `max` dark. */
  min: number;
  max: number;
  /** Decimals of the numbers written in the cells. */
  digits: number;
}

export interface Table {
  caption?: string;
  columns: string[];
  /** Already formatted cells. */
  rows: string[][];
}

export type ChartKind = 'line' | 'scatter' | 'bar' | 'heatmap';

export interface ChartSpec {
  kind: ChartKind;
  title: string;
  x: Axis;
  y: Axis;
  series: Series[];
  /** Bar charts: the category of each point's x (an index). */
  categories?: string[];
  heatmap?: HeatmapData;
  /** Alternative x axes a section-wide selector switches between; the first is `x` itself. */
  xChoices?: { key: string; label: string }[];
  errorBars?: boolean;
  /** Plot height in CSS pixels (default 280). */
  height?: number;
  /** One line under the chart. */
  note?: string;
  /** The numbers behind the chart, shown under it. */
  table?: Table;
}

/** What a section function returns: a titled group of charts (each with its table) and extra tables. */
export interface Section {
  title: string;
  /** Key-value facts shown under the title (command, model, fingerprint, ...). */
  meta?: [string, string][];
  charts: ChartSpec[];
  tables: Table[];
}

const METHOD_COLORS: Record<string, string> = {
  dense: '#4d4d4d',
  teal: '#1b9e77',
  wina: '#2166ac',
  'wina-paper': '#7b3294',
  cats: '#d95f02',
};

const PALETTE = [
  '#2166ac',
  '#d95f02',
  '#1b9e77',
  '#7b3294',
  '#e7298a',
  '#66a61e',
  '#a6761d',
  '#e6ab02',
  '#1f78b4',
  '#b2182b',
  '#4d4d4d',
  '#35978f',
];

/** A stable colour for a label: methods keep theirs across charts ("wina+transform" is wina's). */
export function colorFor(label: string): string {
  const base = label.split(/[+ ]/)[0]!;
  if (METHOD_COLORS[base]) return METHOD_COLORS[base];
  let h = 0;
  for (const ch of label) h = (h * 31 + ch.codePointAt(0)!) >>> 0;
  return PALETTE[h % PALETTE.length]!;
}

/** The i-th of n colours along a light-to-dark ramp (layers of a model). */
export function rampColor(i: number, n: number): string {
  const t = n <= 1 ? 0.5 : i / (n - 1);
  // From a light teal-blue to a dark purple, readable on white at both ends.
  const from = [90, 180, 172];
  const to = [84, 39, 143];
  const c = from.map((f, k) => Math.round(f + (to[k]! - f) * t));
  return `rgb(${c.join(',')})`;
}

/** A number in a table: 4 significant digits, exponent form when tiny or huge. */
export function formatNumber(v: number | null | undefined): string {
  if (v === null || v === undefined) return '–';
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v) && Math.abs(v) < 1e9) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e6 || a < 1e-3)) return v.toExponential(3);
  return String(Number(v.toPrecision(4)));
}

/** The default table of a chart's series: one row per point. */
export function seriesTable(series: Series[], x: Axis, y: Axis): Table {
  const hasStderr = series.some((s) => s.points.some((p) => p.stderr !== undefined && p.stderr !== null));
  return {
    columns: ['series', x.label, y.label, ...(hasStderr ? ['stderr'] : [])],
    rows: series.flatMap((s) =>
      s.points.map((p) => [
        s.label,
        formatNumber(p.x),
        formatNumber(p.y),
        ...(hasStderr ? [formatNumber(p.stderr)] : []),
      ]),
    ),
  };
}

interface CommonOptions {
  title: string;
  x: Axis;
  y: Axis;
  note?: string;
  table?: Table;
  height?: number;
}

/** Curves through points, e.g. accuracy vs sparsity per method. */
export function lineChart(
  o: CommonOptions & { series: Series[]; errorBars?: boolean; xChoices?: ChartSpec['xChoices'] },
): ChartSpec {
  const series = o.series.map((s) => ({ line: true, ...s }));
  return {
    kind: 'line',
    title: o.title,
    x: o.x,
    y: o.y,
    series,
    errorBars: o.errorBars ?? series.some((s) => s.points.some((p) => p.stderr != null)),
    xChoices: o.xChoices,
    note: o.note,
    height: o.height,
    table: o.table ?? seriesTable(series, o.x, o.y),
  };
}

/** Points coloured by group (one series per group), not connected unless a group asks for it. */
export function scatterChart(
  o: CommonOptions & { groups: Series[]; errorBars?: boolean; xChoices?: ChartSpec['xChoices'] },
): ChartSpec {
  const series = o.groups.map((g) => ({ line: false, ...g }));
  return {
    kind: 'scatter',
    title: o.title,
    x: o.x,
    y: o.y,
    series,
    errorBars: o.errorBars ?? false,
    xChoices: o.xChoices,
    note: o.note,
    height: o.height,
    table: o.table ?? seriesTable(series, o.x, o.y),
  };
}

/** A grid of coloured cells with their values written in (e.g. sparsity per layer x projection). */
export function heatmapChart(
  o: Omit<CommonOptions, 'x' | 'y'> & {
    x: Axis;
    y: Axis;
    xLabels: string[];
    yLabels: string[];
    values: (number | null)[][];
    min?: number;
    max?: number;
    digits?: number;
  },
): ChartSpec {
  const finite = o.values.flat().filter((v): v is number => v !== null && Number.isFinite(v));
  const heatmap: HeatmapData = {
    xLabels: o.xLabels,
    yLabels: o.yLabels,
    values: o.values,
    min: o.min ?? Math.min(...finite, 0),
    max: o.max ?? Math.max(...finite, 1e-12),
    digits: o.digits ?? 2,
  };
  return {
    kind: 'heatmap',
    title: o.title,
    x: o.x,
    y: o.y,
    series: [],
    heatmap,
    note: o.note,
    height: o.height ?? Math.max(200, 60 + 28 * o.yLabels.length),
    table: o.table ?? {
      columns: [o.y.label, ...o.xLabels],
      rows: o.yLabels.map((label, i) => [
        label,
        ...o.xLabels.map((_, j) => {
          const v = o.values[i]?.[j];
          return v === null || v === undefined ? '–' : v.toFixed(heatmap.digits);
        }),
      ]),
    },
  };
}

export interface Bin {
  /** Where the bin is drawn on x: its centre (geometric on a log axis). */
  x: number;
  value: number;
}

/** Histograms drawn as steps, several overlaid (one series each, e.g. one per layer). */
export function histogramChart(
  o: CommonOptions & { series: { label: string; bins: Bin[]; color?: string }[] },
) {
  const series: Series[] = o.series.map((s) => ({
    label: s.label,
    color: s.color,
    line: true,
    stepped: true,
    pointRadius: 0,
    points: s.bins.map((b) => ({ x: b.x, y: b.value })),
  }));
  return {
    kind: 'line' as const,
    title: o.title,
    x: o.x,
    y: o.y,
    series,
    note: o.note,
    height: o.height,
    table: o.table ?? seriesTable(series, o.x, o.y),
  } satisfies ChartSpec;
}

/** Bars over categories, one bar group per category and one colour per series. */
export function barChart(
  o: CommonOptions & { categories: string[]; series: { label: string; values: number[]; color?: string }[] },
): ChartSpec {
  const series: Series[] = o.series.map((s) => ({
    label: s.label,
    color: s.color,
    points: s.values.map((y, x) => ({ x, y })),
  }));
  return {
    kind: 'bar',
    title: o.title,
    x: o.x,
    y: o.y,
    series,
    categories: o.categories,
    note: o.note,
    height: o.height,
    table: o.table ?? {
      columns: [o.x.label, ...o.series.map((s) => s.label)],
      rows: o.categories.map((c, i) => [c, ...o.series.map((s) => formatNumber(s.values[i]))]),
    },
  };
}
