import fs from 'node:fs';
import { fail } from './errors.js';

/** Reads a JSON object from a file; `what` names the file in the one-line errors ("config", "tokenizer file"). */
export function readJsonObject(file: string, what = 'file'): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    fail(`cannot read ${what} ${file}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    fail(`${what} ${file} is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    fail(`${what} ${file} is not a JSON object`);
  }
  return value as Record<string, unknown>;
}
