/**
 * A log-scale histogram of scores with bounded memory: 64 bins per octave over [2^-32, 2^24), plus a count of
 * zeros. Quantiles interpolate inside a bin (about 1% resolution), which is all a threshold needs.
 */
export const BINS_PER_OCTAVE = 64;
export const MIN_LOG2 = -32;
const MAX_LOG2 = 24;
const BINS = (MAX_LOG2 - MIN_LOG2) * BINS_PER_OCTAVE;
export const HISTOGRAM_BINS = BINS;

export interface HistogramJson {
  zeros: number;
  /** Index of the first stored bin. */
  first: number;
  counts: number[];
}

export class Histogram {
  readonly counts = new Float64Array(BINS);
  zeros = 0;
  total = 0;

  static binOf(score: number): number {
    const b = Math.floor((Math.log2(score) - MIN_LOG2) * BINS_PER_OCTAVE);
    return b < 0 ? 0 : b >= BINS ? BINS - 1 : b;
  }

  add(score: number): void {
    this.total++;
    if (score > 0) this.counts[Histogram.binOf(score)]!++;
    else this.zeros++;
  }

  merge(other: Histogram): void {
    for (let i = 0; i < BINS; i++) this.counts[i]! += other.counts[i]!;
    this.zeros += other.zeros;
    this.total += other.total;
  }

  /** The score below which a fraction `q` of the scores lie: the threshold that gives sparsity q. */
  quantile(q: number): number {
    if (this.total === 0 || q <= 0) return 0;
    let target = q * this.total - this.zeros;
    if (target <= 0) return 0;
    for (let i = 0; i < BINS; i++) {
      const c = this.counts[i]!;
      if (target <= c) {
        const log2 = MIN_LOG2 + (i + target / c) / BINS_PER_OCTAVE;
        return 2 ** log2;
      }
      target -= c;
    }
    return 2 ** MAX_LOG2;
  }

  /** Fraction of scores at or below `threshold` (the sparsity a threshold gives on this data). */
  fractionBelow(threshold: number): number {
    if (this.total === 0) return 0;
    if (threshold <= 0) return this.zeros / this.total;
    const position = (Math.log2(threshold) - MIN_LOG2) * BINS_PER_OCTAVE;
    let below = this.zeros;
    for (let i = 0; i < BINS && i < position; i++) below += this.counts[i]! * Math.min(1, position - i);
    return below / this.total;
  }

  toJSON(): HistogramJson {
    let first = 0;
    let last = BINS - 1;
    while (first < BINS && this.counts[first] === 0) first++;
    while (last > first && this.counts[last] === 0) last--;
    return {
      zeros: this.zeros,
      first,
      counts: first < BINS ? Array.from(this.counts.subarray(first, last + 1)) : [],
    };
  }

  static fromJSON(j: HistogramJson): Histogram {
    const h = new Histogram();
    h.zeros = j.zeros;
    h.counts.set(j.counts, j.first);
    h.total = j.zeros + j.counts.reduce((a, b) => a + b, 0);
    return h;
  }
}
