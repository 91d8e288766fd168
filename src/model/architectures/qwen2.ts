import type { ModelConfig } from '../config.js';
import { parseHfConfig, type RawConfig, slidingWindow } from './hf-config.js';

export { loadWeights } from './llama.js';

/** Qwen2ForCausalLM: Llama weights plus biases on q, k and v. */
export function parseConfig(raw: RawConfig): ModelConfig {
  const cfg = parseHfConfig(raw, 'qwen2');
  const window = raw.use_sliding_window === true ? slidingWindow(raw) : 0;
  return { ...cfg, qkvBias: true, oBias: false, slidingWindow: window };
}
