import type { TextTokenizer } from './tokenizer.js';

const REPLACEMENT_CHAR = '\uFFFD';

/**
 * Turns generated ids into printable text deltas. Each push decodes only a short window (the tokens since
 * the last-but-one emission) twice, with and without the new tokens, and emits the difference: decoding a
 * window instead of single tokens keeps what depends on neighbours (merged bytes, SentencePiece's
 * leading-space rules) right, while staying O(window) per token.
 */
export class StreamDecoder {
  readonly #tokenizer: TextTokenizer;
  readonly #skipSpecial: boolean;
  readonly #ids: number[] = [];
  #prefixOffset = 0;
  #readOffset = 0;

  /**
   * context: ids already shown (the prompt); the last of them is decoded with the first new tokens so that a
   * new token reads as it would inside the whole text (e.g. no leading space right after BOS).
   */
  constructor(tokenizer: TextTokenizer, opts: { skipSpecial?: boolean; context?: readonly number[] } = {}) {
    this.#tokenizer = tokenizer;
    this.#skipSpecial = opts.skipSpecial ?? false;
    const last = opts.context?.at(-1);
    if (last !== undefined) {
      this.#ids.push(last);
      this.#prefixOffset = 0;
      this.#readOffset = 1;
    }
  }

  /** Every id pushed so far (after the last context id, if one was given). */
  get ids(): readonly number[] {
    return this.#ids;
  }

  /** Adds one id; returns the text that became final with it (often '', e.g. inside a UTF-8 sequence). */
  push(id: number): string {
    this.#ids.push(id);
    return this.#emit(false);
  }

  /** Returns whatever is still held back, even an incomplete UTF-8 sequence. */
  flush(): string {
    return this.#emit(true);
  }

  #emit(final: boolean): string {
    const prefixText = this.#decode(this.#prefixOffset, this.#readOffset);
    const newText = this.#decode(this.#prefixOffset, this.#ids.length);
    if (newText.length <= prefixText.length) return '';
    // A trailing U+FFFD means a character whose bytes are still coming.
    if (!final && newText.endsWith(REPLACEMENT_CHAR)) return '';
    this.#prefixOffset = this.#readOffset;
    this.#readOffset = this.#ids.length;
    return newText.slice(prefixText.length);
  }

  #decode(start: number, end: number): string {
    if (start >= end) return '';
    return this.#tokenizer.decode(this.#ids.slice(start, end), { skipSpecial: this.#skipSpecial });
  }
}
