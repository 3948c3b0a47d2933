/**
 * Hugging Face causal LMs as graph functions: config parsing, safetensors weights, the decoder
 * (Llama, Qwen2, OLMo-2), sequence log-probs, generation with a KV cache and HF-format saving.
 *
 * ```ts
 * import { input } from "../graph/mod.ts";
 * import { buildCausalLM, loadConfig, sequenceLogps } from "./mod.ts";
 * const model = buildCausalLM(await loadConfig("model/tiny"));
 * const { mean } = sequenceLogps(model, {
 *   inputIds: input("input_ids", ["N", "T"], "int64"),
 *   attentionMask: input("attention_mask", ["N", "T"]),
 *   completionMask: input("completion_mask", ["N", "T"]),
 *   completionIndex: input("completion_index", ["C"], "int32"),
 * });
 * if (mean.shape[0] !== "N") throw new Error("unexpected");
 * ```
 *
 * @module
 */
export * from "./config.ts";
export * from "./safetensors.ts";
export * from "./weights.ts";
export * from "./rope.ts";
export * from "./decoder.ts";
export * from "./lora.ts";
export * from "./logprobs.ts";
export * from "./save.ts";
export * from "./generate.ts";
export * from "./chat_template.ts";
export * from "./load.ts";
export * from "./hub.ts";
