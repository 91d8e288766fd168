/**
 * Benchmarks on a shared machine: how much CPU other processes took while we measured (Linux /proc/stat), so
 * a disturbed measurement can be retried instead of reported.
 */
import { readFileSync } from 'node:fs';

const TICKS_PER_SECOND = 100; // USER_HZ, 100 on every Linux of note

function busySeconds(): number | undefined {
  try {
    const fields = readFileSync('/proc/stat', 'utf8')
      .split('\n')[0]!
      .trim()
      .split(/\s+/)
      .slice(1)
      .map(Number);
    const [user, nice, system, , , irq, softirq] = fields as number[];
    return (user! + nice! + system! + irq! + softirq!) / TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

const ownSeconds = () => {
  const u = process.cpuUsage(); // every thread of this process, workers included
  return (u.user + u.system) / 1e6;
};

/** Measures the cores other processes kept busy on average since it was made. */
export class CpuWatch {
  private readonly busy = busySeconds();
  private readonly own = ownSeconds();
  private readonly t0 = performance.now();

  /** Average number of cores busy with other processes (0 where /proc/stat is unavailable). */
  otherCores(): number {
    const busy = busySeconds();
    const elapsed = (performance.now() - this.t0) / 1000;
    if (busy === undefined || this.busy === undefined || elapsed <= 0) return 0;
    return Math.max(0, (busy - this.busy - (ownSeconds() - this.own)) / elapsed);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits (up to maxMs) for a second in which other processes use less than a tenth of a core. */
export async function waitForQuiet(maxMs: number): Promise<boolean> {
  const end = performance.now() + maxMs;
  while (performance.now() < end) {
    const watch = new CpuWatch();
    await sleep(1000);
    if (watch.otherCores() < 0.1) return true;
  }
  return false;
}

/** Runs a measurement until other processes stayed (nearly) off the CPU during it, up to `attempts` times. */
export async function measureQuietly<T>(
  attempts: number,
  run: () => T,
): Promise<{ result: T; otherCores: number }> {
  let last: { result: T; otherCores: number } | undefined;
  for (let i = 0; i < attempts; i++) {
    await waitForQuiet(60_000);
    const watch = new CpuWatch();
    const result = run();
    last = { result, otherCores: watch.otherCores() };
    if (last.otherCores < 0.15) break;
  }
  return last!;
}
