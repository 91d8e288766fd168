/**
 * Hostile and careless input to the CLI, each case on temporary copies: special files where files are expected
 * (FIFOs, devices, folders, dangling and looping symlinks), outputs that must not be clobbered, files that lie
 * about themselves, configs with wrong types and ranges, NaN weights, numeric options out of range. Every case
 * must end within 10 s with one line and exit code 2, and change nothing but its intended output.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadModel } from '../src/model/model.js';
import { calibrate } from '../src/sparsity/calibrate.js';
import { buildProfile, uniformAllocation, writeProfile } from '../src/sparsity/profile.js';
import { loadSamples } from '../src/sparsity/datasets.js';
import { assertUserError, BIN, runCli } from './cli-helpers.js';
import { fixtureDir, sharedPath } from './helpers.js';

const LLAMA3 = fixtureDir('llama3');
const TINY = sharedPath('models', 'tinystories-656k');
const STORIES = sharedPath('models', 'stories260K');
const SAMPLE = sharedPath('data', 'tinystories', 'tinystories_sample.txt');
// Hand-edited JSON documents: any field may become anything, which is the point of these cases.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Edited = Record<string, any>;
/** Every case must end within this (the outside probe's bound). */
const CASE_MS = 10_000;

let root = '';
before(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'wina-hostile-'));
});
after(() => fs.rmSync(root, { recursive: true, force: true }));

function folder(name: string): string {
  const dir = path.join(root, name);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

function mkfifo(file: string): string {
  execFileSync('mkfifo', [file]);
  return file;
}

/** A copy of a model folder (regular files, so a case may replace any of them). */
function copyModel(from: string, name: string): string {
  const dir = folder(name);
  for (const f of fs.readdirSync(from)) {
    const src = path.join(from, f);
    if (fs.statSync(src).isFile()) fs.copyFileSync(src, path.join(dir, f));
  }
  return dir;
}

function withConfig(name: string, edit: (c: Record<string, unknown>) => void, from = LLAMA3): string {
  const dir = copyModel(from, name);
  const file = path.join(dir, 'config.json');
  const config = JSON.parse(fs.readFileSync(file, 'utf8'));
  edit(config);
  fs.writeFileSync(file, JSON.stringify(config));
  return dir;
}

/** Kind, size and mtime of everything under `dir` (and `dir` itself), to prove a case changed nothing. */
function snapshot(dir: string): string[] {
  const out: string[] = [];
  const visit = (p: string) => {
    const st = fs.lstatSync(p);
    const kind = st.isSymbolicLink() ? 'link' : st.isFIFO() ? 'fifo' : st.isDirectory() ? 'dir' : 'file';
    out.push(`${path.relative(root, p)} ${kind} ${st.size} ${st.mtimeMs}`);
    if (kind === 'dir') for (const f of fs.readdirSync(p).sort()) visit(path.join(p, f));
  };
  visit(dir);
  return out;
}

/** The case fails with one line naming the problem, within CASE_MS, and `dir` (if given) is unchanged. */
function refused(args: string[], phrase: string | RegExp, dir = root): string {
  const before = snapshot(dir);
  const line = assertUserError(args, phrase, {}, CASE_MS);
  assert.deepEqual(snapshot(dir), before, `wina ${args.join(' ')} changed files`);
  return line;
}

/** A generation that must run (the control of a case), returning stdout. */
function generates(args: string[]): string {
  const r = runCli(['generate', ...args, '--max-tokens', '4', '--temperature', '0'], {}, CASE_MS * 3);
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

/** The byte offset in a safetensors file where tensor `name`'s data begins. */
function tensorOffset(file: string, name: string): number {
  const bytes = fs.readFileSync(file);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8'));
  return 8 + headerLength + header[name].data_offsets[0];
}

function editSafetensorsHeader(file: string, edit: (h: Record<string, unknown>) => void): void {
  const bytes = fs.readFileSync(file);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8'));
  edit(header);
  const json = Buffer.from(JSON.stringify(header));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  fs.writeFileSync(file, Buffer.concat([length, json, bytes.subarray(8 + headerLength)]));
}

describe('outputs are never clobbered or left half-written', () => {
  test('a device node as --out / -o is refused and stays a device', () => {
    refused(
      ['calibrate', '--model', STORIES, '--data', SAMPLE, '--out', '/dev/full'],
      'is a character device',
    );
    refused(['report', '--results', SAMPLE, '-o', '/dev/full'], 'is a character device');
    refused(['bench', '--model', STORIES, '--out', '/dev/null'], 'is a character device');
    assert.ok(fs.statSync('/dev/full').isCharacterDevice());
    assert.ok(fs.statSync('/dev/null').isCharacterDevice());
  });

  test('a FIFO, a folder or a symlink to a device as the output is refused, nothing left behind', () => {
    const dir = folder('outputs');
    const fifo = mkfifo(path.join(dir, 'out.fifo'));
    const link = path.join(dir, 'null.json');
    fs.symlinkSync('/dev/null', link);
    const sub = folder('outputs/sub');
    const cases: [string[], string][] = [
      [['eval', '--model', STORIES, '--tasks', SAMPLE, '--out', fifo], 'is a FIFO'],
      [['eval', '--model', STORIES, '--tasks', SAMPLE, '--md', sub], 'is a folder'],
      [['calibrate', '--model', STORIES, '--data', SAMPLE, '--out', sub], 'is a folder'],
      [['calibrate', '--model', STORIES, '--data', SAMPLE, '--out', link], 'is a character device'],
      [['report', '--results', SAMPLE, '-o', fifo], 'is a FIFO'],
    ];
    for (const [args, phrase] of cases) refused(args, phrase, dir);
    assert.ok(fs.statSync(fifo).isFIFO());
    assert.equal(fs.readlinkSync(link), '/dev/null');
    assert.deepEqual(fs.readdirSync(sub), []);
  });

  test('an output into a missing or unwritable folder fails before any work', () => {
    const missing = path.join(root, 'no-such-folder', 'x.json');
    const cases: [string[], string][] = [
      [['calibrate', '--model', STORIES, '--data', SAMPLE, '--out', missing], 'does not exist'],
      [['eval', '--model', STORIES, '--tasks', SAMPLE, '--out', missing], 'does not exist'],
      [['bench', '--model', STORIES, '--out', missing], 'does not exist'],
      [['report', '--results', SAMPLE, '-o', missing], 'does not exist'],
      [['transform', '--model', STORIES, '--out', path.join(root, 'no-such-folder', 'm')], 'does not exist'],
      [
        ['synth', '--shape', 'smollm-135m', '--out', path.join(root, 'no-such-folder', 'm')],
        'does not exist',
      ],
      // sysfs refuses new files even to root, whatever access(2) says.
      [['calibrate', '--model', STORIES, '--data', SAMPLE, '--out', '/sys/wina.json'], 'is not writable'],
      [['eval', '--model', STORIES, '--tasks', SAMPLE, '--out', '/sys/wina.json'], 'is not writable'],
      [['bench', '--model', STORIES, '--out', '/sys/wina.json'], 'is not writable'],
      [['transform', '--model', STORIES, '--out', '/sys/wina-model'], 'is not writable'],
      [['synth', '--shape', 'smollm-135m', '--out', '/sys/wina-model'], 'is not writable'],
    ];
    for (const [args, phrase] of cases) refused(args, phrase);
  });

  test('a symlink to a regular file is written through; the link stays', () => {
    const dir = folder('through-link');
    const target = path.join(dir, 'profile-real.json');
    fs.writeFileSync(target, 'old');
    const link = path.join(dir, 'profile.json');
    fs.symlinkSync(target, link);
    const r = runCli(
      ['calibrate', '--model', STORIES, '--data', SAMPLE, '--samples', '2', '--seq-len', '32', '--out', link],
      {},
      CASE_MS * 3,
    );
    assert.equal(r.status, 0, r.stderr);
    assert.ok(fs.lstatSync(link).isSymbolicLink());
    assert.equal(JSON.parse(fs.readFileSync(target, 'utf8')).format, 'wina-profile');
    assert.deepEqual(fs.readdirSync(dir).sort(), ['profile-real.json', 'profile.json']);
  });
});

describe('transform --out builds the checkpoint aside and renames it into place', () => {
  test("the model's own folder, a file, or a folder of other files is refused and unchanged", () => {
    const model = copyModel(TINY, 'transform-source');
    const file = path.join(root, 'transform-file');
    fs.writeFileSync(file, 'keep me');
    const other = folder('transform-other');
    fs.writeFileSync(path.join(other, 'notes.txt'), 'mine');
    refused(['transform', '--model', model, '--out', model], "the model's own folder");
    refused(['transform', '--model', model, '--out', path.join(model, 'sub')], "the model's own folder");
    refused(['transform', '--model', model, '--out', file], 'not a folder');
    refused(['transform', '--model', model, '--out', other], 'already holds other files (notes.txt)');
    assert.equal(fs.readFileSync(file, 'utf8'), 'keep me');
  });

  test('a SIGKILL mid-save leaves the earlier output whole; no temporary files remain after a save', async () => {
    const parent = folder('transform-kill');
    const out = path.join(parent, 'transformed');
    const first = runCli(['transform', '--model', TINY, '--out', out], {}, 60_000);
    assert.equal(first.status, 0, first.stderr);
    assert.deepEqual(fs.readdirSync(parent), ['transformed']);
    const saved = Object.fromEntries(fs.readdirSync(out).map((f) => [f, fs.readFileSync(path.join(out, f))]));
    // Kill a second save into the same folder at several moments; the folder must always be the complete first save.
    for (const delayMs of [150, 400, 700]) {
      const child = spawn(process.execPath, [BIN, 'transform', '--model', TINY, '--out', out], {
        stdio: 'ignore',
      });
      const exited = new Promise((resolve) => child.on('exit', resolve)); // before it can exit
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      child.kill('SIGKILL');
      await exited;
      for (const [f, bytes] of Object.entries(saved))
        assert.ok(
          fs.readFileSync(path.join(out, f)).equals(bytes),
          `${f} changed after a kill at ${delayMs} ms`,
        );
    }
    const model = await loadModel(out);
    model.close();
  });
});

describe('special files as inputs: refused at once, never read', () => {
  const fifoDir = () => folder('fifos');

  test('a FIFO or /dev/zero as config.json, tokenizer.json, checkpoint or shard', () => {
    for (const [name, special] of [
      ['config.json', 'fifo'],
      ['config.json', '/dev/zero'],
      ['tokenizer.json', 'fifo'],
      ['tokenizer.json', '/dev/zero'],
      ['model.safetensors', 'fifo'],
      ['model.safetensors', '/dev/zero'],
      ['generation_config.json', '/dev/zero'],
    ] as const) {
      const dir = copyModel(LLAMA3, `special-${name}-${special.replace(/\W/g, '')}`);
      fs.rmSync(path.join(dir, name));
      if (special === 'fifo') mkfifo(path.join(dir, name));
      else fs.symlinkSync(special, path.join(dir, name));
      refused(['info', '--model', dir], special === 'fifo' ? 'is a FIFO' : 'is a character device');
    }
  });

  test('a FIFO as a shard of a sharded checkpoint, and as a llama2.c checkpoint', () => {
    const dir = folder('special-shard');
    const source = fixtureDir('llama3', 'sharded');
    for (const f of fs.readdirSync(source)) fs.copyFileSync(path.join(source, f), path.join(dir, f));
    const shard = fs.readdirSync(dir).find((f) => f.endsWith('.safetensors'))!;
    fs.rmSync(path.join(dir, shard));
    mkfifo(path.join(dir, shard));
    refused(['info', '--model', dir], 'is a FIFO');
    const llama2c = folder('special-llama2c');
    mkfifo(path.join(llama2c, 'model.bin'));
    fs.copyFileSync(path.join(STORIES, 'tok512.bin'), path.join(llama2c, 'tok512.bin'));
    refused(['info', '--model', path.join(llama2c, 'model.bin')], 'is a FIFO');
    const tokenizer = copyModel(STORIES, 'special-llama2c-tokenizer');
    fs.rmSync(path.join(tokenizer, 'tok512.bin'));
    fs.symlinkSync('/dev/zero', path.join(tokenizer, 'tok512.bin'));
    refused(['info', '--model', tokenizer], 'is a character device');
  });

  test('a FIFO or a device as --data, --tasks, --profile, --results', () => {
    const fifo = mkfifo(path.join(fifoDir(), 'input.txt'));
    const cases: [string[], string][] = [
      [['calibrate', '--model', STORIES, '--data', fifo], 'is a FIFO'],
      [['calibrate', '--model', STORIES, '--data', '/dev/zero'], 'is a character device'],
      [['eval', '--model', STORIES, '--tasks', fifo], 'is a FIFO'],
      [['eval', '--model', STORIES, '--tasks', '/dev/zero'], 'is a character device'],
      [['generate', '--model', STORIES, '--profile', fifo], 'is a FIFO'],
      [['generate', '--model', STORIES, '--profile', '/dev/zero'], 'is a character device'],
      [['report', '--results', fifo, '-o', path.join(root, 'r.html')], 'is a FIFO'],
      [['report', '--results', '/dev/zero', '-o', path.join(root, 'r.html')], 'is a character device'],
      [['serve', '--model', STORIES, '--chat-template', fifo], 'chat template ' + fifo + ' is a FIFO'],
    ];
    for (const [args, phrase] of cases) refused(args, phrase);
  });

  test('a data folder with a FIFO, a dangling or a looping symlink names the entry', () => {
    const withFifo = folder('data-fifo');
    fs.copyFileSync(SAMPLE, path.join(withFifo, 'a.txt'));
    mkfifo(path.join(withFifo, 'b.txt'));
    refused(['calibrate', '--model', STORIES, '--data', withFifo], /b\.txt is a FIFO/);
    const dangling = folder('data-dangling');
    fs.copyFileSync(SAMPLE, path.join(dangling, 'a.txt'));
    fs.symlinkSync(path.join(root, 'nowhere.txt'), path.join(dangling, 'b.txt'));
    refused(
      ['calibrate', '--model', STORIES, '--data', dangling],
      /b\.txt is a symlink to a path that does not exist/,
    );
    refused(
      ['eval', '--model', STORIES, '--tasks', dangling],
      /b\.txt is a symlink to a path that does not exist/,
    );
    const looping = folder('data-loop');
    fs.copyFileSync(SAMPLE, path.join(looping, 'a.txt'));
    fs.symlinkSync('loop2.txt', path.join(looping, 'loop1.txt'));
    fs.symlinkSync('loop1.txt', path.join(looping, 'loop2.txt'));
    refused(['calibrate', '--model', STORIES, '--data', looping], /loop1\.txt is a symlink loop/);
    // A symlink back to a parent folder is walked once, not forever.
    const cycle = folder('data-cycle');
    const inner = folder('data-cycle/inner');
    fs.copyFileSync(SAMPLE, path.join(inner, 'a.txt'));
    fs.symlinkSync('..', path.join(inner, 'up'));
    fs.symlinkSync('.', path.join(inner, 'self'));
    const r = runCli(
      [
        'calibrate',
        '--model',
        STORIES,
        '--data',
        cycle,
        '--samples',
        '2',
        '--seq-len',
        '32',
        '--out',
        path.join(root, 'cycle.json'),
      ],
      {},
      CASE_MS * 3,
    );
    assert.equal(r.status, 0, r.stderr);
  });
});

describe('numeric options are range-checked before any work', () => {
  const cases: [string[], string][] = [
    [['--greedy', '--greedy-step', '0'], '--greedy-step must be in (0, 1)'],
    [['--greedy', '--greedy-step', '-0.1'], '--greedy-step must be in (0, 1)'],
    [['--greedy', '--greedy-step', '1'], '--greedy-step must be in (0, 1)'],
    [['--greedy', '--greedy-samples', '0'], '--greedy-samples must be >= 1'],
    [['--seq-len', '1'], '--seq-len must be >= 2'],
    [['--samples', '0'], '--samples must be >= 1'],
  ];
  for (const [args, phrase] of cases) {
    test(`calibrate ${args.join(' ')}`, () => {
      refused(
        ['calibrate', '--model', STORIES, '--data', SAMPLE, ...args, '--out', path.join(root, 'p.json')],
        phrase,
      );
    });
  }

  test('--mask adaptive without --method is WINA, so its --tolerance is checked, never ignored', () => {
    refused(
      ['generate', '--model', STORIES, '--mask', 'adaptive', '--tolerance', '5'],
      'tolerance must be in [0, 1)',
    );
    refused(
      ['generate', '--model', STORIES, '--tolerance', '0.1'],
      '--tolerance applies to --mask adaptive only',
    );
    refused(
      ['generate', '--model', STORIES, '--method', 'dense', '--mask', 'adaptive'],
      '--method dense takes no --mask',
    );
  });
});

describe('profiles are checked against the model before anything is allocated', () => {
  let good: Record<string, unknown>;
  before(async () => {
    const model = await loadModel(STORIES);
    const samples = loadSamples(SAMPLE, model.tokenizer, { seqLen: 32, samples: 2, bos: model.config.bosId });
    const calibration = calibrate(model, samples, 'wina');
    const allocation = uniformAllocation({ method: 'wina', globalSparsity: 0.5 }, model.config.numLayers);
    const file = path.join(root, 'good-profile.json');
    writeProfile(
      file,
      buildProfile(model, calibration, {
        sparsity: 0.5,
        allocation,
        data: SAMPLE,
        seqLen: 32,
        transform: false,
      }),
    );
    good = JSON.parse(fs.readFileSync(file, 'utf8'));
    model.close();
  });

  const edits: [string, (p: Edited) => void, string][] = [
    [
      'numLayers 1e9 with the right fingerprint',
      (p) => (p.model.numLayers = 1e9),
      'model.numLayers must be a whole number in [1, 5]',
    ],
    ['numLayers 3 (the model has 5)', (p) => (p.model.numLayers = 3), 'made for a model with 3 layers'],
    [
      'an allocation for layer 99',
      (p) => (p.allocation[99] = { q: 0.5 }),
      'allocation has layer "99", outside [0, 5)',
    ],
    ['an allocation of 7', (p) => (p.allocation[0].q = 7), 'allocation[0].q must be in [0, 1)'],
    ['an unknown projection', (p) => (p.thresholds[0].zz = 1), 'unknown projection "zz"'],
    [
      'a negative threshold',
      (p) => (p.thresholds[1].up = -1),
      'thresholds[1].up must be a finite number >= 0',
    ],
    [
      'a histogram past the bins',
      (p) => ((Object.values(p.histograms)[0] as Edited).first = 1e9),
      'run outside the',
    ],
    [
      'a histogram of another layer',
      (p) => (p.histograms['77.q'] = { zeros: 0, first: 0, counts: [] }),
      'histogram key "77.q"',
    ],
    ['sparsity 3', (p) => (p.sparsity = 3), 'sparsity must be in [0, 1)'],
  ];
  for (const [name, edit, phrase] of edits) {
    test(name, () => {
      const p = structuredClone(good) as Edited;
      edit(p);
      const file = path.join(root, `profile-${name.replace(/\W+/g, '-')}.json`);
      fs.writeFileSync(file, JSON.stringify(p));
      refused(['generate', '--model', STORIES, '--profile', file, '--max-tokens', '2'], phrase);
    });
  }

  test('the unedited profile generates (control)', () => {
    const file = path.join(root, 'good-control.json');
    fs.writeFileSync(file, JSON.stringify(good));
    generates(['--model', STORIES, '--profile', file]);
  });
});

describe('no silent garbage: NaN weights and bad config values are named', () => {
  test('one NaN or Inf in a weight stops generation with the tensor named', () => {
    for (const [value, name] of [
      [Number.NaN, 'nan'],
      [Number.POSITIVE_INFINITY, 'inf'],
    ] as const) {
      const dir = copyModel(LLAMA3, `poisoned-${name}`);
      const file = path.join(dir, 'model.safetensors');
      const bytes = fs.readFileSync(file);
      bytes.writeFloatLE(value, tensorOffset(file, 'model.layers.1.mlp.down_proj.weight') + 4 * 17);
      fs.writeFileSync(file, bytes);
      refused(
        ['generate', '--model', dir, '--prompt', 'hello', '--max-tokens', '4'],
        'weight layers.1.down_proj holds NaN or Inf',
      );
      refused(['eval', '--model', dir, '--tasks', SAMPLE, '--no-cache'], 'non-finite logits');
    }
    generates(['--model', LLAMA3, '--prompt', 'hello']);
  });

  const configs: [string, (c: Edited) => void, string][] = [
    [
      'rms_norm_eps "abc"',
      (c) => (c.rms_norm_eps = 'abc'),
      'rms_norm_eps must be a finite number > 0, got "abc"',
    ],
    ['rms_norm_eps -1', (c) => (c.rms_norm_eps = -1), 'rms_norm_eps must be a finite number > 0, got -1'],
    [
      'rope_theta "abc"',
      (c) => (c.rope_parameters.rope_theta = 'abc'),
      'rope_theta must be a finite number > 0',
    ],
    [
      'rope_theta 0',
      (c) => (c.rope_parameters.rope_theta = 0),
      'rope_theta must be a finite number > 0, got 0',
    ],
    [
      'rope_theta -5',
      (c) => (c.rope_parameters.rope_theta = -5),
      'rope_theta must be a finite number > 0, got -5',
    ],
    [
      'rope_type linear without a factor',
      (c) => (c.rope_parameters = { rope_type: 'linear', rope_theta: 1e4 }),
      'rope linear factor must be a finite number > 0',
    ],
    [
      'llama3 rope without low_freq_factor',
      (c) => delete c.rope_parameters.low_freq_factor,
      'low_freq_factor',
    ],
    [
      'longrope without factors',
      (c) =>
        (c.rope_parameters = {
          rope_type: 'longrope',
          rope_theta: 1e4,
          original_max_position_embeddings: 64,
        }),
      'short_factor must be a list of 8 numbers',
    ],
    [
      'longrope with a factor list of the wrong length',
      (c) =>
        (c.rope_parameters = {
          rope_type: 'longrope',
          rope_theta: 1e4,
          original_max_position_embeddings: 64,
          short_factor: [1, 1],
          long_factor: [1, 1],
        }),
      'short_factor must be a list of 8 numbers',
    ],
    [
      'partial_rotary_factor 5',
      (c) => (c.partial_rotary_factor = 5),
      'partial_rotary_factor must be in (0, 1], got 5',
    ],
    [
      'partial_rotary_factor -1',
      (c) => (c.partial_rotary_factor = -1),
      'partial_rotary_factor must be in (0, 1], got -1',
    ],
    [
      'partial_rotary_factor that rotates an odd count',
      (c) => (c.partial_rotary_factor = 0.2),
      'it must be an even number',
    ],
    [
      'heads that do not divide the hidden size',
      (c) => {
        c.num_attention_heads = 6;
        c.num_key_value_heads = 2;
        delete c.head_dim;
      },
      'hidden_size 64 is not a multiple of num_attention_heads 6',
    ],
    ['hidden_size "64"', (c) => (c.hidden_size = '64'), 'hidden_size must be a positive integer, got "64"'],
    [
      'num_hidden_layers 2.5',
      (c) => (c.num_hidden_layers = 2.5),
      'num_hidden_layers must be a positive integer',
    ],
    [
      'tie_word_embeddings "yes"',
      (c) => (c.tie_word_embeddings = 'yes'),
      'tie_word_embeddings must be true or false',
    ],
    [
      'eos_token_id outside the vocabulary',
      (c) => (c.eos_token_id = 5000),
      'eos_token_id must be token ids in [0, 1024)',
    ],
    ['rope_parameters a string', (c) => (c.rope_parameters = 'fast'), 'must be an object'],
  ];
  for (const [name, edit, phrase] of configs) {
    test(`config.json: ${name}`, () => {
      refused(
        ['generate', '--model', withConfig(`config-${name.replace(/\W+/g, '-')}`, edit), '--max-tokens', '2'],
        phrase,
      );
    });
  }

  test('sliding_window "big" (mistral) and a bad generation_config.json eos id', () => {
    const mistral = withConfig('mistral-window', (c) => (c.sliding_window = 'big'), fixtureDir('mistral'));
    refused(['info', '--model', mistral], 'sliding_window must be a whole number >= 0 or null');
    const gen = copyModel(LLAMA3, 'generation-config');
    fs.writeFileSync(path.join(gen, 'generation_config.json'), JSON.stringify({ eos_token_id: [1, 'x'] }));
    refused(['info', '--model', gen], 'generation_config.json: eos_token_id must be token ids');
  });

  test('an empty eval text is an error, not a NaN perplexity', () => {
    const empty = path.join(folder('empty-text'), 'empty.txt');
    fs.writeFileSync(empty, '');
    refused(['eval', '--model', STORIES, '--tasks', empty, '--no-cache'], 'has no text to score');
  });
});

describe('files that lie about themselves', () => {
  const stories = () => fs.readFileSync(path.join(STORIES, 'stories260K.bin'));
  function llama2c(name: string, bytes: Buffer): string {
    const dir = folder(name);
    fs.writeFileSync(path.join(dir, 'stories260K.bin'), bytes);
    fs.copyFileSync(path.join(STORIES, 'tok512.bin'), path.join(dir, 'tok512.bin'));
    return dir;
  }

  test('llama2.c: a header that miscounts the layers, trailing bytes, n_kv_heads that do not divide n_heads', () => {
    const fewer = stories();
    fewer.writeInt32LE(4, 8); // n_layers 5 -> 4
    refused(['info', '--model', llama2c('llama2c-4-of-5', fewer)], /bytes more than its header implies/);
    refused(
      ['info', '--model', llama2c('llama2c-trailing', Buffer.concat([stories(), Buffer.alloc(1000)]))],
      /has 1000 bytes more than its header implies/,
    );
    const kv = stories();
    kv.writeInt32LE(3, 16); // n_kv_heads 4 -> 3 (n_heads 8)
    refused(['info', '--model', llama2c('llama2c-kv3', kv)], 'n_heads 8 is not a multiple of n_kv_heads 3');
    const dim = stories();
    dim.writeInt32LE(24, 12); // n_heads 8 -> 24 (dim 64)
    refused(
      ['info', '--model', llama2c('llama2c-heads', dim)],
      /dim 64 must be n_heads 24 times an even head size/,
    );
    const r = runCli(['info', '--model', llama2c('llama2c-control', stories())], {}, CASE_MS);
    assert.equal(r.status, 0, r.stderr);
  });

  test('safetensors: overlapping offsets, a null entry, a bad __metadata__, a folder named model.safetensors', () => {
    const overlap = copyModel(LLAMA3, 'st-overlap');
    editSafetensorsHeader(path.join(overlap, 'model.safetensors'), (h) => {
      const a = h['model.layers.0.self_attn.q_proj.weight'] as { data_offsets: number[] };
      const b = h['model.layers.0.self_attn.o_proj.weight'] as { data_offsets: number[] };
      b.data_offsets = [...a.data_offsets]; // same shape [64, 64]: o aliases q
    });
    refused(['info', '--model', overlap], /the data of tensors .* overlap/);
    const nullEntry = copyModel(LLAMA3, 'st-null');
    editSafetensorsHeader(path.join(nullEntry, 'model.safetensors'), (h) => (h['extra.weight'] = null));
    refused(['info', '--model', nullEntry], 'tensor extra.weight has entry null, not an object');
    const meta = copyModel(LLAMA3, 'st-meta');
    editSafetensorsHeader(path.join(meta, 'model.safetensors'), (h) => (h.__metadata__ = 'x'));
    refused(['info', '--model', meta], '__metadata__ is not an object');
    const dirAsFile = copyModel(LLAMA3, 'st-folder');
    fs.rmSync(path.join(dirAsFile, 'model.safetensors'));
    folder('st-folder/model.safetensors');
    refused(['info', '--model', dirAsFile], 'model.safetensors is a folder, not a regular file');
    const huge = copyModel(LLAMA3, 'st-huge-header');
    const file = path.join(huge, 'model.safetensors');
    const bytes = fs.readFileSync(file);
    bytes.writeBigUInt64LE(2n ** 40n, 0);
    fs.writeFileSync(file, bytes);
    refused(['info', '--model', huge], "above the format's limit of 100 MB");
  });

  test('a sharded index: shard names outside the folder, non-string values', () => {
    const source = fixtureDir('llama3', 'sharded');
    const make = (name: string, edit: (map: Record<string, unknown>) => void) => {
      const dir = folder(name);
      for (const f of fs.readdirSync(source)) fs.copyFileSync(path.join(source, f), path.join(dir, f));
      const indexFile = path.join(dir, 'model.safetensors.index.json');
      const index = JSON.parse(fs.readFileSync(indexFile, 'utf8'));
      edit(index.weight_map);
      fs.writeFileSync(indexFile, JSON.stringify(index));
      return dir;
    };
    const traversal = make('shard-traversal', (m) => (m['model.norm.weight'] = '../../../../etc/passwd'));
    refused(
      ['info', '--model', traversal],
      'must be a file name in the model folder, got "../../../../etc/passwd"',
    );
    const absolute = make('shard-absolute', (m) => (m['model.norm.weight'] = '/etc/passwd'));
    refused(['info', '--model', absolute], 'must be a file name in the model folder');
    const number = make('shard-number', (m) => (m['model.norm.weight'] = 7));
    refused(['info', '--model', number], 'must be a file name in the model folder, got 7');
    const notMap = make('shard-array', (m) => {
      for (const k of Object.keys(m)) delete m[k];
    });
    fs.writeFileSync(path.join(notMap, 'model.safetensors.index.json'), JSON.stringify({ weight_map: [] }));
    refused(['info', '--model', notMap], 'has no weight_map');
  });

  test('a tokenizer with an empty vocabulary, or more tokens than the model', () => {
    const empty = copyModel(LLAMA3, 'tokenizer-empty');
    const file = path.join(empty, 'tokenizer.json');
    const tok = JSON.parse(fs.readFileSync(file, 'utf8'));
    tok.model.vocab = {};
    tok.model.merges = [];
    tok.added_tokens = [];
    fs.writeFileSync(file, JSON.stringify(tok));
    refused(['info', '--model', empty], 'its vocabulary is empty');
    const small = withConfig('tokenizer-bigger', (c) => (c.vocab_size = 512));
    refused(
      ['info', '--model', small],
      /the tokenizer .* has 1024 tokens but the model's vocabulary \(vocab_size\) has 512/,
    );
  });

  test('report on a document with a known format marker but nothing else', () => {
    const file = path.join(folder('report-partial'), 'amp.json');
    fs.writeFileSync(file, JSON.stringify({ format: 'wina-amp' }));
    refused(
      ['report', '--results', file, '-o', path.join(root, 'report-partial', 'r.html')],
      'is incomplete or malformed',
    );
    assert.deepEqual(fs.readdirSync(path.join(root, 'report-partial')), ['amp.json']);
  });
});

describe('prompts far too long for the context window', () => {
  test('are refused from their length alone, before the tokenizer runs', () => {
    const line = refused(
      ['generate', '--model', STORIES, '--prompt', 'once upon a time '.repeat(6000)],
      /prompt has 102000 characters, more than 512 tokens of at most \d+ characters can hold/,
    );
    assert.match(line, /the context window is 512$/);
  });
});

describe('neighbours: other special files in other places', () => {
  test('--model, --cache, --profile, amp --train / --test / --out given a FIFO, a device, a folder or a file', () => {
    const dir = folder('neighbours');
    const fifo = mkfifo(path.join(dir, 'fifo'));
    const file = path.join(dir, 'file.txt');
    fs.writeFileSync(file, 'hi');
    const cases: [string[], string][] = [
      [['generate', '--model', fifo], 'model file ' + fifo + ' is a FIFO'],
      [['generate', '--model', '/dev/zero'], 'model file /dev/zero is a character device'],
      [['info', '--model', file], 'is neither a model folder'],
      [
        ['eval', '--model', STORIES, '--tasks', SAMPLE, '--cache', '/dev/null'],
        'the cache /dev/null exists and is not a folder',
      ],
      [['eval', '--model', STORIES, '--tasks', SAMPLE, '--cache', fifo], 'exists and is not a folder'],
      [['generate', '--model', STORIES, '--profile', dir], 'is a folder, not a regular file'],
      [['amp', 'run', '--model', STORIES, '--train', fifo, '--out', path.join(dir, 'amp')], 'is a FIFO'],
      [
        [
          'amp',
          'run',
          '--model',
          STORIES,
          '--train',
          SAMPLE,
          '--test',
          '/dev/zero',
          '--out',
          path.join(dir, 'amp'),
        ],
        'is a character device',
      ],
      [
        ['amp', 'run', '--model', STORIES, '--train', SAMPLE, '--out', '/dev/full'],
        '/dev/full exists and is not a folder',
      ],
      [['synth', '--shape', 'smollm-135m', '--out', fifo], 'exists and is a FIFO, not a folder'],
      [
        ['transform', '--model', STORIES, '--out', '/dev/null'],
        'exists and is a character device, not a folder',
      ],
      [['bench', '--model', STORIES, '--out', fifo], 'exists and is a FIFO, not a regular file'],
    ];
    for (const [args, phrase] of cases) refused(args, phrase, dir);
    assert.deepEqual(fs.readdirSync(dir).sort(), ['fifo', 'file.txt']); // amp made no --out folder
  });
});
