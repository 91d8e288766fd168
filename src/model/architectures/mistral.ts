import type { ModelConfig } from '../config.js';
import { parseHfConfig, type RawConfig, slidingWindow } from './hf-config.js';

export { loadWeights } from './llama.js';

/** MistralForCausalLM: Llama weights with an optional sliding attention window. */
export function parseConfig(raw: RawConfig): ModelConfig {
  const cfg = parseHfConfig(raw, 'mistral');
  return { ...cfg, slidingWindow: slidingWindow(raw) };
}
