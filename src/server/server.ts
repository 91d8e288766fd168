/**
 * The OpenAI-compatible HTTP server over one model (node:http only). Requests queue FIFO behind the model; a
 * client that goes away cancels its generation or leaves the queue. Every request is answered or logged on its
 * own: nothing a request does can stop the server.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WinaError } from '../io/errors.js';
import type { Model } from '../model/model.js';
import type { AppliedSparsity } from '../sparsity/apply.js';
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
  /** The default sparsity, currently applied to the model (undefined: dense). */
  sparsity?: AppliedSparsity;
  /** A jinja chat template that replaces the tokenizer's. */
  chatTemplate?: string;
  maxBodyBytes?: number;
  /**
   * Origins whose web pages may call the API from a browser (CORS): exact origins such as
   * `http://localhost:3000`, or `*` for any. Default none: only same-origin pages (the playground) and clients
   * that are not browsers.
   */
  allowedOrigins?: string[];
  /** One line per request (default: stderr). */
  log?: (line: string) => void;
}

export interface RunningServer {
  url: string;
  port: number;
  /** Stops accepting, refuses what waits (503), lets the running generation finish, closes the connections. */
  close(): Promise<void>;
}

export const DEFAULT_MAX_BODY_BYTES = 1 << 20;

const ROUTES: Record<string, string[]> = {
  '/': ['GET'],
  '/health': ['GET'],
  '/metrics': ['GET'],
  '/v1/models': ['GET'],
  '/v1/completions': ['POST'],
  '/v1/chat/completions': ['POST'],
};

export async function startServer(model: Model, opts: ServeOptions): Promise<RunningServer> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const maxBodyBytes = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const chatTemplate = opts.chatTemplate ?? model.tokenizer.chatTemplate;
  const queue = new GenerationQueue();
  const metrics = new Metrics(queue);
  const sparsitySwitch = new SparsitySwitch(model, opts.sparsity);
  const allowedOrigins = opts.allowedOrigins ?? [];
  const created = Math.floor(Date.now() / 1000);
  const defaultConfig = sparsitySwitch.defaultConfig;
  const defaults = {
    method: defaultConfig?.method ?? 'dense',
    sparsity: defaultConfig?.globalSparsity ?? 0,
  };
  let shuttingDown = false;
  let openRequests = 0;
  let allAnswered: (() => void) | undefined;

  const server = http.createServer((req, res) => {
    openRequests++;
    const started = performance.now();
    const path = (req.url ?? '/').split('?')[0]!;
    const route = path in ROUTES ? path : 'other';
    let note = '';
    // A connection reset mid-body or mid-write is handled by 'close', not by an uncaught 'error'.
    req.on('error', () => {});
    res.on('error', () => {});
    res.on('close', () => {
      // 499 (as nginx logs it): the client closed the connection before the answer was complete.
      const status = res.writableFinished ? res.statusCode : 499;
      metrics.request(route, status);
      const gone = res.writableFinished ? '' : ' (client went away)';
      log(`${req.method} ${path} ${status} ${(performance.now() - started).toFixed(0)} ms${note}${gone}`);
      if (--openRequests === 0) allAnswered?.();
    });
    handle(req, res, path, (n) => (note = n)).catch((e: unknown) => {
      const error =
        e instanceof ApiError
          ? e
          : e instanceof WinaError
            ? new ApiError(400, e.message, null, 'invalid_value')
            : new ApiError(
                500,
                `internal error: ${(e as Error)?.message ?? String(e)}`,
                null,
                'internal_error',
              );
      note = ` ${error.message.replace(/\s+/g, ' ')}`;
      if (!res.headersSent) sendJson(res, error.status, error.body());
      else if (!res.writableEnded) {
        // Mid-stream: the status is sent already, so the error goes as an event.
        res.end(`data: ${JSON.stringify(error.body())}\n\n`);
      }
    });
  });
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
  });

  async function handle(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    path: string,
    setNote: (note: string) => void,
  ): Promise<void> {
    // Every answer, errors included, carries the CORS header an allowed page needs to read it.
    const origin = req.headers.origin;
    const corsAllowed =
      origin !== undefined && (allowedOrigins.includes('*') || allowedOrigins.includes(origin));
    if (corsAllowed) {
      res.setHeader('Access-Control-Allow-Origin', allowedOrigins.includes('*') ? '*' : origin);
      res.setHeader('Vary', 'Origin');
    }
    const methods = ROUTES[path];
    if (!methods) {
      req.resume();
      throw new ApiError(404, `unknown URL ${req.method} ${path}`, null, 'unknown_url');
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
        `${req.method} is not allowed on ${path} (allowed: ${methods.join(', ')})`,
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
    const body = await readJson(req, maxBodyBytes);
    if (shuttingDown) throw new ApiError(503, 'the server is shutting down', null, 'shutting_down');
    const endpoint: Endpoint = path === '/v1/chat/completions' ? 'chat' : 'completion';
    const request = parseRequest(endpoint, body, model, chatTemplate);
    const result = await complete(request, res);
    if (result) setNote(` ${result.tokens} tokens, ${result.finishReason}`);
  }

  /** Queues the generation and answers it, streamed or whole; undefined when it never ran. */
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
    if (request.stream) {
      res.writeHead(200, {
        'Content-Type': 'text/event-stream; charset=utf-8',
        'Cache-Control': 'no-cache',
        Connection: 'keep-alive',
      });
      res.flushHeaders();
    }
    let result: GenerationResult;
    try {
      result = await queue.run(cancel.signal, () => {
        if (request.stream && request.endpoint === 'chat') send(shape.roleChunk());
        return generate(model, request, sparsitySwitch, cancel.signal, (text, stats) => {
          if (request.stream) send(shape.textChunk(text, stats));
        });
      });
    } catch (e) {
      if (cancel.signal.aborted) return undefined; // left the queue before its turn
      throw e;
    }
    const promptTokens = request.promptIds.length;
    metrics.generation({ ...result, promptTokens, completionTokens: result.tokens });
    if (result.finishReason === 'cancelled') return result;
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
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;

  return {
    url: `http://${host}:${address.port}`,
    port: address.port,
    async close() {
      shuttingDown = true;
      const closed = new Promise((resolve) => server.close(resolve));
      queue.cancelWaiting(new ApiError(503, 'the server is shutting down', null, 'shutting_down'));
      await queue.idle();
      if (openRequests > 0) await new Promise<void>((resolve) => (allAnswered = resolve));
      server.closeAllConnections(); // only idle keep-alive connections are left
      await closed;
    },
  };
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

/** The body as JSON, at most `limit` bytes (413 beyond: the rest is read and dropped, so the reply arrives). */
function readJson(req: http.IncomingMessage, limit: number): Promise<unknown> {
  const tooLarge = () =>
    new ApiError(413, `the request body is larger than ${limit} bytes`, null, 'request_too_large');
  return new Promise((resolve, reject) => {
    if (Number(req.headers['content-length']) > limit) {
      req.resume();
      reject(tooLarge());
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      if (size > limit) return;
      size += chunk.length;
      if (size > limit) {
        chunks.length = 0;
        reject(tooLarge());
      } else chunks.push(chunk);
    });
    req.on('error', reject);
    req.on('end', () => {
      if (size > limit) return;
      const text = Buffer.concat(chunks).toString('utf8');
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
            `the request body is not valid JSON: ${(e as Error).message}`,
            null,
            'invalid_json',
          ),
        );
      }
    });
  });
}
