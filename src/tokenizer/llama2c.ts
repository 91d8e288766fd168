import { WinaError } from '../errors.js';
import { readInputBytes, SIZE_LIMITS } from '../io/files.js';
import type { TextTokenizer } from './tokenizer.js';

const UNK_ID = 0;
const BOS_ID = 1;
const EOS_ID = 2;
/** llama2.c vocabularies hold the raw bytes <0x00>..<0xFF> at ids 3..258. */
const BYTE_TOKEN_OFFSET = 3;
/** run.c starts its search from this score and only merges strictly better pairs. */
const MIN_MERGE_SCORE = -1e10;
const SPACE = new Uint8Array([0x20]);
const BYTE_PIECE = /^<0x([0-9A-Fa-f]{2})>$/;

/**
 * llama2.c's `tokenizer.bin`: int32 max_token_length, then per token float32 score, int32 length and the
 * piece's bytes. Encodes and decodes exactly as run.c's encode() / decode().
 */
/** What a vocabulary other than llama2.c's (a GGUF file's SentencePiece one) says of itself. */
export interface SpmOptions {
  bosId: number | undefined;
  eosIds: number[];
  unkId: number | undefined;
  /** SentencePiece's dummy prefix: a space before the text (llama.cpp's add_space_prefix, default true). */
  addSpacePrefix: boolean;
  chatTemplate?: string;
  /** Where the message of a text that cannot be encoded points. */
  source: string;
}

export class Llama2cTokenizer implements TextTokenizer {
  readonly vocabSize: number;
  readonly bosId: number | undefined = BOS_ID;
  readonly eosIds = [EOS_ID];
  readonly chatTemplate: string | undefined = undefined;
  readonly maxTokenLength: number;
  readonly maxTokenChars: number;
  readonly #pieces: Uint8Array[];
  readonly #scores: Float32Array;
  /** Pieces as latin1 strings (one char per byte), so byte strings can key a Map and be concatenated. */
  readonly #keys: string[];
  readonly #idByKey = new Map<string, number>();
  /** The byte a `<0xXX>` piece stands for, else -1. */
  readonly #rawByte: Int16Array;
  /** The `<0xXX>` token of each byte (llama2.c: byte + 3), -1 where the vocabulary has none. */
  readonly #byteId = new Int32Array(256).map((_, b) => b + BYTE_TOKEN_OFFSET);
  readonly #unkId: number | undefined = UNK_ID;
  readonly #addSpacePrefix: boolean = true;
  readonly #source: string | undefined;

  constructor(pieces: Uint8Array[], scores: Float32Array, maxTokenLength: number, spm?: SpmOptions) {
    this.vocabSize = pieces.length;
    this.maxTokenLength = maxTokenLength;
    // Byte counts bound UTF-16 lengths; +1 for the dummy-prefix space SentencePiece adds.
    this.maxTokenChars = pieces.reduce((m, p) => Math.max(m, p.length), 1) + 1;
    this.#pieces = pieces;
    this.#scores = scores;
    this.#keys = pieces.map(latin1);
    this.#rawByte = new Int16Array(pieces.length).fill(-1);
    this.#keys.forEach((key, id) => {
      if (!this.#idByKey.has(key)) this.#idByKey.set(key, id);
      const byte = BYTE_PIECE.exec(key);
      if (byte) this.#rawByte[id] = Number.parseInt(byte[1]!, 16);
    });
    if (spm) {
      this.bosId = spm.bosId;
      this.eosIds = spm.eosIds;
      this.#unkId = spm.unkId;
      this.#addSpacePrefix = spm.addSpacePrefix;
      this.chatTemplate = spm.chatTemplate;
      this.#source = spm.source;
      this.#byteId.fill(-1);
      this.#rawByte.forEach((byte, id) => {
        if (byte >= 0 && this.#byteId[byte] === -1) this.#byteId[byte] = id;
      });
    }
  }

  /**
   * A GGUF file's SentencePiece vocabulary (`tokenizer.ggml.model` "llama"): pieces with '▁' for spaces, their
   * scores and `<0xXX>` byte tokens, encoded as llama.cpp's SPM tokenizer does (run.c's algorithm).
   */
  static fromPieces(tokens: string[], scores: ArrayLike<number>, spm: SpmOptions): Llama2cTokenizer {
    const utf8 = new TextEncoder();
    const pieces = tokens.map((t) => utf8.encode(t.replaceAll('\u2581', ' ')));
    const longest = pieces.reduce((m, p) => Math.max(m, p.length), 1);
    return new Llama2cTokenizer(pieces, Float32Array.from(scores), longest, spm);
  }

  /** vocabSize: the model's vocabulary size, checked against the file (llama2.c files do not store it). */
  static fromFile(file: string, opts: { vocabSize?: number } = {}): Llama2cTokenizer {
    return Llama2cTokenizer.parse(readInputBytes(file, 'tokenizer file', SIZE_LIMITS.json), file, opts);
  }

  static parse(bytes: Uint8Array, source: string, opts: { vocabSize?: number } = {}): Llama2cTokenizer {
    const invalid = (why: string) => new WinaError(`invalid llama2.c tokenizer ${source}: ${why}`);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (bytes.length < 4) throw invalid(`file is truncated (${bytes.length} bytes, no header)`);
    const maxTokenLength = view.getInt32(0, true);
    if (maxTokenLength <= 0) throw invalid(`max_token_length is ${maxTokenLength}`);
    const pieces: Uint8Array[] = [];
    const scores: number[] = [];
    for (let offset = 4; offset < bytes.length;) {
      const id = pieces.length;
      if (offset + 8 > bytes.length) throw invalid(`file is truncated inside the record of token ${id}`);
      scores.push(view.getFloat32(offset, true));
      const length = view.getInt32(offset + 4, true);
      offset += 8;
      if (length < 0) throw invalid(`token ${id} has length ${length}`);
      if (offset + length > bytes.length) throw invalid(`file is truncated inside the bytes of token ${id}`);
      pieces.push(bytes.slice(offset, offset + length));
      offset += length;
    }
    if (opts.vocabSize !== undefined && pieces.length !== opts.vocabSize) {
      throw invalid(`it holds ${pieces.length} tokens, the model's vocabulary has ${opts.vocabSize}`);
    }
    const tokenizer = new Llama2cTokenizer(pieces, Float32Array.from(scores), maxTokenLength);
    for (let byte = 0; byte < 256; byte++) {
      if (tokenizer.#rawByte[byte + BYTE_TOKEN_OFFSET] !== byte) {
        throw invalid(`token ${byte + BYTE_TOKEN_OFFSET} should be the byte token <0x${hex(byte)}>`);
      }
    }
    return tokenizer;
  }

  encode(text: string, opts: { addSpecial?: boolean } = {}): number[] {
    const tokens: number[] = [];
    if ((opts.addSpecial ?? true) && this.bosId !== undefined) tokens.push(this.bosId);
    const bytes = new TextEncoder().encode(text);
    if (bytes.length > 0 && this.#addSpacePrefix) this.#pushPiece(tokens, SPACE); // SentencePiece's dummy prefix
    for (const [start, end] of utf8Characters(bytes)) this.#pushPiece(tokens, bytes.subarray(start, end));
    return this.#mergePairs(tokens);
  }

  decode(ids: number[], opts: { skipSpecial?: boolean } = {}): string {
    const out: number[] = [];
    ids.forEach((id, i) => {
      if (opts.skipSpecial && (id === this.#unkId || id === this.bosId || this.eosIds.includes(id))) return;
      let piece = this.#pieces[id];
      if (piece === undefined)
        throw new RangeError(`token id ${id} is outside the vocabulary (${this.vocabSize})`);
      // SentencePiece drops the dummy-prefix space of the first piece after BOS.
      if (this.#addSpacePrefix && ids[i - 1] === this.bosId && piece[0] === 0x20) piece = piece.subarray(1);
      const raw = this.#rawByte[id]!;
      if (raw >= 0) out.push(raw);
      else for (const byte of piece) out.push(byte);
    });
    return new TextDecoder('utf-8', { ignoreBOM: true }).decode(Uint8Array.from(out));
  }

  #pushPiece(tokens: number[], piece: Uint8Array): void {
    const id = this.#idByKey.get(latin1(piece));
    if (id !== undefined) {
      tokens.push(id);
      return;
    }
    for (const byte of piece) {
      const byteId = this.#byteId[byte]!;
      if (byteId < 0)
        throw new WinaError(
          `the text holds ${JSON.stringify(new TextDecoder().decode(piece))}, which is neither a token nor ` +
            `encodable as <0xNN> byte tokens in the vocabulary of ${this.#source}`,
        );
      tokens.push(byteId);
    }
  }

  /**
   * run.c merges, over and over, the adjacent pair whose concatenation is in the vocabulary with the highest
   * score (leftmost on ties). Same result here, in O(n log n): candidate pairs sit in a heap ordered by
   * (score, position) and the tokens in a linked list; candidates made stale by a merge are skipped.
   */
  #mergePairs(tokens: number[]): number[] {
    const n = tokens.length;
    const ids = Int32Array.from(tokens);
    const next = Int32Array.from(tokens, (_, i) => i + 1);
    const prev = Int32Array.from(tokens, (_, i) => i - 1);
    const heap = new CandidateHeap();
    const consider = (left: number, right: number) => {
      if (left < 0 || right >= n) return;
      const merged = this.#idByKey.get(this.#keys[ids[left]!]! + this.#keys[ids[right]!]!);
      if (merged === undefined) return;
      const score = this.#scores[merged]!;
      if (score > MIN_MERGE_SCORE)
        heap.push({ score, left, right, leftId: ids[left]!, rightId: ids[right]!, merged });
    };
    for (let i = 0; i + 1 < n; i++) consider(i, i + 1);
    for (let c = heap.pop(); c !== undefined; c = heap.pop()) {
      if (ids[c.left] !== c.leftId || ids[c.right] !== c.rightId || next[c.left] !== c.right) continue;
      ids[c.left] = c.merged;
      ids[c.right] = -1;
      const after = next[c.right]!;
      next[c.left] = after;
      if (after < n) prev[after] = c.left;
      consider(prev[c.left]!, c.left);
      consider(c.left, after);
    }
    const merged: number[] = [];
    for (let i = 0; i < n; i = next[i]!) merged.push(ids[i]!);
    return merged;
  }
}

/** [start, end) of each character as run.c groups bytes: a lead byte plus up to 3 continuation bytes. */
function* utf8Characters(bytes: Uint8Array): Generator<[number, number]> {
  let start = 0;
  for (let i = 0; i < bytes.length; i++) {
    if ((bytes[i]! & 0xc0) !== 0x80) start = i;
    const continues = i + 1 < bytes.length && (bytes[i + 1]! & 0xc0) === 0x80;
    if (continues && i - start + 1 < 4) continue;
    yield [start, i + 1];
    start = i + 1;
  }
}

function latin1(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}

function hex(byte: number): string {
  return byte.toString(16).toUpperCase().padStart(2, '0');
}

interface Candidate {
  score: number;
  left: number;
  right: number;
  leftId: number;
  rightId: number;
  merged: number;
}

/** Binary max-heap: highest score first, then the leftmost pair. */
class CandidateHeap {
  readonly #items: Candidate[] = [];

  push(item: Candidate): void {
    const items = this.#items;
    let i = items.push(item) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(items[i]!, items[parent]!)) break;
      [items[i], items[parent]] = [items[parent]!, items[i]!];
      i = parent;
    }
  }

  pop(): Candidate | undefined {
    const items = this.#items;
    const top = items[0];
    const last = items.pop();
    if (items.length === 0 || last === undefined) return top;
    items[0] = last;
    for (let i = 0; ;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let best = i;
      if (l < items.length && before(items[l]!, items[best]!)) best = l;
      if (r < items.length && before(items[r]!, items[best]!)) best = r;
      if (best === i) break;
      [items[i], items[best]] = [items[best]!, items[i]!];
      i = best;
    }
    return top;
  }
}

function before(a: Candidate, b: Candidate): boolean {
  return a.score > b.score || (a.score === b.score && a.left < b.left);
}
