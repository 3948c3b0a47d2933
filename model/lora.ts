/**
 * LoRA adapters (Hu et al. 2021, arXiv 2106.09685) in PEFT's format.
 *
 * A targeted linear layer `y = W x` becomes `y = W x + (α/r) · B A x` with A (r, in) and
 * B (out, r): W stays frozen, only A and B train. A starts Kaiming-uniform with a = √5 as PEFT
 * initialises it (U(−1/√in, 1/√in)), B starts at zero, so the adapted model starts as the base.
 *
 * Our default targets every linear layer of the decoder (q/k/v/o and gate/up/down), a deliberate
 * difference from PEFT, whose default is q/v for Llama and Qwen2 and has none for OLMo-2: all
 * linear layers is what the QLoRA paper (arXiv 2305.14314) found to match full fine-tuning, and it
 * is what TRL's examples pass (`all-linear`). The explicit list is written to adapter_config.json,
 * so PEFT loads exactly what was trained.
 *
 * Files (PEFT's layout, loadable by `PeftModel.from_pretrained(base, dir)`):
 *   adapter_config.json         peft_type LORA, task_type CAUSAL_LM, r, lora_alpha, target_modules…
 *   adapter_model.safetensors   base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight …
 *
 * @module
 */
import type { HostTensor } from "../graph/mod.ts";
import type { ModelConfig } from "./config.ts";
import { readSafetensors, serializeSafetensors } from "./safetensors.ts";
import { toFloat32, weightShapes } from "./weights.ts";

/** The decoder's linear layers, by the module names PEFT's `target_modules` uses. */
export const LINEAR_MODULES = [
  "q_proj",
  "k_proj",
  "v_proj",
  "o_proj",
  "gate_proj",
  "up_proj",
  "down_proj",
] as const;

/** LoRA settings (TRL's `ModelConfig` names). */
export interface LoraConfig {
  /** Rank r. */
  r: number;
  /** Scale numerator α: the update is (α/r)·BA. */
  alpha: number;
  /** Dropout on the adapter's input (0: none, TRL's default). */
  dropout: number;
  /** Module names adapted, e.g. ["q_proj", "v_proj"]. */
  targetModules: string[];
}

/** The PEFT prefix of adapter tensor names. */
const PEFT_PREFIX = "base_model.model.";

/**
 * Parses `lora_target_modules`: a comma-separated list of module names, or `all-linear`.
 *
 * @param value The config value (null: all linear layers).
 * @returns The module names.
 * @example
 * ```ts
 * import { parseTargetModules } from "./lora.ts";
 * if (parseTargetModules("q_proj, v_proj").join() !== "q_proj,v_proj") throw new Error("unexpected");
 * ```
 */
export function parseTargetModules(value: string | null): string[] {
  if (value === null || value === "all-linear") return [...LINEAR_MODULES];
  const names = value.split(",").map((s) => s.trim()).filter((s) => s !== "");
  for (const name of names) {
    if (!(LINEAR_MODULES as readonly string[]).includes(name)) {
      throw new Error(
        `Invalid lora_target_modules: "${name}" is not a linear layer of the decoder, expected ` +
          `a comma-separated list of ${LINEAR_MODULES.join(", ")} (or all-linear)`,
      );
    }
  }
  if (names.length === 0) throw new Error("Invalid lora_target_modules: the list is empty");
  return names;
}

/**
 * The adapter tensors of a model: for each targeted `….q_proj.weight` (out, in), the HF-style
 * names `….q_proj.lora_A.weight` (r, in) and `….q_proj.lora_B.weight` (out, r).
 *
 * @param config The model config.
 * @param lora Rank and targets.
 * @returns Shapes by adapter name (without PEFT's `base_model.model.` prefix).
 * @example
 * ```ts
 * import { parseConfig } from "./config.ts";
 * import { loraShapes } from "./lora.ts";
 * const c = parseConfig({ model_type: "llama", vocab_size: 8, hidden_size: 4, intermediate_size: 8,
 *   num_hidden_layers: 1, num_attention_heads: 2 });
 * const s = loraShapes(c, { r: 2, alpha: 4, dropout: 0, targetModules: ["up_proj"] });
 * if (s["model.layers.0.mlp.up_proj.lora_B.weight"].join() !== "8,2") throw new Error("unexpected");
 * ```
 */
export function loraShapes(config: ModelConfig, lora: LoraConfig): Record<string, number[]> {
  const shapes: Record<string, number[]> = {};
  for (const [name, [out, inp]] of Object.entries(weightShapes(config))) {
    const module = /\.(\w+)\.weight$/.exec(name)?.[1];
    if (!name.startsWith("model.layers.") || !lora.targetModules.includes(module ?? "")) continue;
    const base = name.slice(0, -".weight".length);
    shapes[`${base}.lora_A.weight`] = [lora.r, inp];
    shapes[`${base}.lora_B.weight`] = [out, lora.r];
  }
  return shapes;
}

/**
 * Fresh adapters: A ~ U(−1/√in, 1/√in) (PEFT's `kaiming_uniform_(a=√5)`), B = 0.
 *
 * @param config The model config.
 * @param options LoRA settings and the seed of A's draw.
 * @returns float32 adapter tensors by name.
 * @example
 * ```ts
 * import { loadConfig } from "./config.ts";
 * import { initLora } from "./lora.ts";
 * const c = await loadConfig("model/tiny");
 * const w = initLora(c, { r: 4, alpha: 8, dropout: 0, targetModules: ["q_proj"], seed: 1 });
 * if (w["model.layers.0.self_attn.q_proj.lora_B.weight"].data.some((x) => x !== 0)) throw new Error("unexpected");
 * ```
 */
export function initLora(
  config: ModelConfig,
  options: LoraConfig & { seed: number },
): Record<string, HostTensor> {
  let state = (options.seed >>> 0) || 1;
  // xorshift32: a fixed, seeded stream, so a run's initial adapters are reproducible.
  const uniform = () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 4294967296;
  };
  const out: Record<string, HostTensor> = {};
  for (const [name, shape] of Object.entries(loraShapes(config, options))) {
    const data = new Float32Array(shape[0] * shape[1]);
    if (name.endsWith("lora_A.weight")) {
      const bound = 1 / Math.sqrt(shape[1]);
      for (let i = 0; i < data.length; i++) data[i] = (2 * uniform() - 1) * bound;
    }
    out[name] = { dtype: "float32", shape, data };
  }
  return out;
}

/**
 * Writes `adapter_config.json` and `adapter_model.safetensors` into `dir` (which must exist).
 *
 * @param dir The folder.
 * @param adapter Settings, float32 weights by adapter name, and the base model's name or path.
 */
export async function saveAdapter(
  dir: string,
  adapter: { lora: LoraConfig; weights: Record<string, HostTensor>; baseModel: string },
): Promise<void> {
  const { lora, weights, baseModel } = adapter;
  const config = {
    peft_type: "LORA",
    task_type: "CAUSAL_LM",
    base_model_name_or_path: baseModel,
    r: lora.r,
    lora_alpha: lora.alpha,
    lora_dropout: lora.dropout,
    target_modules: lora.targetModules,
    bias: "none",
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    modules_to_save: null,
    use_rslora: false,
    use_dora: false,
  };
  await Deno.writeTextFile(`${dir}/adapter_config.json`, JSON.stringify(config, null, 2) + "\n");
  const tensors = Object.fromEntries(
    Object.entries(weights).map(([name, t]) => [PEFT_PREFIX + name, t]),
  );
  await Deno.writeFile(`${dir}/adapter_model.safetensors`, serializeSafetensors(tensors));
}

/** A loaded adapter folder. */
export interface LoadedAdapter {
  /** Its settings. */
  lora: LoraConfig;
  /** float32 weights by adapter name (no PEFT prefix). */
  weights: Record<string, HostTensor>;
  /** `base_model_name_or_path`. */
  baseModel: string;
}

/**
 * True when `dir` holds a PEFT adapter (`adapter_config.json`).
 *
 * @param dir A folder.
 * @returns Whether it is an adapter folder.
 */
export async function isAdapterDir(dir: string): Promise<boolean> {
  return await Deno.stat(`${dir}/adapter_config.json`).then(() => true, () => false);
}

/**
 * Reads a PEFT LoRA adapter folder and checks it against `config`.
 *
 * @param dir The adapter folder.
 * @param config The base model's config (shapes are checked against it).
 * @returns Settings and weights.
 */
export async function loadAdapter(dir: string, config: ModelConfig): Promise<LoadedAdapter> {
  const file = `${dir}/adapter_config.json`;
  const raw = JSON.parse(await Deno.readTextFile(file)) as Record<string, unknown>;
  if (raw.peft_type !== "LORA") {
    throw new Error(
      `${file}: peft_type is ${JSON.stringify(raw.peft_type)}, only LORA is supported`,
    );
  }
  for (const key of ["use_dora", "use_rslora"]) {
    if (raw[key]) throw new Error(`${file}: ${key} is not supported, expected false`);
  }
  const targets = raw.target_modules;
  const lora: LoraConfig = {
    r: Number(raw.r),
    alpha: Number(raw.lora_alpha),
    dropout: Number(raw.lora_dropout ?? 0),
    targetModules: typeof targets === "string"
      ? parseTargetModules(targets)
      : parseTargetModules((targets as string[]).join(",")),
  };
  const { tensors } = await readSafetensors(`${dir}/adapter_model.safetensors`);
  const weights: Record<string, HostTensor> = {};
  for (const [name, shape] of Object.entries(loraShapes(config, lora))) {
    const t = tensors[PEFT_PREFIX + name] ??
      tensors[PEFT_PREFIX + name.replace(/\.weight$/, ".default.weight")];
    if (!t) throw new Error(`${dir}/adapter_model.safetensors: missing "${PEFT_PREFIX + name}"`);
    if (t.shape.join() !== shape.join()) {
      throw new Error(
        `${dir}/adapter_model.safetensors: "${name}" has shape [${t.shape}], expected [${shape}]`,
      );
    }
    weights[name] = toFloat32(t);
  }
  return { lora, weights, baseModel: String(raw.base_model_name_or_path ?? "") };
}

/**
 * The base weights with the adapters folded in: W + (α/r)·B A for every adapted layer, in
 * float32 (the other weights are returned as they are).
 *
 * @param base Base weights by HF name.
 * @param adapter Settings and adapter weights.
 * @returns Merged weights by HF name.
 * @example
 * ```ts
 * import { mergeLora } from "./lora.ts";
 * const f = (data: number[], shape: number[]) => ({ dtype: "float32" as const, shape, data: new Float32Array(data) });
 * const merged = mergeLora({ "l.q_proj.weight": f([1, 0, 0, 1], [2, 2]) }, {
 *   lora: { r: 1, alpha: 2, dropout: 0, targetModules: ["q_proj"] },
 *   weights: { "l.q_proj.lora_A.weight": f([1, 1], [1, 2]), "l.q_proj.lora_B.weight": f([1, 0], [2, 1]) },
 * });
 * if (merged["l.q_proj.weight"].data.join() !== "3,2,0,1") throw new Error("unexpected");
 * ```
 */
export function mergeLora(
  base: Record<string, HostTensor>,
  adapter: Pick<LoadedAdapter, "lora" | "weights">,
): Record<string, HostTensor> {
  const scale = adapter.lora.alpha / adapter.lora.r;
  const out = { ...base };
  for (const [name, a] of Object.entries(adapter.weights)) {
    if (!name.endsWith(".lora_A.weight")) continue;
    const stem = name.slice(0, -".lora_A.weight".length);
    const b = adapter.weights[`${stem}.lora_B.weight`];
    const w = toFloat32(base[`${stem}.weight`]);
    const [out_, r] = b.shape, inp = a.shape[1];
    const A = a.data as Float32Array, B = b.data as Float32Array;
    const merged = Float32Array.from(w.data as Float32Array);
    for (let o = 0; o < out_; o++) {
      for (let k = 0; k < r; k++) {
        const coef = scale * B[o * r + k];
        if (coef === 0) continue;
        for (let i = 0; i < inp; i++) merged[o * inp + i] += coef * A[k * inp + i];
      }
    }
    out[`${stem}.weight`] = { dtype: "float32", shape: w.shape, data: merged };
  }
  return out;
}
