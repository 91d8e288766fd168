/**
 * Kernel benchmark: this machine's read bandwidth, then dense and column-sparse matvec GB/s (bytes of weights
 * actually read / time) and their share of that bandwidth, and prefill GFLOP/s. Weights rotate among copies
 * totalling over 1 GiB so the caches cannot flatter the numbers. Each measurement waits for the machine to be
 * quiet and is retried if other processes took CPU during it. `--write` puts the tables into BENCHMARKS.md.
 *
 *   npm run bench [-- --write] [-- --quick] [-- --dtypes Q8,Q4]
 */
import type { DType } from '../src/kernels/tensor.js';
import { WasmKernels } from '../src/kernels/wasm.js';
import { measureQuietly } from './quiet.js';
import { machineDescription, writeSection } from './report.js';
import {
  benchPrefill,
  benchShape,
  fillWeights,
  type PrefillRow,
  readBandwidth,
  ROUNDS,
  type Row,
  rng,
  setQuick,
} from './workload.js';

const GiB = 2 ** 30;
const REGION_BYTES = 1.5 * GiB;
const SHAPES: [number, number][] = [
  [8192, 2048],
  [2048, 8192],
  [4096, 11008],
];
const ALL_DTYPES: DType[] = ['F32', 'BF16', 'F16', 'Q8', 'Q4'];
// `--dtypes A,B` measures only those (a quick A/B of one format's kernels; not for --write).
const only = process.argv[process.argv.indexOf('--dtypes') + 1];
const DTYPES = process.argv.includes('--dtypes')
  ? ALL_DTYPES.filter((d) => only?.split(',').includes(d))
  : ALL_DTYPES;
const ATTEMPTS = 3;

const quick = process.argv.includes('--quick');
setQuick(quick);

/** Marks a measurement that stayed disturbed by other processes through every attempt. */
let disturbed = false;
async function quietly<T>(what: string, run: () => T): Promise<T> {
  process.stderr.write(`measuring ${what}\n`);
  const { result, otherCores } = await measureQuietly(quick ? 1 : ATTEMPTS, run);
  if (otherCores >= 0.15) {
    disturbed = true;
    process.stderr.write(`  other processes used ${otherCores.toFixed(2)} cores meanwhile\n`);
  }
  return result;
}

function matvecTable(rows: Row[]): string {
  const lines = [
    '| matrix (out x in) | dtype | kernel | ms / call | GB/s | read bandwidth alongside | % of it | speed-up vs dense |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    const pct = ((r.gbps / r.bandwidth) * 100).toFixed(0);
    const cells = [r.shape, r.dtype, r.kernel, r.ms.toFixed(3), r.gbps.toFixed(1), r.bandwidth.toFixed(1)];
    lines.push(`| ${cells.join(' | ')} | ${pct}% | ${r.speedup.toFixed(2)}x |`);
  }
  return lines.join('\n');
}

function prefillTable(rows: PrefillRow[]): string {
  const lines = [
    '| matrix | dtype | tokens | ms / call | GFLOP/s | ms / token |',
    '|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    const perToken = (r.ms / r.tokens).toFixed(3);
    lines.push(
      `| ${r.shape} | ${r.dtype} | ${r.tokens} | ${r.ms.toFixed(2)} | ${r.gflops.toFixed(1)} | ${perToken} |`,
    );
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const k = await WasmKernels.create();
  const region = k.alloc(REGION_BYTES);
  fillWeights(region, rng(1));
  const bw1 = await quietly('read bandwidth, 1 thread', () => readBandwidth(k, region, 1));
  const bwAll = await quietly(`read bandwidth, ${k.threads} threads`, () =>
    readBandwidth(k, region, k.threads),
  );
  const rows: Row[] = [];
  for (const [outDim, inDim] of SHAPES) {
    for (const dtype of DTYPES) {
      rows.push(
        ...(await quietly(`${outDim}x${inDim} ${dtype}`, () => benchShape(k, region, outDim, inDim, dtype))),
      );
    }
  }
  const prefill: PrefillRow[] = [];
  for (const dtype of DTYPES) {
    const [outDim, inDim] = SHAPES[0]!;
    prefill.push(...(await quietly(`prefill ${dtype}`, () => benchPrefill(k, outDim, inDim, dtype))));
  }
  k.close();
  const threads = `${k.threads} thread${k.threads > 1 ? 's' : ''} (main + ${k.threads - 1} worker${k.threads === 2 ? '' : 's'})`;
  const regionSize = `${(REGION_BYTES / GiB).toFixed(1)} GiB`;
  const report = [
    `Machine: ${machineDescription()}; kernels: ${k.name}.`,
    '',
    `Read bandwidth (wasm read-sum over ${regionSize}): ${bw1.toFixed(1)} GB/s on 1 thread, ` +
      `${bwAll.toFixed(1)} GB/s on ${k.threads}.`,
    '',
    `Matvec (1 token), ${threads}; weights rotate among copies totalling ${regionSize}; median of ${ROUNDS} ` +
      'rounds after a warm-up round. GB/s counts the weight bytes actually read. Each round also reads every copy ' +
      `with the ${k.threads}-thread read-sum: this host's bandwidth drifts over time, so % compares with the ` +
      'bandwidth measured in the same rounds. Sparse keeps a random sorted set of input channels, new per copy.',
    '',
    matvecTable(rows),
    '',
    `Prefill (one matmul over several tokens; each block of 4 weight rows is read once for all tokens), ${threads}:`,
    '',
    prefillTable(prefill),
    ...(disturbed
      ? ['', 'Some measurements were disturbed by other processes on this machine (see stderr).']
      : []),
  ].join('\n');
  console.log(report);
  if (process.argv.includes('--write') && DTYPES.length === ALL_DTYPES.length) {
    const command = `npm run bench -- --write${quick ? ' --quick' : ''}`;
    writeSection('BENCHMARKS.md', 'kernels', `## Kernels\n\nCommand: \`${command}\`\n\n${report}\n`);
    console.log('\nwrote BENCHMARKS.md');
  }
}

await main();
