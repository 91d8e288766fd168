import { quantizeOnLoad } from './sparsity-options.js';
import fs from 'node:fs';
import path from 'node:path';
import { fail } from '../errors.js';
import { readInputText, SIZE_LIMITS } from '../io/files.js';
import { loadModel } from '../model/model.js';
import { validateHosts, validateOrigins } from '../server/access.js';
import {
  DEFAULT_HEADERS_TIMEOUT_MS,
  DEFAULT_MAX_BODY_BYTES,
  DEFAULT_REQUEST_TIMEOUT_MS,
  DEFAULT_SHUTDOWN_GRACE_MS,
  startServer,
} from '../server/server.js';
import { command, integer, requireString, say } from './args.js';
import {
  applyAmpOptions,
  applySparsityOptions,
  isAmpProfile,
  SPARSITY_OPTIONS,
  SPARSITY_USAGE,
} from './sparsity-options.js';

const USAGE = `usage: wina serve --model M [--quantize q8|q4] [--host 127.0.0.1] [--port 8080] [--chat-template FILE] [--name NAME]
                  [--max-body-bytes N] [--tokenizer PATH] [--layout row|input-major] [--json]
                  [--cors ORIGIN[,ORIGIN...]|*] [--allowed-hosts HOST[,HOST...]|*]
                  [--headers-timeout S] [--request-timeout S] [--shutdown-grace S]
                  ${SPARSITY_USAGE}
OpenAI-compatible API (/v1/completions, /v1/chat/completions, /v1/models), /health, /metrics, playground at /.
The sparsity options set the default; a request may choose its own ("wina": {"method", "sparsity"}).
--cors lets web pages from those origins (http(s)://host[:port]) call the API from a browser (default: none;
other pages are refused). --allowed-hosts: names the server answers to besides localhost, 127.0.0.1, [::1] and
the --host address (any IP address when bound to 0.0.0.0 or ::); .example.com allows its subdomains too.
Deadlines: headers ${DEFAULT_HEADERS_TIMEOUT_MS / 1000} s, the whole request ${DEFAULT_REQUEST_TIMEOUT_MS / 1000} s (408 after).
--json prints {"url", "model"} on stdout once listening. SIGINT / SIGTERM: finish the running generation (cut
after --shutdown-grace, default ${DEFAULT_SHUTDOWN_GRACE_MS / 1000} s), stop.`;

export const serveCommand = command({
  summary: 'OpenAI-compatible API server and web playground',
  usage: USAGE,
  options: {
    model: { type: 'string', short: 'm' },
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '8080' },
    'chat-template': { type: 'string' },
    name: { type: 'string' },
    'max-body-bytes': { type: 'string' },
    tokenizer: { type: 'string' },
    layout: { type: 'string' },
    quantize: { type: 'string' },
    json: { type: 'boolean' },
    cors: { type: 'string' },
    'allowed-hosts': { type: 'string' },
    'headers-timeout': { type: 'string' },
    'request-timeout': { type: 'string' },
    'shutdown-grace': { type: 'string' },
    ...SPARSITY_OPTIONS,
  },
  async run(o) {
    const modelSpec = requireString(o.model, '--model');
    const port = integer(o.port, '--port')!;
    if (port < 0 || port > 65535) fail(`--port must be in 0..65535, got ${port}`);
    const maxBodyBytes = integer(o['max-body-bytes'], '--max-body-bytes') ?? DEFAULT_MAX_BODY_BYTES;
    if (maxBodyBytes < 1) fail(`--max-body-bytes must be at least 1, got ${maxBodyBytes}`);
    const chatTemplate = readChatTemplate(o['chat-template'] as string | undefined);
    const list = (v: unknown) => (v === undefined ? [] : (v as string).split(','));
    const allowedOrigins = validateOrigins(list(o.cors), '--cors');
    const allowedHosts = validateHosts(list(o['allowed-hosts']), '--allowed-hosts');
    const seconds = (name: 'headers-timeout' | 'request-timeout' | 'shutdown-grace') => {
      const v = integer(o[name], `--${name}`);
      if (v !== undefined && v < 1) fail(`--${name} must be at least 1 (seconds), got ${v}`);
      return v === undefined ? undefined : v * 1000;
    };
    const headersTimeoutMs = seconds('headers-timeout');
    const requestTimeoutMs = seconds('request-timeout');
    const shutdownGraceMs = seconds('shutdown-grace');
    if ((headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS) > (requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS))
      fail('--headers-timeout must not exceed --request-timeout');

    const model = await loadModel(modelSpec, {
      tokenizer: o.tokenizer as string | undefined,
      layout: o.layout as 'row' | 'input-major' | undefined,
      quantize: quantizeOnLoad(o),
    });
    try {
      const { sparsity } = isAmpProfile(o) ? applyAmpOptions(o, model) : applySparsityOptions(o, model);
      const modelName = (o.name as string | undefined) ?? servedName(modelSpec);
      const server = await startServer(model, {
        host: o.host as string,
        port,
        modelName,
        sparsity,
        chatTemplate,
        maxBodyBytes,
        allowedOrigins,
        allowedHosts,
        headersTimeoutMs,
        requestTimeoutMs,
        shutdownGraceMs,
      });
      const setting = isAmpProfile(o)
        ? `WINA-AMP ${sparsity?.sparsity.method}, each prompt routed to its cluster's profile`
        : sparsity
          ? `${sparsity.sparsity.method} ${sparsity.sparsity.globalSparsity}`
          : 'dense';
      say(`wina serve: ${modelName} (${setting}) listening on ${server.url}  (playground: ${server.url}/)`);
      if (o.json) process.stdout.write(`${JSON.stringify({ url: server.url, model: modelName })}\n`);

      await new Promise<void>((resolve) => {
        const stop = (signal: string) => {
          say(
            `wina serve: ${signal}: finishing the running generation (cut after ` +
              `${(shutdownGraceMs ?? DEFAULT_SHUTDOWN_GRACE_MS) / 1000} s), then stopping (again to stop at once)`,
          );
          process.once(signal, () => process.exit(130));
          server.close().then(resolve, resolve);
        };
        process.once('SIGINT', () => stop('SIGINT'));
        process.once('SIGTERM', () => stop('SIGTERM'));
      });
      say('wina serve: stopped');
      return 0;
    } finally {
      model.close();
    }
  },
});

/** The id clients see: a shared name or hub id as given, a path's last part otherwise. */
function servedName(spec: string): string {
  if (!fs.existsSync(spec)) return spec;
  return path.basename(path.resolve(spec)).replace(/\.bin$/, '');
}

function readChatTemplate(file: string | undefined): string | undefined {
  if (file === undefined) return undefined;
  return readInputText(file, 'chat template', SIZE_LIMITS.template);
}
