/**
 * Model weights by HF tensor name: the names and shapes an architecture needs, and loading them
 * from `model.safetensors` or a sharded `model.safetensors.index.json` as float32 (F16 and BF16
 * are widened exactly; compute is float32 for now).
 *
 * @module
 */
import type { HostTensor, StoredTensor } from "../graph/mod.ts";
import { bf16ToF32, f16ToF32 } from "./_dtype.ts";
import type { ModelConfig } from "./config.ts";
import { parseSafetensors, readSafetensors, readSafetensorsLayout } from "./safetensors.ts";

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

/**
 * float32 weights by HF name from a `model.safetensors` file's bytes (fetched or uploaded; no file
 * system), checked against `config`'s architecture.
 *
 * @param bytes The file's bytes.
 * @param config The model config.
 * @returns Every weight of the architecture, as float32.
 * @example
 * ```ts
 * import { parseConfig } from "./config.ts";
 * import { weightsFromBytes } from "./weights.ts";
 * const c = parseConfig(JSON.parse(Deno.readTextFileSync("model/tiny/config.json")));
 * const w = weightsFromBytes(Deno.readFileSync("model/tiny/model.safetensors"), c);
 * if (w["model.norm.weight"].dtype !== "float32") throw new Error("unexpected");
 * ```
 */
export function weightsFromBytes(
  bytes: Uint8Array,
  config: ModelConfig,
): Record<string, HostTensor> {
  const { tensors } = parseSafetensors(bytes, "model.safetensors");
  const out: Record<string, HostTensor> = {};
  for (const [name, shape] of Object.entries(weightShapes(config))) {
    const t = tensors[name];
    if (!t) throw new Error(`Missing weight "${name}" in model.safetensors`);
    if (t.shape.join() !== shape.join()) {
      throw new Error(
        `Weight "${name}" has shape [${t.shape}] in model.safetensors: expected [${shape}]`,
      );
    }
    out[name] = toFloat32(t);
  }
  return out;
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
    let weightMap: unknown;
    try {
      weightMap = JSON.parse(await Deno.readTextFile(index)).weight_map;
    } catch (e) {
      throw new Error(`Invalid JSON in ${index}: ${(e as Error).message}`);
    }
    if (weightMap === null || typeof weightMap !== "object") {
      throw new Error(`${index} has no "weight_map" object of tensor name → file`);
    }
    return [...new Set(Object.values(weightMap as Record<string, string>))]
      .map((f) => `${dir}/${f}`);
  }
  if (await exists(`${dir}/model.safetensors`)) return [`${dir}/model.safetensors`];
  throw new Error(
    `No weights in ${dir}: expected model.safetensors or model.safetensors.index.json ` +
      `(PyTorch .bin checkpoints are not supported; convert them with safetensors)`,
  );
}

/**
 * Stored tensors no layer reads that are still no sign of a config/weights mismatch: a tied
 * model's saved `lm_head.weight` (a copy of the embeddings) and rotary `inv_freq` buffers
 * (recomputed from the config).
 */
function legitimatelyUnused(name: string): boolean {
  return name === "lm_head.weight" || name.endsWith("rotary_emb.inv_freq");
}

/** At most five names, then a count. */
function listed(names: string[]): string {
  const more = names.length > 5 ? ` and ${names.length - 5} more` : "";
  return names.slice(0, 5).join(", ") + more;
}

/**
 * Loads every weight of a model folder as float32, by HF name. With `config`, checks that each
 * weight the architecture needs is present with the right shape, and that every stored weight is
 * used by some layer (a tied model's stored `lm_head.weight` and `rotary_emb.inv_freq` buffers
 * excepted): weights and config.json that disagree are an error naming both.
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
  return config ? await pickWeights(all, config, dir) : all;
}

/**
 * Where every weight of a model folder lies in its safetensors files, in the checkpoint's own
 * dtype, without reading the weights: frozen weights that onnxruntime maps straight from the
 * checkpoint (see `storedConstant`). Validated against `config` as {@linkcode loadWeights} does.
 *
 * @param dir A model folder (single file or sharded).
 * @param config The architecture.
 * @returns File regions by HF tensor name.
 * @example
 * ```ts
 * import { loadConfig } from "./config.ts";
 * import { storedWeights } from "./weights.ts";
 * const w = await storedWeights("model/tiny", await loadConfig("model/tiny"));
 * if (w["model.norm.weight"].dtype !== "bfloat16") throw new Error("unexpected");
 * ```
 */
export async function storedWeights(
  dir: string,
  config: ModelConfig,
): Promise<Record<string, StoredTensor>> {
  const all: Record<string, StoredTensor> = {};
  for (const file of await weightFiles(dir)) Object.assign(all, await readSafetensorsLayout(file));
  return await pickWeights(all, config, dir);
}

/** The weights `config` needs, checked for presence and shape (extra tensors dropped). */
async function pickWeights<T extends { shape: number[] }>(
  all: Record<string, T>,
  config: ModelConfig,
  dir: string,
): Promise<Record<string, T>> {
  const out: Record<string, T> = {};
  const missing: string[] = [];
  const used = new Set<string>();
  for (const [name, shape] of Object.entries(weightShapes(config))) {
    // Some checkpoints (a bare `LlamaModel`) store names without the `model.` prefix.
    const stored = name in all ? name : name.replace(/^model\./, "");
    const t = all[stored];
    if (!t) {
      missing.push(name);
      continue;
    }
    if (t.shape.join() !== shape.join()) {
      throw new Error(`Weight "${name}" has shape [${t.shape}] in ${dir}: expected [${shape}]`);
    }
    used.add(stored);
    out[name] = t;
  }
  const files = (await weightFiles(dir)).map((f) => f.slice(dir.length + 1)).join(", ");
  const architecture = `${dir}/config.json (model_type ${config.model_type}, ` +
    `num_hidden_layers ${config.num_hidden_layers})`;
  if (missing.length) {
    throw new Error(
      `Missing weights in ${dir}/${files}: ${listed(missing)}, needed by ${architecture}`,
    );
  }
  const unused = Object.keys(all).filter((name) => !used.has(name) && !legitimatelyUnused(name));
  if (unused.length) {
    throw new Error(
      `Weights in ${dir}/${files} that no layer of ${architecture} uses: ${listed(unused)}: ` +
        `config.json and the weights disagree`,
    );
  }
  return out;
}
