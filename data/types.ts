/**
 * The data pipeline's contract with the rest of the trainer: tokenized examples and model
 * batches. Shape letters: B = pairs (or unpaired rows) in a batch, N = rows of the batch
 * (2B for paired data, B for unpaired), T = the batch's longest sequence.
 *
 * @module
 */

import type { ChatMessage } from "../model/chat_template.ts";

/** A dataset row as read from JSONL, JSON or Parquet. */
export type Row = Record<string, unknown>;

/** Text or a chat conversation: the two forms a prompt or completion takes before templating. */
export type TextOrMessages = string | ChatMessage[];

/** Per-pair numbers carried from the dataset to the loss (ODPO uses the score margin). */
export interface PairExtras {
  /** Rating of the chosen answer (UltraFeedback's `score_chosen` / `chosen-rating`). */
  score_chosen?: number;
  /** Rating of the rejected answer (`score_rejected` / `rejected-rating`). */
  score_rejected?: number;
}

/** A preference pair before tokenization; conversational pairs hold the completion turns only. */
export interface PairedText {
  kind: "paired";
  prompt: TextOrMessages;
  chosen: TextOrMessages;
  rejected: TextOrMessages;
  extras?: PairExtras;
  /** Row index in the source, for messages and the `data` tool. */
  row: number;
}

/** One unpaired completion with a desirable (true) / undesirable (false) label, before tokenization. */
export interface UnpairedText {
  kind: "unpaired";
  prompt: TextOrMessages;
  completion: TextOrMessages;
  label: boolean;
  row: number;
}

/** A tokenized preference pair; the prompt is tokenized once and shared by both completions. */
export interface PairedExample {
  kind: "paired";
  promptIds: number[];
  /** Completion tokens, ending with EOS exactly once (unless truncated or pre-tokenized). */
  chosenIds: number[];
  rejectedIds: number[];
  extras?: PairExtras;
  row: number;
}

/** A tokenized unpaired example (KTO, BCO). */
export interface UnpairedExample {
  kind: "unpaired";
  promptIds: number[];
  completionIds: number[];
  label: boolean;
  row: number;
}

/** Either kind of tokenized example. */
export type TokenizedExample = PairedExample | UnpairedExample;

/** What a parsed row is before tokenization: text, or ids used exactly as given (format "tokenized"). */
export type ParsedExample = PairedText | UnpairedText | TokenizedExample;

/** Fields common to both batch kinds. All (N,T) arrays are row-major and right-padded. */
export interface BatchBase {
  /** [N, T]. */
  shape: [number, number];
  /** Token ids (N,T); padding positions hold the tokenizer's pad id. */
  inputIds: Int32Array;
  /** (N,T): 1 on real tokens (prompt and completion), 0 on padding. */
  attentionMask: Float32Array;
  /**
   * (N,T): 1 on completion tokens, aligned to the input tokens (TRL's convention): the loss sums
   * log p(inputIds[n,t] | inputIds[n,<t]) over the t with completionMask[n,t] = 1, i.e. the logits
   * at t-1 score token t. Every prompt has at least one token, so completionMask[n,0] is 0.
   */
  completionMask: Float32Array;
  /** (N): prompt tokens per row. */
  promptLengths: Int32Array;
  /** (N): completion tokens per row (the row sums of completionMask). */
  completionLengths: Int32Array;
}

/** A batch of B pairs: rows 0..B-1 are the chosen sequences, rows B..2B-1 the rejected ones. */
export interface PairedBatch extends BatchBase {
  kind: "paired";
  /** B, the number of pairs (N = 2B). */
  pairs: number;
  /** (B): indices of the pairs in the prepared example list (stable keys, e.g. for cached reference log-probs). */
  indices: number[];
  /** Per-pair extras (B), present only when every pair of the batch has that value. */
  extras: { score_chosen?: Float32Array; score_rejected?: Float32Array };
}

/** A batch of B unpaired rows (N = B). */
export interface UnpairedBatch extends BatchBase {
  kind: "unpaired";
  /** (B): 1 for desirable, 0 for undesirable. */
  labels: Float32Array;
  /** (B): indices of the rows in the prepared example list. */
  indices: number[];
}

/** Either kind of batch. */
export type Batch = PairedBatch | UnpairedBatch;
