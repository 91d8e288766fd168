/** What the engine needs from a tokenizer, whatever its file format. */
export interface TextTokenizer {
  readonly vocabSize: number;
  readonly bosId: number | undefined;
  /** All ids that end generation. */
  readonly eosIds: number[];
  /** addSpecial: add BOS etc. as the tokenizer's own post-processor / llama2.c does (default true). */
  encode(text: string, opts?: { addSpecial?: boolean }): number[];
  /** skipSpecial: leave out special tokens such as BOS / EOS (default false). */
  decode(ids: number[], opts?: { skipSpecial?: boolean }): string;
  /**
   * The longest token's text, in UTF-16 units: a text longer than this times N cannot encode to N tokens or
   * fewer, so a prompt that cannot fit the context window is refused before the (slow) tokenizer runs.
   */
  readonly maxTokenChars: number;
  /** Chat template from tokenizer_config.json, if any (raw jinja string). */
  readonly chatTemplate: string | undefined;
}

/** Ids known from the model's config.json / generation_config.json; they win over the tokenizer's own. */
export interface SpecialIds {
  bosId?: number;
  eosIds?: number[];
}
