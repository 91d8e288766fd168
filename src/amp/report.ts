/**
 * The answers of the WINA-AMP report to its four research questions, derived from the measured numbers by fixed
 * rules (stated in each answer), and the Markdown report.
 */
import type { AmpReport, Answers, EvaluationRecord } from './report-types.js';

type Base = Omit<AmpReport, 'answers'>;

const f = (v: number | null | undefined, digits = 3): string =>
  v === null || v === undefined || Number.isNaN(v) ? '–' : Number.isFinite(v) ? v.toFixed(digits) : String(v);
const pct = (v: number, digits = 1) => `${(v * 100).toFixed(digits)}%`;
const signed = (v: number, digits = 4) => `${v >= 0 ? '+' : ''}${v.toFixed(digits)}`;

/** Kaufman and Rousseeuw's reading of a mean silhouette. */
function structure(silhouette: number): string {
  if (silhouette > 0.7) return 'strong';
  if (silhouette > 0.5) return 'reasonable';
  if (silhouette > 0.25) return 'weak';
  return 'no substantial';
}

export function answerQuestions(r: Base): Answers {
  const c = r.clustering;
  const sil = c.silhouette;
  const clustersVerdict =
    sil > 0.5 && sil > c.nullSilhouette + 0.1
      ? 'yes'
      : sil > 0.25 && sil > c.nullSilhouette + 0.05
        ? 'weakly'
        : 'no';
  const atLabels = c.candidates.find((x) => x.k === c.labels.length);
  const labelsVerdict = c.ari >= 0.65 ? 'yes' : c.ari >= 0.2 ? 'partly' : 'no';

  const router = r.router;
  const routingVerdict =
    router.testAccuracy >= 0.9
      ? 'yes'
      : router.testAccuracy >= router.majorityBaseline + 0.1
        ? 'partly'
        : 'no';
  const others = router.candidates
    .filter((x) => !(x.kind === router.kind && x.source === router.source))
    .map((x) => `${x.kind} on ${x.source} ${f(x.testAccuracy)}`)
    .join(', ');

  const cmp = r.comparison;
  const perplexity = cmp.metric === 'perplexity';
  // Perplexity: judged on the paired NLL difference; accuracy: on the paired accuracy difference.
  const delta = perplexity ? cmp.nll : cmp.accuracy!;
  const better = perplexity ? delta.delta < -2 * delta.stderr : delta.delta > 2 * delta.stderr;
  const worse = perplexity ? delta.delta > 2 * delta.stderr : delta.delta < -2 * delta.stderr;
  const profilesVerdict = better ? 'yes' : worse ? 'no (worse)' : 'no (no significant difference)';
  const value = (v: number) => (perplexity ? f(v, 3) : f(v, 4));
  const oracleTrain = r.evaluations.find((e) => e.name === 'amp-oracle' && e.data === 'train');
  const uniformTrain = r.evaluations.find((e) => e.name === 'uniform' && e.data === 'train');
  const trainValue = (e: EvaluationRecord | undefined) =>
    e ? value(perplexity ? e.overall.perplexity : e.overall.accuracy!) : '–';

  return {
    clusters: {
      question: 'Do inputs cluster by activation signature?',
      verdict: clustersVerdict,
      summary:
        `k = ${c.k} (${c.chosenBy === 'silhouette' ? `best silhouette among k = 2..${Math.max(...c.candidates.map((x) => x.k))}` : 'set by --clusters'}), ` +
        `silhouette ${f(sil)}: ${structure(sil)} structure on Kaufman and Rousseeuw's scale; the same search on the signatures with ` +
        `each column shuffled (no joint structure) gives ${f(c.nullSilhouette)} (k = ${c.nullK}). Cluster sizes ${c.sizes.join(' / ')}. ` +
        `Rule: yes when the silhouette exceeds 0.5 and the null by 0.1, weakly when it exceeds 0.25 and the null by 0.05.`,
    },
    labels: {
      question: `Do the clusters align with the known labels (${c.labels.length}: ${c.labels.join(', ')})?`,
      verdict: labelsVerdict,
      summary:
        `purity ${f(c.purity)} (one cluster would give ${f(c.majorityPurity)}), adjusted Rand index ${f(c.ari)}` +
        (atLabels && atLabels.k !== c.k
          ? `; with k = ${atLabels.k} (the number of labels): purity ${f(atLabels.purity)}, ARI ${f(atLabels.ari)}`
          : '') +
        `; test items assigned to the nearest cluster: ARI ${f(c.test.ari)}. Rule: yes when ARI >= 0.65, partly when >= 0.2.`,
    },
    routing: {
      question: 'Does a router on a pre-decoding prompt embedding predict the cluster?',
      verdict: routingVerdict,
      summary:
        `${router.kind} on ${router.source} (chosen by ${router.chosenBy}): test accuracy ${f(router.testAccuracy)} against the ` +
        `clusters of the test items' own signatures (always the largest cluster: ${f(router.majorityBaseline)}; cross-validated on ` +
        `train ${f(router.candidates.find((x) => x.kind === router.kind && x.source === router.source)!.cvAccuracy)})` +
        (others ? `; others: ${others}` : '') +
        `. Cost per prompt ${router.flopsPerPrompt.toExponential(2)} FLOPs (${pct(router.flopsShareOfPrefill, 2)} of its dense ` +
        `prefill), ${f(router.secondsPerPrompt * 1000, 2)} ms. Rule: yes at >= 0.9, partly at >= the baseline + 0.1.`,
    },
    profiles: {
      question: 'Do per-cluster profiles beat the uniform profile at matched compute?',
      verdict: profilesVerdict,
      summary:
        `on test, at achieved sparsity ${pct(cmp.achieved.ampRouted, 2)} (routed AMP) vs ${pct(cmp.achieved.uniform, 2)} (uniform; ` +
        `${r.matching.matched ? 'matched' : 'NOT matched'} within ${pct(r.matching.tolerance, 2)} after ${r.matching.iterations.length} pass(es), shift ${signed(r.matching.shift)}): ` +
        `${cmp.metric} ${value(cmp.ampRouted)} routed vs ${value(cmp.uniform)} uniform (dense ${value(cmp.dense)}); ` +
        (perplexity
          ? `NLL per token ${signed(cmp.nll.delta)} ± ${f(cmp.nll.stderr, 4)} (perplexity x${f(Math.exp(cmp.nll.delta), 4)})`
          : `accuracy ${signed(cmp.accuracy!.delta)} ± ${f(cmp.accuracy!.stderr, 4)}, gold NLL per token ${signed(cmp.nll.delta)} ± ${f(cmp.nll.stderr, 4)}`) +
        ` (paired over ${delta.n} items)` +
        (cmp.interpolated
          ? `; read off the routed curve at exactly ${pct(cmp.interpolated.sparsity, 2)}: NLL per token ${signed(cmp.interpolated.nllDelta)}` +
            (perplexity ? '' : `, accuracy ${signed(cmp.interpolated.valueDelta)}`)
          : '') +
        `. With the true clusters (oracle routing) on test: ${value(cmp.ampOracle)} at ${pct(cmp.achieved.ampOracle, 2)}. ` +
        `On train (leakage-prone: calibrated and clustered there): oracle ${trainValue(oracleTrain)} vs uniform ${trainValue(uniformTrain)}. ` +
        `Latency per item: ${f(cmp.latency.ampRouted * 1000, 1)} ms routed (router included) vs ${f(cmp.latency.uniform * 1000, 1)} ms uniform. ` +
        `Rule: better or worse when the paired difference exceeds 2 standard errors.`,
    },
  };
}

function table(columns: string[], rows: string[][]): string {
  return [
    `| ${columns.join(' | ')} |`,
    `| ${columns.map(() => '---').join(' | ')} |`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
}

export function markdownReport(r: AmpReport): string {
  const perplexity = r.metric === 'perplexity';
  const value = (m: EvaluationRecord['overall']) => (perplexity ? f(m.perplexity, 3) : f(m.accuracy, 4));
  const out: string[] = [];
  out.push(`# WINA-AMP: ${r.model}`, '');
  if (r.command) out.push(`\`${r.command}\``, '');
  out.push(
    `Method ${r.method}, target sparsity ${r.sparsity}, allocation ${String(r.options.allocation)}, metric ${r.metric}; ` +
      `model fingerprint ${r.fingerprint}; ${f(r.seconds, 0)} s.`,
    '',
  );
  out.push('## Answers', '');
  for (const a of Object.values(r.answers)) out.push(`- **${a.question}** ${a.verdict}. ${a.summary}`);
  out.push('');

  out.push('## Data', '');
  out.push(
    table(
      ['set', 'spec', 'items', 'prompt tokens', 'labels'],
      (['train', 'test'] as const).map((side) => {
        const d = r.data[side];
        return [
          side,
          `\`${d.spec}\``,
          String(d.n),
          String(d.promptTokens),
          Object.entries(d.labels)
            .map(([l, n]) => `${l} ${n}`)
            .join(', '),
        ];
      }),
    ),
    '',
  );

  const c = r.clustering;
  out.push('## Clusters', '');
  out.push(
    `Features: ${c.features} (${c.dimensions} dimensions). k-means (k-means++, best of 10 seeded restarts).`,
    '',
  );
  out.push(
    table(
      ['k', 'silhouette', 'inertia', 'purity', 'ARI'],
      c.candidates.map((x) => [
        x.k === c.k ? `**${x.k}**` : String(x.k),
        f(x.silhouette),
        f(x.inertia, 1),
        f(x.purity),
        f(x.ari),
      ]),
    ),
    '',
  );
  out.push(`Null model (columns shuffled): silhouette ${f(c.nullSilhouette)} at k = ${c.nullK}.`, '');
  out.push(
    table(
      ['cluster', 'size', ...c.labels, 'test items'],
      Object.entries(c.contingency).map(([k, row]) => [
        k,
        String(c.sizes[Number(k)]),
        ...c.labels.map((l) => String(row[l] ?? 0)),
        String(c.test.sizes[Number(k)]),
      ]),
    ),
    '',
  );

  out.push('## Router', '');
  out.push(
    table(
      [
        'input',
        'classifier',
        'CV accuracy (train)',
        'train accuracy',
        'test accuracy',
        'FLOPs / prompt',
        'ms / prompt',
      ],
      r.router.candidates.map((x) => [
        x.source,
        x.kind === r.router.kind && x.source === r.router.source ? `**${x.kind}**` : x.kind,
        f(x.cvAccuracy),
        f(x.trainAccuracy),
        f(x.testAccuracy),
        x.flopsPerPrompt.toExponential(2),
        f(x.secondsPerPrompt * 1000, 3),
      ]),
    ),
    '',
  );
  out.push(
    `Test accuracy is against the cluster of each test item's own (dense) signature; always predicting the largest cluster scores ${f(r.router.majorityBaseline)}.`,
    '',
  );

  out.push('## Evaluations', '');
  out.push(
    table(
      [
        'profile',
        'data',
        'target',
        'achieved sparsity',
        'GFLOPs / token',
        r.metric,
        'NLL / token',
        'ms / item',
        'router ms / item',
      ],
      r.evaluations.map((e) => [
        e.name + (e.leakageProne ? ' (leakage-prone)' : ''),
        e.data,
        f(e.targetSparsity, 4),
        f(e.achievedSparsity, 4),
        f(e.gflopsPerToken, 5),
        value(e.overall),
        f(e.overall.nllPerToken, 4),
        f(e.secondsPerItem * 1000, 1),
        f(e.routerSecondsPerItem * 1000, 2),
      ]),
    ),
    '',
  );
  const onTest = r.evaluations.filter((e) => e.data === 'test');
  const labels = Object.keys(onTest[0]?.byLabel ?? {});
  out.push(`Per label on test (${r.metric}):`, '');
  out.push(
    table(
      ['label', ...onTest.map((e) => e.name)],
      labels.map((l) => [l, ...onTest.map((e) => value(e.byLabel[l]!))]),
    ),
    '',
  );

  out.push('## Matched sparsity and curves', '');
  out.push(
    `Uniform achieved ${f(r.matching.uniformAchieved, 4)} on test; routed AMP passes (shift of every allocated sparsity -> achieved): ` +
      r.matching.iterations.map((i) => `${signed(i.shift)} -> ${f(i.achieved, 4)}`).join(', ') +
      `; ${r.matching.matched ? 'matched' : 'not matched'} within ${r.matching.tolerance}.` +
      (r.comparison.interpolated
        ? ` The routed curve read at exactly ${f(r.comparison.interpolated.sparsity, 4)}: NLL per token ` +
          `${f(r.comparison.interpolated.nllPerToken, 4)} (${signed(r.comparison.interpolated.nllDelta)} vs uniform).`
        : ''),
    '',
  );
  out.push(
    table(
      ['profile', 'target', 'achieved sparsity', r.metric, 'NLL / token', 'GFLOPs / token'],
      (
        [
          ['uniform', r.curves.uniform],
          ['amp-routed', r.curves.ampRouted],
        ] as const
      ).flatMap(([profile, curve]) =>
        curve.map((p) => [
          profile,
          f(p.target, 4),
          f(p.sparsity, 4),
          perplexity ? f(p.value) : f(p.value, 4),
          f(p.nllPerToken, 4),
          f(p.gflopsPerToken, 5),
        ]),
      ),
    ),
    '',
  );
  out.push('## Timings (s)', '');
  out.push(table(Object.keys(r.timings), [Object.values(r.timings).map((t) => f(t, 1))]), '');
  return `${out.join('\n')}\n`;
}
