/**
 * Batching: seeded shuffling per epoch, optional length-grouped batches, and collation of
 * tokenized examples into right-padded (N,T) arrays, T being the batch's longest sequence
 * (rounded up to `pad_to_multiple_of` when set), not always `max_length`.
 *
 * @module
 */

import { shuffle } from "./shuffle.ts";
import type {
  PairedBatch,
  PairedExample,
  TokenizedExample,
  UnpairedBatch,
  UnpairedExample,
} from "./types.ts";

/** Options of {@link collate}. */
export interface CollateOptions {
  /** Id written into padding positions. */
  padTokenId: number;
  /** Round T up to a multiple of this (fewer distinct shapes to compile). @default 1 */
  padToMultipleOf?: number;
}

/**
 * Stacks pairs as [chosen rows..., rejected rows...] (N = 2B), or unpaired rows (N = B),
 * right-padded to the longest sequence.
 *
 * @param examples The batch's examples, all of one kind.
 * @param options Pad id, id dtype and padding multiple; `indices` are the examples' positions in the dataset.
 * @returns The batch.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * const b = collate([{ kind: "paired", promptIds: [1], chosenIds: [2, 3], rejectedIds: [4], row: 0 }], { padTokenId: 0 });
 * deepStrictEqual([...b.inputIds], [1, 2, 3, 1, 4, 0]);
 * deepStrictEqual([...b.completionMask], [0, 1, 1, 0, 1, 0]);
 * ```
 */
export function collate(
  examples: TokenizedExample[],
  options: CollateOptions & { indices?: number[] },
): PairedBatch | UnpairedBatch {
  if (examples.length === 0) throw new Error("Cannot collate an empty batch");
  const kind = examples[0].kind;
  if (examples.some((e) => e.kind !== kind)) {
    throw new Error("Cannot collate paired and unpaired examples together");
  }
  const indices = options.indices ?? examples.map((_, i) => i);
  const sequences = kind === "paired"
    ? [
      ...(examples as PairedExample[]).map((e) => [e.promptIds, e.chosenIds] as const),
      ...(examples as PairedExample[]).map((e) => [e.promptIds, e.rejectedIds] as const),
    ]
    : (examples as UnpairedExample[]).map((e) => [e.promptIds, e.completionIds] as const);
  const n = sequences.length;
  const multiple = options.padToMultipleOf ?? 1;
  const longest = sequences.reduce((l, [p, c]) => Math.max(l, p.length + c.length), 0);
  const t = Math.ceil(longest / multiple) * multiple;
  const inputIds = new Int32Array(n * t);
  const attentionMask = new Float32Array(n * t);
  const completionMask = new Float32Array(n * t);
  const promptLengths = new Int32Array(n);
  const completionLengths = new Int32Array(n);
  sequences.forEach(([prompt, completion], row) => {
    const base = row * t;
    const ids = [...prompt, ...completion];
    for (let j = 0; j < t; j++) inputIds[base + j] = j < ids.length ? ids[j] : options.padTokenId;
    attentionMask.fill(1, base, base + ids.length);
    completionMask.fill(1, base + prompt.length, base + ids.length);
    promptLengths[row] = prompt.length;
    completionLengths[row] = completion.length;
  });
  const common = {
    shape: [n, t] as [number, number],
    inputIds,
    attentionMask,
    completionMask,
    promptLengths,
    completionLengths,
    indices,
  };
  if (kind === "unpaired") {
    const labels = Float32Array.from(examples as UnpairedExample[], (e) => (e.label ? 1 : 0));
    return { kind, ...common, labels };
  }
  const pairs = examples as PairedExample[];
  const extras: PairedBatch["extras"] = {};
  for (const key of ["score_chosen", "score_rejected"] as const) {
    if (pairs.every((e) => e.extras?.[key] !== undefined)) {
      extras[key] = Float32Array.from(pairs, (e) => e.extras![key]!);
    }
  }
  return { kind, ...common, pairs: pairs.length, extras };
}

/**
 * Batch orders: shuffled, or similar lengths together (HF's `train_sampling_strategy`, the one
 * name of this setting in the config, the batch order and here).
 */
export const SAMPLING_STRATEGIES = ["random", "group_by_length"] as const;

/** Options of {@link batchIndices}. */
export interface BatchOptions {
  /** Pairs (or unpaired rows) per batch. @default 8 */
  batch_size?: number;
  /** Seed of the shuffle; epoch e uses seed + e. @default 42 */
  seed?: number;
  /** Epoch number (0-based), so each epoch has its own order. @default 0 */
  epoch?: number;
  /** `group_by_length` puts examples of similar length together (less padding). @default "random" */
  train_sampling_strategy?: (typeof SAMPLING_STRATEGIES)[number];
  /** Keep the dataset order (e.g. for evaluation). @default true */
  shuffle?: boolean;
  /** Drop the last batch when it is smaller than batch_size. @default false */
  drop_last?: boolean;
}

/** Sequence length an example occupies in a batch (its longest row). */
export function exampleLength(e: TokenizedExample): number {
  return e.promptIds.length +
    (e.kind === "paired"
      ? Math.max(e.chosenIds.length, e.rejectedIds.length)
      : e.completionIds.length);
}

/**
 * The batches of one epoch, as lists of example indices. With `group_by_length` sampling, shuffled
 * examples are cut into mega-batches of 50 batches, each sorted by length and cut into batches,
 * and the batches are shuffled again (the idea of HF's LengthGroupedSampler).
 *
 * @param lengths Length of each example (see {@link exampleLength}).
 * @param options Batch size, seed, epoch, grouping.
 * @returns Index lists, one per batch.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * const batches = batchIndices([3, 1, 2], { batch_size: 2, shuffle: false });
 * deepStrictEqual(batches, [[0, 1], [2]]);
 * ```
 */
export function batchIndices(lengths: number[], options: BatchOptions = {}): number[][] {
  const size = options.batch_size ?? 8;
  if (!Number.isInteger(size) || size < 1) {
    throw new Error(`Invalid batch_size ${size}: expected a positive integer`);
  }
  const seed = (options.seed ?? 42) + (options.epoch ?? 0);
  let order = lengths.map((_, i) => i);
  if (options.shuffle ?? true) order = shuffle(order, seed);
  const grouped = options.train_sampling_strategy === "group_by_length";
  if (grouped) {
    const mega = size * 50;
    const sorted: number[] = [];
    for (let i = 0; i < order.length; i += mega) {
      const group = order.slice(i, i + mega).sort((a, b) => lengths[b] - lengths[a] || a - b);
      for (const index of group) sorted.push(index);
    }
    order = sorted;
  }
  let batches: number[][] = [];
  for (let i = 0; i < order.length; i += size) batches.push(order.slice(i, i + size));
  if (options.drop_last && batches.length && batches.at(-1)!.length < size) batches.pop();
  if (grouped && (options.shuffle ?? true)) batches = shuffle(batches, seed + 7919);
  return batches;
}

/**
 * Mismatched pairs for KTO's KL term: prompt i with the completion of example i-1 (mod B), as in
 * TRL's KTO trainer. The result has the same length as the input; truncate it like any example.
 *
 * @param examples The unpaired examples of one batch.
 * @returns Examples whose completions are shifted by one within the batch.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * const ex = (p: number, c: number) => ({ kind: "unpaired" as const, promptIds: [p], completionIds: [c], label: true, row: 0 });
 * deepStrictEqual(klExamples([ex(1, 2), ex(3, 4)]).map((e) => e.completionIds[0]), [4, 2]);
 * ```
 */
export function klExamples(examples: UnpairedExample[]): UnpairedExample[] {
  return examples.map((e, i) => ({
    ...e,
    completionIds: examples[(i - 1 + examples.length) % examples.length].completionIds,
  }));
}

/**
 * Splits paired examples into unpaired ones for KTO/BCO: each pair gives its chosen answer as
 * desirable and its rejected answer as undesirable (TRL's `unpair_preference_dataset`).
 *
 * @param examples Paired examples.
 * @returns Twice as many unpaired examples, chosen then rejected for each pair.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * const out = toUnpaired([{ kind: "paired", promptIds: [1], chosenIds: [2], rejectedIds: [3], row: 5 }]);
 * deepStrictEqual(out.map((e) => e.label), [true, false]);
 * ```
 */
export function toUnpaired(examples: PairedExample[]): UnpairedExample[] {
  return examples.flatMap((e) => [
    {
      kind: "unpaired" as const,
      promptIds: e.promptIds,
      completionIds: e.chosenIds,
      label: true,
      row: e.row,
    },
    {
      kind: "unpaired" as const,
      promptIds: e.promptIds,
      completionIds: e.rejectedIds,
      label: false,
      row: e.row,
    },
  ]);
}
