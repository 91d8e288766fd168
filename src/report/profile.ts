/** The report of a calibration profile: score histograms, the allocation heatmap, the greedy trace. */
import { fail } from '../errors.js';
import { PROJECTIONS } from '../model/config.js';
import { BINS_PER_OCTAVE, Histogram, MIN_LOG2 } from '../sparsity/histogram.js';
import type { GreedyStep, Profile } from '../sparsity/profile.js';
import {
  type Bin,
  type ChartSpec,
  formatNumber,
  heatmapChart,
  histogramChart,
  lineChart,
  rampColor,
  type Section,
  type Table,
} from './charts.js';
import { isObject, type ReportKind, type ReportSource } from './kinds.js';

/** Stored bins merged per drawn bin: 1/4 octave keeps the shape and the file small. */
const MERGED_BINS = 16;

const SCORE_LABELS: Record<string, string> = {
  teal: 'score |x_i|',
  cats: 'score |silu(gate)_i|',
  wina: 'score |x_i| · ‖W[:, i]‖₂',
  'wina-paper': 'score |x_i| · ‖W[:, i]‖₂',
};

/**
 * A histogram as drawn: the share of all its scores in each 1/4 octave, at the bin's geometric centre (both
 * rounded to what a plot can show).
 */
export function histogramBins(h: { zeros: number; first: number; counts: number[] }): Bin[] {
  const total = h.zeros + h.counts.reduce((a, b) => a + b, 0);
  if (total === 0 || h.counts.length === 0) return [];
  const merged = new Map<number, number>();
  h.counts.forEach((c, i) => {
    const bin = Math.floor((h.first + i) / MERGED_BINS);
    merged.set(bin, (merged.get(bin) ?? 0) + c);
  });
  const bins = [...merged.keys()].sort((a, b) => a - b);
  return bins.map((b) => ({
    x: Number((2 ** (MIN_LOG2 + ((b + 0.5) * MERGED_BINS) / BINS_PER_OCTAVE)).toPrecision(5)),
    value: Number((merged.get(b)! / total).toPrecision(4)),
  }));
}

function checkProfile(p: Profile, name: string): void {
  if (!isObject(p.allocation) || !isObject(p.thresholds) || !isObject(p.histograms) || !isObject(p.model))
    fail(`profile ${name} is incomplete: it needs model, allocation, thresholds and histograms`);
  if (!(Number.isInteger(p.model.numLayers) && p.model.numLayers > 0))
    fail(`profile ${name} has no model.numLayers`);
  for (const [key, h] of Object.entries(p.histograms)) {
    if (!/^\d+\.\w+$/.test(key) || !isObject(h) || !Array.isArray(h.counts) || typeof h.first !== 'number')
      fail(`profile ${name} has a malformed histogram "${key}"`);
  }
}

const layerLabel = (l: number) => `layer ${l}`;

function histogramCharts(p: Profile): ChartSpec[] {
  const layersOf = new Map<string, number[]>();
  for (const key of Object.keys(p.histograms)) {
    const [layer, proj] = key.split('.') as [string, string];
    layersOf.set(proj, [...(layersOf.get(proj) ?? []), Number(layer)]);
  }
  const projections = [...layersOf.keys()].sort(
    (a, b) => (PROJECTIONS as readonly string[]).indexOf(a) - (PROJECTIONS as readonly string[]).indexOf(b),
  );
  const x = { label: SCORE_LABELS[p.method] ?? 'score', log: true };
  const y = { label: 'share per 1/4 octave' };
  return projections.map((proj) => {
    const layers = layersOf.get(proj)!.sort((a, b) => a - b);
    const rows = layers.map((l) => {
      const json = p.histograms[`${l}.${proj}`]!;
      const h = Histogram.fromJSON(json);
      return [
        layerLabel(l),
        formatNumber(h.total),
        formatNumber(h.zeros),
        formatNumber(h.quantile(0.5)),
        formatNumber(p.allocation[l]?.[proj as keyof (typeof p.allocation)[number]]),
        formatNumber(p.thresholds[l]?.[proj as keyof (typeof p.thresholds)[number]]),
      ];
    });
    return histogramChart({
      title: `Scores of ${proj} inputs`,
      x,
      y,
      series: layers.map((l, i) => ({
        label: layerLabel(l),
        color: rampColor(i, layers.length),
        bins: histogramBins(p.histograms[`${l}.${proj}`]!),
      })),
      note: 'Exact zeros are not drawn (log axis); the table counts them.',
      table: {
        columns: ['layer', 'scores', 'zeros', 'median score', 'allocated sparsity', 'threshold'],
        rows,
      },
    });
  });
}

function allocationChart(p: Profile): ChartSpec {
  const layers = Array.from({ length: p.model.numLayers }, (_, l) => l);
  const projections = PROJECTIONS.filter((proj) => layers.some((l) => p.allocation[l]?.[proj] !== undefined));
  const values = layers.map((l) => projections.map((proj) => p.allocation[l]?.[proj] ?? null));
  return heatmapChart({
    title: 'Allocation: sparsity per layer and projection',
    x: { label: 'projection' },
    y: { label: 'layer' },
    xLabels: projections,
    yLabels: layers.map(layerLabel),
    values,
    min: 0,
    max: 1,
    digits: 2,
    note: `Target ${p.sparsity} (${p.method}); white 0, dark 1.`,
  });
}

function greedyCharts(trace: GreedyStep[][]): ChartSpec[] {
  return trace.map((steps, l) => {
    const projections = PROJECTIONS.filter((proj) => steps.some((s) => s.sparsities[proj] !== undefined));
    const table: Table = {
      columns: ['step', 'effective sparsity', 'greedy error', 'uniform error', ...projections],
      rows: steps.map((s, i) => [
        String(i + 1),
        formatNumber(s.effectiveSparsity),
        formatNumber(s.error),
        formatNumber(s.baselineError),
        ...projections.map((proj) => formatNumber(s.sparsities[proj])),
      ]),
    };
    // Markers only while they stay apart; the tooltip still finds every step.
    const pointRadius = steps.length > 40 ? 0 : 2;
    return lineChart({
      title: `Greedy allocation, ${layerLabel(l)}`,
      x: { label: 'effective sparsity of the block' },
      y: { label: 'block output error (L2)' },
      series: [
        {
          label: 'greedy',
          color: '#2166ac',
          pointRadius,
          points: steps.map((s) => ({ x: s.effectiveSparsity, y: s.error })),
        },
        {
          label: 'uniform',
          color: '#b2182b',
          dashed: true,
          pointRadius,
          points: steps.map((s) => ({ x: s.effectiveSparsity, y: s.baselineError })),
        },
      ],
      height: 220,
      table,
    });
  });
}

function thresholdTable(p: Profile): Table {
  const layers = Array.from({ length: p.model.numLayers }, (_, l) => l);
  const projections = PROJECTIONS.filter((proj) => layers.some((l) => p.thresholds[l]?.[proj] !== undefined));
  return {
    caption: 'Thresholds (score below which an input is dropped)',
    columns: ['layer', ...projections],
    rows: layers.map((l) => [
      layerLabel(l),
      ...projections.map((proj) => formatNumber(p.thresholds[l]?.[proj])),
    ]),
  };
}

export function profileSections(p: Profile, source: ReportSource): Section[] {
  checkProfile(p, source.name);
  const c = p.calibration;
  const meta: [string, string][] = [
    [
      'model',
      `${p.model.architecture ?? '?'}, ${p.model.numLayers} layers, hidden ${p.model.hiddenSize ?? '?'}`,
    ],
    ['fingerprint', p.model.fingerprint ?? '–'],
    [
      'method',
      `${p.method}${p.transform ? ' + transform' : ''}, ${p.mask} masks, target sparsity ${p.sparsity}`,
    ],
  ];
  if (isObject(c))
    meta.push(['calibration', `${c.data}: ${c.samples} samples of ${c.seqLen} tokens (${c.tokens} tokens)`]);
  const sections: Section[] = [
    {
      title: `Calibration profile: ${source.name}`,
      meta,
      charts: [allocationChart(p), ...histogramCharts(p)],
      tables: [thresholdTable(p)],
    },
  ];
  if (Array.isArray(p.greedy) && p.greedy.length > 0) {
    sections.push({
      title: `Greedy allocation trace: ${source.name}`,
      meta: [
        [
          'reading',
          'per block: error at each step of the greedy search vs the same sparsity spread uniformly',
        ],
      ],
      charts: greedyCharts(p.greedy),
      tables: [],
    });
  }
  return sections;
}

export const profileKind: ReportKind<Profile> = {
  kind: 'profile',
  description: 'a calibration profile (wina calibrate)',
  detect: (doc): doc is Profile => isObject(doc) && doc.format === 'wina-profile',
  // A profile does not record its command line; the section's facts say how it was made.
  summary: (p) => ({
    model: isObject(p.model) ? p.model.architecture : undefined,
    fingerprint: isObject(p.model) ? p.model.fingerprint : undefined,
  }),
  sections: profileSections,
};
