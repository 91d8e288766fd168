import { existsSync, lstatSync } from 'node:fs';
import path from 'node:path';
import { WinaError } from '../errors.js';
import { statInput } from '../io/files.js';
import { HfTokenizer } from './hf.js';
import { Llama2cTokenizer } from './llama2c.js';
import type { SpecialIds, TextTokenizer } from './tokenizer.js';

export { HfTokenizer } from './hf.js';
export { Llama2cTokenizer } from './llama2c.js';
export { StreamDecoder } from './stream.js';
export type { SpecialIds, TextTokenizer } from './tokenizer.js';

export interface LoadTokenizerOptions extends SpecialIds {
  /** The model's vocabulary size; a llama2.c tokenizer.bin must hold exactly this many tokens. */
  vocabSize?: number;
}

/**
 * A folder with tokenizer.json (or that file itself) -> HfTokenizer; a llama2.c `.bin` file ->
 * Llama2cTokenizer, whose BOS / EOS ids are fixed by llama2.c (1 / 2), so bosId / eosIds apply to
 * Hugging Face tokenizers only.
 */
export function loadTokenizer(pathOrFolder: string, opts: LoadTokenizerOptions = {}): TextTokenizer {
  const ids: SpecialIds = { bosId: opts.bosId, eosIds: opts.eosIds };
  if (!existsSync(pathOrFolder) && !lstatSync(pathOrFolder, { throwIfNoEntry: false }))
    throw new WinaError(`tokenizer not found: ${pathOrFolder}`);
  if (statInput(pathOrFolder, 'tokenizer').isDirectory()) {
    if (existsSync(path.join(pathOrFolder, 'tokenizer.json')))
      return HfTokenizer.fromFolder(pathOrFolder, ids);
    throw new WinaError(`no tokenizer.json in ${pathOrFolder}`);
  }
  if (path.basename(pathOrFolder) === 'tokenizer.json') {
    return HfTokenizer.fromFolder(path.dirname(pathOrFolder), ids);
  }
  if (pathOrFolder.endsWith('.bin')) {
    return Llama2cTokenizer.fromFile(pathOrFolder, { vocabSize: opts.vocabSize });
  }
  throw new WinaError(
    `unsupported tokenizer ${pathOrFolder}: expected a folder with tokenizer.json or a llama2.c tokenizer .bin`,
  );
}
