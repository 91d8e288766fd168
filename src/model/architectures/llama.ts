import type { Tensor } from '../../kernels/tensor.js';
import type { ModelConfig } from '../config.js';
import { type LayerWeights, type ModelWeights, readOuterWeights, type WeightReader } from '../weights.js';
import { parseHfConfig, type RawConfig } from './hf-config.js';

/** LlamaForCausalLM; Mistral and Qwen2 share its weight names and differ only in their configs. */
export function parseConfig(raw: RawConfig): ModelConfig {
  return parseHfConfig(raw, 'llama');
}

export function loadWeights(r: WeightReader, cfg: ModelConfig): ModelWeights {
  const d = cfg.hiddenSize;
  const qDim = cfg.numHeads * cfg.headDim;
  const kvDim = cfg.numKvHeads * cfg.headDim;
  const ff = cfg.intermediateSize;
  const layers: LayerWeights[] = [];
  for (let l = 0; l < cfg.numLayers; l++) {
    const p = `model.layers.${l}`;
    layers.push({
      attnNorm: r.vector(`${p}.input_layernorm.weight`, d),
      mlpNorm: r.vector(`${p}.post_attention_layernorm.weight`, d),
      proj: {
        q: r.linear(`${p}.self_attn.q_proj`, qDim, d, cfg.qkvBias),
        k: r.linear(`${p}.self_attn.k_proj`, kvDim, d, cfg.qkvBias),
        v: r.linear(`${p}.self_attn.v_proj`, kvDim, d, cfg.qkvBias),
        o: r.linear(`${p}.self_attn.o_proj`, d, qDim, cfg.oBias),
        gate: r.linear(`${p}.mlp.gate_proj`, ff, d, cfg.mlpBias),
        up: r.linear(`${p}.mlp.up_proj`, ff, d, cfg.mlpBias),
        down: r.linear(`${p}.mlp.down_proj`, d, ff, cfg.mlpBias),
      },
      ...readShortcuts(r, p, d),
    });
  }
  return readOuterWeights(r, cfg, layers);
}

/** The d x d residual rotations a checkpoint saved after WINA's orthogonal transform carries (optional). */
export function readShortcuts(
  r: WeightReader,
  prefix: string,
  d: number,
): { attnShortcut?: Tensor; mlpShortcut?: Tensor } {
  const out: { attnShortcut?: Tensor; mlpShortcut?: Tensor } = {};
  if (r.has(`${prefix}.attn_shortcut.weight`))
    out.attnShortcut = r.tensor(`${prefix}.attn_shortcut.weight`, [d, d]);
  if (r.has(`${prefix}.mlp_shortcut.weight`))
    out.mlpShortcut = r.tensor(`${prefix}.mlp_shortcut.weight`, [d, d]);
  return out;
}
