/**
 * Sequence log-probabilities of completions: the quantity every direct-alignment loss is built
 * from. Token t is scored by the logits at t−1, so with ids (N,T):
 *
 *   log p(y|x) = Σ_{t ≥ 1} m_t · log softmax(f(ids_{<t}))[ids_t],   m = completion mask (N,T)
 *
 * Only the T−1 positions that predict a token go through the LM head, and the log-softmax is
 * gathered at the labels right away, so nothing downstream holds (N,T,V) logits.
 *
 * @module
 */
import { concat, type Tensor, where, zerosLike } from "../graph/mod.ts";
import type { CausalLM } from "./decoder.ts";

/** A token batch as graph tensors (the data pipeline's `Batch` arrays, fed as inputs). */
export interface SequenceBatch {
  /** Token ids (N,T), int32 or int64. */
  inputIds: Tensor;
  /** (N,T): 1 on tokens, 0 on padding. */
  attentionMask: Tensor;
  /** (N,T) float: 1 on completion tokens, aligned to the input tokens (TRL's convention). */
  completionMask: Tensor;
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
 * });
 * if (out.sum.toString() !== "float32[N]") throw new Error("unexpected");
 * ```
 */
export function sequenceLogps(model: CausalLM, batch: SequenceBatch): SequenceLogps {
  const { inputIds, attentionMask } = batch;
  const [N, T] = inputIds.shape;
  const hidden = model.hidden(inputIds, attentionMask).slice(1, 0, -1); // (N,T-1,D)
  const labels = inputIds.slice(1, 1).cast("int64").unsqueeze(-1); // (N,T-1,1)
  const logits = model.head(hidden); // (N,T-1,V)
  const logp = logits.logSoftmax(-1).takeAlongAxis(labels, -1).squeeze(-1);
  const mask = batch.completionMask.cast("float32").slice(1, 1); // (N,T-1)
  // `where`, not a product: a -inf log-prob outside the completion must not become NaN.
  const masked = where(mask.gt(0), logp, 0);
  const sum = masked.sum(1);
  const count = mask.sum(1);
  const mean = sum.div(count.maximum(1));
  // Re-align to the input tokens: token 0 has no prediction.
  const tokenLogps = concat([zerosLike(masked.slice(1, 0, 1)), masked], 1).reshape([N, T]);
  const logitSum = where(mask.gt(0), logits.mean(-1), 0).sum(1);
  return { sum, count, mean, tokenLogps, tokenNll: tokenLogps.neg(), logitSum };
}
