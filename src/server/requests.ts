/**
 * The body of /v1/completions and /v1/chat/completions -> a GenerationRequest, or a 400 naming the field.
 * Fields set to null count as absent (some clients send every field).
 */
import { WinaError } from '../errors.js';
import type { Model } from '../model/model.js';
import { METHODS, type Method } from '../sparsity/config.js';
import { ApiError, badField } from './api-error.js';
import { type ChatMessage, encodeChat, renderChat } from './chat.js';
import type { SparsityChoice } from './sparsity-switch.js';

export type Endpoint = 'completion' | 'chat';

export interface GenerationRequest {
  endpoint: Endpoint;
  promptIds: number[];
  maxTokens: number;
  /** The field that set maxTokens (named by errors about it). */
  maxField: 'max_tokens' | 'max_completion_tokens';
  /**
   * Positions of KV cache to reserve before the prefill: prompt + maxTokens when the request set a limit (or
   * took completions' default), so what cannot fit fails at once; without one (chat), the prompt and
   * DEFAULT_CHAT_RESERVE tokens, the cache growing as the answer goes on.
   */
  reserve: number;
  temperature: number;
  topP: number;
  topK: number;
  seed: number | undefined;
  stop: string[];
  stream: boolean;
  includeUsage: boolean;
  ignoreEos: boolean;
  /** The `wina` extension field; undefined: the server's default sparsity. */
  sparsity: SparsityChoice | undefined;
}

type Body = Record<string, unknown>;

/** OpenAI's default for /v1/completions; chat defaults to the rest of the context window. */
const DEFAULT_COMPLETION_TOKENS = 16;
/** New tokens a chat request without max_tokens reserves KV cache for up front (it grows past them). */
export const DEFAULT_CHAT_RESERVE = 1024;
const MAX_STOP_SEQUENCES = 4;

export function parseRequest(
  endpoint: Endpoint,
  body: unknown,
  model: Model,
  chatTemplate: string | undefined,
): GenerationRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ApiError(400, 'the request body must be a JSON object', null, 'invalid_type');
  }
  const b = body as Body;
  rejectUnsupported(b, endpoint);
  optionalString(b, 'model'); // any name is accepted: the server has one model
  const promptIds = endpoint === 'chat' ? chatPrompt(b, model, chatTemplate) : completionPrompt(b, model);

  const context = model.config.maxPositions;
  const room = context - promptIds.length;
  const maxField =
    endpoint === 'chat' && present(b, 'max_completion_tokens') ? 'max_completion_tokens' : 'max_tokens';
  const asked = optionalInteger(b, maxField, 1);
  const maxTokens = asked ?? (endpoint === 'chat' ? room : Math.min(DEFAULT_COMPLETION_TOKENS, room));
  const reserve =
    promptIds.length +
    (asked === undefined && endpoint === 'chat' ? Math.min(room, DEFAULT_CHAT_RESERVE) : maxTokens);
  if (maxTokens > room) {
    throw new ApiError(
      400,
      `this model's context window is ${context} tokens, but ${promptIds.length + maxTokens} were requested ` +
        `(${promptIds.length} in the prompt, ${maxTokens} to generate)`,
      maxField,
      'context_length_exceeded',
    );
  }
  const temperature = optionalNumber(b, 'temperature', 0) ?? 1;
  const topP = optionalNumber(b, 'top_p', 0) ?? 1;
  if (topP === 0 || topP > 1) badField('top_p', `top_p must be in (0, 1], got ${topP}`);
  const streamOptions = optionalObject(b, 'stream_options');
  const stream = optionalBoolean(b, 'stream') ?? false;
  if (streamOptions && !stream)
    badField('stream_options', 'stream_options is only allowed with stream: true');
  return {
    endpoint,
    promptIds,
    maxTokens,
    maxField,
    reserve,
    temperature,
    topP,
    topK: Math.max(optionalInteger(b, 'top_k', -1) ?? 0, 0), // -1 (vLLM's "off") or 0: off
    seed: optionalInteger(b, 'seed', 0),
    stop: stopSequences(b),
    stream,
    includeUsage: streamOptions
      ? (optionalBoolean(streamOptions, 'include_usage', 'stream_options.') ?? false)
      : false,
    ignoreEos: optionalBoolean(b, 'ignore_eos') ?? false,
    sparsity: sparsityChoice(b),
  };
}

/** Fields that would change the result, which this server does not implement: refused, not ignored. */
function rejectUnsupported(b: Body, endpoint: Endpoint): void {
  const unsupported: [string, (v: unknown) => boolean][] = [
    ['n', (v) => v === 1],
    ['best_of', (v) => v === 1],
    ['echo', (v) => v === false],
    ['suffix', (v) => v === ''],
    ['logprobs', (v) => v === false || (endpoint === 'completion' && v === 0)],
    ['top_logprobs', (v) => v === 0],
    ['presence_penalty', (v) => v === 0],
    ['frequency_penalty', (v) => v === 0],
    ['logit_bias', (v) => typeof v === 'object' && Object.keys(v as object).length === 0],
    ['tools', (v) => Array.isArray(v) && v.length === 0],
    ['functions', (v) => Array.isArray(v) && v.length === 0],
    ['response_format', (v) => (v as Body | undefined)?.type === 'text'],
  ];
  for (const [name, isDefault] of unsupported) {
    if (present(b, name) && !isDefault(b[name])) {
      const what =
        name === 'n' || name === 'best_of'
          ? `${name} must be 1 (one choice per request)`
          : `${name} is not supported`;
      badField(name, `${what}, got ${shown(b[name])}`, 'unsupported_parameter');
    }
  }
}

function completionPrompt(b: Body, model: Model): number[] {
  if (!present(b, 'prompt')) badField('prompt', 'prompt is required', 'missing_required_parameter');
  const prompt = b.prompt;
  if (typeof prompt === 'string') return encode(model, prompt, 'prompt');
  if (Array.isArray(prompt) && prompt.every((t) => typeof t === 'number')) {
    const vocab = model.config.vocabSize;
    const bad = prompt.findIndex((t) => !Number.isInteger(t) || t < 0 || t >= vocab);
    if (bad >= 0) badField('prompt', `prompt[${bad}] = ${prompt[bad]} is not a token id in [0, ${vocab})`);
    return encode(model, prompt as number[], 'prompt');
  }
  if (Array.isArray(prompt) && prompt.length === 1 && typeof prompt[0] === 'string') {
    return encode(model, prompt[0], 'prompt');
  }
  if (Array.isArray(prompt) && prompt.every((p) => typeof p === 'string' || Array.isArray(p))) {
    badField(
      'prompt',
      'a batch of prompts is not supported: send one prompt (a string or token ids) per request',
    );
  }
  if (Array.isArray(prompt)) {
    const bad = prompt.findIndex((t) => typeof t !== 'number');
    badField(
      'prompt',
      `prompt must be a string or an array of token ids, got prompt[${bad}] = ${typeName(prompt[bad])}`,
      'invalid_type',
    );
  }
  badField(
    'prompt',
    `prompt must be a string or an array of token ids, got ${typeName(prompt)}`,
    'invalid_type',
  );
}

function encode(model: Model, prompt: string | number[], param: string): number[] {
  try {
    return model.encodePrompt(prompt);
  } catch (e) {
    if (e instanceof WinaError)
      badField(
        param,
        e.message,
        /context window/.test(e.message) ? 'context_length_exceeded' : 'invalid_value',
      );
    throw e;
  }
}

function chatPrompt(b: Body, model: Model, template: string | undefined): number[] {
  if (!present(b, 'messages')) badField('messages', 'messages is required', 'missing_required_parameter');
  const raw = b.messages;
  if (!Array.isArray(raw))
    badField('messages', `messages must be an array, got ${typeName(raw)}`, 'invalid_type');
  if (raw.length === 0) badField('messages', 'messages must not be empty');
  const messages = raw.map((m: unknown, i): ChatMessage => {
    const where = `messages[${i}]`;
    if (typeof m !== 'object' || m === null || Array.isArray(m))
      badField(where, `${where} must be an object with role and content`, 'invalid_type');
    const { role, content } = m as Body;
    if (typeof role !== 'string' || role === '')
      badField(`${where}.role`, `${where}.role must be a non-empty string`, 'invalid_type');
    return { role, content: messageText(content, `${where}.content`) };
  });
  if (template === undefined) {
    throw new ApiError(
      400,
      'this model has no chat template (no chat_template in its tokenizer_config.json): use /v1/completions, ' +
        'or start the server with --chat-template FILE',
      'messages',
      'no_chat_template',
    );
  }
  let text: string;
  try {
    text = renderChat(template, messages, model);
  } catch (e) {
    badField('messages', `the chat template failed: ${(e as Error).message}`, 'chat_template_error');
  }
  let ids: number[];
  try {
    ids = encodeChat(text, model);
  } catch (e) {
    if (e instanceof WinaError) badField('messages', e.message, 'context_length_exceeded');
    throw e;
  }
  if (ids.length === 0) badField('messages', 'the chat template rendered an empty prompt');
  return encode(model, ids, 'messages');
}

/** content: a string, or OpenAI's list of parts of which only text parts are understood. */
function messageText(content: unknown, where: string): string {
  if (typeof content === 'string') return content;
  if (content === null || content === undefined) return '';
  if (Array.isArray(content)) {
    return content
      .map((part: unknown, i) => {
        const p = part as Body | null;
        if (p?.type !== 'text' || typeof p.text !== 'string')
          badField(
            `${where}[${i}]`,
            `${where}[${i}] must be {"type": "text", "text": "..."} (only text is supported)`,
          );
        return p.text;
      })
      .join('');
  }
  badField(
    where,
    `${where} must be a string or an array of text parts, got ${typeName(content)}`,
    'invalid_type',
  );
}

function stopSequences(b: Body): string[] {
  if (!present(b, 'stop')) return [];
  const stop = b.stop;
  const list = typeof stop === 'string' ? [stop] : stop;
  if (!Array.isArray(list) || !list.every((s) => typeof s === 'string'))
    badField('stop', `stop must be a string or an array of strings, got ${typeName(stop)}`, 'invalid_type');
  if (list.length > MAX_STOP_SEQUENCES)
    badField('stop', `at most ${MAX_STOP_SEQUENCES} stop sequences, got ${list.length}`);
  if (list.some((s) => s === '')) badField('stop', 'stop sequences must not be empty');
  return list;
}

/** The `wina` extension: {"method": "wina", "sparsity": 0.5}; either may be left out. */
function sparsityChoice(b: Body): SparsityChoice | undefined {
  const o = optionalObject(b, 'wina');
  if (!o) return undefined;
  for (const key of Object.keys(o)) {
    if (key !== 'method' && key !== 'sparsity') {
      const field = `wina.${clip(key)}`;
      badField(field, `unknown field ${field} (known: method, sparsity)`, 'unknown_parameter');
    }
  }
  const method = optionalString(o, 'method', 'wina.');
  if (method !== undefined && !(METHODS as readonly string[]).includes(method))
    badField('wina.method', `unknown method ${shown(method)} (known: ${METHODS.join(', ')})`);
  const sparsity = optionalNumber(o, 'sparsity', 0, 'wina.');
  if (sparsity !== undefined && sparsity >= 1)
    badField('wina.sparsity', `wina.sparsity must be in [0, 1), got ${sparsity}`);
  const chosen = (method ?? (sparsity === undefined ? undefined : sparsity === 0 ? 'dense' : 'wina')) as
    Method | undefined;
  if (chosen === undefined) return undefined;
  if (chosen === 'dense') {
    if (sparsity) badField('wina.sparsity', 'method dense takes no sparsity');
    return { method: 'dense' };
  }
  if (sparsity === undefined)
    badField('wina.sparsity', `method ${chosen} needs a sparsity`, 'missing_required_parameter');
  return { method: chosen, sparsity };
}

// Field readers: absent or null -> undefined; a wrong type or range -> 400 naming the field.

function present(b: Body, name: string): boolean {
  return b[name] !== undefined && b[name] !== null;
}

/** Longest piece of a client's text an error message quotes. */
const QUOTE_LIMIT = 40;

function clip(text: string): string {
  return text.length > QUOTE_LIMIT ? `${text.slice(0, QUOTE_LIMIT)}... (${text.length} characters)` : text;
}

/** A scalar as JSON (a long string cut short), an array or object by its kind: nothing nested is printed. */
function shown(v: unknown): string {
  if (typeof v === 'object' && v !== null) return Array.isArray(v) ? 'an array' : 'an object';
  if (typeof v === 'string' && v.length > QUOTE_LIMIT)
    return `${JSON.stringify(v.slice(0, QUOTE_LIMIT))}... (${v.length} characters)`;
  return JSON.stringify(v);
}

/** A value as error messages name it: never the whole of a long string or a nested structure. */
function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${shown(v)}`;
}

function optionalNumber(b: Body, name: string, min: number, prefix = ''): number | undefined {
  if (!present(b, name)) return undefined;
  const v = b[name];
  if (typeof v !== 'number')
    badField(prefix + name, `${prefix}${name} must be a number, got ${typeName(v)}`, 'invalid_type');
  if (!Number.isFinite(v))
    badField(
      prefix + name,
      `${prefix}${name} must be a finite number, got ${v} (a JSON number too large for a double)`,
      'invalid_value',
    );
  if (v < min) badField(prefix + name, `${prefix}${name} must be >= ${min}, got ${v}`);
  return v;
}

function optionalInteger(b: Body, name: string, min: number): number | undefined {
  const v = optionalNumber(b, name, min);
  if (v !== undefined && !Number.isSafeInteger(v))
    badField(name, `${name} must be a whole number, got ${v}`, 'invalid_type');
  return v;
}

function optionalBoolean(b: Body, name: string, prefix = ''): boolean | undefined {
  if (!present(b, name)) return undefined;
  if (typeof b[name] !== 'boolean')
    badField(
      prefix + name,
      `${prefix}${name} must be true or false, got ${typeName(b[name])}`,
      'invalid_type',
    );
  return b[name];
}

function optionalString(b: Body, name: string, prefix = ''): string | undefined {
  if (!present(b, name)) return undefined;
  if (typeof b[name] !== 'string')
    badField(prefix + name, `${prefix}${name} must be a string, got ${typeName(b[name])}`, 'invalid_type');
  return b[name];
}

function optionalObject(b: Body, name: string): Body | undefined {
  if (!present(b, name)) return undefined;
  const v = b[name];
  if (typeof v !== 'object' || Array.isArray(v))
    badField(name, `${name} must be an object, got ${typeName(v)}`, 'invalid_type');
  return v as Body;
}
