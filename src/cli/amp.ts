import fs from 'node:fs';
import path from 'node:path';
import { writeAmpProfile } from '../amp/amp-profile.js';
import { type AmpOptions, runAmp } from '../amp/experiment.js';
import { markdownReport } from '../amp/report.js';
import { parseFeatureSource, type RouterKind } from '../amp/router.js';
import { fail } from '../errors.js';
import { checkOutputFile, writeOutputFile } from '../io/files.js';
import { loadModel } from '../model/model.js';
import type { Method } from '../sparsity/config.js';
import { writeProfile } from '../sparsity/profile.js';
import { writeReport } from '../report/index.js';
import { type Command, command, integer, number, requireString, say } from './args.js';
import { Progress } from './progress.js';

const USAGE = `usage: wina amp run --model M --train DATA [--test DATA] [--out DIR] [--clusters auto|K] [--max-clusters 8]
                   [--sparsity 0.5] [--method wina|wina-paper|teal] [--allocation uniform|greedy]
                   [--greedy-samples 4] [--greedy-step 0.1] [--greedy-tokens 128]
                   [--seq-len 256] [--per-label N] [--train-per-label N] [--test-per-label N]
                   [--split 0.5] [--seed 1] [--shots 0] [--max-tokens 128]
                   [--router auto|centroid|softmax] [--router-input auto|embed|layer:N]
                   [--curve 0.4,0.6] [--tolerance 0.001] [--match-iterations 4] [--json]

DATA: PATH (a .jsonl, text file or folder: one passage per row / file, labelled by its domain field or
      subfolder), passages:PATH (files cut into --seq-len token passages, labelled by subfolder), or
      tasks:hellaswag,piqa,arc_easy,copa,gsm8k,... (items labelled by task, split by item: --split of each
      task's shuffled items train, the rest test; --test defaults to the same tasks).
Writes DIR (default amp-out): report.json, report.md, report.html, amp.json (cluster profiles + router, for
--profile in generate / eval) and uniform.json (the uniform profile it is compared with).`;

/** `wina amp run ...`: one subcommand so far. */
export const ampCommand: Command = {
  summary: 'WINA-AMP: cluster inputs by activation signature, a profile per cluster, routing',
  run: async (argv) => {
    const [sub, ...rest] = argv;
    if (sub === undefined || sub === '--help' || sub === '-h') {
      say(USAGE);
      return sub ? 0 : 2;
    }
    if (sub !== 'run') fail(`unknown amp command "${sub}" (known: run)`);
    return ampRun.run(rest);
  },
};

const ampRun = command({
  summary: 'WINA-AMP: cluster inputs by activation signature, a profile per cluster, routing',
  usage: USAGE,
  options: {
    model: { type: 'string', short: 'm' },
    train: { type: 'string' },
    test: { type: 'string' },
    out: { type: 'string', short: 'o', default: 'amp-out' },
    clusters: { type: 'string', default: 'auto' },
    'max-clusters': { type: 'string' },
    sparsity: { type: 'string' },
    method: { type: 'string' },
    allocation: { type: 'string' },
    'greedy-samples': { type: 'string' },
    'greedy-step': { type: 'string' },
    'greedy-tokens': { type: 'string' },
    'seq-len': { type: 'string' },
    'per-label': { type: 'string' },
    'train-per-label': { type: 'string' },
    'test-per-label': { type: 'string' },
    split: { type: 'string' },
    seed: { type: 'string' },
    shots: { type: 'string' },
    'max-tokens': { type: 'string' },
    router: { type: 'string' },
    'router-input': { type: 'string' },
    curve: { type: 'string' },
    tolerance: { type: 'string' },
    'match-iterations': { type: 'string' },
    json: { type: 'boolean' },
  },
  async run(o, argv) {
    const clusters = o.clusters === 'auto' ? 'auto' : integer(o.clusters, '--clusters')!;
    const curve =
      typeof o.curve === 'string'
        ? o.curve
            .split(',')
            .filter((v) => v.trim() !== '')
            .map((v) => number(v, '--curve')!)
        : undefined;
    const allocation = o.allocation as AmpOptions['allocation'];
    const router = o.router as 'auto' | RouterKind | undefined;
    const perLabel = integer(o['per-label'], '--per-label');
    const out = o.out as string;
    const train = requireString(o.train, '--train');
    const file = (name: string) => path.join(out, name);
    const names = ['report.json', 'report.md', 'report.html', 'amp.json', 'uniform.json'];
    // Before hours of work, not after; the folder itself is made only when the results are written.
    const existing = fs.statSync(out, { throwIfNoEntry: false });
    if (existing && !existing.isDirectory()) fail(`--out: ${out} exists and is not a folder`);
    if (existing) for (const name of names) checkOutputFile(file(name), '--out');
    else checkOutputFile(out, '--out');
    const model = await loadModel(requireString(o.model, '--model'));
    try {
      const routerInput =
        o['router-input'] === undefined || o['router-input'] === 'auto'
          ? 'auto'
          : parseFeatureSource(o['router-input'] as string, model.config.numLayers);
      let progress: Progress | undefined;
      let stage = '';
      const run = await runAmp(model, {
        train,
        test: o.test as string | undefined,
        method: o.method as Method | undefined,
        sparsity: number(o.sparsity, '--sparsity'),
        clusters,
        maxClusters: integer(o['max-clusters'], '--max-clusters'),
        allocation,
        greedySamples: integer(o['greedy-samples'], '--greedy-samples'),
        greedyStep: number(o['greedy-step'], '--greedy-step'),
        greedyTokens: integer(o['greedy-tokens'], '--greedy-tokens'),
        seqLen: integer(o['seq-len'], '--seq-len'),
        trainPerLabel: integer(o['train-per-label'], '--train-per-label') ?? perLabel,
        testPerLabel: integer(o['test-per-label'], '--test-per-label') ?? perLabel,
        split: number(o.split, '--split'),
        seed: integer(o.seed, '--seed'),
        shots: integer(o.shots, '--shots'),
        maxTokens: integer(o['max-tokens'], '--max-tokens'),
        routerInput,
        router,
        curve,
        tolerance: number(o.tolerance, '--tolerance'),
        matchIterations: integer(o['match-iterations'], '--match-iterations'),
        command: `wina amp run ${argv.join(' ')}`,
        onProgress: (name, done, total) => {
          if (name !== stage) {
            progress?.finish();
            stage = name;
            progress = new Progress(name, total, 'items');
          }
          progress!.update(done);
        },
      });
      progress?.finish();
      try {
        fs.mkdirSync(out, { recursive: true });
      } catch (e) {
        fail(`--out: cannot create folder ${out}: ${(e as NodeJS.ErrnoException).code}`);
      }
      writeOutputFile(file('report.json'), `${JSON.stringify(run.report, null, 1)}\n`, '--out');
      writeOutputFile(file('report.md'), markdownReport(run.report), '--out');
      writeAmpProfile(file('amp.json'), run.amp);
      writeProfile(file('uniform.json'), run.uniform);
      writeReport(file('report.html'), [{ name: 'report.json', doc: run.report, modified: new Date() }], {
        title: `WINA-AMP: ${path.basename(run.report.model)}`,
        command: run.report.command,
      });
      const files = names.map(file);
      if (o.json) {
        const r = run.report;
        const summary = {
          out,
          files,
          metric: r.metric,
          answers: r.answers,
          clustering: {
            k: r.clustering.k,
            silhouette: r.clustering.silhouette,
            purity: r.clustering.purity,
            ari: r.clustering.ari,
          },
          router: { source: r.router.source, kind: r.router.kind, testAccuracy: r.router.testAccuracy },
          comparison: r.comparison,
          seconds: r.seconds,
        };
        process.stdout.write(`${JSON.stringify(summary)}\n`);
      } else {
        for (const a of Object.values(run.report.answers))
          process.stdout.write(`${a.question} ${a.verdict}. ${a.summary}\n\n`);
        say(`wina amp: wrote ${files.join(', ')}; ${run.report.seconds.toFixed(1)} s`);
      }
      return 0;
    } finally {
      model.close();
    }
  },
});
