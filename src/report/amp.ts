/**
 * The report of a WINA-AMP run (`wina amp run`, its report.json): activation signatures projected to 2-D coloured by cluster
 * and by label, per-cluster sparsity heatmaps (layer x projection), metric-vs-sparsity curves uniform vs routed
 * AMP, silhouette by k, the routers, and the four answers.
 */
import type { AmpReport } from '../amp/experiment.js';
import {
  barChart,
  type ChartSpec,
  formatNumber,
  heatmapChart,
  lineChart,
  scatterChart,
  type Section,
  type Series,
} from './charts.js';
import { isObject, type ReportKind } from './kinds.js';

const clusterName = (c: number) => `cluster ${c}`;

function scatterBy(
  title: string,
  points: { x: number; y: number; id: string; label: string; cluster: number }[],
  groupOf: (p: (typeof points)[number]) => string,
  explained: number[],
): ChartSpec {
  const groups = new Map<string, Series>();
  for (const p of points) {
    const g = groupOf(p);
    let s = groups.get(g);
    if (!s) groups.set(g, (s = { label: g, points: [] }));
    s.points.push({ x: p.x, y: p.y, note: `${p.id} (${p.label}, ${clusterName(p.cluster)})` });
  }
  return scatterChart({
    title,
    x: { label: `PC1 (${((explained[0] ?? 0) * 100).toFixed(1)}% of variance)` },
    y: { label: `PC2 (${((explained[1] ?? 0) * 100).toFixed(1)}% of variance)` },
    groups: [...groups.values()].sort((a, b) => a.label.localeCompare(b.label)),
    table: {
      columns: ['group', 'items', 'mean PC1', 'mean PC2'],
      rows: [...groups.values()].map((s) => [
        s.label,
        String(s.points.length),
        formatNumber(s.points.reduce((a, p) => a + p.x, 0) / s.points.length),
        formatNumber(s.points.reduce((a, p) => a + p.y, 0) / s.points.length),
      ]),
    },
  });
}

export function ampSections(r: AmpReport, name: string): Section[] {
  const layers = r.allocations.uniform.length;
  const yLabels = Array.from({ length: layers }, (_, l) => `layer ${l}`);
  // One colour scale for every heatmap, spanning their values, so clusters compare at a glance.
  const cells = [
    r.allocations.uniform,
    ...r.allocations.clusters,
    ...r.achieved.uniformOnTrain,
    ...r.achieved.routedOnTest,
  ]
    .flat(2)
    .filter((v): v is number => v !== null && Number.isFinite(v));
  const low = Math.max(0, Math.floor(Math.min(...cells) * 20) / 20 - 0.05);
  const high = Math.min(1, Math.ceil(Math.max(...cells) * 20) / 20);
  const heat = (title: string, values: (number | null)[][], note?: string) =>
    heatmapChart({
      title,
      x: { label: 'projection' },
      y: { label: 'layer' },
      xLabels: r.allocations.projections,
      yLabels,
      values,
      min: low,
      max: high,
      digits: 2,
      note,
    });
  const metricLabel = r.metric === 'perplexity' ? 'perplexity (test)' : 'accuracy (test)';
  const curve = (label: string, points: AmpReport['curves']['uniform'], color?: string): Series => ({
    label,
    color,
    points: points.map((p) => ({
      x: p.sparsity,
      y: p.value,
      note: `target ${p.target.toFixed(3)}, shift ${p.shift.toFixed(4)}`,
      alt: { gflops: p.gflopsPerToken },
    })),
  });
  const oracle = r.evaluations.find((e) => e.name === 'amp-oracle' && e.data === 'test');
  const dense = r.evaluations.find((e) => e.name === 'dense');
  const onTest = r.evaluations.filter((e) => e.data === 'test');
  const labels = Object.keys(onTest[0]?.byLabel ?? {});
  const valueOf = (m: AmpReport['evaluations'][number]['overall']) =>
    r.metric === 'perplexity' ? m.perplexity : (m.accuracy ?? NaN);

  const answers: Section = {
    title: `WINA-AMP: ${name}`,
    meta: [
      ['model', r.model],
      ['method', `${r.method}, target sparsity ${r.sparsity}, allocation ${String(r.options.allocation)}`],
      ['train', `${r.data.train.spec} (${r.data.train.n} items)`],
      ['test', `${r.data.test.spec} (${r.data.test.n} items)`],
      ...Object.values(r.answers).map((a): [string, string] => [a.question, `${a.verdict}. ${a.summary}`]),
    ],
    charts: [],
    tables: [],
  };
  const clusters: Section = {
    title: 'Clusters of activation signatures',
    charts: [
      scatterBy(
        'Training signatures (PCA), by cluster',
        r.projection.train,
        (p) => clusterName(p.cluster),
        r.projection.explainedVariance,
      ),
      scatterBy(
        'Training signatures (PCA), by label',
        r.projection.train,
        (p) => p.label,
        r.projection.explainedVariance,
      ),
      scatterBy(
        'Test signatures (PCA), by label',
        r.projection.test,
        (p) => p.label,
        r.projection.explainedVariance,
      ),
      lineChart({
        title: 'Silhouette and label agreement by k',
        x: { label: 'k' },
        y: { label: 'value' },
        series: [
          { label: 'silhouette', points: r.clustering.candidates.map((c) => ({ x: c.k, y: c.silhouette })) },
          { label: 'purity', points: r.clustering.candidates.map((c) => ({ x: c.k, y: c.purity })) },
          {
            label: 'adjusted Rand index',
            points: r.clustering.candidates.map((c) => ({ x: c.k, y: c.ari })),
          },
          {
            label: 'silhouette, shuffled columns',
            dashed: true,
            points: r.clustering.candidates.map((c) => ({ x: c.k, y: r.clustering.nullSilhouette })),
          },
        ],
      }),
    ],
    tables: [
      {
        caption: 'Training items per cluster and label',
        columns: ['cluster', ...r.clustering.labels],
        rows: Object.entries(r.clustering.contingency).map(([c, row]) => [
          c,
          ...r.clustering.labels.map((l) => String(row[l] ?? 0)),
        ]),
      },
    ],
  };
  const sparsity: Section = {
    title: 'Sparsity per cluster (layer x projection)',
    charts: [
      heat('Uniform profile: allocated sparsity', r.allocations.uniform),
      ...r.allocations.clusters.map((a, c) => heat(`${clusterName(c)}: allocated sparsity`, a)),
      ...r.achieved.uniformOnTrain.map((a, c) =>
        heat(`Uniform profile on ${clusterName(c)}'s training items: achieved sparsity`, a, 'measured'),
      ),
      ...r.achieved.routedOnTest.map((a, c) =>
        heat(`${clusterName(c)}'s profile on the test items routed to it: achieved sparsity`, a, 'measured'),
      ),
    ],
    tables: [],
  };
  const comparison: Section = {
    title: `${r.metric === 'perplexity' ? 'Perplexity' : 'Accuracy'} vs achieved sparsity: uniform vs AMP`,
    charts: [
      lineChart({
        title: `${metricLabel} vs achieved sparsity`,
        x: { label: 'achieved sparsity' },
        y: { label: metricLabel, log: r.metric === 'perplexity' },
        xChoices: [
          { key: 'sparsity', label: 'achieved sparsity' },
          { key: 'gflops', label: 'GFLOPs per token' },
        ],
        series: [
          curve('uniform', r.curves.uniform, '#2166ac'),
          curve('amp-routed', r.curves.ampRouted, '#d95f02'),
          ...(oracle
            ? [
                {
                  label: 'amp-oracle',
                  color: '#1b9e77',
                  line: false,
                  points: [
                    {
                      x: oracle.achievedSparsity,
                      y: valueOf(oracle.overall),
                      alt: { gflops: oracle.gflopsPerToken },
                    },
                  ],
                },
              ]
            : []),
        ],
        note: dense
          ? `dense: ${formatNumber(valueOf(dense.overall))} at ${formatNumber(dense.gflopsPerToken)} GFLOPs per token`
          : undefined,
      }),
      barChart({
        // Perplexities of different labels differ by orders of magnitude: shown relative to dense.
        title:
          r.metric === 'perplexity'
            ? 'Perplexity per label, relative to dense (test)'
            : `${metricLabel} per label`,
        x: { label: 'label' },
        y: {
          label: r.metric === 'perplexity' ? 'perplexity / dense perplexity' : metricLabel,
          min: r.metric === 'perplexity' ? 1 : 0,
        },
        categories: labels,
        series: onTest
          .filter((e) => r.metric !== 'perplexity' || e.name !== 'dense')
          .map((e) => ({
            label: e.name,
            values: labels.map((l) =>
              r.metric === 'perplexity' && dense
                ? e.byLabel[l]!.perplexity / dense.byLabel[l]!.perplexity
                : valueOf(e.byLabel[l]!),
            ),
          })),
        note: 'amp-routed at the matched shift; amp-oracle: each test item with the cluster of its own signature',
      }),
      barChart({
        title: 'Router accuracy on test',
        x: { label: 'router' },
        y: { label: 'accuracy', min: 0, max: 1 },
        categories: r.router.candidates.map((c) => `${c.kind} on ${c.source}`),
        series: [
          { label: 'test accuracy', values: r.router.candidates.map((c) => c.testAccuracy) },
          { label: 'cross-validated (train)', values: r.router.candidates.map((c) => c.cvAccuracy) },
        ],
        note: `always the largest cluster: ${formatNumber(r.router.majorityBaseline)}`,
      }),
    ],
    tables: [
      {
        caption: 'Evaluations',
        columns: [
          'profile',
          'data',
          'achieved sparsity',
          'GFLOPs / token',
          r.metric,
          'NLL / token',
          'ms / item',
        ],
        rows: r.evaluations.map((e) => [
          e.name + (e.leakageProne ? ' (leakage-prone)' : ''),
          e.data,
          formatNumber(e.achievedSparsity),
          formatNumber(e.gflopsPerToken),
          formatNumber(valueOf(e.overall)),
          formatNumber(e.overall.nllPerToken),
          formatNumber((e.secondsPerItem + e.routerSecondsPerItem) * 1000),
        ]),
      },
    ],
  };
  return [answers, clusters, sparsity, comparison];
}

export const ampKind: ReportKind<AmpReport> = {
  kind: 'amp',
  description: 'WINA-AMP results (wina amp run: report.json)',
  detect: (doc): doc is AmpReport => isObject(doc) && doc.format === 'wina-amp',
  summary: (doc) => ({
    command: doc.command,
    model: doc.model,
    fingerprint: doc.fingerprint,
    seconds: doc.seconds,
  }),
  sections: (doc, source) => ampSections(doc, source.name),
};
