import { quantizeOnLoad } from './sparsity-options.js';
import { fail } from '../errors.js';
import { loadSamples } from '../sparsity/datasets.js';
import { loadModel } from '../model/model.js';
import { calibrate } from '../sparsity/calibrate.js';
import { type Method, METHODS } from '../sparsity/config.js';
import { greedyAllocation } from '../sparsity/greedy.js';
import { buildProfile, uniformAllocation, writeProfile } from '../sparsity/profile.js';
import { checkOutputFile } from '../io/files.js';
import { command, integer, number, requireString, say } from './args.js';
import { Progress } from './progress.js';

const USAGE = `usage: wina calibrate --model M [--quantize q8|q4] --data FILE|DIR [--out profile.json] [--method wina] [--sparsity 0.5]
                      [--samples N] [--seq-len L] [--greedy] [--greedy-samples N] [--greedy-step S] [--json]`;

export const calibrateCommand = command({
  summary: 'score histograms, thresholds and greedy allocation -> a profile file',
  usage: USAGE,
  options: {
    model: { type: 'string', short: 'm' },
    quantize: { type: 'string' },
    data: { type: 'string', short: 'd' },
    out: { type: 'string', short: 'o', default: 'profile.json' },
    method: { type: 'string', default: 'wina' },
    sparsity: { type: 'string', default: '0.5' },
    samples: { type: 'string' },
    'seq-len': { type: 'string' },
    greedy: { type: 'boolean' },
    'greedy-samples': { type: 'string' },
    'greedy-step': { type: 'string' },
    json: { type: 'boolean' },
  },
  async run(o) {
    const method = o.method as Method;
    if (!METHODS.includes(method) || method === 'dense') {
      fail(`--method must be one of ${METHODS.filter((m) => m !== 'dense').join(', ')}, got ${o.method}`);
    }
    const sparsity = number(o.sparsity, '--sparsity')!;
    if (!(sparsity >= 0 && sparsity < 1)) fail(`--sparsity must be in [0, 1), got ${o.sparsity}`);
    const seqLen = integer(o['seq-len'], '--seq-len') ?? 256;
    const sampleCount = integer(o.samples, '--samples') ?? 64;
    if (sampleCount < 1) fail('--samples must be >= 1');
    if (seqLen < 2) fail(`--seq-len must be >= 2, got ${seqLen}`);
    const greedySamples = integer(o['greedy-samples'], '--greedy-samples') ?? 8;
    if (greedySamples < 1) fail(`--greedy-samples must be >= 1, got ${greedySamples}`);
    const greedyStep = number(o['greedy-step'], '--greedy-step') ?? 0.05;
    if (!(greedyStep > 0 && greedyStep < 1)) fail(`--greedy-step must be in (0, 1), got ${greedyStep}`);
    const out = checkOutputFile(o.out as string, '--out'); // before the work, not after it
    if (o.greedy && method === 'cats')
      fail('--greedy allocates the seven projections; CATS only sparsifies the MLP');
    const data = requireString(o.data, '--data');
    const model = await loadModel(requireString(o.model, '--model'), {
      quantize: quantizeOnLoad(o),
    });
    if (seqLen > model.config.maxPositions)
      fail(`--seq-len ${seqLen} exceeds the context window of ${model.config.maxPositions}`);
    const samples = loadSamples(data, model.tokenizer, {
      seqLen,
      samples: sampleCount,
      bos: model.config.bosId,
    });
    if (samples.length === 0) fail(`data set ${data} gave no samples`);

    const started = performance.now();
    const progress = new Progress('calibrate', samples.length, 'samples');
    const calibration = calibrate(model, samples, method, (done) => progress.update(done));
    progress.finish();

    let allocation = uniformAllocation({ method, globalSparsity: sparsity }, model.config.numLayers);
    let trace;
    if (o.greedy) {
      const greedyProgress = new Progress('greedy', model.config.numLayers, 'layers');
      const result = greedyAllocation(model, samples.slice(0, greedySamples), calibration.histograms, {
        method,
        target: sparsity,
        step: greedyStep,
        onProgress: (done) => greedyProgress.update(done),
      });
      greedyProgress.finish();
      allocation = result.allocation;
      trace = result.trace;
    }
    const profile = buildProfile(model, calibration, {
      sparsity,
      allocation,
      data,
      seqLen,
      transform: false,
      greedy: trace,
    });
    writeProfile(out, profile);
    const seconds = (performance.now() - started) / 1000;
    const summary = {
      out: o.out,
      method,
      sparsity,
      samples: samples.length,
      tokens: calibration.tokens,
      greedy: Boolean(o.greedy),
      seconds,
    };
    if (o.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
    else
      say(
        `wrote ${o.out}: ${method} at ${sparsity}, ${samples.length} samples, ${calibration.tokens} tokens, ${seconds.toFixed(1)} s`,
      );
    model.close();
    return 0;
  },
});
