import { loadModel } from '../model/model.js';
import { checkCheckpointFolder, orthogonalTransform, saveCheckpoint } from '../sparsity/transform.js';
import { command, requireString, say } from './args.js';
import { Progress } from './progress.js';

const USAGE =
  'usage: wina transform --model M --out DIR [--json]\n  saves the orthogonally transformed model (RMSNorm folded, SVD rotations) as a checkpoint';

export const transformCommand = command({
  summary: 'save the orthogonally transformed model as a checkpoint',
  usage: USAGE,
  options: {
    model: { type: 'string', short: 'm' },
    out: { type: 'string', short: 'o' },
    json: { type: 'boolean' },
  },
  async run(o) {
    const out = requireString(o.out, '--out');
    const model = await loadModel(requireString(o.model, '--model'));
    checkCheckpointFolder(model, out);
    const progress = new Progress('transform', model.config.numLayers, 'layers');
    const report = orthogonalTransform(model, { onLayer: (done) => progress.update(done) });
    progress.finish();
    saveCheckpoint(model, out);
    model.close();
    if (o.json) process.stdout.write(`${JSON.stringify({ out, ...report })}\n`);
    else
      say(
        `wrote ${out} in ${report.seconds.toFixed(1)} s (+${(report.extraFlopsPerToken / 1e6).toFixed(2)} MFLOP per token for the shortcut rotations)`,
      );
    return 0;
  },
});
