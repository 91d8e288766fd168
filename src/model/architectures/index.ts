import { fail } from '../../errors.js';
import type { ModelConfig, Projection } from '../config.js';
import type { ModelWeights, WeightReader } from '../weights.js';
import type { RawConfig } from './hf-config.js';
import * as llama from './llama.js';
import * as mistral from './mistral.js';
import * as phi3 from './phi3.js';
import * as qwen2 from './qwen2.js';

export interface Architecture {
  parseConfig(raw: RawConfig): ModelConfig;
  loadWeights(r: WeightReader, cfg: ModelConfig): ModelWeights;
  /** Projections stored as one matrix in the checkpoint (they share one sparsity mask). */
  fused?: Projection[][];
}

/** Keyed by the `architectures` entry of config.json; adding an architecture is adding one small file. */
export const ARCHITECTURES: Record<string, Architecture> = {
  LlamaForCausalLM: llama,
  MistralForCausalLM: mistral,
  Qwen2ForCausalLM: qwen2,
  Phi3ForCausalLM: {
    ...phi3,
    fused: [
      ['q', 'k', 'v'],
      ['gate', 'up'],
    ],
  },
};

const BY_MODEL_TYPE: Record<string, string> = {
  llama: 'LlamaForCausalLM',
  mistral: 'MistralForCausalLM',
  qwen2: 'Qwen2ForCausalLM',
  phi3: 'Phi3ForCausalLM',
};

export function architectureOf(raw: RawConfig): { name: string; arch: Architecture } {
  const listed = Array.isArray(raw.architectures) ? (raw.architectures as string[]) : [];
  const fromType = BY_MODEL_TYPE[raw.model_type as string];
  const names = listed.length === 0 && fromType ? [fromType] : listed;
  for (const name of names) {
    const arch = ARCHITECTURES[name];
    if (arch) return { name, arch };
  }
  const supported = Object.keys(ARCHITECTURES).join(', ');
  const given = names.length ? names.join(', ') : `model_type ${JSON.stringify(raw.model_type)}`;
  fail(`unsupported architecture ${given} (supported: ${supported})`);
}
