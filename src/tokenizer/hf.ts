import { existsSync } from 'node:fs';
import path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { WinaError } from '../errors.js';
import { SIZE_LIMITS } from '../io/files.js';
import { readJsonObject } from '../io/json.js';
import type { SpecialIds, TextTokenizer } from './tokenizer.js';

type Json = Record<string, unknown>;

// Used only when neither the caller nor tokenizer_config.json names an EOS token (e.g. a bare tokenizer.json).
const KNOWN_EOS_TOKENS = ['</s>', '<|endoftext|>', '<|end_of_text|>', '<|eot_id|>', '<|im_end|>', '<eos>'];

/** A Hugging Face `tokenizer.json` (+ optional `tokenizer_config.json`), run by @huggingface/tokenizers. */
export class HfTokenizer implements TextTokenizer {
  readonly vocabSize: number;
  readonly maxTokenChars: number;
  readonly bosId: number | undefined;
  readonly eosIds: number[];
  readonly chatTemplate: string | undefined;
  readonly #tokenizer: Tokenizer;

  constructor(tokenizerJson: Json, config: Json = {}, ids: SpecialIds = {}) {
    this.#tokenizer = new Tokenizer(tokenizerJson, config);
    const vocab = this.#tokenizer.get_vocab(true);
    this.vocabSize = maxId(vocab.values()) + 1;
    let longest = 1;
    for (const token of vocab.keys()) longest = Math.max(longest, token.length);
    this.maxTokenChars = longest;
    if (this.vocabSize === 0) throw new WinaError('its vocabulary is empty');
    this.bosId = ids.bosId ?? this.#tokenId(config['bos_token']) ?? templateBosId(tokenizerJson);
    this.eosIds = ids.eosIds?.length ? [...ids.eosIds] : this.#configEosIds(config);
    this.chatTemplate = chatTemplateOf(config['chat_template']);
  }

  /** Reads `dir/tokenizer.json` and, when present, `dir/tokenizer_config.json`. */
  static fromFolder(dir: string, ids: SpecialIds = {}): HfTokenizer {
    const tokenizerFile = path.join(dir, 'tokenizer.json');
    const configFile = path.join(dir, 'tokenizer_config.json');
    const tokenizerJson = readJsonObject(tokenizerFile, 'tokenizer file') as Json;
    const config = existsSync(configFile)
      ? (readJsonObject(configFile, 'tokenizer config', SIZE_LIMITS.config) as Json)
      : {};
    try {
      return new HfTokenizer(tokenizerJson, config, ids);
    } catch (err) {
      throw new WinaError(`unsupported tokenizer ${tokenizerFile}: ${(err as Error).message}`);
    }
  }

  encode(text: string, opts: { addSpecial?: boolean } = {}): number[] {
    return this.#tokenizer.encode(text, { add_special_tokens: opts.addSpecial ?? true }).ids;
  }

  decode(ids: number[], opts: { skipSpecial?: boolean } = {}): string {
    if (ids.length === 0) return ''; // the library throws on an empty list
    return this.#tokenizer.decode(ids, { skip_special_tokens: opts.skipSpecial ?? false });
  }

  #tokenId(token: unknown): number | undefined {
    const content = tokenContent(token);
    return content === undefined ? undefined : this.#tokenizer.token_to_id(content);
  }

  #configEosIds(config: Json): number[] {
    const eos = this.#tokenId(config['eos_token']);
    if (eos !== undefined) return [eos];
    const known = KNOWN_EOS_TOKENS.map((t) => this.#tokenizer.token_to_id(t));
    return known.filter((id) => id !== undefined).slice(0, 1);
  }
}

function maxId(ids: Iterable<number>): number {
  let max = -1;
  for (const id of ids) max = Math.max(max, id);
  return max;
}

/** bos_token / eos_token are either the token text or an AddedToken object with `content`. */
function tokenContent(token: unknown): string | undefined {
  if (typeof token === 'string') return token;
  if (typeof token === 'object' && token !== null && typeof (token as Json)['content'] === 'string') {
    return (token as Json)['content'] as string;
  }
  return undefined;
}

/** The special token a TemplateProcessing post-processor puts first, e.g. `<|bos|>` in `<|bos|> $A`. */
function templateBosId(tokenizerJson: Json): number | undefined {
  const processor = tokenizerJson['post_processor'] as Json | null | undefined;
  const processors = (processor?.['type'] === 'Sequence' ? processor['processors'] : [processor]) as
    (Json | null)[] | undefined;
  for (const p of processors ?? []) {
    if (p?.['type'] !== 'TemplateProcessing') continue;
    const first = (p['single'] as Json[] | undefined)?.[0]?.['SpecialToken'] as Json | undefined;
    if (first === undefined) continue;
    const special = (p['special_tokens'] as Record<string, Json> | undefined)?.[first['id'] as string];
    const id = (special?.['ids'] as number[] | undefined)?.[0];
    if (typeof id === 'number') return id;
  }
  return undefined;
}

/** chat_template is a string, or a list of named templates of which "default" is the one to use. */
function chatTemplateOf(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (!Array.isArray(value)) return undefined;
  const named = value as { name?: unknown; template?: unknown }[];
  const chosen = named.find((t) => t.name === 'default') ?? named[0];
  return typeof chosen?.template === 'string' ? chosen.template : undefined;
}
