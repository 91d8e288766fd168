import { type ParseArgsConfig, parseArgs } from 'node:util';
import { fail } from '../io/errors.js';

type Options = NonNullable<ParseArgsConfig['options']>;

/** Parses a command's options strictly: an unknown option or a missing value is one clear error line. */
export function parse<T extends Options>(argv: string[], options: T, usage: string) {
  try {
    return parseArgs({
      args: argv,
      options: { ...options, help: { type: 'boolean', short: 'h' } },
      strict: true,
    }).values as unknown as Record<keyof T | 'help', string | boolean | undefined>;
  } catch (e) {
    fail(`${(e as Error).message.split('\n')[0]}\n${usage}`);
  }
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
