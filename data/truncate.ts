/**
 * Truncation with TRL's option names, applied to tokenized examples in this order:
 * 1. `max_prompt_length`: `keep_end` keeps the prompt's last tokens, `keep_start` its first;
 * 2. `max_completion_length`: each completion keeps its first tokens;
 * 3. `max_length` on prompt + the longest completion (the prompt is shared, so one cut serves
 *    both completions of a pair):
 *    - `keep_end` (default) drops prompt tokens from the left, keeping at least one prompt token
 *      (the loss predicts each completion token from the one before it); if the completion is
 *      still too long it keeps its first tokens;
 *    - `keep_start` keeps the first `max_length` tokens of prompt + completion, so completions
 *      lose their end, and a prompt of `max_length` tokens or more leaves nothing to learn from.
 * A leading BOS survives left truncation of the prompt. A completion left empty means the row is
 * skipped (`empty_completion_after_truncation`), and so does a pair whose two completions are the
 * same tokens after the cut (`identical_after_truncation`: it no longer states a preference).
 *
 * @module
 */

import { SkipRow } from "./skips.ts";
import type { TokenizedExample } from "./types.ts";

/** Truncation options (TRL names). */
export interface TruncationOptions {
  /** Longest prompt + completion, in tokens. @default 512 */
  max_length?: number;
  /** Longest prompt, in tokens. @default undefined (no limit besides max_length) */
  max_prompt_length?: number;
  /** Longest completion, in tokens. @default undefined (no limit besides max_length) */
  max_completion_length?: number;
  /** Which end of the prompt to keep. @default "keep_end" */
  truncation_mode?: "keep_end" | "keep_start";
  /** Kept in front when the prompt is cut from the left. @default null */
  bos_token_id?: number | null;
}

/** Drops tokens from the left but keeps a leading BOS. */
function keepLast(ids: number[], n: number, bos: number | null): number[] {
  if (ids.length <= n) return ids;
  if (bos !== null && ids[0] === bos && n >= 2) return [bos, ...ids.slice(ids.length - n + 1)];
  return ids.slice(ids.length - n);
}

/**
 * Applies the truncation rules to one example.
 *
 * @param example A tokenized example.
 * @param options Truncation options.
 * @returns A truncated copy (the input is not changed).
 * @throws {SkipRow} `empty_completion_after_truncation` when a completion would be empty,
 * `identical_after_truncation` when a pair's completions become the same tokens.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * const ex = { kind: "unpaired" as const, promptIds: [1, 2, 3, 4], completionIds: [5, 6], label: true, row: 0 };
 * deepStrictEqual(truncateExample(ex, { max_length: 4 }).promptIds, [3, 4]);
 * ```
 */
export function truncateExample<E extends TokenizedExample>(
  example: E,
  options: TruncationOptions = {},
): E {
  const maxLength = options.max_length ?? 512;
  const mode = options.truncation_mode ?? "keep_end";
  const bos = options.bos_token_id ?? null;
  if (mode !== "keep_end" && mode !== "keep_start") {
    throw new Error(`Invalid truncation_mode "${mode}": expected "keep_end" or "keep_start"`);
  }
  for (const key of ["max_length", "max_prompt_length", "max_completion_length"] as const) {
    const v = options[key];
    if (v !== undefined && (!Number.isInteger(v) || v < 1)) {
      throw new Error(`Invalid ${key} ${v}: expected a positive integer`);
    }
  }
  let prompt = example.promptIds;
  let completions = example.kind === "paired"
    ? [example.chosenIds, example.rejectedIds]
    : [example.completionIds];

  if (options.max_prompt_length !== undefined && prompt.length > options.max_prompt_length) {
    prompt = mode === "keep_end"
      ? keepLast(prompt, options.max_prompt_length, bos)
      : prompt.slice(0, options.max_prompt_length);
  }
  const maxCompletion = options.max_completion_length;
  if (maxCompletion !== undefined) completions = completions.map((c) => c.slice(0, maxCompletion));

  const longest = completions.reduce((l, c) => Math.max(l, c.length), 0);
  if (prompt.length + longest > maxLength) {
    if (mode === "keep_end") {
      prompt = keepLast(prompt, Math.max(1, maxLength - longest), bos);
    } else {
      prompt = prompt.slice(0, maxLength);
    }
    completions = completions.map((c) => c.slice(0, Math.max(0, maxLength - prompt.length)));
  }
  if (completions.some((c) => c.length === 0)) {
    throw new SkipRow(
      "empty_completion_after_truncation",
      `prompt of ${example.promptIds.length} tokens leaves no room for the completion (max_length ${maxLength}, ${mode})`,
    );
  }
  if (example.kind === "paired" && completions[0].join() === completions[1].join()) {
    throw new SkipRow(
      "identical_after_truncation",
      `chosen and rejected are the same ${completions[0].length} tokens after truncation ` +
        `(max_length ${maxLength}, max_completion_length ${maxCompletion ?? "unset"})`,
    );
  }
  return example.kind === "paired"
    ? { ...example, promptIds: prompt, chosenIds: completions[0], rejectedIds: completions[1] }
    : { ...example, promptIds: prompt, completionIds: completions[0] };
}
