import { isQuantization, QUANTIZATIONS } from '../kernels/formats.js';
import { fail } from '../errors.js';
import { loadModel } from '../model/model.js';
import { checkCheckpointFolder, saveCheckpoint } from '../sparsity/transform.js';
import { command, requireString, say } from './args.js';

const USAGE = `usage: wina quantize --model M --to q8|q4 --out DIR [--json]
  saves the model with its matrices quantized, one scale per 32 inputs (q8: int8, llama.cpp's Q8_0 blocks; q4:
  4-bit, Q4_0's blocks) as a checkpoint folder that loads back without quantizing again: each matrix NAME as its
  values (q8: I8 [out, in]; q4: U8 [out, in / 2], two per byte) and NAME_scale (F32 [out, in / 32])`;

export const quantizeCommand = command({
  summary: 'save the model with q8 or q4 weights (a scale per 32 inputs)',
  usage: USAGE,
  options: {
    model: { type: 'string', short: 'm' },
    to: { type: 'string' },
    out: { type: 'string', short: 'o' },
    json: { type: 'boolean' },
  },
  async run(o) {
    const to = requireString(o.to, '--to');
    if (!isQuantization(to)) fail(`--to must be one of ${QUANTIZATIONS.join(', ')}, got ${to}`);
    const out = requireString(o.out, '--out');
    const started = performance.now();
    const model = await loadModel(requireString(o.model, '--model'), { quantize: to });
    try {
      checkCheckpointFolder(model, out);
      saveCheckpoint(model, out);
      const summary = {
        out,
        format: to,
        weightBytes: model.info.weightBytes,
        seconds: (performance.now() - started) / 1000,
      };
      if (o.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
      else
        say(
          `wrote ${out} (${(summary.weightBytes / 2 ** 20).toFixed(1)} MiB of ${to} weights) in ${summary.seconds.toFixed(1)} s`,
        );
    } finally {
      model.close();
    }
    return 0;
  },
});
