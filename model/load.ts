/**
 * Loading a model by `--model`: a local folder, or a Hub id (`org/name`) downloaded with
 * `data/hub.ts` into the standard HF cache (`HF_HOME` / `HF_HUB_CACHE`, `HF_TOKEN` sent, works
 * offline from the cache; offline and not cached is an error naming the id and the cache path).
 *
 * @module
 */
import type { HostTensor } from "../graph/mod.ts";
import { hubDownloadMatching, type HubOptions, isHubId } from "./hub.ts";
import { loadConfig, type ModelConfig } from "./config.ts";
import { isAdapterDir, loadAdapter, type LoadedAdapter } from "./lora.ts";
import { loadWeights } from "./weights.ts";

/** The embedded default model (Llama architecture, tiny tokenizer), shipped in the repository. */
export const TINY_MODEL_DIR: string = new URL("./tiny", import.meta.url).pathname;

/** The files of a Hub model repository that loading needs. */
function wanted(path: string): boolean {
  return /^(config|generation_config|tokenizer|tokenizer_config|special_tokens_map|added_tokens)\.json$/
    .test(path) ||
    /^[^/]*\.safetensors(\.index\.json)?$/.test(path) ||
    ["chat_template.jinja", "chat_template.json", "vocab.json", "merges.txt", "tokenizer.model"]
      .includes(path) ||
    /^additional_chat_templates\/[^/]+\.jinja$/.test(path);
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isDirectory;
  } catch {
    return false;
  }
}

/**
 * The local folder of a model: the folder itself, or the cached Hub snapshot (downloaded first
 * when needed).
 *
 * @param pathOrId A folder such as `model/tiny`, or a Hub id such as `HuggingFaceTB/SmolLM2-135M`.
 * @param options Hub options (revision, token, cache folder, offline).
 * @returns The folder holding config.json, the weights and the tokenizer files.
 * @example
 * ```ts
 * import { resolveModelDir } from "./load.ts";
 * if (await resolveModelDir("model/tiny") !== "model/tiny") throw new Error("unexpected");
 * ```
 */
export async function resolveModelDir(pathOrId: string, options: HubOptions = {}): Promise<string> {
  if (await isDirectory(pathOrId)) return pathOrId;
  if (!isHubId(pathOrId) || pathOrId.startsWith("/")) {
    throw new Error(`Model folder not found: ${pathOrId}`);
  }
  const { snapshot } = await hubDownloadMatching(pathOrId, wanted, {
    ...options,
    repoType: "model",
  });
  if (!snapshot.files.some((f) => f.endsWith(".safetensors"))) {
    throw new Error(
      `Model "${pathOrId}" has no safetensors weights: only .safetensors checkpoints are supported`,
    );
  }
  return snapshot.dir;
}

/** A loaded model: where it lives, its config and its float32 weights. */
export interface LoadedModel {
  /** Local folder (a Hub id's cache snapshot; for an adapter, the adapter's folder). */
  dir: string;
  /** The validated config. */
  config: ModelConfig;
  /** float32 weights by HF name (for an adapter: the base model's). */
  weights: Record<string, HostTensor>;
  /** A PEFT LoRA adapter on top of `weights`, when the folder was an adapter folder. */
  adapter?: LoadedAdapter;
}

/**
 * Loads config and weights from a local folder or a Hub id. A PEFT adapter folder (with
 * `adapter_config.json`, e.g. a LoRA run's checkpoint) loads its base model
 * (`options.base`, else the adapter's `base_model_name_or_path`) plus the adapter.
 *
 * @param pathOrId A folder or a Hub id.
 * @param options Hub options; `base`: the base model of an adapter folder.
 * @returns Folder, config, float32 weights and the adapter if any.
 * @example
 * ```ts
 * import { loadModel } from "./load.ts";
 * const { config, weights } = await loadModel("model/tiny");
 * if (weights["model.embed_tokens.weight"].shape[0] !== config.vocab_size) throw new Error("unexpected");
 * ```
 */
export async function loadModel(
  pathOrId: string,
  options: HubOptions & { base?: string } = {},
): Promise<LoadedModel> {
  if (await isAdapterDir(pathOrId)) {
    const raw = JSON.parse(await Deno.readTextFile(`${pathOrId}/adapter_config.json`));
    const baseId = options.base ?? raw.base_model_name_or_path;
    if (!baseId) {
      throw new Error(
        `${pathOrId}/adapter_config.json names no base_model_name_or_path: pass the base model`,
      );
    }
    const base = await loadModel(baseId, { ...options, base: undefined });
    return { ...base, dir: pathOrId, adapter: await loadAdapter(pathOrId, base.config) };
  }
  const dir = await resolveModelDir(pathOrId, options);
  const config = await loadConfig(dir);
  return { dir, config, weights: await loadWeights(dir, config) };
}
