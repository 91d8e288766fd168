import { type ParseArgsConfig, parseArgs } from 'node:util';
import { fail } from '../errors.js';

type Options = NonNullable<ParseArgsConfig['options']>;

/** A command's parsed options: strings, flags, or absent. */
export type Values<T extends Options> = Record<keyof T | 'help', string | boolean | undefined>;

/** One subcommand of `wina`: every handler is declared so, and `command` gives it --help and strict parsing. */
export interface CommandSpec<T extends Options> {
  /** One line for `wina --help`. */
  summary: string;
  /** `wina <name> --help`; its first line names the command in option errors. */
  usage: string;
  options: T;
  /** The command itself, given its parsed options and its arguments as typed; returns the exit code. */
  run(o: Values<T>, argv: string[]): Promise<number>;
}

export interface Command {
  summary: string;
  run(argv: string[]): Promise<number>;
}

export function command<T extends Options>(spec: CommandSpec<T>): Command {
  return {
    summary: spec.summary,
    run: async (argv) => {
      const o = parse(argv, spec.options, spec.usage);
      if (o.help) {
        say(spec.usage);
        return 0;
      }
      return spec.run(o, argv);
    },
  };
}

/** Parses a command's options strictly: an unknown option or a missing value is one clear error line. */
export function parse<T extends Options>(argv: string[], options: T, usage: string) {
  try {
    return parseArgs({
      args: negativeValuesInline(argv, options),
      options: { ...options, help: { type: 'boolean', short: 'h' } },
      strict: true,
    }).values as unknown as Values<T>;
  } catch (e) {
    const command = /^usage: (wina \S+)/.exec(usage)?.[1] ?? 'wina <command>';
    fail(`${(e as Error).message.split('\n')[0]} (${command} --help for the options)`);
  }
}

/**
 * `--temperature -1` -> `--temperature=-1`: parseArgs refuses a value that starts with a dash as ambiguous,
 * but a negative number is a value, which the option's own check then judges.
 */
function negativeValuesInline(argv: string[], options: Options): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      out.push(...argv.slice(i));
      break;
    }
    const name = arg.startsWith('--')
      ? arg.slice(2)
      : Object.keys(options).find((k) => arg === `-${options[k]!.short}`);
    const next = argv[i + 1];
    if (name && options[name]?.type === 'string' && next !== undefined && /^-(\d|\.\d)/.test(next)) {
      out.push(`--${name}=${next}`);
      i++;
    } else {
      out.push(arg);
    }
  }
  return out;
}

export function requireString(value: string | boolean | undefined, flag: string): string {
  if (typeof value !== 'string' || value === '') fail(`${flag} is required`);
  return value;
}

/** A number option; undefined when absent, a clear error when not a number. */
export function number(value: string | boolean | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (typeof value !== 'string' || value.trim() === '' || !Number.isFinite(n)) {
    fail(`${flag} must be a number, got ${JSON.stringify(value)}`);
  }
  return n;
}

export function integer(value: string | boolean | undefined, flag: string): number | undefined {
  const n = number(value, flag);
  if (n !== undefined && !Number.isInteger(n)) fail(`${flag} must be a whole number, got ${value}`);
  return n;
}

/** Human text goes to stderr so that stdout carries only the result (or the one JSON document). */
export function say(text: string): void {
  process.stderr.write(`${text}\n`);
}
