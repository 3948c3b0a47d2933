/**
 * How the policy enters the train step: full fine-tuning (every weight a float32 master
 * parameter) or LoRA (`use_peft`: the base stays frozen in its checkpoint dtype, mapped by
 * onnxruntime from the checkpoint file, and only the adapters are parameters). Both kinds read
 * their starting parameters, their checkpoint files and their exported model from here.
 *
 * @module
 */
import type { DType, HostTensor, StoredTensor } from "../graph/mod.ts";
import type { TrainState } from "../runtime/mod.ts";
import type { ModelConfig } from "../model/config.ts";
import { loadConfig } from "../model/config.ts";
import type { CausalLMOptions } from "../model/decoder.ts";
import { resolveModelDir } from "../model/load.ts";
import {
  initLora,
  loadAdapter,
  type LoraConfig,
  parseTargetModules,
  saveAdapter,
} from "../model/lora.ts";
import { readSafetensors, serializeSafetensors } from "../model/safetensors.ts";
import { copyTokenizerFiles, saveModel } from "../model/save.ts";
import { loadWeights, storedWeights } from "../model/weights.ts";
import type { TrainConfig, Value } from "./config.ts";

/** float32 master weights of a full fine-tune whose export is in another dtype. */
export const MASTERS_FILE = "master_weights.safetensors";

/** The policy of a run. */
export interface Policy {
  /** Local folder of the (base) model. */
  dir: string;
  /** Its architecture. */
  config: ModelConfig;
  /** The checkpoint's weight dtype (the embeddings'). */
  dtype: DType;
  /** The base weights where they lie in the checkpoint files (the reference reads these). */
  stored: Record<string, StoredTensor>;
  /** LoRA settings, or null for full fine-tuning. */
  lora: LoraConfig | null;
  /** How the decoder is built: frozen base + adapters under LoRA, weights as inputs otherwise. */
  model: CausalLMOptions;
}

/**
 * Resolves the policy of `config` (`model`, `use_peft`, `lora_*`, `gradient_checkpointing`,
 * `bf16`).
 *
 * @param config The resolved train config.
 * @returns The policy.
 */
export async function loadPolicy(config: TrainConfig): Promise<Policy> {
  if (config.model_name_or_path === null) {
    throw new Error("Missing model_name_or_path: set it in the YAML or pass --model_name_or_path");
  }
  const dir = await resolveModelDir(config.model_name_or_path);
  const modelConfig = await loadConfig(dir);
  const stored = await storedWeights(dir, modelConfig);
  const lora = config.use_peft
    ? {
      r: config.lora_r,
      alpha: config.lora_alpha,
      dropout: config.lora_dropout,
      targetModules: parseTargetModules(config.lora_target_modules),
    }
    : null;
  return {
    dir,
    config: modelConfig,
    dtype: stored["model.embed_tokens.weight"].dtype,
    stored,
    lora,
    model: {
      ...(lora ? { frozen: stored, lora } : {}),
      gradientCheckpointing: config.gradient_checkpointing,
      precision: config.bf16 ? "bfloat16" : "float32",
    },
  };
}

/**
 * The parameters a fresh run starts from: the model's weights as float32 masters, or new
 * adapters (A drawn from `seed`, B zero).
 *
 * @param policy The policy.
 * @param seed The run's seed.
 * @returns Parameters by name.
 */
export async function initialParams(
  policy: Policy,
  seed: number,
): Promise<Record<string, HostTensor>> {
  if (policy.lora) return initLora(policy.config, { ...policy.lora, seed });
  return await loadWeights(policy.dir, policy.config);
}

/**
 * Writes the policy part of a checkpoint into `dir`: PEFT adapter files under LoRA; otherwise
 * the HF model in `dtype`, plus the float32 masters when `dtype` rounds them (so a resumed run
 * continues from the exact values, not from the export).
 *
 * @param dir The checkpoint folder being written.
 * @param policy The policy.
 * @param options Current parameters, export dtype, base model name, tokenizer folder.
 */
export async function savePolicy(
  dir: string,
  policy: Policy,
  options: {
    params: TrainState["params"];
    dtype: "float32" | "bfloat16" | "float16";
    baseModel: string;
  },
): Promise<void> {
  if (policy.lora) {
    await Deno.mkdir(dir, { recursive: true });
    await saveAdapter(dir, {
      lora: policy.lora,
      weights: options.params,
      baseModel: options.baseModel,
    });
    await copyTokenizerFiles(policy.dir, dir);
    return;
  }
  await saveModel(dir, { config: policy.config, weights: options.params }, {
    dtype: options.dtype,
    tokenizerDir: policy.dir,
  });
  if (options.dtype !== "float32") {
    await Deno.writeFile(`${dir}/${MASTERS_FILE}`, serializeSafetensors(options.params));
  }
}

/**
 * The parameters saved in a checkpoint by {@linkcode savePolicy}.
 *
 * @param dir The checkpoint folder.
 * @param policy The policy.
 * @returns Parameters by name.
 */
export async function loadPolicyParams(
  dir: string,
  policy: Policy,
): Promise<Record<string, HostTensor>> {
  if (policy.lora) return (await loadAdapter(dir, policy.config)).weights;
  const masters = `${dir}/${MASTERS_FILE}`;
  if (await Deno.stat(masters).then(() => true, () => false)) {
    return (await readSafetensors(masters)).tensors;
  }
  return await loadWeights(dir, policy.config);
}

/**
 * The dtype `save_dtype` asks for: `auto` (or unset) is the checkpoint's own, float32 for dtypes
 * other than float16/bfloat16.
 *
 * @param saveDtype The config value.
 * @param policy The policy.
 * @returns The dtype saved weights are written in.
 */
export function exportDtype(
  saveDtype: Value | undefined,
  policy: Pick<Policy, "dtype">,
): "float32" | "bfloat16" | "float16" {
  if (saveDtype === "float32" || saveDtype === "bfloat16" || saveDtype === "float16") {
    return saveDtype;
  }
  return policy.dtype === "bfloat16" || policy.dtype === "float16" ? policy.dtype : "float32";
}
