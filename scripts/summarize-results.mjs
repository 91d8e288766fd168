// Writes results/RESULTS.md from the JSON reports of scripts/results.sh: one pivot table per model (rows: method and
// sparsity; columns: tinystories token perplexity and each multiple-choice task's acc), then the full reports.
import fs from 'node:fs';
import path from 'node:path';

const dir = process.argv[2] ?? 'results';
const head = fs.readFileSync(process.argv[3] ?? 'scripts/results-head.md', 'utf8');
const models = ['stories260K', 'tinystories-656k'];
const extra = ['stories260K-wikitext2', 'llama-28m-wikitext2'];
const mc = ['hellaswag', 'piqa', 'arc_easy', 'arc_challenge', 'openbookqa', 'copa', 'siqa', 'boolq'];
let out = head;
out += llamaSummary();

/**
 * One glance at llama-28m-mixed: WikiText-2 perplexity and mean multiple-choice accuracy per method at 50% and
 * 65%, for uniform top-k, greedy allocation and the transform (the full tables follow further down).
 */
function llamaSummary() {
  const cache = new Map();
  const read = (name) => {
    const file = path.join(dir, `${name}.json`);
    if (!cache.has(name))
      cache.set(name, fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')).results : undefined);
    return cache.get(name);
  };
  const methods = ['teal', 'wina', 'wina-paper'];
  const columns = [
    ['top-k', '', ''],
    ['greedy', '-greedy-METHOD', ''],
    ['top-k + transform', '-transform', '+transform'],
  ];
  const value = (kind, suffix, method, tag, sparsity) => {
    const rows = read(`llama-28m-${kind}${suffix.replace('METHOD', method)}`);
    if (!rows) return undefined;
    const at = rows.filter((r) => r.method === method + tag && r.sparsity === sparsity);
    if (kind === 'ppl')
      return at.find((r) => r.task === 'wikitext2' && r.metric === 'token_perplexity')?.value;
    const accs = at.filter((r) => r.metric === 'acc').map((r) => r.value);
    return accs.length === 4 ? accs.reduce((a, b) => a + b, 0) / 4 : undefined;
  };
  const dense = (kind) => value(kind, '', 'dense', '', 0);
  if (dense('ppl') === undefined || dense('mc') === undefined) return '';
  let md = '\n## llama-28m-mixed at a glance\n\n';
  md += `WikiText-2 token perplexity (8 chunks; dense ${dense('ppl').toFixed(1)}) and the mean accuracy over hellaswag, `;
  md += `piqa, arc_easy and copa (first 200 items, copa has 100; dense ${dense('mc').toFixed(3)}, stderr about 0.02), at target sparsity `;
  md += `50% and 65%. Greedy profiles reach 0.51 and 0.67 achieved. From the tables further down.\n\n`;
  const head = columns.flatMap(([label]) => [`${label} 50%`, `${label} 65%`]);
  for (const [kind, title, digits] of [
    ['ppl', 'WikiText-2 perplexity', 1],
    ['mc', 'mean accuracy', 3],
  ]) {
    md += `| ${title} | ${head.join(' | ')} |\n|---|${head.map(() => '---:').join('|')}|\n`;
    for (const method of methods) {
      const cells = columns.flatMap(([, suffix, tag]) =>
        [0.5, 0.65].map((sp) => value(kind, suffix, method, tag, sp)?.toFixed(digits) ?? '-'),
      );
      md += `| ${method} | ${cells.join(' | ')} |\n`;
    }
    md += '\n';
  }
  return md;
}
for (const model of models) {
  for (const variant of ['', '-transform']) {
    const file = path.join(dir, `${model}${variant}.json`);
    if (!fs.existsSync(file)) continue;
    const report = JSON.parse(fs.readFileSync(file, 'utf8'));
    const rows = report.results;
    const settings = [...new Set(rows.map((r) => `${r.method}|${r.sparsity}`))];
    const cell = (task, metric, s) =>
      rows.find((r) => r.task === task && r.metric === metric && `${r.method}|${r.sparsity}` === s);
    out += `\n## ${model}${variant ? ', orthogonal transform' : ''}\n\n\`${report.command}\`\n\n`;
    const tasks = mc.filter((t) => rows.some((r) => r.task === t));
    const withPpl = rows.some((r) => r.task === 'tinystories');
    const any = (s) => rows.find((r) => `${r.method}|${r.sparsity}` === s);
    out += `| method | sparsity | achieved | GFLOPs/token |${withPpl ? ' tinystories ppl |' : ''} ${tasks.join(' | ')} |\n`;
    out += `|---|---:|---:|---:|${withPpl ? '---:|' : ''}${tasks.map(() => '---:').join('|')}|\n`;
    for (const s of settings) {
      const [method, sparsity] = s.split('|');
      const first = cell('tinystories', 'token_perplexity', s) ?? any(s);
      const ppl = withPpl ? ` ${cell('tinystories', 'token_perplexity', s).value.toFixed(3)} |` : '';
      const accs = tasks.map((t) => cell(t, 'acc', s)).map((r) => (r ? r.value.toFixed(3) : '-'));
      out += `| ${method} | ${sparsity} | ${first.achievedSparsity.toFixed(3)} | ${first.gflopsPerToken.toPrecision(3)} |${ppl} ${accs.join(' | ')} |\n`;
    }
    out += `\nacc on the first --limit items of each task (stderr about 0.05 at 100 items); acc_norm, stderr and the other perplexities are in \`${model}${variant}.md\` below. Wall time ${report.seconds.toFixed(0)} s.\n`;
  }
}
/** The reports of those `[name, variant]` that exist in `dir`. */
const readVariants = (variants) =>
  variants
    .filter(([name]) => fs.existsSync(path.join(dir, `${name}.json`)))
    .map(([name, variant]) => ({
      name,
      variant,
      report: JSON.parse(fs.readFileSync(path.join(dir, `${name}.json`), 'utf8')),
    }));

/**
 * Table rows, one per variant, method and sparsity: achieved sparsity and GFLOPs/token, then `cells(at)`, where
 * `at(task)` is that setting's `metric` row for the task.
 */
function variantRows(reports, metric, cells) {
  let md = '';
  for (const { variant, report } of reports) {
    const rows = report.results.filter((r) => r.metric === metric);
    for (const s of [...new Set(rows.map((r) => `${r.method}|${r.sparsity}`))]) {
      const [method, sparsity] = s.split('|');
      const at = (t) => rows.find((r) => r.task === t && `${r.method}|${r.sparsity}` === s);
      const first = rows.find((r) => `${r.method}|${r.sparsity}` === s);
      md += `| ${variant} | ${method} | ${sparsity} | ${first.achievedSparsity.toFixed(3)} | ${first.gflopsPerToken.toPrecision(3)} | ${cells(at).join(' | ')} |\n`;
    }
  }
  return md;
}

// llama-28m-mixed multiple choice: one table over the variants (uniform top-k, transform, greedy allocation).
const mcReports = readVariants([
  ['llama-28m-mc', 'top-k'],
  ['llama-28m-mc-transform', 'top-k + transform'],
  ['llama-28m-mc-greedy-teal', 'greedy'],
  ['llama-28m-mc-greedy-wina', 'greedy'],
  ['llama-28m-mc-greedy-wina-paper', 'greedy'],
]);
if (mcReports.length > 0) {
  const tasks = mc.filter((t) => mcReports.some(({ report }) => report.results.some((r) => r.task === t)));
  out += `\n## llama-28m-mixed: multiple choice\n\n`;
  out += `acc on the first 200 items of each task (copa has 100), 0-shot: stderr about 0.035 (copa 0.05), about 0.02 `;
  out += `for "mean", the mean of the task accuracies. The model is near chance on these tasks, so differences between `;
  out += `rows are mostly noise; the perplexities below separate the methods more sharply. Variants as there. Commands:\n\n`;
  for (const { report } of mcReports) out += `- \`${report.command}\` (${report.seconds.toFixed(0)} s)\n`;
  out += `\n| variant | method | sparsity | achieved | GFLOPs/token | ${tasks.join(' | ')} | mean |\n`;
  out += `|---|---|---:|---:|---:|${tasks.map(() => '---:').join('|')}|---:|\n`;
  out += variantRows(mcReports, 'acc', (at) => {
    const accs = tasks.map((t) => at(t)?.value);
    const mean = accs.every((a) => a !== undefined)
      ? accs.reduce((a, b) => a + b, 0) / accs.length
      : undefined;
    return [...accs, mean].map((a) => (a === undefined ? '-' : a.toFixed(3)));
  });
}
// llama-28m-mixed perplexity: one table over the variants (uniform top-k, greedy allocation, transform).
const pplReports = readVariants([
  ['llama-28m-ppl', 'top-k'],
  ['llama-28m-ppl-greedy-teal', 'greedy'],
  ['llama-28m-ppl-greedy-wina', 'greedy'],
  ['llama-28m-ppl-greedy-wina-paper', 'greedy'],
  ['llama-28m-ppl-transform', 'top-k + transform'],
  ['llama-28m-ppl-q8', 'q8 (--quantize q8)'],
  ['llama-28m-ppl-q4', 'q4 (--quantize q4)'],
  ['llama-28m-ppl-gguf-q8_0', 'GGUF Q8_0 (llama.cpp)'],
  ['llama-28m-ppl-gguf-q4_0', 'GGUF Q4_0 (llama.cpp)'],
  ['llama-28m-ppl-gguf-q4_k_m', 'GGUF Q4_K_M (llama.cpp)'],
]);
if (pplReports.length > 0) {
  const label = (task) => (task.includes('/') ? `${path.basename(task)} (held-out)` : task);
  const tasks = [...new Set(pplReports.flatMap(({ report }) => report.results.map((r) => r.task)))];
  out += `\n## llama-28m-mixed perplexity: WikiText-2 and the corpus held-out set per domain\n\n`;
  out += `Token perplexity, MODEL_CARD's chunked protocol (BOS + 1023 tokens), 8 chunks spread over each task. "greedy": `;
  out += `per-layer allocation from one greedy search per method up to 0.65 on the corpus training sample (threshold masks `;
  out += `from the same calibration); "transform": the orthogonal transform, dense outputs unchanged; "q8": the weights `;
  out += `quantized on load to llama.cpp's Q8_0 blocks (int8, a scale per 32 inputs); "q4": to its Q4_0 blocks (4-bit, `;
  out += `a scale per 32 inputs); "GGUF": llama.cpp's own files of the model (llama-quantize from its F16 GGUF; Q4_K_M's `;
  out += `K-quant tensors widened to F32 as ggml dequantizes them). Commands:\n\n`;
  for (const { report } of pplReports) out += `- \`${report.command}\`\n`;
  out += `\n| variant | method | sparsity | achieved | GFLOPs/token | ${tasks.map(label).join(' | ')} |\n`;
  out += `|---|---|---:|---:|---:|${tasks.map(() => '---:').join('|')}|\n`;
  out += variantRows(pplReports, 'token_perplexity', (at) =>
    tasks.map((t) => (at(t) ? at(t).value.toFixed(2) : '-')),
  );
  out += `\nGreedy profiles overshoot the target by up to 2 points of achieved sparsity (steps of 0.1 of an o_proj, thresholds `;
  out += `calibrated on other text): compare rows at equal achieved sparsity and GFLOPs/token, not at equal target.\n`;
}
// WINA-AMP (scripts/amp.sh): each experiment's answers here, its whole report under the full reports.
const ampRuns = [
  ['amp-text', 'a) text: corpus domains, perplexity'],
  ['amp-tasks', 'b) tasks: hellaswag, piqa, arc_easy, copa, gsm8k; accuracy'],
  ['amp-text-k5', "a') text with k = 5 clusters"],
  ['amp-text-k5-greedy', "a'') text with k = 5 clusters, greedy allocation per profile"],
].filter(([name]) => fs.existsSync(path.join(dir, name, 'report.md')));
const ampReport = (name) => fs.readFileSync(path.join(dir, name, 'report.md'), 'utf8');
if (ampRuns.length > 0) {
  out += '\n## WINA-AMP on llama-28m-mixed (`scripts/amp.sh`)\n';
  for (const [name, title] of ampRuns) {
    const md = ampReport(name);
    const command = md.match(/^`wina amp run[^`]*`/m)?.[0] ?? '';
    const answers =
      md
        .split(/^## Answers\n/m)[1]
        ?.split(/^## /m)[0]
        ?.trim() ?? '';
    out += `\n### ${title}\n\n${command}\n\n${answers}\n`;
  }
}
out += '\n# Full reports\n';
for (const name of extra) {
  const file = path.join(dir, `${name}.md`);
  if (fs.existsSync(file)) out += `\n${fs.readFileSync(file, 'utf8').replace(/^## /m, '### ')}`;
}
for (const model of models) {
  for (const variant of ['', '-transform']) {
    const file = path.join(dir, `${model}${variant}.md`);
    if (fs.existsSync(file)) out += `\n${fs.readFileSync(file, 'utf8').replace(/^## /m, '### ')}`;
  }
}
for (const { name } of mcReports) {
  out += `\n${fs.readFileSync(path.join(dir, `${name}.md`), 'utf8').replace(/^## /m, '### ')}`;
}
for (const [name, title] of ampRuns) {
  out += `\n### WINA-AMP ${title}\n\n${ampReport(name)
    .replace(/^# .*\n/, '')
    .replace(/^(#+) /gm, '$1## ')}`;
}
const tmp = `results/RESULTS.md.${process.pid}.tmp`;
fs.writeFileSync(tmp, out);
fs.renameSync(tmp, 'results/RESULTS.md');
