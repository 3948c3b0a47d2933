/**
 * Sequence log-probabilities of completions: the quantity every direct-alignment loss is built
 * from. Token t is scored by the logits at t−1, so with ids (N,T):
 *
 *   log p(y|x) = Σ_{t ≥ 1} m_t · log softmax(f(ids_{<t}))[ids_t],   m = completion mask (N,T)
 *
 * Only the C hidden states that predict a completion token go through the LM head (gathered by
 * the fed `completion_index`; prompt and padding positions would be thrown away by m), one
 * vocabulary chunk at a time, recomputed in the backward (`CausalLM.labelLogps`): no (N,T,V)
 * logits are held from the forward to the backward, and the head's cost follows the completions.
 *
 * @module
 */
import {
  type HostTensor,
  input,
  scatterInto,
  type Tensor,
  where,
  zerosLike,
} from "../graph/mod.ts";
import type { CausalLM } from "./decoder.ts";

/** A token batch as graph tensors (the data pipeline's `Batch` arrays, fed as inputs). */
export interface SequenceBatch {
  /** Token ids (N,T), int32 or int64. */
  inputIds: Tensor;
  /** (N,T): 1 on tokens, 0 on padding. */
  attentionMask: Tensor;
  /** (N,T) float: 1 on completion tokens, aligned to the input tokens (TRL's convention). */
  completionMask: Tensor;
  /**
   * (C) int: the flat position n·T + t − 1 of the hidden state predicting each completion token
   * (n, t ≥ 1), as {@linkcode completionIndexFeed} computes it from the completion mask.
   */
  completionIndex: Tensor;
}

/** Per-sequence and per-token completion log-probabilities. */
export interface SequenceLogps {
  /** Σ of completion-token log-probs (N). */
  sum: Tensor;
  /** Completion tokens per sequence (N), float. */
  count: Tensor;
  /** `sum / max(count, 1)` (N): the length-normalised log-prob (IPO, SimPO, ORPO...). */
  mean: Tensor;
  /** Log-prob of each input token given the ones before it (N,T), 0 outside the completion. */
  tokenLogps: Tensor;
  /** `-tokenLogps` (N,T): per-token NLL for SFT/ORPO terms, 0 outside the completion. */
  tokenNll: Tensor;
  /** Σ over completion tokens of the mean logit over the vocabulary (N): TRL's `logits/*`. */
  logitSum: Tensor;
}

/**
 * Completion log-probabilities of a batch under `model`.
 *
 * @param model The causal LM (policy or reference).
 * @param batch Ids, attention mask and completion mask (N,T).
 * @returns Summed, counted and mean log-probs (N) and per-token log-probs and NLL (N,T).
 * @example
 * ```ts
 * import { input } from "../graph/mod.ts";
 * import { buildCausalLM, loadConfig, sequenceLogps } from "./mod.ts";
 * const model = buildCausalLM(await loadConfig("model/tiny"));
 * const out = sequenceLogps(model, {
 *   inputIds: input("input_ids", ["N", "T"], "int64"),
 *   attentionMask: input("attention_mask", ["N", "T"]),
 *   completionMask: input("completion_mask", ["N", "T"]),
 *   completionIndex: input("completion_index", ["C"], "int32"),
 * });
 * if (out.sum.toString() !== "float32[N]") throw new Error("unexpected");
 * ```
 */
export function sequenceLogps(model: CausalLM, batch: SequenceBatch): SequenceLogps {
  const { inputIds, attentionMask } = batch;
  const [N, T] = inputIds.shape;
  const hidden = model.hidden(inputIds, attentionMask); // (N,T,D)
  const at = batch.completionIndex.cast("int64"); // (C)
  const predicted = at.add(1); // (C): where each predicted token is
  const predicting = hidden.reshape([-1, hidden.shape[2]]).gather(at); // (C,D)
  const flatIds = inputIds.reshape([-1]).cast("int64"); // (N·T)
  const logp = model.labelLogps(predicting, flatIds.gather(predicted)); // (C)
  // Each log-prob at its token's place (N,T); 0 elsewhere, token 0 included (no prediction).
  const tokenLogps = scatterInto(zerosLike(flatIds, logp.dtype), predicted, logp)
    .reshape([N, T]);
  const mask = batch.completionMask.cast("float32").slice(1, 1); // (N,T-1)
  const sum = tokenLogps.sum(1);
  const count = mask.sum(1);
  const mean = sum.div(count.maximum(1));
  const logitSum = where(mask.gt(0), model.meanLogit(hidden.slice(1, 0, -1)), 0).sum(1);
  return { sum, count, mean, tokenLogps, tokenNll: tokenLogps.neg(), logitSum };
}

/**
 * The fed `completion_index` of a batch: for each completion token (n, t ≥ 1), in row order, the
 * flat position n·T + t − 1 of the hidden state that predicts it.
 * @param shape (N,T).
 * @param completionMask (N,T): completion tokens where > 0.
 * @returns The positions (C), int32.
 * @example
 * ```ts
 * import { completionIndexFeed } from "./logprobs.ts";
 * const at = completionIndexFeed([2, 3], new Float32Array([0, 1, 1, 1, 0, 1]));
 * if (at.data.join() !== "0,1,4" || at.shape[0] !== 3) throw new Error("unexpected");
 * ```
 */
export function completionIndexFeed(
  shape: number[],
  completionMask: ArrayLike<number>,
): HostTensor {
  const [N, T] = shape;
  const at: number[] = [];
  for (let n = 0; n < N; n++) {
    for (let t = 1; t < T; t++) if (completionMask[n * T + t] > 0) at.push(n * T + t - 1);
  }
  return { dtype: "int32", shape: [at.length], data: Int32Array.from(at) };
}

/** Graph-input names of a fed token batch, the same in every program that scores one. */
export const BATCH_INPUTS = {
  inputIds: "input_ids",
  attentionMask: "attention_mask",
  completionMask: "completion_mask",
  completionIndex: "completion_index",
} as const;

/**
 * {@linkcode sequenceLogps} of a fed token batch: inputs named {@linkcode BATCH_INPUTS}, int32 ids.
 * The one builder of the train step, the reference model, `deno task score` and the page.
 *
 * @param model The causal LM (policy or reference).
 * @returns Summed, counted and mean log-probs (N) and per-token log-probs and NLL (N,T).
 * @example
 * ```ts
 * import { batchLogps, buildCausalLM, loadConfig } from "./mod.ts";
 * const out = batchLogps(buildCausalLM(await loadConfig("model/tiny")));
 * if (out.sum.toString() !== "float32[N]") throw new Error("unexpected");
 * ```
 */
export function batchLogps(model: CausalLM): SequenceLogps {
  return sequenceLogps(model, batchInputs());
}

/**
 * The graph inputs of a fed token batch, named {@linkcode BATCH_INPUTS}.
 *
 * @param ids The token ids' dtype: int32 as the data pipeline feeds them; int64 as PyTorch's.
 * @returns Ids, attention and completion masks (N,T) and the completion index (C).
 * @example
 * ```ts
 * import { batchInputs } from "./logprobs.ts";
 * const { inputIds, completionIndex } = batchInputs("int64");
 * if (`${inputIds} ${completionIndex}` !== "int64[N,T] int32[C]") throw new Error("unexpected");
 * ```
 */
export function batchInputs(ids: "int32" | "int64" = "int32"): SequenceBatch {
  return {
    inputIds: input(BATCH_INPUTS.inputIds, ["N", "T"], ids),
    attentionMask: input(BATCH_INPUTS.attentionMask, ["N", "T"]),
    completionMask: input(BATCH_INPUTS.completionMask, ["N", "T"]),
    completionIndex: input(BATCH_INPUTS.completionIndex, ["C"], "int32"),
  };
}

/**
 * The feeds of {@linkcode batchLogps}'s inputs from a collated batch's arrays.
 *
 * @param batch Shape (N,T), int32 ids, attention and completion masks.
 * @returns Host tensors by input name.
 * @example
 * ```ts
 * import { batchFeedsOf } from "./logprobs.ts";
 * const feeds = batchFeedsOf({
 *   shape: [1, 2],
 *   inputIds: new Int32Array([5, 6]),
 *   attentionMask: new Float32Array([1, 1]),
 *   completionMask: new Float32Array([0, 1]),
 * });
 * if (feeds.input_ids.dtype !== "int32") throw new Error("unexpected");
 * ```
 */
export function batchFeedsOf(batch: {
  shape: number[];
  inputIds: Int32Array;
  attentionMask: Float32Array;
  completionMask: Float32Array;
}): Record<string, HostTensor> {
  const { shape } = batch;
  return {
    [BATCH_INPUTS.inputIds]: { dtype: "int32", shape, data: batch.inputIds },
    [BATCH_INPUTS.attentionMask]: { dtype: "float32", shape, data: batch.attentionMask },
    [BATCH_INPUTS.completionMask]: { dtype: "float32", shape, data: batch.completionMask },
    [BATCH_INPUTS.completionIndex]: completionIndexFeed(shape, batch.completionMask),
  };
}
