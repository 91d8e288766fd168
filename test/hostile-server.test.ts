/**
 * `wina serve` against hostile clients, on the real server over real sockets: malformed, oversized, slow and
 * never-ending requests, foreign Hosts and Origins, bodies that are not JSON objects, inputs that used to reach a
 * deep recursion or leak the KV cache's memory, and a shutdown with half-sent requests and a running stream.
 * Every case gets its 4xx (or 408 / 431 / 503) as one JSON error, and after each the server still answers a
 * normal /v1/completions request with the right text.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { WinaError } from '../src/errors.js';
import { loadModel, type Model } from '../src/model/model.js';
import { applyWina } from '../src/sparsity/apply.js';
import { type RunningServer, startServer } from '../src/server/server.js';
import { assertUserError } from './cli-helpers.js';
import { sharedPath } from './helpers.js';

const STORIES = sharedPath('models/stories260K');
const LLAMA28M = sharedPath('models/llama-28m-mixed');
const LLAMA3 = sharedPath('fixtures/models/llama3');

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const JSON_HEADERS = { 'Content-Type': 'application/json' };
const NORMAL = { prompt: 'Once upon a time', max_tokens: 8, temperature: 0 };

async function post(url: string, body: unknown, headers: Record<string, string> = JSON_HEADERS) {
  const res = await fetch(url, {
    method: 'POST',
    headers,
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: Json = {};
  try {
    json = JSON.parse(text) as Json;
  } catch {
    // not JSON: the assertions on json say so
  }
  return { status: res.status, headers: res.headers, text, json };
}

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  json: Json;
  /** When the response (or the connection's end, if no response came) arrived, ms after connecting. */
  ms: number;
  /** Whether the server closed the connection after answering. */
  closed: boolean;
}

/**
 * Sends `parts` on a fresh connection (`gapMs` apart; after the last, nothing more unless `drip` keeps adding to
 * it every `gapMs` until the server answers) and reads one response. Gives up after `limitMs`.
 */
function raw(
  port: number,
  parts: (string | Buffer)[],
  opts: { gapMs?: number; drip?: string; limitMs?: number } = {},
): Promise<RawResponse> {
  const { gapMs = 50, drip, limitMs = 5000 } = opts;
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const t0 = performance.now();
    let data = Buffer.alloc(0);
    let response: RawResponse | undefined;
    const timers: NodeJS.Timeout[] = [];
    const finish = (closed: boolean) => {
      for (const t of timers) clearTimeout(t);
      clearInterval(dripper);
      socket.destroy();
      if (!response) reject(new Error(`no response; got ${JSON.stringify(data.toString().slice(0, 200))}`));
      else resolve({ ...response, closed });
    };
    socket.on('connect', () => {
      parts.forEach((p, i) => timers.push(setTimeout(() => socket.writable && socket.write(p), i * gapMs)));
    });
    const dripper = setInterval(() => {
      if (drip && socket.writable && performance.now() - t0 > parts.length * gapMs) socket.write(drip);
    }, gapMs);
    socket.on('data', (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      const end = data.indexOf('\r\n\r\n');
      if (end < 0 || response) return;
      const [statusLine, ...lines] = data.subarray(0, end).toString('latin1').split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const colon = line.indexOf(':');
        headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
      }
      const length = Number(headers['content-length'] ?? 0);
      const body = data.subarray(end + 4);
      if (body.length < length) return;
      response = {
        status: Number(statusLine!.split(' ')[1]),
        headers,
        json: length ? (JSON.parse(body.subarray(0, length).toString()) as Json) : {},
        ms: performance.now() - t0,
        closed: false,
      };
      // Does the server close the connection? Wait a moment for its FIN.
      timers.push(setTimeout(() => finish(false), 200));
    });
    socket.on('error', () => {});
    socket.on('close', () => finish(true));
    timers.push(setTimeout(() => finish(false), limitMs));
  }).catch((e: Error) => {
    throw new Error(`raw request: ${e.message}`);
  }) as Promise<RawResponse>;
}

function assertError(r: { status: number; json: Json }, status: number, code: string, message?: RegExp) {
  assert.equal(r.status, status, JSON.stringify(r.json));
  const error = r.json.error;
  assert.ok(error, `no error object: ${JSON.stringify(r.json)}`);
  assert.deepEqual(Object.keys(error).sort(), ['code', 'message', 'param', 'type']);
  assert.equal(error.code, code, error.message);
  assert.equal(error.type, status >= 500 ? 'server_error' : 'invalid_request_error');
  if (message) assert.match(error.message, message);
}

/** A POST /v1/completions as raw text, with these extra header lines. */
function rawPost(host: string, body: string, extra: string[] = []): string {
  return (
    `POST /v1/completions HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n${extra.map((h) => `${h}\r\n`).join('')}\r\n${body}`
  );
}

async function metrics(base: string): Promise<string> {
  const res = await fetch(`${base}/metrics`);
  assert.equal(res.status, 200);
  return res.text();
}

function sample(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.slice(name.length + 1)) : 0;
}

describe('hostile requests to wina serve on stories260K', () => {
  let model: Model;
  let server: RunningServer;
  let base: string;
  let port: number;
  let host: string;
  let expected: string;
  const logged: string[] = [];

  before(async () => {
    model = await loadModel(STORIES);
    expected = '';
    for await (const t of model.generate(NORMAL.prompt, { maxTokens: 8, temperature: 0 })) expected += t.text;
    server = await startServer(model, {
      port: 0,
      modelName: 'stories260K',
      chatTemplate: "{{ bos_token }}{% for m in messages %}{{ m['content'] }}{% endfor %}",
      allowedOrigins: ['http://app.example'],
      headersTimeoutMs: 300,
      requestTimeoutMs: 800,
      log: (l) => logged.push(l),
    });
    base = server.url;
    port = server.port;
    host = `127.0.0.1:${port}`;
  });
  after(async () => {
    await server.close();
    model.close();
  });

  /** The server still answers a normal request, with the text Model.generate gives. */
  async function assertServes() {
    const r = await post(`${base}/v1/completions`, NORMAL);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.choices[0].text, expected);
    const health = await fetch(`${base}/health`);
    assert.equal(health.status, 200);
  }

  test('bodies that are not application/json: 415, and nothing runs', async () => {
    const before = sample(await metrics(base), 'wina_prompt_tokens_total');
    const body = JSON.stringify(NORMAL);
    for (const type of [
      'text/plain',
      'text/plain;charset=UTF-8',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/jsonx',
      'application/json; charset=latin1',
      'application/json; charset="utf-16"',
    ]) {
      const r = await post(`${base}/v1/completions`, body, { 'Content-Type': type });
      assertError(r, 415, 'unsupported_media_type', /application\/json|UTF-8/);
    }
    const none = await raw(port, [
      `POST /v1/completions HTTP/1.1\r\nHost: ${host}\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
    ]);
    assertError(none, 415, 'unsupported_media_type', /no Content-Type/);
    const chat = await post(`${base}/v1/chat/completions`, body, { 'Content-Type': 'text/plain' });
    assertError(chat, 415, 'unsupported_media_type');
    assert.equal(sample(await metrics(base), 'wina_prompt_tokens_total'), before, 'no generation ran');
    for (const type of ['application/json; charset=utf-8', 'Application/JSON;Charset="UTF-8"']) {
      const r = await post(`${base}/v1/completions`, NORMAL, { 'Content-Type': type });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.choices[0].text, expected);
    }
    await assertServes();
  });

  test('a foreign Origin: 403 even for a "simple" text/plain POST; same-origin and --cors origins work', async () => {
    const before = sample(await metrics(base), 'wina_prompt_tokens_total');
    const body = JSON.stringify(NORMAL);
    for (const origin of [
      'http://evil.example',
      'null',
      `http://127.0.0.1:${port + 1}`,
      'https://evil.example',
    ]) {
      for (const type of ['text/plain', 'application/json']) {
        const r = await post(`${base}/v1/completions`, body, { 'Content-Type': type, Origin: origin });
        assertError(r, 403, 'origin_not_allowed', /--cors/);
      }
    }
    const page = await fetch(`${base}/health`, { headers: { Origin: 'http://evil.example' } });
    assert.equal(page.status, 403);
    await page.body?.cancel();
    assert.equal(sample(await metrics(base), 'wina_prompt_tokens_total'), before, 'no generation ran');
    // The playground's own requests (Origin = the Host it was loaded from), also behind a TLS proxy.
    for (const origin of [base, `http://localhost:${port}`, `https://127.0.0.1:${port}`]) {
      const hostHeader = new URL(origin).host;
      const r = await raw(port, [rawPost(hostHeader, body, [`Origin: ${origin}`])]);
      assert.equal(r.status, 200, `${origin}: ${JSON.stringify(r.json)}`);
      assert.equal(r.json.choices[0].text, expected);
    }
    const app = await post(`${base}/v1/completions`, NORMAL, {
      ...JSON_HEADERS,
      Origin: 'http://app.example',
    });
    assert.equal(app.status, 200, app.text);
    assert.equal(app.headers.get('access-control-allow-origin'), 'http://app.example');
    await assertServes();
  });

  test('bodies that are not one JSON object: invalid UTF-8, other top-level types, 100k-deep nesting', async () => {
    const head = (length: number) =>
      `POST /v1/completions HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${length}\r\nConnection: close\r\n\r\n`;
    const invalid = Buffer.from([0x7b, 0x22, 0x70, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]); // {"p":"\xff\xfe"}
    const r = await raw(port, [Buffer.concat([Buffer.from(head(invalid.length)), invalid])]);
    assertError(r, 400, 'invalid_json', /not valid UTF-8/);
    for (const body of ['[]', '"a string"', '42', 'null', 'true', '[1, 2]']) {
      assertError(await post(`${base}/v1/completions`, body), 400, 'invalid_type', /must be a JSON object/);
    }
    for (const body of ['', '   \n', '{"prompt": "Hi",', '{"prompt": "Hi"} {}', "{'prompt': 'Hi'}"]) {
      assertError(await post(`${base}/v1/completions`, body), 400, 'invalid_json');
    }
    const deep = (n: number) => '['.repeat(n) + ']'.repeat(n);
    const deepObject = (n: number) => '{"a":'.repeat(n) + '1' + '}'.repeat(n);
    const D = 100_000;
    const cases: [string, string, string, RegExp][] = [
      ['/v1/completions', deep(D), 'invalid_type', /must be a JSON object/],
      ['/v1/completions', `{"prompt": ${deep(D)}}`, 'invalid_value', /batch of prompts/],
      [
        '/v1/completions',
        `{"prompt": "Hi", "n": ${deep(D)}}`,
        'unsupported_parameter',
        /^n must be 1 .*got an array$/,
      ],
      [
        '/v1/completions',
        `{"prompt": "Hi", "logit_bias": ${deepObject(D)}}`,
        'unsupported_parameter',
        /an object/,
      ],
      ['/v1/completions', `{"prompt": "Hi", "stop": ${deep(D)}}`, 'invalid_type', /stop must be/],
      ['/v1/completions', `{"prompt": "Hi", "wina": ${deepObject(D)}}`, 'unknown_parameter', /wina\.a/],
      ['/v1/chat/completions', `{"messages": ${deep(D)}}`, 'invalid_type', /messages\[0\] must be an object/],
      [
        '/v1/chat/completions',
        `{"messages": [{"role": "user", "content": ${deep(D)}}]}`,
        'invalid_value',
        /text/,
      ],
    ];
    for (const [route, body, code, message] of cases) {
      const res = await post(`${base}${route}`, body);
      assertError(res, 400, code, message);
      assert.ok(res.json.error.message.length < 300, res.json.error.message);
    }
    await assertServes();
  });

  test('numbers JSON turns into Infinity, prompts that are not strings or token ids, long quoted values', async () => {
    const url = `${base}/v1/completions`;
    for (const [field, text] of [
      ['temperature', '1e400'],
      ['temperature', '-1e400'],
      ['top_p', '1e999'],
      ['max_tokens', '1e400'],
    ] as const) {
      const r = await post(url, `{"prompt": "Hi", "${field}": ${text}}`);
      assertError(r, 400, 'invalid_value', new RegExp(`^${field} must be a finite number, got -?Infinity`));
      assert.equal(r.json.error.param, field);
    }
    const sparsity = await post(url, '{"prompt": "Hi", "wina": {"sparsity": 1e400}}');
    assertError(sparsity, 400, 'invalid_value', /wina\.sparsity must be a finite number/);
    for (const [prompt, shown] of [
      [[true], 'prompt\\[0\\] = boolean true'],
      [[1, null], 'prompt\\[1\\] = null'],
      [[{}], 'prompt\\[0\\] = an object'],
      [[1, 'a'], 'prompt\\[1\\] = string "a"'],
    ] as const) {
      const r = await post(url, { prompt });
      assertError(
        r,
        400,
        'invalid_type',
        new RegExp(`^prompt must be a string or an array of token ids, got ${shown}$`),
      );
    }
    for (const prompt of [
      ['a', 'b'],
      [[1, 2], [3]],
    ]) {
      assertError(await post(url, { prompt }), 400, 'invalid_value', /batch of prompts is not supported/);
    }
    // A long string is quoted cut short, in the answer and in the one-line log.
    const long = 'x'.repeat(500_000);
    for (const body of [
      { prompt: 'Hi', wina: { method: long, sparsity: 0.5 } },
      { prompt: 'Hi', wina: { [long]: 1 } },
      { prompt: 'Hi', temperature: long },
      { prompt: 'Hi', echo: long },
    ]) {
      const r = await post(url, body);
      assert.equal(r.status, 400, r.text.slice(0, 200));
      assert.ok(r.json.error.message.length < 300, r.json.error.message.slice(0, 400));
      assert.match(r.json.error.message, /\(500000 characters\)/);
    }
    assert.ok(logged.every((l) => l.length < 1000));
    await assertServes();
  });

  test('300 KB and 1 MB prompts and chat messages: 400 naming the context window, no stack overflow', async () => {
    for (const size of [300_000, 1_000_000]) {
      // Just under the 1 MiB body limit with the JSON around it.
      const content = 'The cat sat on the mat. '.repeat(Math.ceil(size / 24)).slice(0, size);
      const chat = await post(`${base}/v1/chat/completions`, {
        messages: [{ role: 'user', content }],
        max_tokens: 4,
      });
      assertError(chat, 400, 'context_length_exceeded', /context window is 512/);
      assert.equal(chat.json.error.param, 'messages');
      const parts = await post(`${base}/v1/chat/completions`, {
        messages: [{ role: 'user', content: [{ type: 'text', text: content }] }],
      });
      assertError(parts, 400, 'context_length_exceeded', /context window is 512/);
      const completion = await post(`${base}/v1/completions`, { prompt: content });
      assertError(completion, 400, 'context_length_exceeded', /context window is 512/);
      await assertServes();
    }
    const ids = await post(`${base}/v1/completions`, { prompt: Array.from({ length: 300_000 }, () => 5) });
    assertError(ids, 400, 'context_length_exceeded', /context window is 512/);
    await assertServes();
  });

  test('bodies over the limit: 413, declared or streamed', async () => {
    const big = JSON.stringify({ prompt: 'x'.repeat(1 << 20) });
    assertError(await post(`${base}/v1/completions`, big), 413, 'request_too_large');
    const declared = await raw(port, [
      `POST /v1/completions HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${10 << 20}\r\n\r\n`,
    ]);
    assertError(declared, 413, 'request_too_large');
    await assertServes();
  });

  test('bodies that stall: Content-Length larger than what comes, a chunked body that never ends: 408', async () => {
    const t0 = performance.now();
    const short = await raw(port, [
      `POST /v1/completions HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\n` +
        'Content-Length: 100\r\n\r\n{"prompt": "Once"',
    ]);
    assertError(short, 408, 'request_timeout', /body did not arrive within 800 ms/);
    assert.ok(short.closed, 'the connection is closed after a 408');
    const chunked = await raw(
      port,
      [
        `POST /v1/chat/completions HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\n` +
          'Transfer-Encoding: chunked\r\n\r\n',
      ],
      { drip: '1\r\n \r\n', gapMs: 50 },
    );
    assertError(chunked, 408, 'request_timeout', /body did not arrive/);
    assert.ok(chunked.closed);
    // Cut at the deadline (800 ms after the request began, checked every 30 ms), not minutes later.
    assert.ok(short.ms > 700 && short.ms < 2500, `408 after ${short.ms} ms`);
    assert.ok(chunked.ms > 700 && chunked.ms < 2500, `408 after ${chunked.ms} ms`);
    // Over the limit, then stalled: the 413 came at once; the stalled rest is cut at the deadline.
    const over = await raw(port, [
      `POST /v1/completions HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\n` +
        `Transfer-Encoding: chunked\r\n\r\n200000\r\n${'x'.repeat((1 << 20) + 1)}`,
    ]);
    assertError(over, 413, 'request_too_large');
    assert.ok(performance.now() - t0 < 10_000);
    await assertServes();
  });

  test('headers that stall (slowloris), none at all, too large: 408 and 431', async () => {
    const slow = await raw(port, [`GET /health HTTP/1.1\r\nHost: ${host}\r\n`], { drip: 'X-A: b\r\n' });
    assertError(slow, 408, 'request_timeout', /headers did not arrive within 300 ms/);
    assert.ok(slow.ms > 250 && slow.ms < 2000, `408 after ${slow.ms} ms`);
    assert.ok(slow.closed);
    const silent = await raw(port, []);
    assertError(silent, 408, 'request_timeout', /headers/);
    assert.ok(silent.closed);
    const huge = await raw(port, [
      `GET /health HTTP/1.1\r\nHost: ${host}\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
    ]);
    assertError(huge, 431, 'request_header_fields_too_large', /larger than 16384 bytes/);
    const many = await raw(port, [
      `GET /health HTTP/1.1\r\nHost: ${host}\r\n${Array.from({ length: 2000 }, (_, i) => `X-${i}: ${'v'.repeat(10)}\r\n`).join('')}\r\n`,
    ]);
    assertError(many, 431, 'request_header_fields_too_large');
    await assertServes();
  });

  test('unknown and malformed methods, request lines and chunk sizes: 400 / 405 as JSON', async () => {
    const bad = await raw(port, [`FOO /v1/completions HTTP/1.1\r\nHost: ${host}\r\n\r\n`]);
    assertError(bad, 400, 'malformed_request', /method/i);
    const garbage = await raw(port, ['GARBAGE\r\n\r\n']);
    assertError(garbage, 400, 'malformed_request');
    const propfind = await raw(port, [
      `PROPFIND /v1/completions HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
    ]);
    assertError(propfind, 405, 'method_not_allowed', /PROPFIND is not allowed/);
    assert.equal(propfind.headers.allow, 'POST');
    const del = await raw(port, [`DELETE /health HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`]);
    assertError(del, 405, 'method_not_allowed');
    const chunk = await raw(port, [
      `POST /v1/completions HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\n` +
        'Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n',
    ]);
    assertError(chunk, 400, 'malformed_request', /chunk/i);
    assert.ok(chunk.closed);
    await assertServes();
  });

  test('Host: only the names the server is reachable as (DNS rebinding), one Host, well formed', async () => {
    const body = JSON.stringify(NORMAL);
    for (const h of [
      'attacker.example:8080',
      'attacker.example',
      'localhost.attacker.example',
      '10.0.0.1',
      '[::2]',
    ]) {
      const r = await raw(port, [rawPost(h, body)]);
      assertError(r, 403, 'host_not_allowed', /--allowed-hosts/);
    }
    for (const h of [
      host,
      '127.0.0.1',
      'localhost',
      `localhost:${port}`,
      'LOCALHOST.',
      `[::1]:${port}`,
      '[::1]',
    ]) {
      const r = await raw(port, [rawPost(h, body)]);
      assert.equal(r.status, 200, `${h}: ${JSON.stringify(r.json)}`);
      assert.equal(r.json.choices[0].text, expected);
    }
    for (const h of ['a b', '[::1', 'localhost:99999', 'local host:80', ':8080', '']) {
      const r = await raw(port, [rawPost(h, body)]);
      assertError(r, 400, 'invalid_host', /Host/);
    }
    const twice = await raw(port, [rawPost('localhost', body, ['Host: attacker.example'])]);
    assertError(twice, 400, 'invalid_host', /2 Host headers/);
    const missing = await raw(port, [`GET /health HTTP/1.1\r\nConnection: close\r\n\r\n`]);
    assertError(missing, 400, 'invalid_host', /no Host header/);
    const missing10 = await raw(port, [`GET /health HTTP/1.0\r\n\r\n`]);
    assertError(missing10, 400, 'invalid_host', /no Host header/);
    // The playground and /metrics are guarded too: a rebound page must not read them.
    for (const route of ['/', '/metrics', '/v1/models']) {
      const r = await raw(port, [
        `GET ${route} HTTP/1.1\r\nHost: attacker.example\r\nConnection: close\r\n\r\n`,
      ]);
      assertError(r, 403, 'host_not_allowed');
    }
    await assertServes();
  });

  test('a stream cancelled mid-way: its generation stops, the next request is right', async () => {
    const before = await metrics(base);
    const cancel = new AbortController();
    const res = await fetch(`${base}/v1/completions`, {
      method: 'POST',
      headers: JSON_HEADERS,
      body: JSON.stringify({ prompt: 'Once', max_tokens: 480, ignore_eos: true, stream: true, seed: 1 }),
      signal: cancel.signal,
    });
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    let seen = '';
    while (!/"text":"[^"]/.test(seen)) seen += new TextDecoder().decode((await reader.read()).value);
    cancel.abort();
    const gone = 'wina_requests_total{route="/v1/completions",status="499"}';
    const cancelled = 'wina_generations_total{finish_reason="cancelled"}';
    for (let i = 0; i < 100 && sample(await metrics(base), cancelled) === sample(before, cancelled); i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const m = await metrics(base);
    assert.equal(sample(m, cancelled) - sample(before, cancelled), 1);
    assert.equal(sample(m, gone) - sample(before, gone), 1);
    const tokens = sample(m, 'wina_generated_tokens_total') - sample(before, 'wina_generated_tokens_total');
    assert.ok(tokens >= 1 && tokens < 480, `${tokens} tokens`);
    await assertServes();
  });

  test('options: bad origins and hosts are refused when the server starts', async () => {
    for (const allowedOrigins of [
      ['ftp://a'],
      ['*', 'http://a'],
      ['http://a/path'],
      ['a.example'],
      ['null'],
    ]) {
      await assert.rejects(
        startServer(model, { port: 0, modelName: 'x', allowedOrigins, log: () => {} }),
        (e: Error) => e instanceof WinaError && /allowedOrigins/.test(e.message),
      );
    }
    for (const allowedHosts of [['http://a'], ['a:80'], ['*', 'a'], ['a/b'], ['']]) {
      await assert.rejects(
        startServer(model, { port: 0, modelName: 'x', allowedHosts, log: () => {} }),
        (e: Error) => e instanceof WinaError && /allowedHosts/.test(e.message),
      );
    }
    await assert.rejects(
      startServer(model, { port: 0, modelName: 'x', headersTimeoutMs: 5000, requestTimeoutMs: 1000 }),
      /must not exceed/,
    );
    await assertServes();
  });
});

describe('wina serve --allowed-hosts and a 0.0.0.0 bind', () => {
  let model: Model;
  before(async () => {
    model = await loadModel(STORIES);
  });
  after(() => model.close());

  async function statusFor(port: number, hostHeader: string): Promise<number> {
    const r = await raw(port, [`GET /health HTTP/1.1\r\nHost: ${hostHeader}\r\nConnection: close\r\n\r\n`]);
    return r.status;
  }

  test('allowed names and subdomains pass, others get 403; * allows any', async () => {
    const server = await startServer(model, {
      port: 0,
      modelName: 's',
      allowedHosts: ['.example.com', 'MyHost', '192.168.1.5', '::5'],
      log: () => {},
    });
    try {
      const p = server.port;
      for (const h of [
        'api.example.com',
        'a.b.example.com:8080',
        'example.com',
        'myhost:1234',
        '192.168.1.5',
        '[::5]:80',
        'localhost',
      ]) {
        assert.equal(await statusFor(p, h), 200, h);
      }
      for (const h of ['example.com.evil.org', 'notexample.com', 'other.org', '192.168.1.6', '[::6]']) {
        assert.equal(await statusFor(p, h), 403, h);
      }
    } finally {
      await server.close();
    }
    const any = await startServer(model, { port: 0, modelName: 's', allowedHosts: ['*'], log: () => {} });
    try {
      assert.equal(await statusFor(any.port, 'attacker.example'), 200);
      assert.equal(await statusFor(any.port, 'a b'), 200);
      const missing = await raw(any.port, ['GET /health HTTP/1.1\r\nConnection: close\r\n\r\n']);
      assertError(missing, 400, 'invalid_host');
    } finally {
      await any.close();
    }
  });

  test('bound to 0.0.0.0: any IP address and the loopback names; other DNS names only if allowed', async () => {
    const server = await startServer(model, {
      host: '0.0.0.0',
      port: 0,
      modelName: 's',
      allowedHosts: ['box.lan'],
      log: () => {},
    });
    try {
      const p = server.port;
      for (const h of [
        '10.1.2.3:8080',
        '192.168.0.7',
        '[fe80::1]',
        `[::ffff:10.0.0.1]:${p}`,
        'localhost',
        'box.lan:80',
      ]) {
        assert.equal(await statusFor(p, h), 200, h);
      }
      for (const h of ['attacker.example', 'box.lan.attacker.example', '10.1.2.3.nip.io']) {
        assert.equal(await statusFor(p, h), 403, h);
      }
      const r = await post(`http://127.0.0.1:${p}/v1/completions`, NORMAL);
      assert.equal(r.status, 200, r.text);
    } finally {
      await server.close();
    }
  });
});

describe('the KV cache on a model with a 2^24-token context window (llama3 fixture)', () => {
  const TEMPLATE =
    "{{ bos_token }}{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}assistant:";
  let dir: string;
  let model: Model;
  let server: RunningServer;
  let base: string;
  const messages = [{ role: 'user', content: 'Hello there' }];

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wina-huge-context-'));
    for (const f of ['model.safetensors', 'tokenizer.json', 'generation_config.json']) {
      fs.symlinkSync(path.join(LLAMA3, f), path.join(dir, f));
    }
    const config = JSON.parse(fs.readFileSync(path.join(LLAMA3, 'config.json'), 'utf8'));
    fs.writeFileSync(
      path.join(dir, 'config.json'),
      JSON.stringify({ ...config, max_position_embeddings: 2 ** 24 }),
    );
    model = await loadModel(dir);
    server = await startServer(model, { port: 0, modelName: 'huge', chatTemplate: TEMPLATE, log: () => {} });
    base = server.url;
  });
  after(async () => {
    await server.close();
    model.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('chat without max_tokens: the cache starts small and grows, the answer runs to EOS', async () => {
    const r = await post(`${base}/v1/chat/completions`, { messages, temperature: 0.8, seed: 1 });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.choices[0].finish_reason, 'stop');
    // Past the 1024 tokens reserved up front: the cache grew.
    assert.ok(r.json.usage.completion_tokens > 1024, JSON.stringify(r.json.usage));
    const models = (await (await fetch(`${base}/v1/models`)).json()) as Json;
    assert.equal(models.data[0].wina.context_length, 2 ** 24);
  });

  test('a request whose KV cache cannot fit: 400 naming the KV cache; the memory is not lost', async () => {
    for (const stream of [false, true]) {
      const r = await post(`${base}/v1/chat/completions`, { messages, max_tokens: 2 ** 23 - 100, stream });
      // A stream too: its 200 waits for the cache.
      assertError(r, 400, 'kv_cache_too_large', /KV cache .*8388608 positions \(6\.0 GiB/);
      assert.equal(r.json.error.param, 'max_tokens');
      assert.doesNotMatch(r.json.error.message, /weights/);
    }
    const completion = await post(`${base}/v1/completions`, { prompt: 'Hi', max_tokens: 2 ** 24 - 10 });
    assertError(completion, 400, 'kv_cache_too_large', /KV cache/);
    // 1.5 GiB of cache: what a fresh server serves, and what would not fit had the failures kept their memory.
    const big = await post(`${base}/v1/chat/completions`, {
      messages,
      max_completion_tokens: 2 ** 21 - 100,
      seed: 1,
      stop: ['e', 'a', 'o', 't'],
    });
    assert.equal(big.status, 200, big.text);
    assert.equal(big.json.choices[0].finish_reason, 'stop');
    const normal = await post(`${base}/v1/completions`, { prompt: 'Hi', max_tokens: 8, temperature: 0 });
    assert.equal(normal.status, 200, normal.text);
    let text = '';
    for await (const t of model.generate('Hi', { maxTokens: 8, temperature: 0 })) text += t.text;
    assert.equal(normal.json.choices[0].text, text);
  });
});

describe('long prompts and shutdown on llama-28m-mixed', () => {
  let model: Model;
  let server: RunningServer;
  let base: string;
  const logged: string[] = [];
  let longPrompt: number[];

  before(async () => {
    model = await loadModel(LLAMA28M);
    const text = fs.readFileSync(sharedPath('data/tinystories/tinystories_sample.txt'), 'utf8');
    longPrompt = model.tokenizer.encode(text).slice(0, 1000);
    assert.equal(longPrompt.length, 1000);
    server = await startServer(model, {
      port: 0,
      modelName: 'llama-28m',
      headersTimeoutMs: 1000,
      requestTimeoutMs: 5000,
      shutdownGraceMs: 400,
      log: (l) => logged.push(l),
    });
    base = server.url;
  });
  after(async () => {
    await server.close();
    model.close();
  });

  test('/health answers during the prefill of a 1000-token prompt, whose output equals Model.generate', async () => {
    for (const wina of [undefined, { method: 'wina', sparsity: 0.5 }]) {
      const body = { prompt: longPrompt, max_tokens: 6, temperature: 0.7, seed: 4, wina };
      const started = performance.now();
      let doneAt = 0;
      const completion = post(`${base}/v1/completions`, body).then((r) => {
        doneAt = performance.now();
        return r;
      });
      // Wait until the generation runs, then ask /health while it prefills.
      let health: Json;
      let healthMs: number;
      let answeredAt: number;
      for (;;) {
        const t = performance.now();
        health = (await (await fetch(`${base}/health`)).json()) as Json;
        healthMs = performance.now() - t;
        answeredAt = performance.now();
        if (health.running || doneAt) break;
      }
      const r = await completion;
      assert.equal(r.status, 200, r.text);
      assert.equal(health.running, true, 'a /health request came back while the prompt was prefilled');
      assert.ok(answeredAt < doneAt, 'before the generation ended');
      const total = doneAt - started;
      assert.ok(
        healthMs < total / 2,
        `/health took ${healthMs.toFixed(0)} ms of a ${total.toFixed(0)} ms request`,
      );
      // Token for token what the library (and so `wina generate`) gives, prefilling the prompt in one pass.
      const applied = wina && applyWina(model, { method: 'wina', globalSparsity: 0.5 });
      let text = '';
      for await (const t of (applied || model).generate(longPrompt, {
        maxTokens: 6,
        temperature: 0.7,
        seed: 4,
        topP: 1,
      })) {
        text += t.text;
      }
      assert.equal(r.json.choices[0].text, text);
      assert.equal(r.json.usage.prompt_tokens, 1000);
    }
  });

  test('a client gone during the prefill stops it between chunks', async () => {
    const before = sample(await metrics(base), 'wina_generated_tokens_total');
    const cancel = new AbortController();
    const gone = fetch(`${base}/v1/completions`, {
      method: 'POST',
      headers: JSON_HEADERS,
      body: JSON.stringify({ prompt: longPrompt, max_tokens: 4 }),
      signal: cancel.signal,
    }).catch((e: Error) => e.name);
    for (;;) {
      const health = (await (await fetch(`${base}/health`)).json()) as Json;
      if (health.running) break;
    }
    cancel.abort();
    assert.equal(await gone, 'AbortError');
    for (;;) {
      const health = (await (await fetch(`${base}/health`)).json()) as Json;
      if (!health.running) break;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const m = await metrics(base);
    assert.equal(sample(m, 'wina_generated_tokens_total'), before, 'the cancelled request generated nothing');
    assert.equal(sample(m, 'wina_generations_total{finish_reason="cancelled"}'), 1);
  });

  test('shutdown: half-sent and waiting requests get 503, idle connections close, the stream is cut', async () => {
    const port = server.port;
    // An idle keep-alive connection.
    const idle = net.connect(port, '127.0.0.1');
    const idleClosed = new Promise<number>((resolve) => idle.on('close', () => resolve(performance.now())));
    idle.on('error', () => {});
    await new Promise<void>((resolve) => {
      idle.write(`GET /health HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
      idle.once('data', () => resolve());
    });
    // A running stream (a long one: it will be cut).
    const streamRes = await fetch(`${base}/v1/completions`, {
      method: 'POST',
      headers: JSON_HEADERS,
      body: JSON.stringify({ prompt: 'Once', max_tokens: 1000, ignore_eos: true, stream: true, seed: 2 }),
    });
    assert.equal(streamRes.status, 200);
    const streamText = streamRes.text();
    // A request waiting in the queue, and one still sending its body.
    const queued = post(`${base}/v1/completions`, { prompt: 'A', max_tokens: 5 });
    for (;;) {
      const health = (await (await fetch(`${base}/health`)).json()) as Json;
      if (health.queue_length === 1) break;
    }
    const halfSent = raw(
      port,
      [
        `POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\n` +
          'Transfer-Encoding: chunked\r\n\r\n5\r\n{"pro\r\n',
      ],
      { limitMs: 4000 },
    );
    await new Promise((resolve) => setTimeout(resolve, 100));

    const t0 = performance.now();
    const closed = server.close();
    const half = await halfSent;
    assertError(half, 503, 'shutting_down');
    assert.ok(half.closed);
    assertError(await queued, 503, 'shutting_down');
    assert.ok((await idleClosed) - t0 < 1000, 'the idle connection was closed at once');
    await assert.rejects(fetch(`${base}/health`), 'no new connections');
    const events = (await streamText).trim().split('\n\n');
    const last = JSON.parse(events.at(-1)!.slice('data: '.length)) as Json;
    assert.equal(last.error.code, 'shutting_down');
    assert.match(last.error.message, /cut after 400 ms/);
    assert.ok(events.length > 2 && events.length < 1000, `${events.length} events`);
    await closed;
    const took = performance.now() - t0;
    assert.ok(took < 3000, `close() took ${took.toFixed(0)} ms`);
    // The cut stream is logged (and counted in /metrics) as the 503 it ended with, not as the 200 it began as.
    assert.ok(
      logged.some((l) => /^POST \/v1\/completions 503 .*\(stream cut after its 200\)$/.test(l)),
      logged.join('\n'),
    );
    assert.ok(!logged.some((l) => /^POST \/v1\/completions 200 .*1000 tokens/.test(l)));
  });
});

describe('wina serve (the command): access options', () => {
  test('bad --cors and --allowed-hosts: one line, exit code 2', () => {
    for (const [args, phrase] of [
      [['--cors', 'ftp://a'], '--cors takes origins'],
      [['--cors', '*,http://a'], '--cors: * allows every origin'],
      [['--cors', 'http://a,https://b/x'], '--cors takes origins'],
      [['--allowed-hosts', 'http://a'], '--allowed-hosts takes host names'],
      [['--allowed-hosts', 'a:8080'], '--allowed-hosts takes host names'],
      [['--headers-timeout', '0'], '--headers-timeout must be at least 1'],
      [['--headers-timeout', '60', '--request-timeout', '30'], 'must not exceed'],
    ] as const) {
      assertUserError(['serve', '--model', STORIES, ...args], phrase);
    }
  });
});

describe('a model whose weights hold a NaN', () => {
  test('each generation is a 500 naming the weight, never token 0 repeated; /health stays up', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wina-nan-'));
    for (const f of fs.readdirSync(LLAMA3)) {
      if (fs.statSync(path.join(LLAMA3, f)).isFile())
        fs.copyFileSync(path.join(LLAMA3, f), path.join(dir, f));
    }
    const file = path.join(dir, 'model.safetensors');
    const bytes = fs.readFileSync(file);
    const headerLength = Number(bytes.readBigUInt64LE(0));
    const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString());
    bytes.writeFloatLE(
      Number.NaN,
      8 + headerLength + header['model.layers.2.self_attn.v_proj.weight'].data_offsets[0],
    );
    fs.writeFileSync(file, bytes);
    const model = await loadModel(dir);
    const server = await startServer(model, { port: 0, modelName: 'nan', log: () => {} });
    try {
      for (const stream of [false, true]) {
        const r = await post(`${server.url}/v1/completions`, { prompt: 'hello', max_tokens: 4, stream });
        if (!stream) assertError(r, 500, 'model_error', /weight layers\.2\.v_proj holds NaN or Inf/);
        else assert.match(r.text, /weight layers\.2\.v_proj holds NaN or Inf/);
      }
      assert.equal((await fetch(`${server.url}/health`)).status, 200);
    } finally {
      await server.close();
      model.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
