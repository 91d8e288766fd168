import { fail } from '../errors.js';
import { checkSyntheticFolder, SHAPES, writeSyntheticModel } from '../model/synthetic.js';
import { command, integer, requireString, say } from './args.js';
import { Progress } from './progress.js';

const USAGE = `usage: wina synth --out DIR [--shape ${Object.keys(SHAPES).join('|')}] [--dtype bf16|f16|f32] [--seed S] [--json]
  writes a random-weight Llama checkpoint of a real model's shape (for speed benchmarks)`;

export const synthCommand = command({
  summary: 'write a random-weight model of a real shape (for speed benchmarks)',
  usage: USAGE,
  options: {
    out: { type: 'string', short: 'o' },
    shape: { type: 'string', default: 'llama-1b' },
    dtype: { type: 'string', default: 'bf16' },
    seed: { type: 'string' },
    json: { type: 'boolean' },
  },
  async run(o) {
    const out = requireString(o.out, '--out');
    const shape =
      SHAPES[o.shape as string] ??
      fail(`unknown --shape ${o.shape} (known: ${Object.keys(SHAPES).join(', ')})`);
    const dtype = (o.dtype as string).toUpperCase();
    if (dtype !== 'BF16' && dtype !== 'F16' && dtype !== 'F32')
      fail(`--dtype must be bf16, f16 or f32, got ${o.dtype}`);
    const seed = integer(o.seed, '--seed') ?? 0;
    if (seed < 0) fail(`--seed must be >= 0, got ${seed}`);
    checkSyntheticFolder(out);
    const progress = new Progress(`synth ${o.shape}`, 1, 'B');
    const started = performance.now();
    let bytes = 0;
    writeSyntheticModel(out, shape, dtype, seed, (done, total) => {
      bytes = total;
      progress.total = total;
      progress.update(done);
    });
    progress.finish();
    const seconds = (performance.now() - started) / 1000;
    if (o.json) process.stdout.write(`${JSON.stringify({ out, shape: o.shape, dtype, bytes, seconds })}\n`);
    else say(`wrote ${out} (${(bytes / 2 ** 30).toFixed(2)} GiB ${dtype}) in ${seconds.toFixed(1)} s`);
    return 0;
  },
});
