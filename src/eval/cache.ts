/**
 * Results on disk, one JSON file per (model fingerprint, task unit, sparsity config, options) under a folder
 * (.wina-cache/eval by default), named by the SHA-256 of the key, so that an interrupted sweep resumes where it
 * stopped and the dense baseline of a grid is computed once. Writes are atomic (temporary file + rename).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fail } from '../errors.js';
import { readInputText, SIZE_LIMITS, writeOutputFile } from '../io/files.js';

/** JSON with object keys sorted, so that equal keys hash equally whatever their construction order. */
export function stableStringify(value: unknown): string {
  if (value === undefined) return 'null';
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableStringify(v)}`).join(',')}}`;
}

export function hashKey(key: unknown): string {
  return createHash('sha256').update(stableStringify(key)).digest('hex');
}

export class ResultCache {
  constructor(readonly dir: string) {
    const st = fs.statSync(dir, { throwIfNoEntry: false });
    if (st && !st.isDirectory()) fail(`the cache ${dir} exists and is not a folder`);
  }

  private file(key: unknown): string {
    return path.join(this.dir, `${hashKey(key).slice(0, 40)}.json`);
  }

  get<T>(key: unknown): T | undefined {
    const file = this.file(key);
    let raw: string;
    try {
      raw = readInputText(file, 'cached result', SIZE_LIMITS.json); // never a planted FIFO
    } catch {
      return undefined;
    }
    try {
      const entry = JSON.parse(raw) as { key: unknown; value: T };
      // A hash collision or a hand-edited file: recompute rather than trust it.
      if (stableStringify(entry.key) !== stableStringify(key)) return undefined;
      return entry.value;
    } catch {
      return undefined; // a torn or corrupt file: recompute
    }
  }

  set(key: unknown, value: unknown): void {
    try {
      fs.mkdirSync(this.dir, { recursive: true });
    } catch (e) {
      fail(`cannot create the cache folder ${this.dir}: ${(e as NodeJS.ErrnoException).code}`);
    }
    writeOutputFile(this.file(key), JSON.stringify({ key, value }), 'result cache');
  }
}
