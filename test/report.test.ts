/**
 * `wina report` on real inputs made here by `wina calibrate`, `wina eval` and `wina bench` on stories260K: the
 * HTML is self-contained, embeds the inputs' numbers, and every chart renders in Debian's Chromium.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import type { EvalResult } from '../src/eval/harness.js';
import type { BenchResult } from '../src/eval/bench.js';
import {
  DATA_ELEMENT_ID,
  type EmbeddedData,
  histogramBins,
  readReportSource,
  registerReportKind,
  renderReport,
  scatterChart,
} from '../src/report/index.js';
import type { Profile } from '../src/sparsity/profile.js';
import { CHROMIUM_ARGS, chromiumPath } from './browser.js';
import { sharedPath } from './helpers.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = path.join(REPO_ROOT, 'bin', 'wina.js');
const MAIN = pathToFileURL(path.join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js')).href;
const STORIES = sharedPath('models/stories260K');
const SAMPLE = sharedPath('data', 'tinystories', 'tinystories_sample.txt');

/** The CLI as a child process; `tty` makes stderr claim to be a terminal (and drops CI) so progress bars draw. */
function wina(args: string[], o: { tty?: boolean } = {}) {
  const env = { ...process.env };
  if (o.tty) delete env.CI;
  const argv = o.tty
    ? [
        '--input-type=module',
        '-e',
        `process.stderr.isTTY = true; const { main } = await import(${JSON.stringify(MAIN)}); process.exitCode = await main(process.argv.slice(1));`,
        '--',
        ...args,
      ]
    : [BIN, ...args];
  return spawnSync(process.execPath, argv, { encoding: 'utf8', env });
}

function ok(args: string[], o: { tty?: boolean } = {}) {
  const r = wina(args, o);
  assert.equal(r.status, 0, `wina ${args.join(' ')} exited ${r.status}; stderr:\n${r.stderr}`);
  return r;
}

/** A progress bar as Progress draws it: carriage returns redrawing `label [###...]`. */
function assertProgressBar(stderr: string, label: string) {
  assert.match(
    stderr,
    new RegExp(`\\r${label} \\[#*\\.*\\] \\d+%`),
    `no ${label} progress bar in:\n${stderr}`,
  );
}

function embeddedData(html: string): EmbeddedData {
  const open = `<script type="application/json" id="${DATA_ELEMENT_ID}">`;
  const start = html.indexOf(open);
  assert.ok(start >= 0, 'no embedded data');
  const end = html.indexOf('</script>', start);
  return JSON.parse(html.slice(start + open.length, end));
}

/** What the tests read in the page (tsconfig has no DOM types; the browser has them). */
interface CanvasLike {
  id: string;
  width: number;
  height: number;
  getContext(kind: '2d'): {
    getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray };
  };
}
interface ChartLike {
  config: { type: string };
  data: { datasets: { data: { x: number }[] }[] };
  options: { scales: { x: { title: { text: string } } } };
}
interface BrowserGlobals {
  Chart: { getChart(canvas: CanvasLike | null): ChartLike | undefined };
  document: {
    querySelectorAll(selector: 'canvas'): Iterable<CanvasLike>;
    getElementById(id: string): CanvasLike | null;
  };
  winaReport?: unknown;
}

const chartsOf = (data: EmbeddedData, titlePrefix: string) =>
  data.sections.filter((s) => s.title.startsWith(titlePrefix)).flatMap((s) => s.charts);

let dir: string;
let files: { profile: string; eval: string; bench: string; report: string };
let html: string;
let data: EmbeddedData;

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wina-report-'));
  files = {
    profile: path.join(dir, 'profile.json'),
    eval: path.join(dir, 'eval.json'),
    bench: path.join(dir, 'bench.json'),
    report: path.join(dir, 'report.html'),
  };
  // The inputs are made with stderr on a (pretended) terminal, so the same runs check the progress bars.
  const calibrate = ok(
    [
      'calibrate',
      '--model',
      STORIES,
      '--data',
      SAMPLE,
      '--samples',
      '3',
      '--seq-len',
      '48',
      '--greedy',
      '--greedy-samples',
      '1',
      '--greedy-step',
      '0.1',
      '--out',
      files.profile,
    ],
    { tty: true },
  );
  assertProgressBar(calibrate.stderr, 'calibrate');
  assertProgressBar(calibrate.stderr, 'greedy');
  const evaluation = ok(
    [
      'eval',
      '--model',
      STORIES,
      '--tasks',
      'tinystories,piqa',
      '--methods',
      'dense,teal,wina',
      '--sparsity',
      '0.25,0.5',
      '--limit',
      '4',
      '--no-cache',
      '--out',
      files.eval,
    ],
    { tty: true },
  );
  assertProgressBar(evaluation.stderr, 'eval');
  const bench = ok(
    [
      'bench',
      '--model',
      STORIES,
      '--methods',
      'dense,teal,wina',
      '--sparsity',
      '0.25,0.5',
      '--prompt-tokens',
      '8',
      '--new-tokens',
      '8',
      '--repeats',
      '1',
      '--out',
      files.bench,
      '--json',
    ],
    { tty: true },
  );
  assertProgressBar(bench.stderr, 'bench');
  assert.equal(bench.stdout, fs.readFileSync(files.bench, 'utf8'), '--out and --json differ');
  ok([
    'report',
    '--results',
    files.eval,
    '--results',
    files.bench,
    '--profile',
    files.profile,
    '-o',
    files.report,
  ]);
  html = fs.readFileSync(files.report, 'utf8');
  data = embeddedData(html);
});

after(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('wina report', () => {
  test('one self-contained file: nothing loads from outside, the chart libraries are inlined', () => {
    assert.deepEqual(fs.readdirSync(dir).sort(), ['bench.json', 'eval.json', 'profile.json', 'report.html']);
    const require = createRequire(import.meta.url);
    const chartJs = fs.readFileSync(
      path.join(path.dirname(require.resolve('chart.js')), 'chart.umd.min.js'),
      'utf8',
    );
    const matrix = fs.readFileSync(
      path.join(path.dirname(require.resolve('chartjs-chart-matrix')), 'chartjs-chart-matrix.min.js'),
      'utf8',
    );
    const strip = (js: string) => js.replace(/\n\/\/# sourceMappingURL=\S+\s*$/, '\n');
    assert.ok(html.includes(`<script>${strip(chartJs)}</script>`), 'Chart.js is not inlined verbatim');
    assert.ok(
      html.includes(`<script>${strip(matrix)}</script>`),
      'chartjs-chart-matrix is not inlined verbatim',
    );
    assert.doesNotMatch(html, /sourceMappingURL/);
    // Outside the libraries' licence banners, no address at all; every attribute link is an anchor in the page.
    const own = html.replace(strip(chartJs), '').replace(strip(matrix), '');
    // (assert.ok, not doesNotMatch: a failure should not print the whole page)
    assert.ok(!/https?:\/\//.test(own), 'an http(s) address in the page');
    const loads = /<(script|img|iframe|link|source|embed|object)\b[^>]*\b(src|href|data)\s*=/i;
    assert.ok(!loads.test(html), 'an element that loads a resource');
    assert.ok(!/@import|url\(/.test(own), 'a stylesheet import or url()');
    for (const [, target] of html.matchAll(/\bhref="([^"]*)"/g)) assert.match(target!, /^#section-\d+$/);
  });

  test('eval: one chart per task and metric whose series are the results rows', () => {
    const doc = JSON.parse(fs.readFileSync(files.eval, 'utf8')) as { results: EvalResult[]; command: string };
    const charts = chartsOf(data, 'Evaluation: eval.json');
    const keys = [...new Set(doc.results.map((r) => `${r.task}: ${r.metric}`))];
    assert.equal(keys.length, 6); // tinystories' four perplexity metrics, piqa's acc and acc_norm
    assert.deepEqual(
      charts.map((c) => c.title),
      [...keys, 'Achieved sparsity', 'Compute per token'],
    );
    for (const key of keys) {
      const chart = charts.find((c) => c.title === key)!;
      const rows = doc.results.filter((r) => `${r.task}: ${r.metric}` === key);
      assert.deepEqual(
        chart.series.map((s) => s.label),
        ['dense', 'teal', 'wina'],
      );
      for (const series of chart.series) {
        const own = rows.filter((r) => r.method === series.label).sort((a, b) => a.sparsity - b.sparsity);
        assert.deepEqual(
          series.points,
          own.map((r) => ({
            x: r.sparsity,
            y: r.value,
            stderr: r.stderr,
            alt: { achieved: r.achievedSparsity, gflops: r.gflopsPerToken },
          })),
        );
      }
      assert.equal(
        chart.errorBars,
        rows.some((r) => r.stderr !== null),
      );
      assert.equal(chart.y.log, key.includes('perplexity'));
    }
    const gflops = charts.find((c) => c.title === 'Compute per token')!;
    const perTask = new Map(
      doc.results.map((r) => [`${r.task} ${r.method} ${r.sparsity}`, r.gflopsPerToken]),
    );
    assert.equal(gflops.series.flatMap((s) => s.points).length, perTask.size);
    for (const s of gflops.series)
      for (const p of s.points) assert.equal(p.y, perTask.get(`${p.note} ${s.label} ${p.x}`));
  });

  test('bench: decode and prefill tokens/s per method, speedup over dense', () => {
    const doc = JSON.parse(fs.readFileSync(files.bench, 'utf8')) as {
      results: BenchResult[];
      command: string;
    };
    assert.match(doc.command, /^wina bench --model /);
    const charts = chartsOf(data, 'Speed: bench.json');
    assert.deepEqual(
      charts.map((c) => c.title),
      ['Decode speed', 'Prefill speed', 'Speedup over dense'],
    );
    const [decode, prefill, speedup] = charts as [
      (typeof charts)[number],
      (typeof charts)[number],
      (typeof charts)[number],
    ];
    const dense = doc.results.find((r) => r.method === 'dense')!;
    for (const [chart, key] of [
      [decode, 'decodeTokensPerSecond'],
      [prefill, 'prefillTokensPerSecond'],
    ] as const) {
      assert.deepEqual(
        chart.series.map((s) => s.label),
        ['dense', 'teal', 'wina'],
      );
      for (const s of chart.series) {
        const own = doc.results.filter((r) => r.method === s.label);
        assert.deepEqual(
          s.points.map((p) => [p.x, p.y, p.alt!.achieved]),
          own.map((r) => [r.sparsity, r[key], r.achievedSparsity]),
        );
      }
    }
    assert.deepEqual(
      speedup.series.map((s) => s.label),
      ['dense', 'teal decode', 'wina decode', 'teal prefill', 'wina prefill'],
    );
    assert.deepEqual(
      speedup.series[0]!.points.map((p) => [p.x, p.y]),
      [[0, 1]],
    );
    for (const s of speedup.series.slice(1)) {
      const [method, kind] = s.label.split(' ') as [string, 'decode' | 'prefill'];
      const key = `${kind}TokensPerSecond` as const;
      const own = doc.results.filter((r) => r.method === method);
      assert.deepEqual(
        s.points.map((p) => p.y),
        own.map((r) => r[key] / dense[key]),
      );
    }
  });

  test('profile: allocation heatmap, score histograms per projection, greedy trace per layer', () => {
    const profile = JSON.parse(fs.readFileSync(files.profile, 'utf8')) as Profile;
    const layers = profile.model.numLayers;
    const charts = chartsOf(data, 'Calibration profile');
    const heatmap = charts.find((c) => c.kind === 'heatmap')!;
    assert.deepEqual(heatmap.heatmap!.xLabels, ['q', 'k', 'v', 'o', 'gate', 'up', 'down']);
    assert.deepEqual(
      heatmap.heatmap!.values,
      Array.from({ length: layers }, (_, l) =>
        heatmap.heatmap!.xLabels.map((p) => profile.allocation[l]![p as 'q']),
      ),
    );
    const histograms = charts.filter((c) => c.title.startsWith('Scores of'));
    assert.deepEqual(
      histograms.map((c) => c.title),
      ['q', 'k', 'v', 'o', 'gate', 'up', 'down'].map((p) => `Scores of ${p} inputs`),
    );
    for (const chart of histograms) {
      const proj = chart.title.split(' ')[2]!;
      assert.equal(chart.series.length, layers);
      chart.series.forEach((s, l) => {
        const json = profile.histograms[`${l}.${proj}`]!;
        assert.deepEqual(
          s.points,
          histogramBins(json).map((b) => ({ x: b.x, y: b.value })),
        );
        // The drawn shares account for every non-zero score (to the 4 digits they are rounded to).
        const total = json.zeros + json.counts.reduce((a, b) => a + b, 0);
        const drawn = s.points.reduce((a, p) => a + p.y, 0);
        assert.ok(Math.abs(drawn - (total - json.zeros) / total) < 1e-3, `${s.label} ${proj}: ${drawn}`);
      });
    }
    const greedy = chartsOf(data, 'Greedy allocation trace');
    assert.equal(greedy.length, layers);
    greedy.forEach((chart, l) => {
      const steps = profile.greedy![l]!;
      assert.ok(steps.length > 0);
      assert.deepEqual(
        chart.series.map((s) => s.label),
        ['greedy', 'uniform'],
      );
      assert.deepEqual(
        chart.series[0]!.points.map((p) => [p.x, p.y]),
        steps.map((s) => [s.effectiveSparsity, s.error]),
      );
      assert.deepEqual(
        chart.series[1]!.points.map((p) => [p.x, p.y]),
        steps.map((s) => [s.effectiveSparsity, s.baselineError]),
      );
    });
  });

  test('a header naming each input, and the numbers under every chart', () => {
    const evalDoc = JSON.parse(fs.readFileSync(files.eval, 'utf8'));
    const benchDoc = JSON.parse(fs.readFileSync(files.bench, 'utf8'));
    const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
    for (const text of [
      evalDoc.command,
      evalDoc.fingerprint,
      evalDoc.model,
      benchDoc.command,
      benchDoc.kernels,
    ])
      assert.ok(html.includes(escape(text)), `header lacks ${text}`);
    assert.deepEqual(
      data.inputs.map((i) => [i.name, i.kind]),
      [
        ['eval.json', 'eval'],
        ['bench.json', 'bench'],
        ['profile.json', 'profile'],
      ],
    );
    const charts = data.sections.flatMap((s) => s.charts);
    assert.equal([...html.matchAll(/<canvas id="chart-\d+"/g)].length, charts.length);
    assert.equal(
      [...html.matchAll(/<summary>numbers \(\d+ rows\)<\/summary><table>/g)].length,
      charts.length,
    );
    // The eval table under a chart shows each row's value as wina eval's own table does.
    const row = evalDoc.results.find((r: EvalResult) => r.task === 'piqa' && r.method === 'wina');
    assert.ok(html.includes(`<td>${row.value.toFixed(4)} ± ${row.stderr.toFixed(4)}</td>`));
  });

  test('the section hook: a registered kind draws with the generic chart builders', () => {
    // Per-sample activation statistics of the real profile, as a WINA-AMP section would plot them.
    const profile = readReportSource(files.profile);
    const samples = (profile.doc as Profile).samples!;
    registerReportKind<{ format: string; samples: typeof samples }>({
      kind: 'sample-stats',
      description: 'per-sample activation statistics',
      detect: (doc): doc is { format: string; samples: typeof samples } =>
        (doc as { format?: string })?.format === 'sample-stats',
      summary: () => ({}),
      sections: (doc) => [
        {
          title: 'Samples',
          charts: [
            scatterChart({
              title: 'mean vs spread of log2 scores, layer 0 q',
              x: { label: 'mean log2 score' },
              y: { label: 'std log2 score' },
              groups: doc.samples.map((s) => ({
                label: s.id,
                points: [{ x: s.meanLog2['0.q']!, y: s.stdLog2['0.q']! }],
              })),
            }),
          ],
          tables: [],
        },
      ],
    });
    const page = renderReport([{ name: 'samples.json', doc: { format: 'sample-stats', samples } }]);
    const chart = embeddedData(page).sections[0]!.charts[0]!;
    assert.equal(chart.kind, 'scatter');
    assert.deepEqual(
      chart.series.map((s) => [s.label, s.points[0]!.x, s.points[0]!.y]),
      samples.map((s) => [s.id, s.meanLog2['0.q'], s.stdLog2['0.q']]),
    );
    assert.ok(page.includes('>sample-stats</span>'));
  });

  test('bad input: one clear line, exit code 2, nothing written', () => {
    const bad = fs.mkdtempSync(path.join(os.tmpdir(), 'wina-report-bad-'));
    try {
      const write = (name: string, text: string) => {
        fs.writeFileSync(path.join(bad, name), text);
        return path.join(bad, name);
      };
      const inputs = {
        broken: write('broken.json', '{"results": [1, 2'),
        array: write('array.json', '[1, 2, 3]'),
        unknown: write('unknown.json', '{"hello": "world"}'),
        empty: write('empty.json', '{"results": []}'),
      };
      const out = path.join(bad, 'out', 'report.html');
      fs.mkdirSync(path.dirname(out));
      fs.writeFileSync(out, 'previous report');
      const cases: [string[], string][] = [
        [
          ['--results', path.join(bad, 'missing.json'), '-o', out],
          'results file ' + path.join(bad, 'missing.json') + ' does not exist',
        ],
        [['--results', inputs.broken, '-o', out], 'is not valid JSON'],
        [['--results', inputs.array, '-o', out], 'is not a JSON object'],
        [['--results', inputs.unknown, '-o', out], 'unknown.json is none of: a calibration profile'],
        [['--results', inputs.empty, '-o', out], 'empty.json is none of'],
        [['--results', files.eval, '--results', inputs.unknown, '-o', out], 'unknown.json is none of'],
        [['--profile', files.eval, '-o', out], 'is not a wina profile'],
        [['--results', files.eval], '-o/--out is required'],
        [['-o', out], '--results or --profile is required'],
        [['--results', files.eval, '-o', path.join(bad, 'nowhere', 'r.html')], 'does not exist'],
        [['--results', files.eval, '-o', out, '--colour', 'red'], "Unknown option '--colour'"],
      ];
      for (const [args, phrase] of cases) {
        const r = wina(['report', ...args]);
        assert.equal(r.status, 2, `${args.join(' ')}: exit ${r.status}\n${r.stderr}`);
        assert.equal(r.stdout, '');
        const lines = r.stderr.trimEnd().split('\n');
        assert.equal(lines.length, 1, `${args.join(' ')}: not one line:\n${r.stderr}`);
        assert.ok(lines[0]!.startsWith('wina report: '), lines[0]);
        assert.ok(lines[0]!.includes(phrase), `${args.join(' ')}: "${lines[0]}" lacks "${phrase}"`);
      }
      assert.deepEqual(fs.readdirSync(path.dirname(out)), ['report.html']);
      assert.equal(fs.readFileSync(out, 'utf8'), 'previous report');
      assert.deepEqual(fs.readdirSync(bad).sort(), [
        'array.json',
        'broken.json',
        'empty.json',
        'out',
        'unknown.json',
      ]);
    } finally {
      fs.rmSync(bad, { recursive: true, force: true });
    }
  });

  test('progress bars only on a terminal: transform draws one, piped runs stay quiet', () => {
    const out = path.join(dir, 'transformed');
    try {
      assertProgressBar(
        ok(['transform', '--model', STORIES, '--out', out], { tty: true }).stderr,
        'transform',
      );
      fs.rmSync(out, { recursive: true, force: true });
      const piped = [
        ok(['transform', '--model', STORIES, '--out', out]),
        ok(['bench', '--model', STORIES, '--methods', 'dense', '--prompt-tokens', '4', '--new-tokens', '4']),
      ];
      for (const r of piped) assert.doesNotMatch(r.stderr, /\r|\[#*\.+\]/);
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  });
});

describe('the report in a browser (Chromium via playwright-core)', () => {
  // Outside the test's timeout: finding the browser may mean installing it (browser.ts).
  let executablePath = '';
  before(() => {
    executablePath = chromiumPath();
  });
  test(
    'every chart renders, nothing is fetched, no console errors; a screenshot',
    { timeout: 120_000 },
    async (t) => {
      const profileDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wina-chromium-'));
      const context = await chromium.launchPersistentContext(profileDir, {
        executablePath,
        headless: true,
        offline: true,
        viewport: { width: 1280, height: 900 },
        args: CHROMIUM_ARGS,
      });
      try {
        const page = await context.newPage();
        const errors: string[] = [];
        const fetched: string[] = [];
        page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
        page.on('pageerror', (e) => errors.push(e.message));
        const url = pathToFileURL(files.report).href;
        page.on('request', (r) => r.url() !== url && fetched.push(r.url()));
        await page.goto(url, { waitUntil: 'load' });
        await page.waitForFunction(() => (globalThis as unknown as BrowserGlobals).winaReport !== undefined);

        const charts = data.sections.flatMap((s) => s.charts);
        const rendered = await page.evaluate(() => {
          const { Chart, document } = globalThis as unknown as BrowserGlobals;
          return [...document.querySelectorAll('canvas')].map((canvas) => {
            const chart = Chart.getChart(canvas);
            const ctx = canvas.getContext('2d');
            const pixels = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
            let painted = 0;
            for (let i = 3; i < pixels.length; i += 4) if (pixels[i]! > 0) painted++;
            return {
              id: canvas.id,
              type: chart?.config.type,
              datasets: chart?.data.datasets.map((d) => d.data.length) ?? [],
              painted,
              size: canvas.width * canvas.height,
            };
          });
        });
        assert.deepEqual(
          rendered.map((r) => r.id),
          charts.map((c) => c.id),
        );
        rendered.forEach((r, i) => {
          const spec = charts[i]!;
          const type = spec.kind === 'heatmap' ? 'matrix' : spec.kind === 'bar' ? 'bar' : 'scatter';
          assert.equal(r.type, type, `${spec.title}: no ${type} chart on its canvas`);
          if (spec.kind === 'heatmap') assert.deepEqual(r.datasets, [spec.heatmap!.values.flat().length]);
          else
            assert.deepEqual(
              r.datasets,
              spec.series.map((s) => s.points.length),
              spec.title,
            );
          assert.ok(
            r.datasets.every((n) => n > 0),
            `${spec.title}: an empty dataset`,
          );
          assert.ok(
            r.size > 0 && r.painted > r.size * 0.01,
            `${spec.title}: ${r.painted} of ${r.size} pixels drawn`,
          );
        });

        // The x-axis selector redraws the eval charts against achieved sparsity.
        const first = charts[0]!;
        await page.selectOption('#section-1 select[data-x-choice]', 'achieved');
        const xs = await page.evaluate((id) => {
          const { Chart, document } = globalThis as unknown as BrowserGlobals;
          const chart = Chart.getChart(document.getElementById(id))!;
          return {
            x: chart.data.datasets.map((d) => d.data.map((p) => p.x)),
            title: chart.options.scales.x.title.text,
          };
        }, first.id);
        assert.deepEqual(
          xs.x,
          first.series.map((s) => s.points.map((p) => p.alt!.achieved)),
        );
        assert.equal(xs.title, 'achieved sparsity');

        // Kept with the test's other files unless WINA_SCREENSHOTS names a folder to keep it in.
        const shot = path.join(process.env.WINA_SCREENSHOTS ?? dir, 'report.png');
        await page.screenshot({ path: shot, fullPage: true });
        const png = fs.readFileSync(shot);
        assert.ok(png.length > 10_000, `screenshot is ${png.length} bytes`);
        assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
        t.diagnostic(
          `screenshot: ${shot} (${png.length} bytes${process.env.WINA_SCREENSHOTS ? '' : '; removed after the tests, WINA_SCREENSHOTS=DIR keeps it'})`,
        );

        assert.deepEqual(errors, [], 'console errors');
        assert.deepEqual(fetched, [], 'requests beyond the report file');
      } finally {
        await context.close();
        fs.rmSync(profileDir, { recursive: true, force: true });
      }
    },
  );
});
