/**
 * A one-line progress bar with ETA on stderr. Quiet where stderr is not a terminal (CI, pipes), so logs stay
 * clean.
 */
export class Progress {
  private readonly started = performance.now();
  private lastDraw = 0;
  private readonly enabled: boolean;

  constructor(
    private readonly label: string,
    public total: number,
    private readonly unit = '',
  ) {
    this.enabled = Boolean(process.stderr.isTTY) && !process.env.CI;
  }

  update(done: number): void {
    if (!this.enabled) return;
    const now = performance.now();
    if (now - this.lastDraw < 100 && done < this.total) return;
    this.lastDraw = now;
    const fraction = this.total > 0 ? Math.min(1, done / this.total) : 1;
    const width = 30;
    const filled = Math.round(fraction * width);
    const elapsed = (now - this.started) / 1000;
    const eta = fraction > 0 ? (elapsed * (1 - fraction)) / fraction : 0;
    const bar = `${'#'.repeat(filled)}${'.'.repeat(width - filled)}`;
    const count = this.unit ? ` ${format(done)}/${format(this.total)} ${this.unit}` : '';
    process.stderr.write(
      `\r${this.label} [${bar}] ${(fraction * 100).toFixed(0)}%${count} ETA ${clock(eta)} `,
    );
  }

  finish(): void {
    if (!this.enabled) return;
    this.update(this.total);
    process.stderr.write('\n');
  }
}

function format(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return String(n);
}

function clock(seconds: number): string {
  const s = Math.round(seconds);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}
