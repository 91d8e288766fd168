import type { ModelConfig } from '../config.js';
import { parseHfConfig, type RawConfig } from './hf-config.js';

export { loadWeights } from './llama.js';

/** MistralForCausalLM: Llama weights with an optional sliding attention window. */
export function parseConfig(raw: RawConfig): ModelConfig {
  const cfg = parseHfConfig(raw, 'mistral');
  const window = raw.sliding_window;
  return { ...cfg, slidingWindow: typeof window === 'number' ? window : 0 };
}
