/**
 * Saving checkpoints in the Hugging Face layout (`config.json`, `model.safetensors` or shards
 * with `model.safetensors.index.json`, and the tokenizer files), loadable by
 * `transformers.AutoModelForCausalLM.from_pretrained` and by this project. The folder is written
 * beside its destination and renamed into place, so a crash never leaves half a checkpoint.
 *
 * @module
 */
import type { HostTensor } from "../graph/mod.ts";
import { f32ToBf16, f32ToF16 } from "./_dtype.ts";
import { CHAT_TEMPLATE_DIR } from "./chat_template.ts";
import type { ModelConfig, ModelType } from "./config.ts";
import { serializeSafetensors } from "./safetensors.ts";
import { toFloat32, weightShapes } from "./weights.ts";

/** The `transformers` class of each architecture, written to `architectures`. */
const CLASSES: Record<ModelType, string> = {
  llama: "LlamaForCausalLM",
  qwen2: "Qwen2ForCausalLM",
  olmo2: "Olmo2ForCausalLM",
};

/** Tokenizer (and generation) files copied from `tokenizerDir` when present. */
const TOKENIZER_FILES = [
  "tokenizer.json",
  "tokenizer_config.json",
  "special_tokens_map.json",
  "chat_template.jinja",
  "chat_template.json",
  "added_tokens.json",
  "vocab.json",
  "merges.txt",
  "tokenizer.model",
  "generation_config.json",
];

/** Options of {@link saveModel}. */
export interface SaveOptions {
  /**
   * Element type of the stored weights (float32 weights are rounded to nearest even).
   * @default "float32"
   */
  dtype?: "float32" | "bfloat16" | "float16";
  /** Folder whose tokenizer files (and generation_config.json) are copied. */
  tokenizerDir?: string;
  /**
   * Largest shard in bytes; bigger checkpoints are split into `model-0000i-of-0000n.safetensors`.
   * @default 5e9 (as `save_pretrained`)
   */
  maxShardBytes?: number;
}

function convert(t: HostTensor, dtype: NonNullable<SaveOptions["dtype"]>): HostTensor {
  const f32 = toFloat32(t);
  if (dtype === "float32") return f32;
  const data = f32.data as Float32Array;
  return { dtype, shape: t.shape, data: dtype === "bfloat16" ? f32ToBf16(data) : f32ToF16(data) };
}

/** Splits tensors into shards of at most `limit` bytes (a tensor never straddles two). */
function shard(tensors: Record<string, HostTensor>, limit: number): Record<string, HostTensor>[] {
  const shards: Record<string, HostTensor>[] = [{}];
  let size = 0;
  for (const [name, t] of Object.entries(tensors)) {
    const bytes = t.data.byteLength;
    if (size > 0 && size + bytes > limit) {
      shards.push({});
      size = 0;
    }
    shards[shards.length - 1][name] = t;
    size += bytes;
  }
  return shards;
}

/**
 * The files of a checkpoint's model part, by name: `config.json` and `model.safetensors` (or its
 * shards and `model.safetensors.index.json`). No file system: the browser page zips these.
 *
 * @param model The config and the weights by HF name (float32, float16 or bfloat16).
 * @param options Stored dtype, shard size, and `where`: the destination named in errors.
 * @returns File name → contents.
 * @example
 * ```ts
 * import { loadConfig, loadWeights, modelFiles, parseSafetensors } from "./mod.ts";
 * const config = await loadConfig("model/tiny");
 * const files = modelFiles({ config, weights: await loadWeights("model/tiny", config) });
 * const { tensors } = parseSafetensors(files["model.safetensors"]);
 * if (tensors["model.norm.weight"].dtype !== "float32") throw new Error("unexpected");
 * ```
 */
export function modelFiles(
  model: { config: ModelConfig; weights: Record<string, HostTensor> },
  options: Pick<SaveOptions, "dtype" | "maxShardBytes"> & { where?: string } = {},
): Record<string, Uint8Array> {
  const where = options.where ? `Cannot save ${options.where}` : "Cannot save";
  const { config } = model;
  const dtype = options.dtype ?? "float32";
  const tensors: Record<string, HostTensor> = {};
  for (const [name, shape] of Object.entries(weightShapes(config))) {
    const t = model.weights[name];
    if (!t) throw new Error(`${where}: missing weight "${name}"`);
    if (t.shape.join() !== shape.join()) {
      throw new Error(`${where}: weight "${name}" has shape [${t.shape}], expected [${shape}]`);
    }
    tensors[name] = convert(t, dtype);
  }
  const files: Record<string, Uint8Array> = {};
  const text = (value: unknown) => new TextEncoder().encode(JSON.stringify(value, null, 2) + "\n");
  const shards = shard(tensors, options.maxShardBytes ?? 5e9);
  if (shards.length === 1) files["model.safetensors"] = serializeSafetensors(tensors);
  else {
    const weightMap: Record<string, string> = {};
    const n = String(shards.length).padStart(5, "0");
    for (const [i, part] of shards.entries()) {
      const file = `model-${String(i + 1).padStart(5, "0")}-of-${n}.safetensors`;
      files[file] = serializeSafetensors(part);
      for (const name of Object.keys(part)) weightMap[name] = file;
    }
    const total = Object.values(tensors).reduce((a, t) => a + t.data.byteLength, 0);
    files["model.safetensors.index.json"] = text({
      metadata: { total_size: total },
      weight_map: weightMap,
    });
  }
  // transformers 5 reads and writes the stored dtype as `dtype` (`torch_dtype` is its old name
  // and is never written back): one key, so the two can never disagree.
  const { torch_dtype: _oldName, ...inherited } = config.raw;
  files["config.json"] = text({
    ...inherited,
    architectures: [CLASSES[config.model_type]],
    model_type: config.model_type,
    tie_word_embeddings: config.tie_word_embeddings,
    dtype,
  });
  return files;
}

/**
 * Writes a checkpoint folder in the HF layout, replacing `dir` atomically.
 *
 * @param dir Destination folder (created, or replaced when it exists).
 * @param model The config and the weights by HF name (float32, float16 or bfloat16).
 * @param options Stored dtype, tokenizer source and shard size.
 * @returns Nothing; the folder is complete once this resolves.
 * @example
 * ```ts
 * import { loadConfig, loadWeights, saveModel } from "./mod.ts";
 * const config = await loadConfig("model/tiny");
 * const weights = await loadWeights("model/tiny", config);
 * const dir = await Deno.makeTempDir();
 * await saveModel(`${dir}/ckpt`, { config, weights }, { tokenizerDir: "model/tiny" });
 * const back = await loadWeights(`${dir}/ckpt`, config);
 * if (back["model.norm.weight"].data[0] !== weights["model.norm.weight"].data[0]) throw new Error("unexpected");
 * ```
 */
export async function saveModel(
  dir: string,
  model: { config: ModelConfig; weights: Record<string, HostTensor> },
  options: SaveOptions = {},
): Promise<void> {
  const files = modelFiles(model, { ...options, where: dir });
  const parent = dir.includes("/") ? dir.slice(0, dir.lastIndexOf("/")) || "/" : ".";
  await Deno.mkdir(parent, { recursive: true });
  const base = dir.slice(dir.lastIndexOf("/") + 1);
  const tmp = await Deno.makeTempDir({ dir: parent, prefix: `.${base}.tmp-` });
  try {
    for (const [file, bytes] of Object.entries(files)) {
      await Deno.writeFile(`${tmp}/${file}`, bytes);
    }
    if (options.tokenizerDir) await copyTokenizerFiles(options.tokenizerDir, tmp);
    await replaceDir(tmp, dir);
  } catch (e) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw e;
  }
}

/**
 * Copies the tokenizer files and named chat templates (`additional_chat_templates/`) present in
 * `from` into `to`.
 *
 * @param from A model folder.
 * @param to The destination folder (must exist).
 */
export async function copyTokenizerFiles(from: string, to: string): Promise<void> {
  const files = [...TOKENIZER_FILES];
  try {
    for await (const entry of Deno.readDir(`${from}/${CHAT_TEMPLATE_DIR}`)) {
      if (entry.isFile && entry.name.endsWith(".jinja")) {
        files.push(`${CHAT_TEMPLATE_DIR}/${entry.name}`);
      }
    }
    await Deno.mkdir(`${to}/${CHAT_TEMPLATE_DIR}`);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  for (const file of files) {
    try {
      await Deno.copyFile(`${from}/${file}`, `${to}/${file}`);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
}

/** Moves `from` to `to`, replacing an existing `to` with at most a moment without it. */
async function replaceDir(from: string, to: string): Promise<void> {
  try {
    await Deno.rename(from, to);
    return;
  } catch (e) {
    // An existing non-empty folder cannot be renamed over: move it aside first.
    if (!(await Deno.stat(to).catch(() => null))) throw e;
  }
  const old = `${from}.old`;
  await Deno.rename(to, old);
  await Deno.rename(from, to);
  await Deno.remove(old, { recursive: true });
}

/**
 * HF's `generation_config.json` for a model folder that has none (one that has its own is copied
 * as it is): BOS from the model's config, `eos_token_id` the stop set generation ends on (EOS and
 * the template's end of turn), the pad id. `GenerationConfig.from_pretrained` reads it, so
 * `model.generate()` stops where this project's sampling stops.
 *
 * @param config The model's config (its `bos_token_id`).
 * @param tokens The tokenizer's stop set and pad id.
 * @returns The JSON object.
 * @example
 * ```ts
 * import { generationConfigOf } from "./save.ts";
 * const g = generationConfigOf({ bos_token_id: 1 }, { stopTokenIds: [2, 7], padTokenId: 0 });
 * if (g.bos_token_id !== 1 || g.pad_token_id !== 0) throw new Error("unexpected");
 * if (JSON.stringify(g.eos_token_id) !== "[2,7]") throw new Error("unexpected");
 * ```
 */
export function generationConfigOf(
  config: Pick<ModelConfig, "bos_token_id">,
  tokens: { stopTokenIds: readonly number[]; padTokenId: number },
): { bos_token_id?: number; eos_token_id: number | number[]; pad_token_id: number } {
  const stop = [...tokens.stopTokenIds];
  return {
    ...(config.bos_token_id === null ? {} : { bos_token_id: config.bos_token_id }),
    eos_token_id: stop.length === 1 ? stop[0] : stop,
    pad_token_id: tokens.padTokenId,
  };
}
