import { fail } from '../errors.js';
import { readInputJson, SIZE_LIMITS } from './files.js';

/** Reads a JSON object from a file; `what` names the file in the one-line errors ("config", "tokenizer file"). */
export function readJsonObject(
  file: string,
  what = 'file',
  limit: number = SIZE_LIMITS.json,
): Record<string, unknown> {
  const value = readInputJson(file, what, limit);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    fail(`${what} ${file} is not a JSON object`);
  }
  return value as Record<string, unknown>;
}
