import { quantizeOnLoad } from './sparsity-options.js';
import { loadModel } from '../model/model.js';
import { command, requireString } from './args.js';
import { WIDENED_NAMES } from '../model/gguf-dequantize.js';

const USAGE = 'usage: wina info --model M [--quantize q8|q4] [--tokenizer PATH] [--json]';

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(2)} MiB`;
}

export const infoCommand = command({
  summary: 'architecture, parameters, dtype and memory of a model',
  usage: USAGE,
  options: {
    model: { type: 'string', short: 'm' },
    tokenizer: { type: 'string' },
    quantize: { type: 'string' },
    json: { type: 'boolean' },
  },
  async run(o) {
    const model = await loadModel(requireString(o.model, '--model'), {
      tokenizer: o.tokenizer as string | undefined,
      quantize: quantizeOnLoad(o),
    });
    const { info: i, config: c } = model;
    const kvBytesPerToken = 2 * c.numLayers * c.numKvHeads * c.headDim * 4;
    const summary = {
      source: i.source,
      format: i.format,
      architecture: i.architecture,
      parameters: i.parameters,
      dtypes: i.dtypes,
      ...(i.fileTypes ? { fileTypes: i.fileTypes } : {}),
      weightBytes: i.weightBytes,
      kvCacheBytesPerToken: kvBytesPerToken,
      kvCacheBytesFullContext: kvBytesPerToken * c.maxPositions,
      tokenizerVocabSize: model.tokenizer.vocabSize,
      config: c,
    };
    if (o.json) {
      process.stdout.write(`${JSON.stringify(summary)}\n`);
      return 0;
    }
    const lines = [
      ['model', i.source],
      ['architecture', `${i.architecture} (${i.format})`],
      ['parameters', `${i.parameters.toLocaleString('en-US')} (${(i.parameters / 1e6).toFixed(2)} M)`],
      [
        'dtype',
        Object.entries(i.dtypes)
          .map(([d, n]) => `${d} ${((100 * n) / i.parameters).toFixed(1)}%`)
          .join(', '),
      ],
      ...(i.fileTypes
        ? [
            [
              'file types',
              Object.entries(i.fileTypes)
                .map(([t, n]) => `${t} ${n}${WIDENED_NAMES.has(t) ? ' (widened to F32)' : ''}`)
                .join(', '),
            ],
          ]
        : []),
      ['weights in memory', mib(i.weightBytes)],
      [
        'KV cache',
        `${mib(kvBytesPerToken)} per token, ${mib(kvBytesPerToken * c.maxPositions)} at ${c.maxPositions} tokens`,
      ],
      ['layers', `${c.numLayers}, hidden ${c.hiddenSize}, FFN ${c.intermediateSize}`],
      [
        'attention',
        `${c.numHeads} heads / ${c.numKvHeads} KV heads, head dim ${c.headDim}${c.slidingWindow ? `, window ${c.slidingWindow}` : ''}`,
      ],
      ['rope', `${c.rope.type}, theta ${c.rope.theta}, rotary dim ${c.rope.rotaryDim}`],
      [
        'vocabulary',
        `${c.vocabSize} (tokenizer ${model.tokenizer.vocabSize}), embeddings ${c.tieEmbeddings ? 'tied' : 'untied'}`,
      ],
      ['context', `${c.maxPositions} tokens`],
    ];
    for (const [k, v] of lines) process.stdout.write(`${k!.padEnd(18)} ${v}\n`);
    return 0;
  },
});
