/**
 * `wina serve` against real shared models: completions and chat (streamed and not) equal `wina generate`'s for the
 * same prompt and seed; every kind of bad input gets a 4xx and an OpenAI error object while the server stays
 * up; clients that go away stop their generation or leave the queue; 50 concurrent requests all come back right.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadModel, type Model } from '../src/model/model.js';
import { applyWina } from '../src/sparsity/apply.js';
import { type RunningServer, startServer } from '../src/server/server.js';
import { StopMatcher } from '../src/server/generation.js';
import { assertUserError } from './cli-helpers.js';
import { sharedPath } from './helpers.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = path.join(REPO_ROOT, 'bin', 'wina.js');
const STORIES = sharedPath('models/stories260K');
const LLAMA28M = sharedPath('models/llama-28m-mixed');

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** `wina generate ... --json` as a user runs it. */
function winaGenerate(args: string[]): Json {
  const r = spawnSync(process.execPath, [BIN, 'generate', ...args, '--json'], { encoding: 'utf8' });
  assert.equal(r.status, 0, `wina generate ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

const JSON_HEADERS = { 'Content-Type': 'application/json' };

async function post(url: string, body: unknown, init: RequestInit = {}) {
  const res = await fetch(url, {
    method: 'POST',
    headers: JSON_HEADERS,
    body: typeof body === 'string' ? body : JSON.stringify(body),
    ...init,
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, json: text ? (JSON.parse(text) as Json) : {} };
}

/** The data of every server-sent event of a streamed request, up to and including "[DONE]". */
async function stream(url: string, body: Json): Promise<(Json | '[DONE]')[]> {
  const res = await fetch(url, {
    method: 'POST',
    headers: JSON_HEADERS,
    body: JSON.stringify({ ...body, stream: true }),
  });
  assert.equal(res.status, 200, await res.clone().text());
  assert.match(res.headers.get('content-type')!, /^text\/event-stream/);
  const text = await res.text();
  assert.ok(text.endsWith('\n\n'), 'events end with a blank line');
  return text
    .slice(0, -2)
    .split('\n\n')
    .map((event) => {
      assert.ok(event.startsWith('data: '), `not a data event: ${event}`);
      const data = event.slice(6);
      return data === '[DONE]' ? data : (JSON.parse(data) as Json);
    });
}

/** Reads the stream until the first generated text arrives. */
async function firstText(res: Response): Promise<void> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let seen = '';
  while (!/"text":"[^"]/.test(seen)) {
    const { done, value } = await reader.read();
    assert.ok(!done, 'the stream ended before any text');
    seen += decoder.decode(value, { stream: true });
  }
}

/** Prometheus text -> samples by "name{labels}"; throws on any line that is not the exposition format. */
function parsePrometheus(text: string): Map<string, number> {
  assert.ok(text.endsWith('\n'), 'the exposition ends with a newline');
  const types = new Map<string, string>();
  const samples = new Map<string, number>();
  for (const line of text.slice(0, -1).split('\n')) {
    let m = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$/.exec(line);
    if (m) {
      if (m[1] === 'TYPE') {
        assert.match(m[3]!, /^(counter|gauge|histogram|summary|untyped)$/, line);
        assert.ok(!types.has(m[2]!), `TYPE twice for ${m[2]}`);
        types.set(m[2]!, m[3]!);
      }
      continue;
    }
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*\})? (\S+)$/.exec(
      line,
    );
    assert.ok(m, `not a Prometheus sample line: ${JSON.stringify(line)}`);
    assert.ok(types.has(m[1]!), `sample ${m[1]} before its TYPE`);
    const value = Number(m[3]);
    assert.ok(!Number.isNaN(value), `value of ${line}`);
    if (types.get(m[1]!) === 'counter') assert.ok(m[1]!.endsWith('_total') && value >= 0, line);
    samples.set(m[1]! + (m[2] ?? ''), value);
  }
  return samples;
}

async function metrics(base: string): Promise<Map<string, number>> {
  const res = await fetch(`${base}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type')!, /^text\/plain; version=0\.0\.4/);
  return parsePrometheus(await res.text());
}

/** Polls /metrics until `ready` holds (no time limit of its own: the test runner's applies). */
async function metricsWhen(base: string, ready: (m: Map<string, number>) => boolean) {
  for (;;) {
    const m = await metrics(base);
    if (ready(m)) return m;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const cancelled = (m: Map<string, number>) => m.get('wina_generations_total{finish_reason="cancelled"}')!;
const generations = (m: Map<string, number>) =>
  ['stop', 'length', 'cancelled'].reduce(
    (sum, r) => sum + m.get(`wina_generations_total{finish_reason="${r}"}`)!,
    0,
  );

function assertError(
  r: { status: number; json: Json },
  status: number,
  param?: string | null,
  code?: string,
) {
  assert.equal(r.status, status, JSON.stringify(r.json));
  const error = r.json.error;
  assert.deepEqual(Object.keys(error).sort(), ['code', 'message', 'param', 'type']);
  assert.equal(typeof error.message, 'string');
  assert.ok(error.message.length > 10, error.message);
  assert.equal(error.type, status >= 500 ? 'server_error' : 'invalid_request_error');
  if (param !== undefined) assert.equal(error.param, param);
  if (code !== undefined) assert.equal(error.code, code);
}

describe('wina serve on stories260K (dense by default)', () => {
  let model: Model;
  let server: RunningServer;
  let base: string;
  const logged: string[] = [];

  before(async () => {
    model = await loadModel(STORIES);
    server = await startServer(model, {
      port: 0,
      modelName: 'stories260K',
      allowedOrigins: ['http://app.example'],
      log: (l) => logged.push(l),
    });
    base = server.url;
  });
  after(async () => {
    await server.close();
    model.close();
  });

  const SAMPLED = { temperature: 0.8, top_p: 0.9, top_k: 40, seed: 7 };
  const cases: { name: string; body: Json; cli: string[] }[] = [
    {
      name: 'greedy',
      body: { prompt: 'Once upon a time', max_tokens: 40, temperature: 0 },
      cli: ['--prompt', 'Once upon a time', '--max-tokens', '40', '--temperature', '0'],
    },
    {
      name: 'sampled with a seed',
      body: { prompt: 'The little dog', max_tokens: 60, ...SAMPLED },
      cli: ['--prompt', 'The little dog', '--max-tokens', '60', '--temperature', '0.8', '--top-p', '0.9'],
    },
    {
      name: 'wina 50% as a per-request override',
      body: {
        prompt: 'Lily saw a bird',
        max_tokens: 50,
        ...SAMPLED,
        wina: { method: 'wina', sparsity: 0.5 },
      },
      cli: [
        '--prompt',
        'Lily saw a bird',
        '--max-tokens',
        '50',
        '--temperature',
        '0.8',
        '--top-p',
        '0.9',
        '--method',
        'wina',
        '--sparsity',
        '0.5',
      ],
    },
    {
      name: 'empty prompt (BOS only), until EOS',
      body: { prompt: '', max_tokens: 300, temperature: 0 },
      cli: ['--prompt', '', '--max-tokens', '300', '--temperature', '0'],
    },
  ];
  for (const c of cases) {
    const cliArgs = [
      '--model',
      STORIES,
      ...c.cli,
      ...('top_k' in c.body ? ['--top-k', '40', '--seed', '7'] : []),
    ];

    test(`completion, ${c.name}: equals wina generate, streamed and not`, async () => {
      const expected = winaGenerate(cliArgs);
      const r = await post(`${base}/v1/completions`, c.body);
      assert.equal(r.status, 200, r.text);
      const body = r.json;
      assert.equal(body.object, 'text_completion');
      assert.equal(body.model, 'stories260K');
      assert.match(body.id, /^cmpl-/);
      assert.equal(body.choices.length, 1);
      assert.equal(body.choices[0].text, expected.text);
      assert.deepEqual(body.usage, {
        prompt_tokens: expected.promptTokens,
        completion_tokens: expected.tokens,
        total_tokens: expected.promptTokens + expected.tokens,
      });
      const finish = expected.tokens === c.body.max_tokens ? 'length' : 'stop';
      assert.equal(body.choices[0].finish_reason, finish);
      // The same weights were skipped as in the CLI's run: the sparsity counts match exactly.
      assert.equal(body.wina.achieved_sparsity, expected.achievedSparsity);

      const events = await stream(`${base}/v1/completions`, {
        ...c.body,
        stream_options: { include_usage: true },
      });
      assert.equal(events.at(-1), '[DONE]');
      const chunks = events.slice(0, -1) as Json[];
      const usageChunk = chunks.pop()!;
      assert.deepEqual(usageChunk.choices, []);
      assert.deepEqual(usageChunk.usage, body.usage);
      const last = chunks.pop()!;
      assert.equal(last.choices[0].finish_reason, finish);
      assert.equal(last.choices[0].text, '');
      assert.equal(last.wina.achieved_sparsity, expected.achievedSparsity);
      for (const chunk of chunks) {
        assert.equal(chunk.object, 'text_completion');
        assert.equal(chunk.id, last.id);
        assert.equal(chunk.choices[0].finish_reason, null);
      }
      assert.equal(chunks.map((ch) => ch.choices[0].text).join(''), expected.text);
      assert.equal(last.wina.tokens, expected.tokens);
    });
  }

  test('a prompt of token ids equals the same prompt as text', async () => {
    const ids = model.tokenizer.encode('Once upon a time');
    const asText = await post(`${base}/v1/completions`, {
      prompt: 'Once upon a time',
      max_tokens: 20,
      ...SAMPLED,
    });
    const asIds = await post(`${base}/v1/completions`, { prompt: ids, max_tokens: 20, ...SAMPLED });
    assert.equal(asIds.status, 200, asIds.text);
    assert.equal(asIds.json.choices[0].text, asText.json.choices[0].text);
    assert.equal(asIds.json.usage.prompt_tokens, ids.length);
  });

  test('stop sequences end the text before them, streamed and not', async () => {
    const full = await post(`${base}/v1/completions`, {
      prompt: 'Once upon a time',
      max_tokens: 40,
      temperature: 0,
    });
    const text: string = full.json.choices[0].text;
    const stop = ' named'; // spans tokens: ", there was a little girl named Lily."
    assert.ok(text.includes(stop), text);
    const body = { prompt: 'Once upon a time', max_tokens: 40, temperature: 0, stop: ['zzz', stop] };
    const r = await post(`${base}/v1/completions`, body);
    assert.equal(r.json.choices[0].text, text.slice(0, text.indexOf(stop)));
    assert.equal(r.json.choices[0].finish_reason, 'stop');
    const events = (await stream(`${base}/v1/completions`, body)).slice(0, -1) as Json[];
    assert.equal(events.map((e) => e.choices[0].text).join(''), text.slice(0, text.indexOf(stop)));
    assert.equal(events.at(-1)!.choices[0].finish_reason, 'stop');
  });

  test('StopMatcher holds back only what could start a stop sequence', () => {
    const m = new StopMatcher(['abc', 'xy']);
    assert.deepEqual(m.push('12a'), { text: '12', stopped: false });
    assert.deepEqual(m.push('b'), { text: '', stopped: false });
    assert.deepEqual(m.push('d'), { text: 'abd', stopped: false });
    assert.deepEqual(m.push('x'), { text: '', stopped: false });
    assert.deepEqual(m.push('zab'), { text: 'xz', stopped: false });
    assert.deepEqual(m.push('cq'), { text: '', stopped: true });
    assert.equal(new StopMatcher([]).push('abc').text, 'abc');
  });

  test('a per-request sparsity does not leak into the next request', async () => {
    const prompt = { prompt: 'The cat', max_tokens: 30, ...SAMPLED };
    const dense = await post(`${base}/v1/completions`, prompt);
    const teal = await post(`${base}/v1/completions`, { ...prompt, wina: { method: 'teal', sparsity: 0.4 } });
    const wina65 = await post(`${base}/v1/completions`, {
      ...prompt,
      wina: { method: 'wina', sparsity: 0.65 },
    });
    const wina30 = await post(`${base}/v1/completions`, { ...prompt, wina: { sparsity: 0.3 } }); // method: wina
    const denseAgain = await post(`${base}/v1/completions`, prompt);
    const explicitDense = await post(`${base}/v1/completions`, { ...prompt, wina: { method: 'dense' } });
    const cli = (extra: string[]) =>
      winaGenerate([
        '--model',
        STORIES,
        '--prompt',
        'The cat',
        '--max-tokens',
        '30',
        '--temperature',
        '0.8',
        '--top-p',
        '0.9',
        '--top-k',
        '40',
        '--seed',
        '7',
        ...extra,
      ]);
    const expectedTeal = cli(['--method', 'teal', '--sparsity', '0.4']);
    const expectedDense = cli([]);
    for (const r of [dense, denseAgain, explicitDense]) {
      assert.equal(r.json.choices[0].text, expectedDense.text);
      assert.equal(r.json.wina.achieved_sparsity, 0);
      assert.equal(r.json.wina.method, 'dense');
    }
    assert.equal(teal.json.choices[0].text, expectedTeal.text);
    assert.equal(teal.json.wina.achieved_sparsity, expectedTeal.achievedSparsity);
    assert.deepEqual([teal.json.wina.method, teal.json.wina.sparsity], ['teal', 0.4]);
    assert.deepEqual([wina30.json.wina.method, wina30.json.wina.sparsity], ['wina', 0.3]);
    // Top-k keeps floor(d * (1 - s)) inputs per token: achieved sparsity is at least the target.
    for (const [r, s] of [
      [wina65, 0.65],
      [wina30, 0.3],
    ] as const) {
      assert.ok(
        r.json.wina.achieved_sparsity >= s && r.json.wina.achieved_sparsity < s + 0.05,
        JSON.stringify(r.json.wina),
      );
    }
    assert.notEqual(wina65.json.choices[0].text, expectedDense.text);
  });

  test('GET /v1/models, /health and the playground', async () => {
    const models = (await (await fetch(`${base}/v1/models`)).json()) as Json;
    assert.equal(models.object, 'list');
    assert.deepEqual(
      models.data.map((m: Json) => [m.id, m.object, m.owned_by, m.wina.context_length, m.wina.method]),
      [['stories260K', 'model', 'wina', 512, 'dense']],
    );
    const health = await fetch(`${base}/health`);
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), {
      status: 'ok',
      model: 'stories260K',
      queue_length: 0,
      running: false,
    });
    const page = await fetch(`${base}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type')!, /^text\/html/);
    const html = await page.text();
    assert.match(html, /<title>wina playground<\/title>/);
    assert.doesNotMatch(html, /<(script|link)[^>]+(src|href)=/, 'the page loads nothing from elsewhere');
  });

  test('CORS: an allowed origin gets its preflight and headers, another origin is refused (403)', async () => {
    const preflight = (origin: string) =>
      fetch(`${base}/v1/completions`, {
        method: 'OPTIONS',
        headers: {
          Origin: origin,
          'Access-Control-Request-Method': 'POST',
          'Access-Control-Request-Headers': 'content-type, authorization',
        },
      });
    const allowed = await preflight('http://app.example');
    assert.equal(allowed.status, 204);
    assert.equal(allowed.headers.get('access-control-allow-origin'), 'http://app.example');
    assert.equal(allowed.headers.get('access-control-allow-methods'), 'POST');
    assert.equal(allowed.headers.get('access-control-allow-headers'), 'content-type, authorization');
    const other = await preflight('http://elsewhere.example');
    assert.equal(other.status, 403);
    assert.equal(other.headers.get('access-control-allow-origin'), null);

    const call = (origin: string) =>
      fetch(`${base}/v1/completions`, {
        method: 'POST',
        headers: { Origin: origin, 'Content-Type': 'application/json' },
        body: JSON.stringify({ prompt: 'Once', max_tokens: 2, temperature: 0 }),
      });
    const fromApp = await call('http://app.example');
    assert.equal(fromApp.status, 200);
    assert.equal(fromApp.headers.get('access-control-allow-origin'), 'http://app.example');
    assert.equal(((await fromApp.json()) as Json).object, 'text_completion');
    const fromOther = await call('http://elsewhere.example');
    assert.equal(fromOther.status, 403);
    assert.equal(fromOther.headers.get('access-control-allow-origin'), null);
    assert.equal(((await fromOther.json()) as Json).error.code, 'origin_not_allowed');
    // Errors too, so the page can read them.
    const missing = await fetch(`${base}/v1/nothing`, { headers: { Origin: 'http://app.example' } });
    assert.equal(missing.status, 404);
    assert.equal(missing.headers.get('access-control-allow-origin'), 'http://app.example');
    assert.equal(((await missing.json()) as Json).error.code, 'unknown_url');
  });

  test('chat on a model without a chat template: 400 naming the way out', async () => {
    const r = await post(`${base}/v1/chat/completions`, { messages: [{ role: 'user', content: 'Hi' }] });
    assertError(r, 400, 'messages', 'no_chat_template');
    assert.match(r.json.error.message, /--chat-template/);
  });

  test('bad input: 4xx with an OpenAI error object, and the server stays up', async () => {
    const completions = `${base}/v1/completions`;
    const chat = `${base}/v1/chat/completions`;
    const ok = { prompt: 'Hi', max_tokens: 2 };
    const cases: [string, string, unknown, number, string | null, string][] = [
      ['malformed JSON', completions, '{"prompt": "Hi",', 400, null, 'invalid_json'],
      ['empty body', completions, '', 400, null, 'invalid_json'],
      ['a JSON array', completions, '[1, 2]', 400, null, 'invalid_type'],
      ['missing prompt', completions, { max_tokens: 2 }, 400, 'prompt', 'missing_required_parameter'],
      ['prompt of the wrong type', completions, { prompt: 42 }, 400, 'prompt', 'invalid_type'],
      [
        'a token id outside the vocabulary',
        completions,
        { prompt: [1, 512] },
        400,
        'prompt',
        'invalid_value',
      ],
      ['a batch of prompts', completions, { prompt: ['a', 'b'] }, 400, 'prompt', 'invalid_value'],
      ['max_tokens a string', completions, { ...ok, max_tokens: '5' }, 400, 'max_tokens', 'invalid_type'],
      ['max_tokens 0', completions, { ...ok, max_tokens: 0 }, 400, 'max_tokens', 'invalid_value'],
      ['max_tokens 2.5', completions, { ...ok, max_tokens: 2.5 }, 400, 'max_tokens', 'invalid_type'],
      [
        'max_tokens beyond the context',
        completions,
        { ...ok, max_tokens: 600 },
        400,
        'max_tokens',
        'context_length_exceeded',
      ],
      [
        'a prompt longer than the context',
        completions,
        { prompt: 'the dog ran. '.repeat(200) },
        400,
        'prompt',
        'context_length_exceeded',
      ],
      ['temperature below 0', completions, { ...ok, temperature: -1 }, 400, 'temperature', 'invalid_value'],
      [
        'temperature a string',
        completions,
        { ...ok, temperature: 'hot' },
        400,
        'temperature',
        'invalid_type',
      ],
      ['top_p above 1', completions, { ...ok, top_p: 1.5 }, 400, 'top_p', 'invalid_value'],
      ['top_k not whole', completions, { ...ok, top_k: 1.5 }, 400, 'top_k', 'invalid_type'],
      ['negative seed', completions, { ...ok, seed: -3 }, 400, 'seed', 'invalid_value'],
      ['stop of the wrong type', completions, { ...ok, stop: 3 }, 400, 'stop', 'invalid_type'],
      [
        'five stop sequences',
        completions,
        { ...ok, stop: ['a', 'b', 'c', 'd', 'e'] },
        400,
        'stop',
        'invalid_value',
      ],
      ['stream a string', completions, { ...ok, stream: 'yes' }, 400, 'stream', 'invalid_type'],
      ['n = 2', completions, { ...ok, n: 2 }, 400, 'n', 'unsupported_parameter'],
      ['logprobs', completions, { ...ok, logprobs: 5 }, 400, 'logprobs', 'unsupported_parameter'],
      [
        'sparsity 1.2',
        completions,
        { ...ok, wina: { method: 'wina', sparsity: 1.2 } },
        400,
        'wina.sparsity',
        'invalid_value',
      ],
      [
        'negative sparsity',
        completions,
        { ...ok, wina: { sparsity: -0.1 } },
        400,
        'wina.sparsity',
        'invalid_value',
      ],
      [
        'unknown method',
        completions,
        { ...ok, wina: { method: 'magic', sparsity: 0.5 } },
        400,
        'wina.method',
        'invalid_value',
      ],
      [
        'method without sparsity',
        completions,
        { ...ok, wina: { method: 'teal' } },
        400,
        'wina.sparsity',
        'missing_required_parameter',
      ],
      ['wina not an object', completions, { ...ok, wina: 'fast' }, 400, 'wina', 'invalid_type'],
      [
        'unknown wina field',
        completions,
        { ...ok, wina: { sparsity: 0.5, speed: 2 } },
        400,
        'wina.speed',
        'unknown_parameter',
      ],
      ['chat without messages', chat, { max_tokens: 2 }, 400, 'messages', 'missing_required_parameter'],
      ['messages not an array', chat, { messages: 'Hi' }, 400, 'messages', 'invalid_type'],
      ['empty messages', chat, { messages: [] }, 400, 'messages', 'invalid_value'],
      [
        'a message without a role',
        chat,
        { messages: [{ content: 'Hi' }] },
        400,
        'messages[0].role',
        'invalid_type',
      ],
      [
        'content a number',
        chat,
        { messages: [{ role: 'user', content: 7 }] },
        400,
        'messages[0].content',
        'invalid_type',
      ],
    ];
    for (const [what, url, body, status, param, code] of cases) {
      const r = await post(url, body);
      try {
        assertError(r, status, param, code);
      } catch (e) {
        throw new Error(`${what}: ${(e as Error).message}`, { cause: e });
      }
    }

    const oversized = await post(completions, { prompt: 'x'.repeat(2 * 1024 * 1024) });
    assertError(oversized, 413, null, 'request_too_large');
    const unknown = await post(`${base}/v1/embeddings`, ok);
    assertError(unknown, 404, null, 'unknown_url');
    const getCompletions = await fetch(completions);
    assertError(
      { status: getCompletions.status, json: (await getCompletions.json()) as Json },
      405,
      null,
      'method_not_allowed',
    );
    assert.equal(getCompletions.headers.get('allow'), 'POST');
    const postHealth = await post(`${base}/health`, {});
    assertError(postHealth, 405, null, 'method_not_allowed');

    const health = await fetch(`${base}/health`);
    assert.equal(health.status, 200);
    const after = await post(completions, ok);
    assert.equal(after.status, 200);
    assert.equal(after.json.usage.completion_tokens, 2);
    for (const line of logged) assert.doesNotMatch(line, /\n/);
    assert.ok(
      logged.some((l) => /^POST \/v1\/completions 413 /.test(l)),
      logged.join('\n'),
    );
  });

  test('/metrics is Prometheus text and counts what happened', async () => {
    const before = await metrics(base);
    const r = await post(`${base}/v1/completions`, {
      prompt: 'A big red',
      max_tokens: 9,
      ...SAMPLED,
      wina: { method: 'teal', sparsity: 0.5 },
    });
    await post(`${base}/v1/completions`, { prompt: 1 });
    const m = await metrics(base);
    for (const name of [
      'wina_queue_length',
      'wina_generations_running',
      'wina_tokens_per_second',
      'wina_achieved_sparsity',
    ]) {
      assert.ok(m.has(name), name);
    }
    assert.equal(m.get('wina_queue_length'), 0);
    assert.equal(m.get('wina_generations_running'), 0);
    assert.equal(
      m.get('wina_generated_tokens_total')! - before.get('wina_generated_tokens_total')!,
      r.json.usage.completion_tokens,
    );
    assert.equal(
      m.get('wina_prompt_tokens_total')! - before.get('wina_prompt_tokens_total')!,
      r.json.usage.prompt_tokens,
    );
    assert.equal(m.get('wina_achieved_sparsity'), r.json.wina.achieved_sparsity);
    assert.equal(m.get('wina_tokens_per_second'), r.json.wina.tokens_per_second);
    const ok = 'wina_requests_total{route="/v1/completions",status="200"}';
    const bad = 'wina_requests_total{route="/v1/completions",status="400"}';
    assert.equal(m.get(ok)! - before.get(ok)!, 1);
    assert.equal(m.get(bad)! - (before.get(bad) ?? 0), 1);
  });

  test('a client that disconnects mid-stream stops its generation', async () => {
    const before = await metrics(base);
    const maxTokens = 480;
    const cancel = new AbortController();
    const res = await fetch(`${base}/v1/completions`, {
      method: 'POST',
      headers: JSON_HEADERS,
      body: JSON.stringify({
        prompt: 'Once',
        max_tokens: maxTokens,
        ignore_eos: true,
        stream: true,
        seed: 1,
      }),
      signal: cancel.signal,
    });
    await firstText(res);
    cancel.abort();
    const m = await metricsWhen(base, (m) => cancelled(m) > cancelled(before));
    assert.equal(cancelled(m) - cancelled(before), 1);
    assert.equal(generations(m) - generations(before), 1);
    const tokens = m.get('wina_generated_tokens_total')! - before.get('wina_generated_tokens_total')!;
    assert.ok(tokens >= 1 && tokens < maxTokens, `${tokens} tokens generated of ${maxTokens}`);
    assert.equal(m.get('wina_generations_running'), 0);
    const gone = 'wina_requests_total{route="/v1/completions",status="499"}';
    assert.equal(m.get(gone)! - (before.get(gone) ?? 0), 1);
  });

  test('load: 50 concurrent requests all complete correctly', async () => {
    // 10 settings (streamed or not, dense or sparse), each sent 5 times, all at once.
    const prompts = ['Once upon a time', 'The sun', 'Tom and Sue', 'A little bird', 'One day'];
    const settings = Array.from({ length: 10 }, (_, i) => ({
      prompt: prompts[i % 5]!,
      max_tokens: 12,
      temperature: 0.9,
      top_p: 0.95,
      seed: 100 + i,
      stream: i % 2 === 0,
      wina:
        i % 3 === 0
          ? { method: 'wina', sparsity: 0.5 }
          : i % 3 === 1
            ? undefined
            : { method: 'teal', sparsity: 0.3 },
    }));
    // Expected: the library's generate on a model of its own (what `wina generate` runs, as the tests above check).
    const reference = await loadModel(STORIES);
    const expected: string[] = [];
    try {
      for (const s of settings) {
        const sparsity =
          s.wina &&
          applyWina(reference, { method: s.wina.method as 'wina', globalSparsity: s.wina.sparsity });
        let text = '';
        for await (const t of (sparsity || reference).generate(s.prompt, {
          maxTokens: 12,
          temperature: 0.9,
          topP: 0.95,
          seed: s.seed,
        })) {
          text += t.text;
        }
        expected.push(text);
      }
    } finally {
      reference.close();
    }
    const texts = await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        const s = settings[i % 10]!;
        if (s.stream) {
          const events = (await stream(`${base}/v1/completions`, s)).slice(0, -1) as Json[];
          return events.map((e) => e.choices[0].text).join('');
        }
        const r = await post(`${base}/v1/completions`, s);
        assert.equal(r.status, 200, r.text);
        return r.json.choices[0].text as string;
      }),
    );
    texts.forEach((text, i) => assert.equal(text, expected[i % 10], `request ${i}`));
    const health = await fetch(`${base}/health`);
    assert.equal(health.status, 200);
    assert.equal(((await health.json()) as Json).queue_length, 0);
  });
});

describe('wina serve: chat template, queue and disconnects on llama-28m-mixed', () => {
  // The shared model has no chat template: a folder beside it adds one to its tokenizer_config.json.
  const TEMPLATE =
    "{{ bos_token }}{% for message in messages %}{{ message['role'] | capitalize }}: {{ message['content'] }}\n" +
    '{% endfor %}{% if add_generation_prompt %}Assistant:{% endif %}';
  let dir: string;
  let model: Model;
  let server: RunningServer;
  let base: string;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wina-chat-'));
    for (const f of ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json']) {
      fs.symlinkSync(path.join(LLAMA28M, f), path.join(dir, f));
    }
    const config = JSON.parse(fs.readFileSync(path.join(LLAMA28M, 'tokenizer_config.json'), 'utf8'));
    fs.writeFileSync(
      path.join(dir, 'tokenizer_config.json'),
      JSON.stringify({ ...config, chat_template: TEMPLATE }),
    );
    model = await loadModel(dir);
    server = await startServer(model, { port: 0, modelName: 'llama-28m-chat', log: () => {} });
    base = server.url;
  });
  after(async () => {
    await server.close();
    model.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const messages = [
    { role: 'system', content: 'You answer in one sentence.' },
    { role: 'user', content: [{ type: 'text', text: 'What is a dictionary?' }] },
  ];
  // What the template renders after its BOS: `wina generate` adds that BOS itself.
  const RENDERED = 'System: You answer in one sentence.\nUser: What is a dictionary?\nAssistant:';

  for (const [name, sampling, cli] of [
    ['greedy', { temperature: 0 }, ['--temperature', '0']],
    [
      'sampled with a seed',
      { temperature: 0.7, top_p: 0.9, seed: 3 },
      ['--temperature', '0.7', '--top-p', '0.9', '--seed', '3'],
    ],
  ] as const) {
    test(`chat completion, ${name}: the template's prompt, and equal to wina generate`, async () => {
      const expected = winaGenerate(['--model', dir, '--prompt', RENDERED, '--max-tokens', '24', ...cli]);
      const body = { model: 'anything', messages, max_tokens: 24, ...sampling };
      const r = await post(`${base}/v1/chat/completions`, body);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.object, 'chat.completion');
      assert.match(r.json.id, /^chatcmpl-/);
      assert.deepEqual(r.json.choices[0].message, { role: 'assistant', content: expected.text });
      assert.equal(r.json.choices[0].finish_reason, expected.tokens === 24 ? 'length' : 'stop');
      assert.equal(r.json.usage.prompt_tokens, expected.promptTokens);
      assert.equal(r.json.usage.completion_tokens, expected.tokens);

      const events = await stream(`${base}/v1/chat/completions`, body);
      assert.equal(events.pop(), '[DONE]');
      const chunks = events as Json[];
      assert.deepEqual(chunks[0]!.choices[0].delta, { role: 'assistant', content: '' });
      assert.deepEqual(chunks.at(-1)!.choices[0].delta, {});
      assert.equal(chunks.at(-1)!.choices[0].finish_reason, r.json.choices[0].finish_reason);
      for (const chunk of chunks) assert.equal(chunk.object, 'chat.completion.chunk');
      const content = chunks
        .slice(1, -1)
        .map((c) => c.choices[0].delta.content)
        .join('');
      assert.equal(content, expected.text);
    });
  }

  test('max_completion_tokens beyond the context of 1024', async () => {
    const r = await post(`${base}/v1/chat/completions`, { messages, max_completion_tokens: 1020 });
    assertError(r, 400, 'max_completion_tokens', 'context_length_exceeded');
  });

  test('a client that leaves the queue is removed from it and never generates', async () => {
    const before = await metrics(base);
    const running = new AbortController();
    const long = { prompt: 'The', max_tokens: 1000, ignore_eos: true, stream: true, seed: 2 };
    const first = await fetch(`${base}/v1/completions`, {
      method: 'POST',
      headers: JSON_HEADERS,
      body: JSON.stringify(long),
      signal: running.signal,
    });
    await firstText(first);
    const waiting = new AbortController();
    const queued = fetch(`${base}/v1/completions`, {
      method: 'POST',
      headers: JSON_HEADERS,
      body: JSON.stringify({ prompt: 'A', max_tokens: 5 }),
      signal: waiting.signal,
    }).catch((e: Error) => e.name);
    await metricsWhen(base, (m) => m.get('wina_queue_length') === 1);
    waiting.abort();
    assert.equal(await queued, 'AbortError');
    const m = await metricsWhen(base, (m) => m.get('wina_queue_length') === 0);
    assert.equal(m.get('wina_generations_running'), 1);
    running.abort();
    const done = await metricsWhen(base, (m) => cancelled(m) > cancelled(before));
    // One generation (the running one, cancelled); the queued request never started.
    assert.equal(generations(done) - generations(before), 1);
    const tokens = done.get('wina_generated_tokens_total')! - before.get('wina_generated_tokens_total')!;
    assert.ok(tokens < 1000, `${tokens} tokens`);
    const gone = 'wina_requests_total{route="/v1/completions",status="499"}';
    await metricsWhen(base, (m) => m.get(gone)! - (before.get(gone) ?? 0) === 2);
  });
});

/** `wina serve ... --port 0 --json` as a user runs it; resolves once it listens. */
async function spawnServe(args: string[]) {
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--json', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('\n')) resolve(out);
    });
    child.on('exit', () => reject(new Error(`wina serve exited: ${stderr}`)));
  });
  const { url, model } = JSON.parse(line) as { url: string; model: string };
  return {
    url,
    model,
    /** SIGTERM; resolves to the exit code and everything written to stderr. */
    stop: async () => {
      child.kill('SIGTERM');
      return { code: await exited, stderr };
    },
  };
}

describe('wina serve (the command)', () => {
  test('serves the default sparsity, a --chat-template, and stops cleanly on SIGTERM', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wina-serve-'));
    const template = path.join(dir, 'chat.jinja');
    fs.writeFileSync(template, "{{ bos_token }}{% for m in messages %}{{ m['content'] }}{% endfor %}");
    const served = await spawnServe([
      '--model',
      STORIES,
      '--method',
      'teal',
      '--sparsity',
      '0.4',
      '--chat-template',
      template,
    ]);
    let stopped: { code: number | null; stderr: string } | undefined;
    try {
      const { url, model } = served;
      assert.equal(model, 'stories260K');
      const expected = winaGenerate([
        '--model',
        STORIES,
        '--prompt',
        'Tim had',
        '--max-tokens',
        '25',
        '--temperature',
        '0.5',
        '--top-p',
        '1',
        '--seed',
        '9',
        '--method',
        'teal',
        '--sparsity',
        '0.4',
      ]);
      const r = await post(`${url}/v1/completions`, {
        prompt: 'Tim had',
        max_tokens: 25,
        temperature: 0.5,
        seed: 9,
      });
      assert.equal(r.json.choices[0].text, expected.text);
      assert.deepEqual([r.json.wina.method, r.json.wina.sparsity], ['teal', 0.4]);
      assert.equal(r.json.wina.achieved_sparsity, expected.achievedSparsity);
      const chat = await post(`${url}/v1/chat/completions`, {
        messages: [{ role: 'user', content: 'Tim had' }],
        max_tokens: 25,
        temperature: 0.5,
        seed: 9,
      });
      assert.equal(chat.status, 200, chat.text);
      // The template renders BOS and the content: the same prompt tokens as generate's, so the same text.
      assert.equal(chat.json.usage.prompt_tokens, expected.promptTokens);
      assert.equal(chat.json.choices[0].message.content, expected.text);
    } finally {
      stopped = await served.stop();
    }
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.match(stopped.stderr, /SIGTERM: finishing the running generation/);
    assert.match(stopped.stderr, /wina serve: stopped\n$/);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('a calibrated --profile as the default: its thresholds come back after a per-request top-k', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wina-serve-profile-'));
    const profile = path.join(dir, 'profile.json');
    const sample = sharedPath('data/tinystories/tinystories_sample.txt');
    const made = spawnSync(
      process.execPath,
      [
        BIN,
        'calibrate',
        '--model',
        STORIES,
        '--data',
        sample,
        '--samples',
        '4',
        '--seq-len',
        '64',
        '--method',
        'wina',
        '--sparsity',
        '0.5',
        '--out',
        profile,
      ],
      { encoding: 'utf8' },
    );
    assert.equal(made.status, 0, made.stderr);
    const served = await spawnServe(['--model', STORIES, '--profile', profile]);
    try {
      const ask = (extra: Json = {}) =>
        post(`${served.url}/v1/completions`, {
          prompt: 'Sue found',
          max_tokens: 30,
          temperature: 0.7,
          seed: 3,
          ...extra,
        });
      const cli = (extra: string[]) =>
        winaGenerate([
          '--model',
          STORIES,
          '--prompt',
          'Sue found',
          '--max-tokens',
          '30',
          '--temperature',
          '0.7',
          '--top-p',
          '1',
          '--seed',
          '3',
          ...extra,
        ]);
      const models = (await (await fetch(`${served.url}/v1/models`)).json()) as Json;
      assert.deepEqual([models.data[0].wina.method, models.data[0].wina.sparsity], ['wina', 0.5]);
      const first = await ask();
      const topk = await ask({ wina: { method: 'wina', sparsity: 0.3 } });
      const again = await ask();
      const expectedProfile = cli(['--profile', profile]);
      const expectedTopk = cli(['--method', 'wina', '--sparsity', '0.3']);
      for (const r of [first, again]) {
        assert.equal(r.status, 200, r.text);
        assert.equal(r.json.choices[0].text, expectedProfile.text);
        assert.equal(r.json.wina.achieved_sparsity, expectedProfile.achievedSparsity);
      }
      assert.equal(topk.json.choices[0].text, expectedTopk.text);
      assert.equal(topk.json.wina.achieved_sparsity, expectedTopk.achievedSparsity);
      // Thresholds vary per token; top-k at 0.3 keeps exactly floor(0.7 d) inputs: the two must differ.
      assert.notEqual(expectedProfile.achievedSparsity, expectedTopk.achievedSparsity);
    } finally {
      const { code, stderr } = await served.stop();
      assert.equal(code, 0, stderr);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('bad options: one line, exit code 2', () => {
    for (const [args, phrase] of [
      [['--port', '70000'], '--port must be in 0..65535'],
      [['--port', 'x'], '--port must be a number'],
      [['--chat-template', '/nonexistent/t.jinja'], 'chat template /nonexistent/t.jinja does not exist'],
      [['--chat-template', '/dev/zero'], 'chat template /dev/zero is a character device'],
      [['--cors', 'http://app.example/path'], '--cors takes origins'],
      [['--method', 'magic', '--sparsity', '0.5'], 'unknown method'],
    ] as const) {
      assertUserError(['serve', '--model', STORIES, ...args], phrase);
    }
  });
});
