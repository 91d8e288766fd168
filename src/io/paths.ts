import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository (or installed package) root: this file is compiled to dist/src/io/paths.js. */
export const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/** Shared models, data and fixtures: $WINA_SHARED, else ../shared beside the repository. */
export function sharedPath(...parts: string[]): string {
  const root = process.env.WINA_SHARED ?? path.resolve(PACKAGE_ROOT, '../shared');
  return path.resolve(root, ...parts);
}
