/**
 * The playground in a real browser (Chromium driven by playwright-core, found or installed by browser.ts):
 * it streams a completion equal to `wina generate`'s, shows tokens/s and achieved sparsity, runs dense vs sparse
 * side by side, asks for nothing but this server, and renders to a screenshot.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';
import { loadModel, type Model } from '../src/model/model.js';
import { type RunningServer, startServer } from '../src/server/server.js';
import { CHROMIUM_ARGS, chromiumPath } from './browser.js';
import { sharedPath } from './helpers.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = path.join(REPO_ROOT, 'bin', 'wina.js');
const STORIES = sharedPath('models/stories260K');
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function winaGenerate(args: string[]): { text: string; tokens: number; achievedSparsity: number } {
  const r = spawnSync(process.execPath, [BIN, 'generate', '--model', STORIES, ...args, '--json'], {
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

const percent = (s: number) => `${(s * 100).toFixed(1)}%`;

describe('playground in chromium', () => {
  let model: Model;
  let server: RunningServer;
  let browser: Browser;
  let page: Page;
  const requested: string[] = [];
  const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wina-playground-'));

  before(async () => {
    const executablePath = chromiumPath();
    model = await loadModel(STORIES);
    server = await startServer(model, { port: 0, modelName: 'stories260K', log: () => {} });
    browser = await chromium.launch({ executablePath, args: CHROMIUM_ARGS });
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.on('request', (r) => requested.push(r.url()));
    await page.goto(`${server.url}/`);
    await page.locator('#model', { hasText: 'stories260K' }).waitFor();
  });
  after(async () => {
    await browser?.close();
    await server?.close();
    model?.close();
    fs.rmSync(outDir, { recursive: true, force: true });
  });

  async function setControls(c: { method: string; sparsity: string; maxTokens: string; seed: string }) {
    await page.fill('#prompt', 'Once upon a time');
    await page.selectOption('#method', c.method);
    // A range input cannot be filled: set it as a user's drag would, with an input event.
    await page.evaluate(
      `(() => { const s = document.getElementById('sparsity'); s.value = '${c.sparsity}'; s.dispatchEvent(new Event('input')); })()`,
    );
    await page.fill('#max-tokens', c.maxTokens);
    await page.fill('#temperature', '0.8');
    await page.fill('#seed', c.seed);
  }

  async function stats(pane: string): Promise<Record<string, string | null>> {
    const stat = (name: string) => page.textContent(`${pane} [data-stat="${name}"]`);
    return { tokens: await stat('tokens'), tps: await stat('tps'), sparsity: await stat('sparsity') };
  }

  test('streams a sparse completion equal to wina generate, with tokens/s and achieved sparsity', async () => {
    const expected = winaGenerate([
      '--prompt',
      'Once upon a time',
      '--max-tokens',
      '40',
      '--temperature',
      '0.8',
      '--top-p',
      '1',
      '--seed',
      '5',
      '--method',
      'wina',
      '--sparsity',
      '0.5',
    ]);
    await setControls({ method: 'wina', sparsity: '0.5', maxTokens: '40', seed: '5' });
    assert.equal(await page.textContent('#sparsity-value'), '50%');
    // Count the updates of the output: a streamed answer arrives in many pieces, not one.
    await page.evaluate(`(() => {
      window.updates = 0;
      const observer = new MutationObserver(() => window.updates++);
      observer.observe(document.querySelector('#pane-a .text'), { subtree: true, childList: true, characterData: true });
    })()`);
    await page.click('#generate');
    await page.locator('#pane-a[data-state="done"]').waitFor();

    assert.equal(await page.textContent('#pane-a .generated'), expected.text);
    assert.equal(await page.textContent('#pane-a .prompt'), 'Once upon a time');
    assert.equal(await page.textContent('#pane-a h2'), 'wina 50%');
    const updates = await page.evaluate<number>('window.updates');
    assert.ok(updates > 10, `${updates} updates of the output`);
    const s = await stats('#pane-a');
    assert.equal(s.tokens, String(expected.tokens));
    assert.match(s.tps!, /^\d+\.\d$/);
    assert.ok(Number(s.tps) > 0, s.tps!);
    assert.equal(s.sparsity, percent(expected.achievedSparsity));
    assert.equal(
      await page.getAttribute('#pane-a', 'data-finish'),
      expected.tokens === 40 ? 'length' : 'stop',
    );
    assert.equal(await page.isHidden('#pane-b'), true);
  });

  test('dense vs sparse side by side, then a screenshot', async () => {
    const dense = winaGenerate([
      '--prompt',
      'Once upon a time',
      '--max-tokens',
      '30',
      '--temperature',
      '0.8',
      '--top-p',
      '1',
      '--seed',
      '11',
    ]);
    const teal = winaGenerate([
      '--prompt',
      'Once upon a time',
      '--max-tokens',
      '30',
      '--temperature',
      '0.8',
      '--top-p',
      '1',
      '--seed',
      '11',
      '--method',
      'teal',
      '--sparsity',
      '0.65',
    ]);
    await setControls({ method: 'teal', sparsity: '0.65', maxTokens: '30', seed: '11' });
    await page.check('#compare');
    await page.click('#generate');
    await page.locator('#pane-b[data-state="done"]').waitFor();

    assert.equal(await page.getAttribute('#pane-a', 'data-state'), 'done');
    assert.equal(await page.textContent('#pane-a h2'), 'dense');
    assert.equal(await page.textContent('#pane-b h2'), 'teal 65%');
    assert.equal(await page.textContent('#pane-a .generated'), dense.text);
    assert.equal(await page.textContent('#pane-b .generated'), teal.text);
    assert.equal((await stats('#pane-a')).sparsity, '0.0%');
    assert.equal((await stats('#pane-b')).sparsity, percent(teal.achievedSparsity));
    const [a, b] = await Promise.all(['#pane-a', '#pane-b'].map((p) => page.locator(p).boundingBox()));
    assert.ok(a && b && b.x > a.x + a.width - 1 && Math.abs(a.y - b.y) < 1, 'the panes stand side by side');

    const file = path.join(outDir, 'playground.png');
    await page.screenshot({ path: file, fullPage: true });
    const png = fs.readFileSync(file);
    assert.ok(png.length > 1000, `${png.length} bytes`);
    assert.deepEqual(png.subarray(0, 8), PNG_SIGNATURE);
  });

  test('a request the server refuses shows its message', async () => {
    await page.uncheck('#compare');
    await setControls({ method: 'wina', sparsity: '0.5', maxTokens: '5000', seed: '1' });
    await page.click('#generate');
    await page.locator('#error', { hasText: 'context window is 512 tokens' }).waitFor();
    assert.equal(await page.isEnabled('#generate'), true);
  });

  test('the page asked for nothing but this server', () => {
    assert.ok(requested.length >= 4, requested.join('\n'));
    for (const url of requested) assert.ok(url.startsWith(`${server.url}/`), url);
  });
});
