import type { ModelConfig } from '../config.js';
import {
  type LayerWeights,
  type ModelWeights,
  readOuterWeights,
  rowSlice,
  type WeightReader,
} from '../weights.js';
import { parseHfConfig, type RawConfig, slidingWindow } from './hf-config.js';
import { readShortcuts } from './llama.js';

/** Phi3ForCausalLM: Llama with fused qkv_proj and gate_up_proj. */
export function parseConfig(raw: RawConfig): ModelConfig {
  const cfg = parseHfConfig(raw, 'phi3');
  return { ...cfg, slidingWindow: slidingWindow(raw) };
}

/** The fused matrices are split into row views (no copy), so the forward pass sees q, k, v, gate and up. */
export function loadWeights(r: WeightReader, cfg: ModelConfig): ModelWeights {
  const d = cfg.hiddenSize;
  const qDim = cfg.numHeads * cfg.headDim;
  const kvDim = cfg.numKvHeads * cfg.headDim;
  const ff = cfg.intermediateSize;
  const layers: LayerWeights[] = [];
  for (let l = 0; l < cfg.numLayers; l++) {
    const p = `model.layers.${l}`;
    const qkv = r.matrix(`${p}.self_attn.qkv_proj.weight`, [qDim + 2 * kvDim, d]);
    const gateUp = r.matrix(`${p}.mlp.gate_up_proj.weight`, [2 * ff, d]);
    layers.push({
      attnNorm: r.vector(`${p}.input_layernorm.weight`, d),
      mlpNorm: r.vector(`${p}.post_attention_layernorm.weight`, d),
      proj: {
        q: { weight: rowSlice(qkv, 0, qDim) },
        k: { weight: rowSlice(qkv, qDim, kvDim) },
        v: { weight: rowSlice(qkv, qDim + kvDim, kvDim) },
        o: r.linear(`${p}.self_attn.o_proj`, d, qDim, false),
        gate: { weight: rowSlice(gateUp, 0, ff) },
        up: { weight: rowSlice(gateUp, ff, ff) },
        down: r.linear(`${p}.mlp.down_proj`, d, ff, false),
      },
      ...readShortcuts(r, p, d),
    });
  }
  return readOuterWeights(r, cfg, layers);
}
