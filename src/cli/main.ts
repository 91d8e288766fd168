import { WinaError } from '../errors.js';
import { type Command, say } from './args.js';
import { ampCommand } from './amp.js';
import { benchCommand } from './bench.js';
import { calibrateCommand } from './calibrate.js';
import { evalCommand } from './eval.js';
import { generateCommand } from './generate.js';
import { infoCommand } from './info.js';
import { quantizeCommand } from './quantize.js';
import { reportCommand } from './report.js';
import { serveCommand } from './serve.js';
import { synthCommand } from './synth.js';
import { transformCommand } from './transform.js';

const COMMANDS: Record<string, Command> = {
  generate: generateCommand,
  info: infoCommand,
  calibrate: calibrateCommand,
  bench: benchCommand,
  transform: transformCommand,
  quantize: quantizeCommand,
  eval: evalCommand,
  synth: synthCommand,
  amp: ampCommand,
  serve: serveCommand,
  report: reportCommand,
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
