/**
 * Chat templates: the model's jinja `chat_template` (tokenizer_config.json) or one given to the server, rendered
 * with @huggingface/jinja as transformers' apply_chat_template does (add_generation_prompt, bos_token,
 * eos_token), then tokenized without adding special tokens: the template writes them itself.
 */
import { Template } from '@huggingface/jinja';
import type { Model } from '../model/model.js';
import { Llama2cTokenizer } from '../tokenizer/llama2c.js';

export interface ChatMessage {
  role: string;
  content: string;
}

// llama2.c's tokenizer reads no special tokens in text: the template's BOS / EOS are these, placed by id.
const LLAMA2C_BOS = '<s>';
const LLAMA2C_EOS = '</s>';

const compiled = new Map<string, Template>();

export function renderChat(template: string, messages: ChatMessage[], model: Model): string {
  let t = compiled.get(template);
  if (!t) compiled.set(template, (t = new Template(template)));
  const llama2c = model.tokenizer instanceof Llama2cTokenizer;
  const tokenText = (id: number | undefined) => (id === undefined ? '' : model.tokenizer.decode([id]));
  return t.render({
    messages,
    add_generation_prompt: true,
    bos_token: llama2c ? LLAMA2C_BOS : tokenText(model.config.bosId),
    eos_token: llama2c ? LLAMA2C_EOS : tokenText(model.config.eosIds[0]),
  });
}

export function encodeChat(text: string, model: Model): number[] {
  model.checkPromptLength(text);
  const tokenizer = model.tokenizer;
  if (!(tokenizer instanceof Llama2cTokenizer)) return tokenizer.encode(text, { addSpecial: false });
  const ids: number[] = [];
  for (const part of text.split(/(<s>|<\/s>)/)) {
    if (part === LLAMA2C_BOS && model.config.bosId !== undefined) ids.push(model.config.bosId);
    else if (part === LLAMA2C_EOS && model.config.eosIds.length) ids.push(model.config.eosIds[0]!);
    // A loop, not push(...ids): spreading a long prompt's ids passes each as an argument and overflows the stack.
    else if (part) for (const id of tokenizer.encode(part, { addSpecial: false })) ids.push(id);
  }
  return ids;
}
