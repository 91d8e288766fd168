import type { Quantization } from '../kernels/formats.js';
import { quantizeOnLoad } from './sparsity-options.js';
import path from 'node:path';
import { readAmpProfile } from '../amp/amp-profile.js';
import { evaluate } from '../eval/harness.js';
import { jsonResults, markdownReport, textTable } from '../eval/report.js';
import { PROTOCOLS, type Protocol, type Subset, SUBSETS } from '../eval/tasks.js';
import { fail } from '../errors.js';
import { loadModel } from '../model/model.js';
import { command, integer, number, requireString, say } from './args.js';
import { Progress } from './progress.js';
import {
  ampSweepSettings,
  isAmpProfile,
  parseList,
  SPARSITY_OPTIONS,
  sweepSettings,
} from './sparsity-options.js';
import { checkOutputFile, writeOutputFile } from '../io/files.js';

const USAGE = `usage: wina eval --model M [--quantize q8|q4] --tasks T1,T2 [--methods dense,wina] [--sparsity 0.25,0.4,0.5,0.65]
                 [--profile P] [--mask topk|threshold|adaptive] [--prefill all|none|paper] [--transform]
                 [--limit N] [--subset first|spread|random] [--shots K] [--seed S]
                 [--protocol rolling|chunked] [--stride N] [--max-tokens N] [--no-bos]
                 [--out results.json] [--md results.md] [--cache DIR | --no-cache] [--json]

tasks: wikitext2, tinystories, hellaswag, piqa, arc_easy, arc_challenge, openbookqa, copa, siqa, boolq,
       mmlu (57 subjects; mmlu_<subject> for one), gsm8k, or the path of a text file / .jsonl / folder
methods: dense, teal, wina, wina-paper, cats (dense runs once; with --profile the default is dense + its method)
--shots applies to mmlu (dev examples, default 0) and gsm8k (train exemplars, default 5)
--limit N keeps N items per task (per MMLU subject); a value below 1 keeps that fraction
--profile may be a WINA-AMP profile (amp.json of wina amp run): each prompt is routed to its cluster's profile`;

export const evalCommand = command({
  summary: 'lm-eval tasks (accuracy, perplexity) over a method x sparsity grid',
  usage: USAGE,
  options: {
    ...SPARSITY_OPTIONS,
    model: { type: 'string', short: 'm' },
    quantize: { type: 'string' },
    tasks: { type: 'string', short: 't' },
    methods: { type: 'string' },
    limit: { type: 'string' },
    subset: { type: 'string' },
    shots: { type: 'string' },
    seed: { type: 'string' },
    protocol: { type: 'string' },
    stride: { type: 'string' },
    'max-tokens': { type: 'string' },
    'no-bos': { type: 'boolean' },
    out: { type: 'string' },
    md: { type: 'string' },
    cache: { type: 'string' },
    'no-cache': { type: 'boolean' },
    json: { type: 'boolean' },
  },
  async run(o, argv) {
    const tasks = requireString(o.tasks, '--tasks')
      .split(',')
      .map((t) => t.trim())
      .filter(Boolean);
    if (tasks.length === 0) fail('--tasks is empty');
    // An AMP profile defaults to its own sparsity (its cluster profiles as calibrated).
    const amp = isAmpProfile(o) ? readAmpProfile(o.profile as string) : undefined;
    const sparsities = parseList(
      (o.sparsity as string | undefined) ?? (amp ? String(amp.sparsity) : '0.25,0.4,0.5,0.65'),
      '--sparsity',
    );
    const protocol = (o.protocol ?? 'rolling') as Protocol;
    if (!(PROTOCOLS as readonly string[]).includes(protocol))
      fail(`--protocol must be ${PROTOCOLS.join(' or ')}, got ${protocol}`);
    const subset = (o.subset ?? 'first') as Subset;
    if (!(SUBSETS as readonly string[]).includes(subset))
      fail(`--subset must be one of ${SUBSETS.join(', ')}, got ${subset}`);
    const limit = number(o.limit, '--limit');
    const shots = integer(o.shots, '--shots');
    const seed = integer(o.seed, '--seed');
    const stride = integer(o.stride, '--stride');
    const maxTokens = integer(o['max-tokens'], '--max-tokens');
    if (o.cache !== undefined && o['no-cache']) fail('--cache and --no-cache exclude each other');
    for (const flag of ['out', 'md'] as const) {
      const file = o[flag];
      if (typeof file === 'string') checkOutputFile(file, `--${flag}`);
    }

    const model = await loadModel(requireString(o.model, '--model'), {
      quantize: quantizeOnLoad(o),
    });
    try {
      const settings = amp ? ampSweepSettings(o, model, sparsities) : sweepSettings(o, model, sparsities);
      const progress = new Progress('eval', 1, 'items');
      const report = await evaluate(model, {
        tasks,
        settings,
        protocol,
        subset,
        limit,
        shots,
        seed,
        stride,
        maxTokens,
        bos: !o['no-bos'],
        transform: Boolean(o.transform),
        quantizeAfterTransform: o.transform ? (o.quantize as Quantization | undefined) : undefined,
        cache: o['no-cache'] ? false : typeof o.cache === 'string' ? path.resolve(o.cache) : undefined,
        onProgress: (done, total) => {
          progress.total = total;
          progress.update(done);
        },
      });
      progress.finish();
      const command = `wina eval ${argv.join(' ')}`;
      if (typeof o.out === 'string')
        writeOutputFile(o.out, `${JSON.stringify({ command, ...report }, null, 1)}\n`, '--out');
      if (typeof o.md === 'string') writeOutputFile(o.md, markdownReport(report, { command }), '--md');
      say(
        `wina eval: ${report.cache.misses} results computed, ${report.cache.hits} reused from the cache` +
          `${report.cache.dir ? ` (${path.relative(process.cwd(), report.cache.dir) || '.'})` : ''}; ` +
          `${report.seconds.toFixed(1)} s`,
      );
      if (o.json) process.stdout.write(`${JSON.stringify(jsonResults(report.results))}\n`);
      else process.stdout.write(`${textTable(report.results)}\n`);
      return 0;
    } finally {
      model.close();
    }
  },
});
