/**
 * Hugging Face `config.json` parsing for the supported decoder architectures, chosen by
 * `model_type`: `llama` (Llama 2/3, SmolLM/SmolLM2, TinyLlama...), `qwen2` (Qwen2, Qwen2.5) and
 * `olmo2` (OLMo 2). Keys keep their HF names; the architecture's layout differences are spelled
 * out once, in {@link ModelConfig.layout}, so the decoder branches on features, never on names.
 *
 * @module
 */

/** `model_type`s this project can build. */
export const MODEL_TYPES = ["llama", "qwen2", "olmo2"] as const;
/** A supported `model_type`. */
export type ModelType = typeof MODEL_TYPES[number];

/** RoPE frequency scaling (`rope_scaling` / `rope_parameters`); `default` means none. */
export interface RopeScaling {
  /** `default`, `linear` (positions / factor) or `llama3` (Llama 3.1's smooth band scaling). */
  rope_type: "default" | "linear" | "llama3";
  /** Scaling factor (linear, llama3). */
  factor?: number;
  /** llama3: wavelengths above original_max_position_embeddings / low_freq_factor are scaled. */
  low_freq_factor?: number;
  /** llama3: wavelengths below original_max_position_embeddings / high_freq_factor are kept. */
  high_freq_factor?: number;
  /** llama3: the context length the model was pretrained with. */
  original_max_position_embeddings?: number;
}

/** Where biases and norms sit: what makes one architecture differ from Llama. */
export interface Layout {
  /** q/k/v projections have a bias (Qwen2; Llama and OLMo-2 with `attention_bias`). */
  qkvBias: boolean;
  /** The output projection has a bias (Llama and OLMo-2 with `attention_bias`). */
  oBias: boolean;
  /** gate/up/down projections have a bias (Llama with `mlp_bias`). */
  mlpBias: boolean;
  /**
   * `pre`: `x + f(norm(x))` (Llama, Qwen2). `post`: `x + norm(f(x))` with
   * `post_attention_layernorm` / `post_feedforward_layernorm` (OLMo-2).
   */
  norm: "pre" | "post";
  /** RMSNorm of the whole q and k projections before splitting heads (OLMo-2). */
  qkNorm: boolean;
}

/** A validated model config (HF key names). */
export interface ModelConfig {
  model_type: ModelType;
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  head_dim: number;
  rms_norm_eps: number;
  rope_theta: number;
  rope_scaling: RopeScaling;
  max_position_embeddings: number;
  tie_word_embeddings: boolean;
  bos_token_id: number | null;
  /** One id or several (Llama 3 instruct stops on any of them). */
  eos_token_id: number | number[] | null;
  pad_token_id: number | null;
  /** Bias and norm placement of this architecture. */
  layout: Layout;
  /** The `config.json` object as read, written back (updated) when saving. */
  raw: Record<string, unknown>;
}

const DEFAULT_EPS: Record<ModelType, number> = { llama: 1e-6, qwen2: 1e-6, olmo2: 1e-5 };

function layoutOf(type: ModelType, raw: Record<string, unknown>): Layout {
  const attentionBias = raw.attention_bias === true;
  switch (type) {
    case "llama":
      return {
        qkvBias: attentionBias,
        oBias: attentionBias,
        mlpBias: raw.mlp_bias === true,
        norm: "pre",
        qkNorm: false,
      };
    case "qwen2":
      return { qkvBias: true, oBias: false, mlpBias: false, norm: "pre", qkNorm: false };
    case "olmo2":
      return {
        qkvBias: attentionBias,
        oBias: attentionBias,
        mlpBias: false,
        norm: "post",
        qkNorm: true,
      };
  }
}

function int(raw: Record<string, unknown>, key: string, where: string, fallback?: number): number {
  const v = raw[key] ?? fallback;
  if (typeof v !== "number" || !Number.isInteger(v) || v <= 0) {
    throw new Error(`Invalid "${key}" in ${where}: expected a positive integer, got ${v}`);
  }
  return v;
}

function num(raw: Record<string, unknown>, key: string, where: string, fallback: number): number {
  const v = raw[key] ?? fallback;
  if (typeof v !== "number" || !Number.isFinite(v)) {
    throw new Error(`Invalid "${key}" in ${where}: expected a number, got ${v}`);
  }
  return v;
}

const optionalId = (v: unknown): number | null => typeof v === "number" ? v : null;

function ropeScaling(raw: Record<string, unknown>, where: string): RopeScaling {
  // transformers ≥ 5 writes `rope_parameters` (with rope_theta inside); older `rope_scaling`.
  const given = (raw.rope_scaling ?? raw.rope_parameters) as Record<string, unknown> | null;
  if (!given) return { rope_type: "default" };
  const type = (given.rope_type ?? given.type ?? "default") as string;
  if (type === "default") return { rope_type: "default" };
  if (type === "linear") return { rope_type: "linear", factor: num(given, "factor", where, NaN) };
  if (type === "llama3") {
    return {
      rope_type: "llama3",
      factor: num(given, "factor", where, NaN),
      low_freq_factor: num(given, "low_freq_factor", where, NaN),
      high_freq_factor: num(given, "high_freq_factor", where, NaN),
      original_max_position_embeddings: int(given, "original_max_position_embeddings", where),
    };
  }
  throw new Error(
    `Unsupported rope scaling "${type}" in ${where}: supported are default, linear and llama3`,
  );
}

/**
 * Validates a parsed `config.json` and fills HF's defaults.
 *
 * @param raw The JSON object.
 * @param where Where it came from, for error messages.
 * @returns The config.
 * @example
 * ```ts
 * import { parseConfig } from "./config.ts";
 * const c = parseConfig({
 *   model_type: "qwen2", vocab_size: 32, hidden_size: 16, intermediate_size: 32,
 *   num_hidden_layers: 1, num_attention_heads: 4, num_key_value_heads: 2,
 * });
 * if (c.head_dim !== 4 || !c.layout.qkvBias) throw new Error("unexpected");
 * ```
 */
export function parseConfig(raw: Record<string, unknown>, where = "config.json"): ModelConfig {
  const type = raw.model_type as ModelType;
  if (!MODEL_TYPES.includes(type)) {
    throw new Error(
      `Unsupported model_type "${raw.model_type}" in ${where}: supported are ${
        MODEL_TYPES.join(", ")
      }`,
    );
  }
  const act = raw.hidden_act ?? "silu";
  if (act !== "silu") {
    throw new Error(`Unsupported hidden_act "${act}" in ${where}: only silu (SwiGLU) is supported`);
  }
  if (raw.use_sliding_window === true) {
    throw new Error(`Unsupported use_sliding_window=true in ${where}: sliding-window attention`);
  }
  const hidden = int(raw, "hidden_size", where);
  const heads = int(raw, "num_attention_heads", where);
  const kvHeads = int(raw, "num_key_value_heads", where, heads);
  if (heads % kvHeads !== 0) {
    throw new Error(
      `Invalid heads in ${where}: num_attention_heads ${heads} is not a multiple of num_key_value_heads ${kvHeads}`,
    );
  }
  const headDim = int(raw, "head_dim", where, hidden / heads);
  if (headDim % 2 !== 0) throw new Error(`Invalid head_dim in ${where}: ${headDim} is odd`);
  const params = raw.rope_parameters as Record<string, unknown> | undefined;
  return {
    model_type: type,
    vocab_size: int(raw, "vocab_size", where),
    hidden_size: hidden,
    intermediate_size: int(raw, "intermediate_size", where),
    num_hidden_layers: int(raw, "num_hidden_layers", where),
    num_attention_heads: heads,
    num_key_value_heads: kvHeads,
    head_dim: headDim,
    rms_norm_eps: num(raw, "rms_norm_eps", where, DEFAULT_EPS[type]),
    rope_theta: num(raw, "rope_theta", where, (params?.rope_theta as number) ?? 10000),
    rope_scaling: ropeScaling(raw, where),
    max_position_embeddings: int(raw, "max_position_embeddings", where, 2048),
    tie_word_embeddings: raw.tie_word_embeddings === true,
    bos_token_id: optionalId(raw.bos_token_id),
    eos_token_id: Array.isArray(raw.eos_token_id)
      ? raw.eos_token_id as number[]
      : optionalId(raw.eos_token_id),
    pad_token_id: optionalId(raw.pad_token_id),
    layout: layoutOf(type, raw),
    raw: { ...raw },
  };
}

/**
 * Reads and validates `<dir>/config.json`.
 *
 * @param dir A model folder.
 * @returns The config.
 * @example
 * ```ts
 * import { loadConfig } from "./config.ts";
 * const c = await loadConfig("model/tiny");
 * if (c.model_type !== "llama") throw new Error("unexpected");
 * ```
 */
export async function loadConfig(dir: string): Promise<ModelConfig> {
  const path = `${dir}/config.json`;
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new Error(`Cannot read model config: ${path} (${(e as Error).message})`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new Error(`Invalid JSON in model config ${path}: ${(e as Error).message}`);
  }
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new Error(`Model config ${path} must hold a JSON object`);
  }
  return parseConfig(raw as Record<string, unknown>, path);
}
