/**
 * Linear-algebra benchmark: the symmetric eigensolver of src/linalg against ml-matrix's EVD, the float32
 * product and the float64 Gram matrix the orthogonal transform runs on, and the whole transform of the
 * Llama-3.2-1B shape. Each measurement first waits (up to 10 s) for other processes to leave the CPU and
 * records how many cores they used meanwhile. `--write` puts the tables into BENCHMARKS.md.
 *
 *   npm run bench:linalg [-- --write] [-- --quick]
 */
import fs from 'node:fs';
import { EVD, Matrix } from 'ml-matrix';
import { eigh, type EighPhases } from '../src/linalg/eigh.js';
import { gramMatrix, matmulABt, operand } from '../src/linalg/gemm.js';
import { Linalg } from '../src/linalg/runtime.js';
import { loadModel } from '../src/model/model.js';
import { SHAPES, writeSyntheticModel } from '../src/model/synthetic.js';
import { orthogonalTransform } from '../src/sparsity/transform.js';
import { CpuWatch, waitForQuiet } from './quiet.js';
import { machineDescription, writeSection } from './report.js';

const quick = process.argv.includes('--quick');
const OURS: [number, number][] = quick
  ? [
      [1024, 1],
      [2048, 1],
    ]
  : [
      [1024, 5],
      [2048, 3],
      [4096, 3],
    ];
const ML_MATRIX = quick ? [1024] : [1024, 2048];
const SYNTH_DIR = '/tmp/synth-1b';

interface Timed {
  seconds: number;
  /** CPU seconds of this process (all threads) meanwhile. */
  cpu: number;
  /** Cores other processes kept busy meanwhile (0-2 on this machine). */
  others: number;
  phases?: EighPhases;
}

async function timed(what: string, run: () => unknown, phases?: EighPhases): Promise<Timed> {
  process.stderr.write(`measuring ${what}\n`);
  await waitForQuiet(10_000);
  const watch = new CpuWatch();
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  run();
  const seconds = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  const others = watch.otherCores();
  process.stderr.write(`  ${seconds.toFixed(2)} s (other processes: ${others.toFixed(2)} cores)\n`);
  return { seconds, cpu: (c.user + c.system) / 1e6, others, phases: phases && { ...phases } };
}

function median(xs: Timed[]): Timed {
  const sorted = [...xs].sort((a, b) => a.seconds - b.seconds);
  return sorted[(sorted.length - 1) >> 1]!;
}

let seed = 12345;
function uniform(): number {
  seed = (seed * 1103515245 + 12345) >>> 0;
  return seed / 2 ** 32 - 0.5;
}

function randomSymmetric(n: number): Float64Array {
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) a[i * n + j] = a[j * n + i] = uniform();
  return a;
}

const fmt = (t: Timed) => `${t.seconds.toFixed(t.seconds < 10 ? 2 : 1)} s`;
const load = (t: Timed) => t.others.toFixed(2);

async function main(): Promise<void> {
  const threads = Linalg.get().threads;
  const lines: string[] = [];

  // Eigendecompositions.
  const rows: string[] = [];
  for (const [n, repeats] of OURS) {
    const a = randomSymmetric(n);
    eigh(a, Math.min(n, 256)); // first call: compiles and starts the workers
    const runs: Timed[] = [];
    for (let r = 0; r < repeats; r++) {
      const phases: EighPhases = { tridiagonal: 0, ql: 0, back: 0 };
      runs.push(await timed(`eigh ${n} (${r + 1}/${repeats})`, () => eigh(a, n, phases), phases));
    }
    const m = median(runs);
    const p = m.phases!;
    const split = [p.tridiagonal, p.ql, p.back].map((x) => x.toFixed(1)).join(' / ');
    const ours = `| ${n} | ${fmt(m)} | ${split} | ${m.cpu.toFixed(1)} s | ${runs.length} | ${load(m)}`;
    if (ML_MATRIX.includes(n)) {
      const matrix = new Matrix(
        Array.from({ length: n }, (_, i) => Array.from(a.subarray(i * n, (i + 1) * n))),
      );
      const t = await timed(`ml-matrix EVD ${n}`, () => new EVD(matrix, { assumeSymmetric: true }));
      const theirs = `${fmt(t)} (one run; others ${load(t)} cores)`;
      rows.push(`${ours} | ${theirs} | ${(t.seconds / m.seconds).toFixed(0)}x |`);
    } else if (n === 4096) {
      const theirs = '474 s (an earlier measurement, one run; not re-run: too slow)';
      rows.push(`${ours} | ${theirs} | ${(474 / m.seconds).toFixed(0)}x |`);
    } else {
      rows.push(`${ours} | not run | |`);
    }
  }
  lines.push(
    `Symmetric eigendecomposition (values and vectors, float64) of a random symmetric d x d matrix. Ours (\`eigh\`): up to ${threads} threads, median of the runs, its phases (tridiagonalisation / QL / back-transformation, seconds) and the CPU time of all its threads. ml-matrix: \`new EVD(m, { assumeSymmetric: true })\` (EISPACK tred2 + tql2 in JavaScript, one thread). "Other processes": the average number of cores other programs kept busy meanwhile (of 2).`,
    '',
    '| d | ours | phases (s) | CPU | runs | other processes (cores) | ml-matrix | speed-up |',
    '|---|---|---|---|---|---|---|---|',
    ...rows,
  );

  // The transform's products.
  const d = 2048;
  const ff = 8192;
  const w = Float32Array.from({ length: ff * d }, uniform);
  const q = Float32Array.from({ length: d * d }, uniform);
  const out = new Float32Array(ff * d);
  const reps = quick ? 1 : 3;
  const gemm: Timed[] = [];
  const gram: Timed[] = [];
  for (let r = 0; r < reps; r++) {
    gemm.push(await timed('A B^T f32', () => matmulABt(operand(w, ff, d), operand(q, d, d), out)));
    gram.push(await timed('Gram f64', () => gramMatrix(operand(w, ff, d))));
  }
  const gemmT = median(gemm);
  const gramT = median(gram);
  lines.push(
    '',
    `Products (median of ${reps}), ${threads} threads:`,
    '',
    '| product | shape | time | GFLOP/s | other processes (cores) |',
    '|---|---|---|---|---|',
    `| W Q (float32, \`matmulABt\`) | ${ff}x${d} times ${d}x${d} | ${fmt(gemmT)} | ${((2 * ff * d * d) / gemmT.seconds / 1e9).toFixed(1)} | ${load(gemmT)} |`,
    `| W^T W (float64, \`gramMatrix\`, upper triangle) | ${ff}x${d} | ${fmt(gramT)} | ${((ff * d * d) / gramT.seconds / 1e9).toFixed(1)} | ${load(gramT)} |`,
  );

  // The whole transform.
  const shapeName = quick ? 'smollm-135m' : 'llama-1b';
  const dir = quick ? '/tmp/synth-135m' : SYNTH_DIR;
  if (!fs.existsSync(`${dir}/model.safetensors`)) {
    process.stderr.write(`writing ${dir}\n`);
    writeSyntheticModel(dir, SHAPES[shapeName]!, 'BF16', 0);
  }
  // Reference kernels: the model lives in JavaScript memory. With the WebAssembly kernels the transformed
  // F32 weights of the 1B shape (4.4 GB) would not fit in wasm32's 4 GiB beside the BF16 originals.
  const model = await loadModel(dir, { kernels: 'reference' });
  let report: ReturnType<typeof orthogonalTransform> | undefined;
  const t = await timed(`transform ${shapeName}`, () => (report = orthogonalTransform(model)));
  const cfg = model.config;
  lines.push(
    '',
    `Whole orthogonal transform (\`orthogonalTransform\`, one run) of the ${shapeName} shape (\`wina synth --shape ${shapeName}\`: hidden ${cfg.hiddenSize}, ${cfg.numLayers} layers, FFN ${cfg.intermediateSize}, ${cfg.numHeads}/${cfg.numKvHeads} heads, vocab ${cfg.vocabSize}, BF16, random weights), loaded with the reference kernels (the F32 result does not fit in the 4 GiB WebAssembly memory beside the BF16 weights): ` +
      `${fmt(t)} (CPU ${t.cpu.toFixed(0)} s), of which ${report!.decompositionSeconds.toFixed(1)} s Gram matrices and ${2 * cfg.numLayers + 1} eigendecompositions (d = ${cfg.hiddenSize}); other processes used ${load(t)} cores meanwhile.`,
  );

  const body = [`Machine: ${machineDescription()}; ${threads} threads.`, '', ...lines].join('\n');
  console.log(body);
  if (process.argv.includes('--write')) {
    const command = `npm run bench:linalg -- --write${quick ? ' --quick' : ''}`;
    writeSection(
      'BENCHMARKS.md',
      'linalg',
      `## Eigendecomposition and orthogonal transform\n\nCommand: \`${command}\`\n\n${body}\n`,
    );
    console.log('\nwrote BENCHMARKS.md');
  }
  Linalg.close();
}

await main();
