// Writes RESULTS.md from the JSON reports of scripts/results.sh: one pivot table per model (rows: method and
// sparsity; columns: tinystories token perplexity and each multiple-choice task's acc), then the full reports.
import fs from 'node:fs';
import path from 'node:path';

const dir = process.argv[2] ?? 'results';
const head = fs.readFileSync(process.argv[3] ?? 'scripts/results-head.md', 'utf8');
const models = ['stories260K', 'tinystories-656k', 'llama-28m-mc'];
const extra = ['stories260K-wikitext2', 'llama-28m-wikitext2'];
const mc = ['hellaswag', 'piqa', 'arc_easy', 'arc_challenge', 'openbookqa', 'copa', 'siqa', 'boolq'];
let out = head;
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
const tmp = `RESULTS.md.${process.pid}.tmp`;
fs.writeFileSync(tmp, out);
fs.renameSync(tmp, 'RESULTS.md');
