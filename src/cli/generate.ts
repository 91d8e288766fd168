import { quantizeOnLoad } from './sparsity-options.js';
import { computeShape, gflopsPerToken } from '../eval/compute.js';
import { loadModel } from '../model/model.js';
import { command, integer, number, requireString, say } from './args.js';
import { applySparsityOptions, SPARSITY_OPTIONS, SPARSITY_USAGE } from './sparsity-options.js';

const USAGE = `usage: wina generate --model M [--quantize q8|q4] [--prompt TEXT] [--max-tokens N] [--temperature T] [--top-p P]
                     [--top-k K] [--seed S] [--tokenizer PATH] [--layout row|input-major] [--json]
                     ${SPARSITY_USAGE}`;

export const generateCommand = command({
  summary: 'generate text from a prompt, streamed as it is produced',
  usage: USAGE,
  options: {
    model: { type: 'string', short: 'm' },
    prompt: { type: 'string', short: 'p', default: '' },
    'max-tokens': { type: 'string', short: 'n' },
    temperature: { type: 'string', short: 't' },
    'top-p': { type: 'string' },
    'top-k': { type: 'string' },
    seed: { type: 'string' },
    tokenizer: { type: 'string' },
    json: { type: 'boolean' },
    layout: { type: 'string' },
    quantize: { type: 'string' },
    ...SPARSITY_OPTIONS,
  },
  async run(o) {
    const sampling = {
      maxTokens: integer(o['max-tokens'], '--max-tokens') ?? 256,
      temperature: number(o.temperature, '--temperature') ?? 1,
      topP: number(o['top-p'], '--top-p') ?? 0.9,
      topK: integer(o['top-k'], '--top-k') ?? 0,
      seed: integer(o.seed, '--seed'),
    };
    const modelSpec = requireString(o.model, '--model');
    const model = await loadModel(modelSpec, {
      tokenizer: o.tokenizer as string | undefined,
      layout: o.layout as 'row' | 'input-major' | undefined,
      quantize: quantizeOnLoad(o),
    });
    const prompt = o.prompt as string;
    const promptIds = model.encodePrompt(prompt);
    // An AMP profile routes the prompt to its cluster's profile.
    const { sparsity, extraFlopsPerToken, cluster } = applySparsityOptions(o, model, promptIds);

    const ids: number[] = [];
    let text = '';
    const started = performance.now();
    let firstTokenAt = started;
    if (!o.json) process.stdout.write(prompt);
    for await (const token of (sparsity ?? model).generate(promptIds, sampling)) {
      if (token.id >= 0) ids.push(token.id);
      if (ids.length === 1 && token.id >= 0) firstTokenAt = performance.now();
      text += token.text;
      if (!o.json) process.stdout.write(token.text);
    }
    const ended = performance.now();
    // Decode speed: tokens after the first, over the time after the first (which includes the prefill).
    const decodeSeconds = (ended - firstTokenAt) / 1000;
    const tokensPerSecond = ids.length > 1 && decodeSeconds > 0 ? (ids.length - 1) / decodeSeconds : 0;
    const achievedSparsity = sparsity?.achieved() ?? 0;
    // Over every position processed (prompt and generated), each attending to itself and all before it.
    const positions = promptIds.length + ids.length;
    const usage = { tokens: positions, attended: (positions * (positions + 1)) / 2 };
    const counts = {
      kept: Object.fromEntries(sparsity?.stats.kept ?? []),
      total: Object.fromEntries(sparsity?.stats.total ?? []),
    };
    const gflops = gflopsPerToken(computeShape(model, extraFlopsPerToken), counts, usage);
    if (o.json) {
      const result = {
        text,
        tokens: ids.length,
        promptTokens: promptIds.length,
        tokensPerSecond,
        achievedSparsity,
        gflopsPerToken: gflops,
        ...(cluster === undefined ? {} : { cluster }),
      };
      process.stdout.write(`${JSON.stringify({ ...result, tokenIds: ids })}\n`);
    } else {
      process.stdout.write('\n');
      say(
        `${ids.length} tokens, prompt ${promptIds.length} tokens, prefill ${((firstTokenAt - started) / 1000).toFixed(3)} s, ` +
          `decode ${tokensPerSecond.toFixed(1)} tokens/s, achieved sparsity ${(achievedSparsity * 100).toFixed(1)}%, ` +
          `${gflops.toPrecision(3)} GFLOPs/token${cluster === undefined ? '' : `, AMP cluster ${cluster}`}`,
      );
    }
    return 0;
  },
});
