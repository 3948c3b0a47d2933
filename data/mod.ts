/**
 * The preference data pipeline: sources (JSONL / JSON / Parquet / Hub) → format detection →
 * templating and tokenization → truncation → masks and batches, with every skipped row counted.
 * It produces token batches and knows nothing about losses.
 *
 * Batches stack pairs as [chosen rows..., rejected rows...] (N = 2B), right-padded to the batch's
 * longest sequence; `completionMask` is aligned to the input tokens (the loss scores token t with
 * the logits at t-1 wherever the mask is 1). See `types.ts` for the full contract.
 *
 * Tokenization follows TRL 1.13 (checked against ids TRL computes itself) with four deliberate
 * differences, each documented in `template.ts` and tested: completions stop at the end-of-turn
 * token (no template text after it), a suffix the template renders after every conversation is
 * cut (with a warning), EOS follows an end-of-turn token generation does not stop on (Llama-3
 * base), and truncation defaults to `keep_end`.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { loadTokenizer } from "../model/tokenizer.ts";
 * import { epochBatches, prepareData } from "./mod.ts";
 *
 * const tokenizer = await loadTokenizer("model/tiny");
 * const data = await prepareData({ dataset_name: "data/samples/ultrafeedback_sample.jsonl", max_samples: 8 }, tokenizer);
 * const [batch] = epochBatches(data.train, { batch_size: 4, padTokenId: tokenizer.padTokenId });
 * equal(batch.shape[0], 8); // 4 chosen rows, then 4 rejected rows
 * ```
 *
 * @module
 */

export * from "./types.ts";
export * from "./sources.ts";
export * from "./formats.ts";
export * from "./template.ts";
export * from "./truncate.ts";
export * from "./batch.ts";
export * from "./skips.ts";
export * from "./shuffle.ts";
export * from "./dataset.ts";
export * from "./config.ts";
export * from "./key_table.ts";
