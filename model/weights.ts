/**
 * Model weights by HF tensor name: the names and shapes an architecture needs, and loading them
 * from `model.safetensors` or a sharded `model.safetensors.index.json` as float32 (F16 and BF16
 * are widened exactly; compute is float32 for now).
 *
 * @module
 */
import type { HostTensor } from "../graph/mod.ts";
import { bf16ToF32, f16ToF32 } from "./_dtype.ts";
import type { ModelConfig } from "./config.ts";
import { readSafetensors } from "./safetensors.ts";

/**
 * The HF names and shapes of every weight of `config`'s model, in a stable order (embeddings,
 * layers, final norm, untied head). Linear weights are `(out, in)` as in PyTorch.
 *
 * @param config The model config.
 * @returns Shapes by HF tensor name.
 * @example
 * ```ts
 * import { parseConfig } from "./config.ts";
 * import { weightShapes } from "./weights.ts";
 * const c = parseConfig({ model_type: "llama", vocab_size: 8, hidden_size: 4, intermediate_size: 8,
 *   num_hidden_layers: 1, num_attention_heads: 2, tie_word_embeddings: true });
 * if (weightShapes(c)["model.layers.0.mlp.up_proj.weight"][0] !== 8) throw new Error("unexpected");
 * ```
 */
export function weightShapes(config: ModelConfig): Record<string, number[]> {
  const D = config.hidden_size, F = config.intermediate_size, V = config.vocab_size;
  const q = config.num_attention_heads * config.head_dim;
  const kv = config.num_key_value_heads * config.head_dim;
  const { layout } = config;
  const shapes: Record<string, number[]> = { "model.embed_tokens.weight": [V, D] };
  for (let i = 0; i < config.num_hidden_layers; i++) {
    const p = `model.layers.${i}`;
    if (layout.norm === "pre") shapes[`${p}.input_layernorm.weight`] = [D];
    const projections: [string, number, number, boolean][] = [
      ["self_attn.q_proj", q, D, layout.qkvBias],
      ["self_attn.k_proj", kv, D, layout.qkvBias],
      ["self_attn.v_proj", kv, D, layout.qkvBias],
      ["self_attn.o_proj", D, q, layout.oBias],
      ["mlp.gate_proj", F, D, layout.mlpBias],
      ["mlp.up_proj", F, D, layout.mlpBias],
      ["mlp.down_proj", D, F, layout.mlpBias],
    ];
    for (const [name, out, inp, bias] of projections) {
      shapes[`${p}.${name}.weight`] = [out, inp];
      if (bias) shapes[`${p}.${name}.bias`] = [out];
    }
    if (layout.qkNorm) {
      shapes[`${p}.self_attn.q_norm.weight`] = [q];
      shapes[`${p}.self_attn.k_norm.weight`] = [kv];
    }
    shapes[`${p}.post_attention_layernorm.weight`] = [D];
    if (layout.norm === "post") shapes[`${p}.post_feedforward_layernorm.weight`] = [D];
  }
  shapes["model.norm.weight"] = [D];
  if (!config.tie_word_embeddings) shapes["lm_head.weight"] = [V, D];
  return shapes;
}

/**
 * A float32 copy of a float32, float16 or bfloat16 tensor (float32 is returned as is).
 *
 * @param t The tensor.
 * @returns Its float32 value.
 * @example
 * ```ts
 * import { toFloat32 } from "./weights.ts";
 * const t = toFloat32({ dtype: "bfloat16", shape: [1], data: new Uint16Array([0x3f80]) });
 * if (t.data[0] !== 1) throw new Error("unexpected");
 * ```
 */
export function toFloat32(t: HostTensor): HostTensor {
  switch (t.dtype) {
    case "float32":
      return t;
    case "bfloat16":
      return { dtype: "float32", shape: t.shape, data: bf16ToF32(t.data as Uint16Array) };
    case "float16":
      return { dtype: "float32", shape: t.shape, data: f16ToF32(t.data as Uint16Array) };
    default:
      throw new Error(`Cannot convert ${t.dtype} weights to float32`);
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * The safetensors files of a model folder: `model.safetensors`, or the shards named by
 * `model.safetensors.index.json`.
 *
 * @param dir A model folder.
 * @returns File paths.
 */
export async function weightFiles(dir: string): Promise<string[]> {
  const index = `${dir}/model.safetensors.index.json`;
  if (await exists(index)) {
    const { weight_map } = JSON.parse(await Deno.readTextFile(index)) as {
      weight_map: Record<string, string>;
    };
    return [...new Set(Object.values(weight_map))].map((f) => `${dir}/${f}`);
  }
  if (await exists(`${dir}/model.safetensors`)) return [`${dir}/model.safetensors`];
  throw new Error(
    `No weights in ${dir}: expected model.safetensors or model.safetensors.index.json ` +
      `(PyTorch .bin checkpoints are not supported; convert them with safetensors)`,
  );
}

/**
 * Loads every weight of a model folder as float32, by HF name. With `config`, checks that each
 * weight the architecture needs is present with the right shape and keeps only those (a tied
 * model's stored `lm_head.weight` and buffers such as `rotary_emb.inv_freq` are dropped).
 *
 * @param dir A model folder (single file or sharded).
 * @param config When given, the weights are validated against it.
 * @returns Weights by HF tensor name.
 * @example
 * ```ts
 * import { loadWeights } from "./weights.ts";
 * const w = await loadWeights("model/tiny");
 * if (w["model.norm.weight"].dtype !== "float32") throw new Error("unexpected");
 * ```
 */
export async function loadWeights(
  dir: string,
  config?: ModelConfig,
): Promise<Record<string, HostTensor>> {
  const all: Record<string, HostTensor> = {};
  for (const file of await weightFiles(dir)) {
    const { tensors } = await readSafetensors(file);
    for (const [name, t] of Object.entries(tensors)) all[name] = toFloat32(t);
  }
  if (!config) return all;
  const out: Record<string, HostTensor> = {};
  const missing: string[] = [];
  for (const [name, shape] of Object.entries(weightShapes(config))) {
    // Some checkpoints (a bare `LlamaModel`) store names without the `model.` prefix.
    const t = all[name] ?? all[name.replace(/^model\./, "")];
    if (!t) {
      missing.push(name);
      continue;
    }
    if (t.shape.join() !== shape.join()) {
      throw new Error(`Weight "${name}" has shape [${t.shape}] in ${dir}: expected [${shape}]`);
    }
    out[name] = t;
  }
  if (missing.length) {
    const more = missing.length > 5 ? ` and ${missing.length - 5} more` : "";
    throw new Error(
      `Missing weights in ${dir}: ${
        missing.slice(0, 5).join(", ")
      }${more} (model_type ${config.model_type})`,
    );
  }
  return out;
}
