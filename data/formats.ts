/**
 * Dataset formats: detection from the columns and parsing of rows into prompt / completion pairs
 * (or unpaired completions), before any tokenization.
 *
 * | format           | columns                                            | example dataset                                       |
 * | ---------------- | -------------------------------------------------- | ----------------------------------------------------- |
 * | `text`           | `prompt`, `chosen`, `rejected` strings             | trl-lib/ultrafeedback-prompt (string form)            |
 * | `conversational` | `chosen`, `rejected` message lists (+ `prompt`)    | argilla/ultrafeedback-binarized-preferences-cleaned   |
 * | `hh_rlhf`        | `chosen`, `rejected` raw `\n\nHuman:` transcripts  | Anthropic/hh-rlhf                                     |
 * | `unpaired`       | `prompt`, `completion`, `label` (boolean)          | trl-lib/kto-mix-14k                                   |
 * | `tokenized`      | `prompt_input_ids`, `chosen_input_ids`, `rejected_input_ids` (or `completion_input_ids` + `label`) | TRL's tokenized datasets |
 *
 * Conversational prompts are the messages chosen and rejected share (UltraFeedback repeats the
 * user turn in both), else the `prompt` column (a string becomes one user message). HH prompts
 * are the longest common prefix of the two transcripts, cut after its last `\n\nAssistant:`.
 *
 * @module
 */

import type { ChatMessage } from "../model/chat_template.ts";
import { SkipRow } from "./skips.ts";
import type { PairExtras, ParsedExample, Row, TextOrMessages } from "./types.ts";

/** The dataset formats the pipeline understands. */
export type Format = "text" | "conversational" | "hh_rlhf" | "unpaired" | "tokenized";

/** All format names, for validating the `format` config key. */
export const FORMATS: readonly Format[] = [
  "text",
  "conversational",
  "hh_rlhf",
  "unpaired",
  "tokenized",
];

/** Columns each format needs (tokenized data needs one of two sets). */
const REQUIRED: Record<Format, string[][]> = {
  text: [["prompt", "chosen", "rejected"]],
  conversational: [["chosen", "rejected"]],
  hh_rlhf: [["chosen", "rejected"]],
  unpaired: [["prompt", "completion", "label"]],
  tokenized: [
    ["prompt_input_ids", "chosen_input_ids", "rejected_input_ids"],
    ["prompt_input_ids", "completion_input_ids", "label"],
  ],
};

const HH_MARKER = "\n\nAssistant:";

/**
 * Detects the format of a dataset from its columns (and, for `chosen`/`rejected`, the type of the
 * first non-null value), or checks an explicit `format` against the columns.
 *
 * @param columns The column names found.
 * @param options `rows` to look at value types; `format` to override detection; `origin` for messages.
 * @returns The format.
 * @throws When the columns fit no format, naming the columns found and the ones expected.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * equal(detectFormat(["prompt", "completion", "label"]), "unpaired");
 * ```
 */
export function detectFormat(
  columns: string[],
  options: { rows?: Row[]; format?: Format; origin?: string } = {},
): Format {
  const has = (c: string) => columns.includes(c);
  const where = options.origin ? ` in ${options.origin}` : "";
  const found = columns.length ? columns.join(", ") : "none";
  if (options.format) {
    if (!FORMATS.includes(options.format)) {
      throw new Error(`Unknown format "${options.format}": expected one of ${FORMATS.join(", ")}`);
    }
    const sets = REQUIRED[options.format];
    if (!sets.some((set) => set.every(has))) {
      const missing = sets[0].filter((c) => !has(c));
      throw new Error(
        `Missing columns for format "${options.format}"${where}: ${missing.join(", ")} ` +
          `(found: ${found}; expected: ${sets.map((s) => s.join(" + ")).join(" or ")})`,
      );
    }
    return options.format;
  }
  if (REQUIRED.tokenized.some((set) => set.every(has))) return "tokenized";
  if (has("completion") && has("label")) {
    if (!has("prompt")) throw new Error(`Missing column "prompt"${where}: found ${found}`);
    return "unpaired";
  }
  if (has("chosen") && has("rejected")) {
    const sample = options.rows?.find((r) => r.chosen !== null && r.chosen !== undefined)?.chosen;
    if (Array.isArray(sample)) return "conversational";
    if (has("prompt")) return "text";
    if (typeof sample === "string" && !sample.includes(HH_MARKER)) {
      throw new Error(
        `Missing column "prompt"${where}: chosen/rejected are strings without HH-RLHF's ` +
          `"\\n\\nAssistant:" turns (found: ${found})`,
      );
    }
    return "hh_rlhf";
  }
  throw new Error(
    `Unrecognised dataset columns${where}: found ${found}; expected prompt + chosen + rejected, ` +
      `chosen + rejected (message lists or HH-RLHF transcripts), prompt + completion + label, ` +
      `or prompt_input_ids + chosen_input_ids + rejected_input_ids`,
  );
}

/**
 * Parses one row into a text pair, an unpaired completion or (format `tokenized`) token ids.
 *
 * @param row The row.
 * @param options `format` (from {@link detectFormat}) and the row's `index`.
 * @returns The parsed example.
 * @throws {SkipRow} When the row is unusable (null, empty or non-string fields, identical answers...).
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * const row = { chosen: "\n\nHuman: Hi\n\nAssistant: Hello!", rejected: "\n\nHuman: Hi\n\nAssistant: No." };
 * const parsed = parseRow(row, { format: "hh_rlhf", index: 0 });
 * equal("prompt" in parsed && parsed.prompt, "\n\nHuman: Hi\n\nAssistant:");
 * ```
 */
export function parseRow(row: Row, options: { format: Format; index: number }): ParsedExample {
  const { format, index } = options;
  switch (format) {
    case "text": {
      const [prompt, chosen, rejected] = ["prompt", "chosen", "rejected"].map((k) => text(row, k));
      return paired({ prompt, chosen, rejected, extras: extras(row), row: index });
    }
    case "hh_rlhf":
      return hh(text(row, "chosen"), text(row, "rejected"), row, index);
    case "conversational":
      return conversational(row, index);
    case "unpaired":
      return unpaired(row, index);
    case "tokenized":
      return tokenized(row, index);
  }
}

function paired(
  p: {
    prompt: TextOrMessages;
    chosen: TextOrMessages;
    rejected: TextOrMessages;
    extras?: PairExtras;
    row: number;
  },
): ParsedExample {
  if (JSON.stringify(p.chosen) === JSON.stringify(p.rejected)) {
    throw new SkipRow("identical_chosen_rejected", "chosen and rejected are identical");
  }
  const { extras, ...rest } = p;
  return { kind: "paired", ...rest, ...(extras ? { extras } : {}) };
}

function present(row: Row, key: string): unknown {
  const value = row[key];
  if (value === null || value === undefined) {
    throw new SkipRow("null_field", `field "${key}" is null`);
  }
  return value;
}

function text(row: Row, key: string): string {
  const value = present(row, key);
  if (typeof value !== "string") {
    throw new SkipRow("non_string_content", `field "${key}" is ${typeName(value)}, not a string`);
  }
  if (!value.trim()) throw new SkipRow("empty_field", `field "${key}" is empty`);
  return value;
}

const typeName = (
  v: unknown,
) => (Array.isArray(v) ? "a list" : v === null ? "null" : `a ${typeof v}`);

function messages(value: unknown, key: string): ChatMessage[] {
  if (!Array.isArray(value)) {
    throw new SkipRow(
      "non_string_content",
      `field "${key}" is ${typeName(value)}, not a message list`,
    );
  }
  if (value.length === 0) throw new SkipRow("empty_field", `field "${key}" has no messages`);
  return value.map((m, i) => {
    const where = `message ${i} of "${key}"`;
    if (typeof m !== "object" || m === null) {
      throw new SkipRow("non_string_content", `${where} is not an object`);
    }
    const { role, content } = m as Record<string, unknown>;
    if (content === null || content === undefined) {
      throw new SkipRow("null_field", `${where} has null content`);
    }
    if (typeof role !== "string" || typeof content !== "string") {
      throw new SkipRow(
        "non_string_content",
        `${where} has ${typeName(content)} content or a non-string role`,
      );
    }
    if (!content.trim()) throw new SkipRow("empty_field", `${where} is empty`);
    return { role, content };
  });
}

function extras(row: Row): PairExtras | undefined {
  const num = (...keys: string[]) => {
    for (const k of keys) {
      if (typeof row[k] === "number" && Number.isFinite(row[k])) return row[k] as number;
    }
    return undefined;
  };
  const score_chosen = num("score_chosen", "chosen-rating", "chosen_rating", "chosen_score");
  const score_rejected = num(
    "score_rejected",
    "rejected-rating",
    "rejected_rating",
    "rejected_score",
  );
  if (score_chosen === undefined && score_rejected === undefined) return undefined;
  return {
    ...(score_chosen !== undefined ? { score_chosen } : {}),
    ...(score_rejected !== undefined ? { score_rejected } : {}),
  };
}

function hh(chosen: string, rejected: string, row: Row, index: number): ParsedExample {
  if (chosen === rejected) {
    throw new SkipRow("identical_chosen_rejected", "chosen and rejected are identical");
  }
  let n = 0;
  while (n < chosen.length && chosen[n] === rejected[n]) n++;
  const cut = chosen.slice(0, n).lastIndexOf(HH_MARKER);
  if (cut < 0) {
    throw new SkipRow(
      "no_assistant_turn",
      `no "\\n\\nAssistant:" in the shared prefix of chosen and rejected`,
    );
  }
  const prompt = chosen.slice(0, cut + HH_MARKER.length);
  const [c, r] = [chosen.slice(prompt.length), rejected.slice(prompt.length)];
  for (const [key, value] of [["chosen", c], ["rejected", r]]) {
    if (!value.trim()) {
      throw new SkipRow("empty_field", `the last Assistant turn of "${key}" is empty`);
    }
  }
  return paired({ prompt, chosen: c, rejected: r, extras: extras(row), row: index });
}

const sameMessage = (a: ChatMessage, b: ChatMessage) =>
  a.role === b.role && a.content === b.content;

function conversational(row: Row, index: number): ParsedExample {
  const chosen = messages(present(row, "chosen"), "chosen");
  const rejected = messages(present(row, "rejected"), "rejected");
  let k = 0;
  while (k < chosen.length && k < rejected.length && sameMessage(chosen[k], rejected[k])) k++;
  if (k === chosen.length && k === rejected.length) {
    throw new SkipRow("identical_chosen_rejected", "chosen and rejected are identical");
  }
  let prompt = chosen.slice(0, k);
  if (k === 0) {
    const value = row.prompt;
    if (value === null || value === undefined) {
      throw new SkipRow(
        "null_field",
        `field "prompt" is null and chosen/rejected share no messages`,
      );
    }
    prompt = typeof value === "string"
      ? [{ role: "user", content: text(row, "prompt") }]
      : messages(value, "prompt");
  }
  const [c, r] = [chosen.slice(k), rejected.slice(k)];
  for (const [key, turns] of [["chosen", c], ["rejected", r]] as const) {
    if (turns.length === 0) {
      throw new SkipRow("empty_field", `"${key}" has no messages after the prompt`);
    }
    if (turns[0].role !== "assistant") {
      throw new SkipRow(
        "no_assistant_turn",
        `"${key}" continues with a "${turns[0].role}" message, not "assistant"`,
      );
    }
    endsWithAssistant(turns, key);
  }
  return paired({ prompt, chosen: c, rejected: r, extras: extras(row), row: index });
}

/**
 * A completion must end with the assistant's turn: every completion token is in the loss, so a
 * trailing user (or tool) turn would train the policy to write the user's words.
 */
function endsWithAssistant(turns: ChatMessage[], key: string): void {
  const last = turns.at(-1)!;
  if (last.role !== "assistant") {
    throw new SkipRow(
      "last_turn_not_assistant",
      `"${key}" ends with a "${last.role}" message, not "assistant"`,
    );
  }
}

function unpaired(row: Row, index: number): ParsedExample {
  const label = present(row, "label");
  if (typeof label !== "boolean" && label !== 0 && label !== 1) {
    throw new SkipRow("bad_label", `field "label" is ${JSON.stringify(label)}, not a boolean`);
  }
  const read = (key: string): TextOrMessages => {
    const value = present(row, key);
    return typeof value === "string" ? text(row, key) : messages(value, key);
  };
  let prompt = read("prompt");
  let completion = read("completion");
  // A string on one side and messages on the other: treat both as a conversation.
  if (typeof prompt === "string" && typeof completion !== "string") {
    prompt = [{ role: "user", content: prompt }];
  }
  if (typeof completion === "string" && typeof prompt !== "string") {
    completion = [{ role: "assistant", content: completion }];
  }
  if (typeof completion !== "string") endsWithAssistant(completion, "completion");
  return { kind: "unpaired", prompt, completion, label: Boolean(label), row: index };
}

function ids(row: Row, key: string): number[] {
  const value = present(row, key);
  if (!Array.isArray(value) || !value.every((x) => Number.isInteger(x) && x >= 0)) {
    throw new SkipRow("bad_token_ids", `field "${key}" is not a list of non-negative integers`);
  }
  if (value.length === 0) throw new SkipRow("bad_token_ids", `field "${key}" is empty`);
  return value as number[];
}

function tokenized(row: Row, index: number): ParsedExample {
  const promptIds = ids(row, "prompt_input_ids");
  if ("completion_input_ids" in row) {
    const label = present(row, "label");
    if (typeof label !== "boolean" && label !== 0 && label !== 1) {
      throw new SkipRow("bad_label", `field "label" is ${JSON.stringify(label)}, not a boolean`);
    }
    return {
      kind: "unpaired",
      promptIds,
      completionIds: ids(row, "completion_input_ids"),
      label: Boolean(label),
      row: index,
    };
  }
  const chosenIds = ids(row, "chosen_input_ids");
  const rejectedIds = ids(row, "rejected_input_ids");
  if (chosenIds.join() === rejectedIds.join()) {
    throw new SkipRow(
      "identical_chosen_rejected",
      "chosen_input_ids and rejected_input_ids are identical",
    );
  }
  const e = extras(row);
  return {
    kind: "paired",
    promptIds,
    chosenIds,
    rejectedIds,
    ...(e ? { extras: e } : {}),
    row: index,
  };
}
