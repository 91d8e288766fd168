import { quantizeOnLoad, transformOption } from './sparsity-options.js';
import os from 'node:os';
import { fail } from '../errors.js';
import { bench } from '../eval/bench.js';
import { loadModel } from '../model/model.js';
import { command, integer, requireString, say } from './args.js';
import { Progress } from './progress.js';
import { parseList, SPARSITY_OPTIONS, SPARSITY_USAGE, sweepSettings } from './sparsity-options.js';
import { checkOutputFile, writeOutputFile } from '../io/files.js';

const USAGE = `usage: wina bench --model M [--quantize q8|q4] [--methods dense,wina] [--sparsity 0,0.25,0.5,0.65] [--prompt-tokens N]
                  [--new-tokens N] [--repeats R] [--layout row|input-major] [--out results.json] [--json]
                  ${SPARSITY_USAGE}`;

export const benchCommand = command({
  summary: 'prefill and decode tokens/s, dense vs sparse (median of repeats)',
  usage: USAGE,
  options: {
    model: { type: 'string', short: 'm' },
    ...SPARSITY_OPTIONS,
    methods: { type: 'string' },
    sparsity: { type: 'string', default: '0,0.25,0.5,0.65' },
    'prompt-tokens': { type: 'string' },
    'new-tokens': { type: 'string' },
    repeats: { type: 'string' },
    json: { type: 'boolean' },
    out: { type: 'string', short: 'o' },
    layout: { type: 'string' },
    quantize: { type: 'string' },
  },
  async run(o, argv) {
    const sparsities = parseList(o.sparsity as string, '--sparsity');
    const promptTokens = integer(o['prompt-tokens'], '--prompt-tokens') ?? 32;
    const newTokens = integer(o['new-tokens'], '--new-tokens') ?? 32;
    const repeats = integer(o.repeats, '--repeats') ?? 3;
    if (promptTokens < 1 || newTokens < 1 || repeats < 1)
      fail('--prompt-tokens, --new-tokens and --repeats must be >= 1');
    if (typeof o.out === 'string') checkOutputFile(o.out, '--out');
    const model = await loadModel(requireString(o.model, '--model'), {
      layout: o.layout as 'row' | 'input-major' | undefined,
      quantize: quantizeOnLoad(o),
    });
    if (promptTokens + newTokens > model.config.maxPositions) {
      fail(`--prompt-tokens + --new-tokens exceed the context window of ${model.config.maxPositions}`);
    }
    // The transform's shortcut rotations are part of the measured speed.
    const extraFlopsPerToken = transformOption(o, model);
    const settings = sweepSettings(o, model, sparsities);
    const progress = new Progress('bench', 1);
    const results = bench(model, {
      methods: [],
      sparsities,
      settings,
      promptTokens,
      newTokens,
      repeats,
      extraFlopsPerToken,
      onProgress: (done, total) => {
        progress.total = total;
        progress.update(done);
      },
    });
    progress.finish();
    model.close();
    // --out writes the --json document (what `wina report` reads), atomically.
    const document = `${JSON.stringify({
      command: ['wina', 'bench', ...argv].join(' '),
      model: model.info.source,
      kernels: model.transformer.kernels.name,
      results,
    })}\n`;
    if (typeof o.out === 'string') writeOutputFile(o.out, document, '--out');
    if (o.json) {
      process.stdout.write(document);
      return 0;
    }
    const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
    say(
      `${model.info.source} on ${cpu}, ${model.transformer.kernels.name}, ${model.transformer.kernels.threads} thread(s)`,
    );
    const dense = results.find((r) => r.method === 'dense');
    process.stdout.write(
      '| method | sparsity | achieved | decode tok/s | vs dense | decode GFLOPs/token | prefill tok/s | peak RSS MiB |\n|---|---|---|---|---|---|---|---|\n',
    );
    for (const r of results) {
      const ratio = dense ? (r.decodeTokensPerSecond / dense.decodeTokensPerSecond).toFixed(2) : '-';
      process.stdout.write(
        `| ${r.method} | ${r.sparsity} | ${r.achievedSparsity.toFixed(3)} | ${r.decodeTokensPerSecond.toFixed(2)} | ${ratio}x | ${r.decodeGflopsPerToken.toFixed(4)} | ` +
          `${r.prefillTokensPerSecond.toFixed(1)} | ${(r.peakMemoryBytes / 2 ** 20).toFixed(0)} |\n`,
      );
    }
    return 0;
  },
});
