import { WinaError } from '../io/errors.js';
import { say } from './args.js';
import { benchCommand } from './bench.js';
import { ampCommand } from './amp.js';
import { calibrateCommand } from './calibrate.js';
import { evalCommand } from './eval.js';
import { generate } from './generate.js';
import { info } from './info.js';
import { serve } from './serve.js';
import { synth } from './synth.js';
import { transformCommand } from './transform.js';
import { quantizeCommand } from './quantize.js';
import { reportCommand } from './report.js';

const COMMANDS: Record<string, { run: (argv: string[]) => Promise<number>; summary: string }> = {
  generate: { run: generate, summary: 'generate text from a prompt, streamed as it is produced' },
  info: { run: info, summary: 'architecture, parameters, dtype and memory of a model' },
  calibrate: {
    run: calibrateCommand,
    summary: 'score histograms, thresholds and greedy allocation -> a profile file',
  },
  bench: { run: benchCommand, summary: 'prefill and decode tokens/s, dense vs sparse (median of repeats)' },
  transform: { run: transformCommand, summary: 'save the orthogonally transformed model as a checkpoint' },
  quantize: { run: quantizeCommand, summary: 'save the model with q8 or q4 weights (a scale per 32 inputs)' },
  eval: { run: evalCommand, summary: 'lm-eval tasks (accuracy, perplexity) over a method x sparsity grid' },
  synth: { run: synth, summary: 'write a random-weight model of a real shape (for speed benchmarks)' },
  amp: {
    run: ampCommand,
    summary: 'WINA-AMP: cluster inputs by activation profile, a profile per cluster, routing',
  },
  serve: { run: serve, summary: 'OpenAI-compatible API server and web playground' },
  report: {
    run: reportCommand,
    summary: 'self-contained HTML report (charts) of eval, bench and calibrate results',
  },
};

function usage(): string {
  const rows = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`);
  return ['usage: wina <command> [options]   (wina <command> --help for its options)', '', ...rows].join(
    '\n',
  );
}

/** Runs the CLI; returns the exit code. User errors are one line on stderr and exit code 2, never a stack. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h') {
    say(usage());
    return name ? 0 : 2;
  }
  const command = COMMANDS[name];
  if (!command) {
    say(`wina: unknown command "${name}"\n${usage()}`);
    return 2;
  }
  try {
    return await command.run(rest);
  } catch (e) {
    if (e instanceof WinaError) {
      say(`wina ${name}: ${e.message}`);
      return 2;
    }
    // A file-system refusal that no check named first (a path that vanished, a full disk) is still the
    // environment's doing, not a bug: one line with the path and the reason.
    const fsError = e as NodeJS.ErrnoException;
    if (typeof fsError?.code === 'string' && /^E[A-Z]+$/.test(fsError.code) && fsError.path) {
      say(`wina ${name}: cannot use ${fsError.path}: ${fsError.code}`);
      return 2;
    }
    if (process.env.WINA_DEBUG) throw e;
    say(`wina ${name}: internal error: ${(e as Error)?.message ?? e} (set WINA_DEBUG=1 for the stack trace)`);
    return 1;
  }
}
