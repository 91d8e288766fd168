/** Machine description and BENCHMARKS.md sections shared by the benchmarks. */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';

export function machineDescription(): string {
  let cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('model name'));
    if (line) cpu = line.split(':')[1]!.trim();
  } catch {
    // Not Linux: os.cpus() has it.
  }
  const memory = (os.totalmem() / 2 ** 30).toFixed(0);
  return `${cpu}, ${os.availableParallelism()} cores, ${memory} GiB RAM, Node ${process.version}, ${os.platform()} ${os.arch()}`;
}

/**
 * Replaces the section between `<!-- name:begin -->` and `<!-- name:end -->` (appending it if absent), leaving
 * the rest of the file to other benchmarks. Written to a temporary file and renamed, so a crash leaves the
 * old file intact.
 */
export function writeSection(path: string, name: string, body: string): void {
  const begin = `<!-- ${name}:begin -->`;
  const end = `<!-- ${name}:end -->`;
  const block = `${begin}\n${body.trimEnd()}\n${end}`;
  const old = existsSync(path) ? readFileSync(path, 'utf8') : '# Benchmarks\n';
  const from = old.indexOf(begin);
  const to = old.indexOf(end);
  const next =
    from >= 0 && to > from
      ? old.slice(0, from) + block + old.slice(to + end.length)
      : `${old.trimEnd()}\n\n${block}\n`;
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, next);
  renameSync(tmp, path);
}
