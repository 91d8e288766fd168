import { fail } from '../errors.js';
import { kindOf, readReportSource, writeReport } from '../report/index.js';
import { command, requireString, say } from './args.js';
import { checkOutputFile } from '../io/files.js';

const USAGE = `usage: wina report --results R.json [--results R2.json ...] [--profile P.json] -o report.html
                   [--title T] [--json]
  one self-contained HTML file of charts and tables (no network needed to view it) from
  eval results (wina eval --out), bench results (wina bench --out) and calibration profiles (wina calibrate)`;

export const reportCommand = command({
  summary: 'self-contained HTML report (charts) of eval, bench and calibrate results',
  usage: USAGE,
  options: {
    results: { type: 'string', short: 'r', multiple: true },
    profile: { type: 'string', short: 'p', multiple: true },
    out: { type: 'string', short: 'o' },
    title: { type: 'string' },
    json: { type: 'boolean' },
  },
  async run(o, argv) {
    const out = requireString(o.out, '-o/--out');
    const results = (o.results ?? []) as unknown as string[];
    const profiles = (o.profile ?? []) as unknown as string[];
    if (results.length === 0 && profiles.length === 0) fail('--results or --profile is required');
    checkOutputFile(out, '-o');

    // Every input is read and recognised before anything is written.
    const sources = [
      ...results.map((file) => readReportSource(file)),
      ...profiles.map((file) => {
        const source = readReportSource(file, 'profile');
        if (kindOf(source).kind !== 'profile')
          fail(`--profile ${file} is not a wina profile (wina calibrate)`);
        return source;
      }),
    ];
    const command = ['wina', 'report', ...argv].join(' ');
    const bytes = writeReport(out, sources, {
      title: typeof o.title === 'string' ? o.title : undefined,
      command,
    });
    if (o.json)
      process.stdout.write(`${JSON.stringify({ out, bytes, inputs: sources.map((s) => s.name) })}\n`);
    else say(`wrote ${out} (${(bytes / 1024).toFixed(0)} KiB) from ${sources.length} input(s)`);
    return 0;
  },
});
