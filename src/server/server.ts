/**
 * The OpenAI-compatible HTTP server over one model (node:http only). Requests queue FIFO behind the model; a
 * client that goes away cancels its generation or leaves the queue. Every request is answered or logged on its
 * own: nothing a request does can stop the server.
 */
import http from 'node:http';
import type net from 'node:net';
import type { AddressInfo } from 'node:net';
import { fail, WinaError } from '../errors.js';
import { NonFiniteLogitsError } from '../model/finite.js';
import type { Model } from '../model/model.js';
import type { SparseModel } from '../sparsity/apply.js';
import { HostCheck, requireJson, sameOrigin, validateHosts, validateOrigins } from './access.js';
import { ApiError } from './api-error.js';
import { generate, type GenerationResult } from './generation.js';
import { Metrics } from './metrics.js';
import { PLAYGROUND_HTML } from './playground.js';
import { GenerationQueue } from './queue.js';
import { type Endpoint, type GenerationRequest, parseRequest } from './requests.js';
import { ResponseShape } from './responses.js';
import { SparsitySwitch } from './sparsity-switch.js';

export interface ServeOptions {
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** The id /v1/models lists and responses carry. */
  modelName: string;
  /** The default sparsity: a view of the model (undefined: dense). */
  sparsity?: SparseModel;
  /** A jinja chat template that replaces the tokenizer's. */
  chatTemplate?: string;
  maxBodyBytes?: number;
  /**
   * Origins whose web pages may call the API from a browser (CORS): exact origins such as
   * `http://localhost:3000`, or `*` for any. Default none: only same-origin pages (the playground) and clients
   * that are not browsers; a request with any other Origin is refused (403).
   */
  allowedOrigins?: string[];
  /**
   * Host names the server answers to besides the loopback names (localhost, 127.0.0.1, [::1]) and the address
   * it is bound to (bound to 0.0.0.0 or ::, any IP address): `example.com`, `.example.com` (with its
   * subdomains), or `*` for any. Others get 403: a guard against DNS rebinding.
   */
  allowedHosts?: string[];
  /** The request's headers must arrive within this many ms of its start (408 otherwise; default 10 s). */
  headersTimeoutMs?: number;
  /** The whole request, headers and body, must arrive within this many ms (408 otherwise; default 30 s). */
  requestTimeoutMs?: number;
  /** Request headers larger than this get 431 (default 16 KiB, node's). */
  maxHeaderBytes?: number;
  /** On close(), how long the running generation may go on before it is cut (503; default 10 s). */
  shutdownGraceMs?: number;
  /** One line per request (default: stderr). */
  log?: (line: string) => void;
}

export interface RunningServer {
  url: string;
  port: number;
  /**
   * Stops accepting, refuses what waits or is still sending its body (503), closes idle connections, lets the
   * running generation finish (cut after shutdownGraceMs), then closes every connection.
   */
  close(): Promise<void>;
}

export const DEFAULT_MAX_BODY_BYTES = 1 << 20;
export const DEFAULT_HEADERS_TIMEOUT_MS = 10_000;
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
export const DEFAULT_MAX_HEADER_BYTES = 16 * 1024;
export const DEFAULT_SHUTDOWN_GRACE_MS = 10_000;

const ROUTES: Record<string, string[]> = {
  '/': ['GET'],
  '/health': ['GET'],
  '/metrics': ['GET'],
  '/v1/models': ['GET'],
  '/v1/completions': ['POST'],
  '/v1/chat/completions': ['POST'],
};

/** One request and its answer, as the connection's error handler and shutdown see it. */
interface Exchange {
  res: http.ServerResponse;
  /** Set while the body is read: stops reading and answers `error` (the connection then closes). */
  cutBody?: (error: ApiError) => void;
  /** The status of the error event that ended a stream whose 200 was sent (metrics and the log count it). */
  streamError?: number;
}

function positive(value: number | undefined, fallback: number, name: string): number {
  const v = value ?? fallback;
  if (!Number.isSafeInteger(v) || v < 1) fail(`${name} must be a whole number >= 1, got ${v}`);
  return v;
}

export async function startServer(model: Model, opts: ServeOptions): Promise<RunningServer> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const maxBodyBytes = positive(opts.maxBodyBytes, DEFAULT_MAX_BODY_BYTES, 'maxBodyBytes');
  const headersTimeout = positive(opts.headersTimeoutMs, DEFAULT_HEADERS_TIMEOUT_MS, 'headersTimeoutMs');
  const requestTimeout = positive(opts.requestTimeoutMs, DEFAULT_REQUEST_TIMEOUT_MS, 'requestTimeoutMs');
  if (headersTimeout > requestTimeout)
    fail(`headersTimeoutMs (${headersTimeout}) must not exceed requestTimeoutMs (${requestTimeout})`);
  const maxHeaderBytes = positive(opts.maxHeaderBytes, DEFAULT_MAX_HEADER_BYTES, 'maxHeaderBytes');
  const shutdownGrace = positive(opts.shutdownGraceMs, DEFAULT_SHUTDOWN_GRACE_MS, 'shutdownGraceMs');
  const allowedOrigins = validateOrigins(opts.allowedOrigins ?? []);
  const allowedHosts = validateHosts(opts.allowedHosts ?? []);
  const chatTemplate = opts.chatTemplate ?? model.tokenizer.chatTemplate;
  const queue = new GenerationQueue();
  const metrics = new Metrics(queue);
  const sparsitySwitch = new SparsitySwitch(model, opts.sparsity);
  const created = Math.floor(Date.now() / 1000);
  const defaultConfig = sparsitySwitch.defaultConfig;
  const defaults = {
    method: defaultConfig?.method ?? 'dense',
    sparsity: defaultConfig?.globalSparsity ?? 0,
  };
  const hostCheck = new HostCheck(allowedHosts); // bound to the address once listening
  let shuttingDown = false;
  let openRequests = 0;
  let allAnswered: (() => void) | undefined;
  const exchanges = new Map<net.Socket, Exchange>();
  const reading = new Set<Exchange>();
  const running = new Set<AbortController>();

  const server = http.createServer(
    {
      headersTimeout,
      requestTimeout,
      maxHeaderSize: maxHeaderBytes,
      // How often node looks for requests past their deadline: a tenth of the shorter one, 10 ms to 1 s.
      connectionsCheckingInterval: Math.max(10, Math.min(1000, Math.floor(headersTimeout / 10))),
      // The Host check answers a missing Host itself, as JSON (node's own 400 has no body).
      requireHostHeader: false,
    },
    (req, res) => {
      openRequests++;
      const started = performance.now();
      const path = (req.url ?? '/').split('?')[0]!;
      const route = path in ROUTES ? path : 'other';
      const exchange: Exchange = { res };
      exchanges.set(req.socket, exchange);
      let note = '';
      // A connection reset mid-body or mid-write is handled by 'close', not by an uncaught 'error'.
      req.on('error', () => {});
      res.on('error', () => {});
      res.on('close', () => {
        if (exchanges.get(req.socket) === exchange) exchanges.delete(req.socket);
        // 499 (as nginx logs it): the client closed the connection before the answer was complete. A stream cut
        // by an error event counts as that error's status, not as the 200 its headers said.
        const status = !res.writableFinished ? 499 : (exchange.streamError ?? res.statusCode);
        metrics.request(route, status);
        const gone = !res.writableFinished
          ? ' (client went away)'
          : exchange.streamError
            ? ' (stream cut after its 200)'
            : '';
        log(
          `${req.method} ${clip(path)} ${status} ${(performance.now() - started).toFixed(0)} ms${note}${gone}`,
        );
        if (--openRequests === 0) allAnswered?.();
      });
      if (shuttingDown) res.setHeader('Connection', 'close');
      handle(req, res, path, exchange, (n) => (note = n)).catch((e: unknown) => {
        const error =
          e instanceof ApiError
            ? e
            : e instanceof NonFiniteLogitsError
              ? new ApiError(500, e.message, null, 'model_error')
              : e instanceof WinaError
                ? new ApiError(400, e.message, null, 'invalid_value')
                : new ApiError(
                    500,
                    `internal error: ${(e as Error)?.message ?? String(e)}`,
                    null,
                    'internal_error',
                  );
        note = ` ${clip(error.message.replace(/\s+/g, ' '), 300)}`;
        if (!res.headersSent) sendJson(res, error.status, error.body());
        else if (!res.writableEnded) {
          // Mid-stream: the status is sent already, so the error goes as an event.
          exchange.streamError = error.status;
          res.end(`data: ${JSON.stringify(error.body())}\n\n`);
        }
      });
    },
  );

  // A request node's parser gave up on (headers late, too large or malformed; a body late or malformed).
  server.on('clientError', (err: NodeJS.ErrnoException, socket: net.Socket) => {
    const exchange = exchanges.get(socket);
    const error = clientErrorAnswer(
      err,
      exchange !== undefined,
      headersTimeout,
      requestTimeout,
      maxHeaderBytes,
    );
    if (exchange?.cutBody) {
      exchange.cutBody(error); // the request's own handler answers, and logs it
      return;
    }
    if (exchange || !socket.writable) {
      // Its answer has begun (or the client is gone): nothing more can be said on this connection.
      socket.destroy();
      return;
    }
    const text = JSON.stringify(error.body());
    socket.end(
      `HTTP/1.1 ${error.status} ${http.STATUS_CODES[error.status]}\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`,
    );
    metrics.request('other', error.status);
    log(`- - ${error.status} ${error.message}`);
  });

  async function handle(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    path: string,
    exchange: Exchange,
    setNote: (note: string) => void,
  ): Promise<void> {
    try {
      hostCheck.check(req.rawHeaders, req.headers.host);
    } catch (e) {
      req.resume();
      throw e;
    }
    // Every answer, errors included, carries the CORS header an allowed page needs to read it.
    const origin = req.headers.origin;
    const corsAllowed =
      origin !== undefined && (allowedOrigins.includes('*') || allowedOrigins.includes(origin));
    if (corsAllowed) {
      res.setHeader('Access-Control-Allow-Origin', allowedOrigins.includes('*') ? '*' : origin);
      res.setHeader('Vary', 'Origin');
    } else if (origin !== undefined && !sameOrigin(origin, req.headers.host)) {
      // A page on another site: browsers send even a "simple" POST (no preflight) and only hide the answer.
      req.resume();
      throw new ApiError(
        403,
        `requests from pages at ${clip(JSON.stringify(origin), 100)} are not allowed: start the server with ` +
          '--cors ORIGIN (library: allowedOrigins) to let that site call the API',
        null,
        'origin_not_allowed',
      );
    }
    const methods = ROUTES[path];
    if (!methods) {
      req.resume();
      throw new ApiError(404, `unknown URL ${clip(req.method ?? '')} ${clip(path)}`, null, 'unknown_url');
    }
    if (req.method === 'OPTIONS' && corsAllowed && req.headers['access-control-request-method']) {
      // A browser's preflight before a cross-origin POST with a JSON body (or an Authorization header).
      req.resume();
      res.writeHead(204, {
        'Access-Control-Allow-Methods': methods.join(', '),
        'Access-Control-Allow-Headers': req.headers['access-control-request-headers'] ?? 'Content-Type',
        'Access-Control-Max-Age': '600',
      });
      res.end();
      return;
    }
    if (!methods.includes(req.method ?? '')) {
      req.resume();
      res.setHeader('Allow', methods.join(', '));
      throw new ApiError(
        405,
        `${clip(req.method ?? '')} is not allowed on ${path} (allowed: ${methods.join(', ')})`,
        null,
        'method_not_allowed',
      );
    }
    if (path === '/') {
      res.writeHead(200, {
        'Content-Type': 'text/html; charset=utf-8',
        'Cache-Control': 'no-cache',
        // The page is self-contained: it may talk to this server and load nothing from anywhere.
        'Content-Security-Policy':
          "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'",
      });
      res.end(PLAYGROUND_HTML);
      return;
    }
    if (path === '/health') {
      const status = shuttingDown ? 'shutting_down' : 'ok';
      sendJson(res, shuttingDown ? 503 : 200, {
        status,
        model: opts.modelName,
        queue_length: queue.length,
        running: queue.running,
      });
      return;
    }
    if (path === '/metrics') {
      res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' });
      res.end(metrics.render());
      return;
    }
    if (path === '/v1/models') {
      sendJson(res, 200, {
        object: 'list',
        data: [
          {
            id: opts.modelName,
            object: 'model',
            created,
            owned_by: 'wina',
            wina: { ...defaults, context_length: model.config.maxPositions },
          },
        ],
      });
      return;
    }
    try {
      requireJson(req.headers['content-type']);
      if (shuttingDown) throw new ApiError(503, 'the server is shutting down', null, 'shutting_down');
    } catch (e) {
      req.resume();
      throw e;
    }
    const body = await readJson(req, res, exchange, maxBodyBytes, reading);
    if (shuttingDown) throw new ApiError(503, 'the server is shutting down', null, 'shutting_down');
    const endpoint: Endpoint = path === '/v1/chat/completions' ? 'chat' : 'completion';
    const request = parseRequest(endpoint, body, model, chatTemplate);
    const result = await complete(request, res);
    if (result) setNote(` ${result.tokens} tokens, ${result.finishReason}`);
  }

  /** Queues the generation and answers it, streamed or whole; undefined when the client went away first. */
  async function complete(
    request: GenerationRequest,
    res: http.ServerResponse,
  ): Promise<GenerationResult | undefined> {
    const cancel = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished)
        cancel.abort(new ApiError(499, 'the client went away', null, 'client_closed'));
    });
    const shape = new ResponseShape(request, opts.modelName, defaults);
    const send = (data: unknown) => {
      if (!res.destroyed) res.write(`data: ${JSON.stringify(data)}\n\n`);
    };
    // A stream's 200 goes out once its generation has its KV cache (what cannot run is a real 4xx).
    const startStream = () => {
      if (!request.stream) return;
      res.writeHead(200, {
        'Content-Type': 'text/event-stream; charset=utf-8',
        'Cache-Control': 'no-cache',
        Connection: shuttingDown ? 'close' : 'keep-alive',
      });
      res.flushHeaders();
      if (request.endpoint === 'chat') send(shape.roleChunk());
    };
    let result: GenerationResult;
    try {
      result = await queue.run(cancel.signal, async () => {
        running.add(cancel);
        try {
          return await generate(
            model,
            request,
            sparsitySwitch,
            cancel.signal,
            (text, stats) => {
              if (request.stream) send(shape.textChunk(text, stats));
            },
            startStream,
          );
        } finally {
          running.delete(cancel);
        }
      });
    } catch (e) {
      if (cancel.signal.aborted && cancel.signal.reason?.status === 499) return undefined; // left the queue
      throw e;
    }
    const promptTokens = request.promptIds.length;
    metrics.generation({ ...result, promptTokens, completionTokens: result.tokens });
    if (result.finishReason === 'cancelled') {
      const reason = cancel.signal.reason as ApiError;
      if (reason.status === 499) return result; // nobody to answer
      throw reason; // cut by the shutdown
    }
    if (request.stream) {
      send(shape.finalChunk(result));
      if (request.includeUsage) send(shape.usageChunk(result));
      res.end('data: [DONE]\n\n');
    } else {
      sendJson(res, 200, shape.whole(result));
    }
    return result;
  }

  const listenHost = opts.host ?? '127.0.0.1';
  const listenPort = opts.port ?? 8080;
  await new Promise<void>((resolve, reject) => {
    const refuse = (e: Error) =>
      reject(new WinaError(`cannot listen on ${listenHost}:${listenPort}: ${e.message}`));
    server.once('error', refuse);
    server.listen(listenPort, listenHost, () => {
      server.off('error', refuse);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  hostCheck.bind([listenHost, address.address]);
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;

  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${address.port}`,
    port: address.port,
    close() {
      closing ??= (async () => {
        shuttingDown = true;
        const closed = new Promise((resolve) => server.close(resolve));
        server.closeIdleConnections();
        // What is still to be answered closes its connection after the answer.
        for (const { res } of exchanges.values()) if (!res.headersSent) res.setHeader('Connection', 'close');
        const shutdown = new ApiError(503, 'the server is shutting down', null, 'shutting_down');
        queue.cancelWaiting(shutdown);
        for (const exchange of reading) exchange.cutBody?.(shutdown);
        const cut = setTimeout(() => {
          const reason = new ApiError(
            503,
            `the server is shutting down: the generation was cut after ${shutdownGrace} ms`,
            null,
            'shutting_down',
          );
          for (const generation of running) generation.abort(reason);
        }, shutdownGrace);
        await queue.idle();
        clearTimeout(cut);
        // The last answers go out (at most a second for a client that does not read them), then every
        // connection closes, idle or half-sent.
        if (openRequests > 0) {
          let timer: NodeJS.Timeout | undefined;
          await Promise.race([
            new Promise<void>((resolve) => (allAnswered = resolve)),
            new Promise<void>((resolve) => (timer = setTimeout(resolve, 1000))),
          ]);
          clearTimeout(timer);
        }
        server.closeAllConnections();
        await closed;
      })();
      return closing;
    },
  };
}

/** The 4xx for what node's parser refused. `started`: the headers had arrived (a request handler runs). */
function clientErrorAnswer(
  err: NodeJS.ErrnoException,
  started: boolean,
  headersTimeout: number,
  requestTimeout: number,
  maxHeaderBytes: number,
): ApiError {
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT')
    return started
      ? new ApiError(
          408,
          `the request body did not arrive within ${requestTimeout} ms`,
          null,
          'request_timeout',
        )
      : new ApiError(
          408,
          `the request headers did not arrive within ${headersTimeout} ms`,
          null,
          'request_timeout',
        );
  if (err.code === 'HPE_HEADER_OVERFLOW')
    return new ApiError(
      431,
      `the request headers are larger than ${maxHeaderBytes} bytes`,
      null,
      'request_header_fields_too_large',
    );
  const reason = (err as { reason?: string }).reason ?? err.message;
  return new ApiError(
    400,
    `malformed HTTP request: ${clip(reason, 100)} (${err.code ?? 'parse error'})`,
    null,
    'malformed_request',
  );
}

function clip(text: string, limit = 200): string {
  return text.length > limit ? `${text.slice(0, limit)}...` : text;
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

/**
 * The body as JSON, at most `limit` bytes (413 beyond: the rest is read and dropped, so the reply arrives). While
 * it is read, `exchange.cutBody` stops it (a late body, a shutdown): the answer then closes the connection.
 */
function readJson(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  exchange: Exchange,
  limit: number,
  reading: Set<Exchange>,
): Promise<unknown> {
  const tooLarge = () =>
    new ApiError(413, `the request body is larger than ${limit} bytes`, null, 'request_too_large');
  return new Promise<unknown>((resolve, reject) => {
    if (Number(req.headers['content-length']) > limit) {
      req.resume();
      reject(tooLarge());
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const settle = (action: () => void) => {
      if (settled) return;
      settled = true;
      reading.delete(exchange);
      exchange.cutBody = undefined;
      action();
    };
    exchange.cutBody = (error) => {
      // Answered already (413, the rest being dropped): the stalled rest only needs the connection closed.
      if (res.headersSent) req.socket.destroy();
      else res.setHeader('Connection', 'close');
      settle(() => {
        chunks.length = 0;
        reject(error);
      });
    };
    reading.add(exchange);
    req.on('data', (chunk: Buffer) => {
      if (settled || size > limit) return;
      size += chunk.length;
      if (size > limit) {
        chunks.length = 0;
        // Not settled: the rest is still read (and dropped), and a stall in it is still cut.
        reject(tooLarge());
      } else chunks.push(chunk);
    });
    req.on('error', (e) => settle(() => reject(e)));
    req.on('end', () =>
      settle(() => {
        if (size > limit) return;
        let text: string;
        try {
          text = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks));
        } catch {
          reject(new ApiError(400, 'the request body is not valid UTF-8', null, 'invalid_json'));
          return;
        }
        if (text.trim() === '') {
          reject(new ApiError(400, 'the request body is empty: send a JSON object', null, 'invalid_json'));
          return;
        }
        try {
          resolve(JSON.parse(text));
        } catch (e) {
          reject(
            new ApiError(
              400,
              `the request body is not valid JSON: ${clip((e as Error).message, 200)}`,
              null,
              'invalid_json',
            ),
          );
        }
      }),
    );
  });
}
