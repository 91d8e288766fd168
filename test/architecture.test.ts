/**
 * The layering ARCHITECTURE.md draws, checked on the sources: every import points down the rows (or stays in its
 * folder), no module imports itself through others, and under src/runtime, src/kernels and src/linalg only
 * platform.ts imports Node.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import ts from 'typescript';

/** Highest first. `index.ts` (the public API) may import anything; `errors.ts` imports nothing. */
const ROWS = [
  ['cli'],
  ['server', 'report'],
  ['amp'],
  ['eval'],
  ['sparsity'],
  ['model'],
  ['tokenizer', 'linalg'],
  ['io'],
  ['kernels'],
  ['runtime'],
  ['errors.ts'],
];
const SRC = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../src');

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return e.name === 'assembly' ? [] : sources(p);
    return e.name.endsWith('.ts') ? [p] : [];
  });
}

/** Every module a source imports (type-only and dynamic imports included): relative ones as files, others as named. */
function importsOf(file: string): { local: string[]; packages: string[] } {
  const info = ts.preProcessFile(fs.readFileSync(file, 'utf8'), true, true);
  const names = info.importedFiles.map((f) => f.fileName);
  return {
    local: names
      .filter((n) => n.startsWith('.'))
      .map((n) => path.resolve(path.dirname(file), n).replace(/\.js$/, '.ts')),
    packages: names.filter((n) => !n.startsWith('.')),
  };
}

/** The row's folder name of a source: its first path part under src (or the file itself at the top). */
const unitOf = (file: string) => path.relative(SRC, file).split(path.sep)[0]!;
const rankOf = (unit: string) => ROWS.findIndex((row) => row.includes(unit));

describe('architecture', () => {
  const files = sources(SRC);
  const graph = new Map(files.map((f) => [f, importsOf(f)]));

  test('every folder is in a row', () => {
    const units = new Set(files.map(unitOf));
    units.delete('index.ts');
    for (const unit of units) assert.ok(rankOf(unit) >= 0, `${unit} is in no row of ROWS`);
  });

  test('imports point down only', () => {
    const upward: string[] = [];
    for (const [file, { local }] of graph) {
      const from = unitOf(file);
      if (from === 'index.ts') continue;
      for (const target of local) {
        const to = unitOf(target);
        if (to !== from && !(rankOf(to) > rankOf(from)))
          upward.push(`${path.relative(SRC, file)} -> ${path.relative(SRC, target)}`);
      }
    }
    assert.deepEqual(upward, []);
  });

  test('no import circle', () => {
    const state = new Map<string, 'open' | 'done'>();
    const circles: string[] = [];
    const visit = (file: string, trail: string[]) => {
      if (state.get(file) === 'done') return;
      if (state.get(file) === 'open') {
        circles.push(
          [...trail.slice(trail.indexOf(file)), file].map((f) => path.relative(SRC, f)).join(' -> '),
        );
        return;
      }
      state.set(file, 'open');
      for (const next of graph.get(file)?.local ?? []) if (graph.has(next)) visit(next, [...trail, file]);
      state.set(file, 'done');
    };
    for (const file of files) visit(file, []);
    assert.deepEqual(circles, []);
  });

  test('the runtime, kernels and linear algebra take Node only through runtime/platform.ts', () => {
    const direct = [...graph]
      .filter(([file]) => ['runtime', 'kernels', 'linalg'].includes(unitOf(file)))
      .filter(([file]) => !file.endsWith(path.join('runtime', 'platform.ts')))
      .flatMap(([file, { packages }]) =>
        packages.filter((p) => p.startsWith('node:')).map((p) => `${path.relative(SRC, file)}: ${p}`),
      );
    assert.deepEqual(direct, []);
  });
});
