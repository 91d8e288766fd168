/**
 * Clustering of activation signatures and how good the clusters are: k-means (ml-kmeans, k-means++ seeding, best
 * of several seeded restarts), the number of clusters by silhouette, and agreement with known labels (purity,
 * adjusted Rand index). Distances are Euclidean on the rows as given (standardise them first).
 */
import { kmeans } from 'ml-kmeans';
import { fail } from '../errors.js';

export interface Clustering {
  k: number;
  /** Cluster of each row, 0..k-1, numbered by size (0 the largest). */
  assignments: number[];
  centroids: number[][];
  /** Sum of squared distances of the rows to their centroids. */
  inertia: number;
}

function squaredDistance(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i]! - b[i]!) ** 2;
  return s;
}

/** Index of the nearest of `centroids` (squared Euclidean; ties to the lowest index). */
export function nearest(row: ArrayLike<number>, centroids: readonly (readonly number[])[]): number {
  let best = 0;
  let bestDistance = Infinity;
  centroids.forEach((c, i) => {
    const d = squaredDistance(row, c);
    if (d < bestDistance) [best, bestDistance] = [i, d];
  });
  return best;
}

/** k-means: the lowest-inertia result of `restarts` k-means++ runs seeded seed, seed+1, ... */
export function kmeansClusters(rows: number[][], k: number, seed: number, restarts = 10): Clustering {
  if (!(Number.isInteger(k) && k >= 1)) fail(`the number of clusters must be a whole number >= 1, got ${k}`);
  if (rows.length < k) fail(`cannot make ${k} clusters of ${rows.length} samples`);
  let best: Clustering | undefined;
  for (let r = 0; r < restarts; r++) {
    const result = kmeans(rows, k, { seed: seed + r, initialization: 'kmeans++', maxIterations: 300 });
    const inertia = rows.reduce(
      (s, row, i) => s + squaredDistance(row, result.centroids[result.clusters[i]!]!),
      0,
    );
    if (!best || inertia < best.inertia - 1e-9)
      best = { k, assignments: result.clusters, centroids: result.centroids, inertia };
  }
  return renumberBySize(best!);
}

/** Clusters renumbered by size, largest first (ties by first appearance), so numbering is stable. */
function renumberBySize(c: Clustering): Clustering {
  const sizes = new Array<number>(c.k).fill(0);
  const first = new Array<number>(c.k).fill(Infinity);
  c.assignments.forEach((a, i) => {
    sizes[a]!++;
    first[a] = Math.min(first[a]!, i);
  });
  const order = Array.from({ length: c.k }, (_, i) => i).sort(
    (a, b) => sizes[b]! - sizes[a]! || first[a]! - first[b]!,
  );
  const rank = new Array<number>(c.k);
  order.forEach((old, i) => (rank[old] = i));
  return {
    k: c.k,
    assignments: c.assignments.map((a) => rank[a]!),
    centroids: order.map((old) => c.centroids[old]!),
    inertia: c.inertia,
  };
}

/**
 * Mean silhouette (Rousseeuw 1987) with Euclidean distances: per row (b - a) / max(a, b), a the mean distance to
 * the rest of its cluster, b the smallest mean distance to another cluster; 0 for a row alone in its cluster
 * (as scikit-learn). Needs 2 <= clusters <= rows - 1.
 */
export function silhouette(rows: readonly (readonly number[])[], assignments: readonly number[]): number {
  const n = rows.length;
  const k = new Set(assignments).size;
  if (k < 2 || k > n - 1) fail(`the silhouette needs 2..${n - 1} clusters, got ${k}`);
  const labels = [...new Set(assignments)];
  const index = new Map(labels.map((l, i) => [l, i]));
  const sizes = new Array<number>(k).fill(0);
  for (const a of assignments) sizes[index.get(a)!]!++;
  let total = 0;
  const sums = new Float64Array(k);
  for (let i = 0; i < n; i++) {
    sums.fill(0);
    for (let j = 0; j < n; j++)
      if (j !== i) sums[index.get(assignments[j]!)!]! += Math.sqrt(squaredDistance(rows[i]!, rows[j]!));
    const own = index.get(assignments[i]!)!;
    if (sizes[own] === 1) continue;
    const a = sums[own]! / (sizes[own]! - 1);
    let b = Infinity;
    for (let c = 0; c < k; c++) if (c !== own) b = Math.min(b, sums[c]! / sizes[c]!);
    const m = Math.max(a, b);
    total += m > 0 ? (b - a) / m : 0;
  }
  return total / n;
}

/** Share of rows whose label is their cluster's most common label. */
export function purity(assignments: readonly number[], labels: readonly string[]): number {
  if (assignments.length !== labels.length) throw new RangeError('assignments and labels differ in length');
  if (assignments.length === 0) return NaN;
  const table = contingency(assignments, labels);
  let agree = 0;
  for (const row of table.values()) agree += Math.max(...row.values());
  return agree / assignments.length;
}

/** Counts of each label in each cluster. */
export function contingency<A, B>(a: readonly A[], b: readonly B[]): Map<A, Map<B, number>> {
  const table = new Map<A, Map<B, number>>();
  a.forEach((x, i) => {
    let row = table.get(x);
    if (!row) table.set(x, (row = new Map()));
    row.set(b[i]!, (row.get(b[i]!) ?? 0) + 1);
  });
  return table;
}

const pairs = (n: number) => (n * (n - 1)) / 2;

/**
 * Adjusted Rand index (Hubert and Arabie 1985) of two partitions: 1 when identical up to renaming, about 0 for
 * independent ones. Two partitions that are both all one group (or all singletons) count as identical (1).
 */
export function adjustedRandIndex<A, B>(a: readonly A[], b: readonly B[]): number {
  if (a.length !== b.length) throw new RangeError('the partitions differ in length');
  const n = a.length;
  let index = 0;
  const rows = new Map<A, number>();
  const cols = new Map<B, number>();
  for (const [x, row] of contingency(a, b)) {
    for (const [y, count] of row) {
      index += pairs(count);
      rows.set(x, (rows.get(x) ?? 0) + count);
      cols.set(y, (cols.get(y) ?? 0) + count);
    }
  }
  const sumRows = [...rows.values()].reduce((s, c) => s + pairs(c), 0);
  const sumCols = [...cols.values()].reduce((s, c) => s + pairs(c), 0);
  const expected = (sumRows * sumCols) / pairs(n);
  const max = (sumRows + sumCols) / 2;
  if (max === expected) return 1;
  return (index - expected) / (max - expected);
}

export interface KCandidate {
  k: number;
  silhouette: number;
  inertia: number;
}

/** k-means for every k in `ks`; the k with the highest silhouette (ties to the smaller k). */
export function chooseK(
  rows: number[][],
  ks: readonly number[],
  seed: number,
): { best: Clustering; candidates: KCandidate[]; all: Map<number, Clustering> } {
  const usable = ks.filter((k) => k >= 2 && k <= rows.length - 1);
  if (usable.length === 0) fail(`choosing k needs at least 3 samples (got ${rows.length})`);
  const all = new Map<number, Clustering>();
  const candidates = usable.map((k) => {
    const c = kmeansClusters(rows, k, seed);
    all.set(k, c);
    return { k, silhouette: silhouette(rows, c.assignments), inertia: c.inertia };
  });
  const top = candidates.reduce((a, b) => (b.silhouette > a.silhouette + 1e-12 ? b : a));
  return { best: all.get(top.k)!, candidates, all };
}

/** Each column shuffled on its own (seeded): the same marginals without the joint structure (a null model). */
export function shuffleColumns(rows: readonly (readonly number[])[], random: () => number): number[][] {
  const out = rows.map((r) => [...r]);
  const d = rows[0]?.length ?? 0;
  for (let j = 0; j < d; j++) {
    for (let i = out.length - 1; i > 0; i--) {
      const s = Math.floor(random() * (i + 1));
      [out[i]![j], out[s]![j]] = [out[s]![j]!, out[i]![j]!];
    }
  }
  return out;
}
