/**
 * How an assistant turn ends, decided from a model folder's files rather than from the
 * tokenizer's `eos_token` alone:
 * - the stop tokens: the tokenizer's EOS plus `eos_token_id` of `generation_config.json` (an id
 *   or a list; without that file, `config.json`'s, from which transformers derives it) — what
 *   generation stops on, and so what every training completion must end with;
 * - the template's end-of-turn token: the special token the chat template writes right after an
 *   assistant message (`<|im_end|>`, `<|eot_id|>`, `<end_of_turn>`...), which may or may not be
 *   a stop token (Llama-3 base: turns end with `<|eot_id|>`, generation stops on
 *   `<|end_of_text|>`);
 * - the template's suffix: what it renders after that token when the conversation ends with the
 *   assistant ("\n" for ChatML; some templates add the next assistant header unconditionally).
 *
 * @module
 */

/** What ends an assistant turn in a chat template's rendering. */
export interface TurnEnd {
  /** The special token right after the assistant's text, or null (no template, or plain text). */
  tokenId: number | null;
  /** The text after that token at the end of a conversation ending with the assistant. */
  suffix: string;
}

const PROBE_USER = "Lorem ipsum?";
const PROBE_ASSISTANT = "Dolor sit amet.";

/**
 * Finds the template's end-of-turn token and suffix by rendering a two-turn probe conversation.
 *
 * @param render The chat template rendering (no generation prompt).
 * @param tokenizer `encode` (no special tokens), the special token ids, and `tokenText`.
 * @returns The end-of-turn token (or null) and the suffix text after it.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * const render = (m: { content: string }[]) => m.map((x) => `<s>${x.content}</s>\n`).join("");
 * const texts = ["<s>", "</s>"];
 * const turnEnd = probeTurnEnd(render, {
 *   encode: (t) => t.startsWith("</s>") ? [1, ...[...t.slice(4)].map(() => 9)] : [9],
 *   specialTokenIds: [0, 1],
 *   tokenText: (id) => texts[id] ?? "x",
 * });
 * deepStrictEqual(turnEnd, { tokenId: 1, suffix: "\n" });
 * ```
 */
export function probeTurnEnd(
  render: (messages: { role: string; content: string }[]) => string,
  tokenizer: {
    encode(text: string): number[];
    specialTokenIds: readonly number[];
    tokenText(id: number): string;
  },
): TurnEnd {
  let text: string;
  try {
    text = render([{ role: "user", content: PROBE_USER }, {
      role: "assistant",
      content: PROBE_ASSISTANT,
    }]);
  } catch {
    return { tokenId: null, suffix: "" }; // A template with its own rules (roles, system turn).
  }
  const at = text.lastIndexOf(PROBE_ASSISTANT);
  if (at < 0) return { tokenId: null, suffix: "" };
  const after = text.slice(at + PROBE_ASSISTANT.length);
  const first = tokenizer.encode(after)[0];
  if (first === undefined || !tokenizer.specialTokenIds.includes(first)) {
    return { tokenId: null, suffix: after };
  }
  const marker = tokenizer.tokenText(first);
  return { tokenId: first, suffix: after.startsWith(marker) ? after.slice(marker.length) : "" };
}

/**
 * The ids generation stops on: EOS plus `generation_config.json`'s `eos_token_id` (or, without
 * that file, `config.json`'s).
 *
 * @param dir The model or tokenizer folder.
 * @param eosTokenId The tokenizer's EOS id.
 * @returns The distinct stop ids, EOS first.
 * @throws {Error} When `eos_token_id` is neither an id nor a list of ids.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * deepStrictEqual(await readStopTokenIds("model/tiny", 510), [510]);
 * ```
 */
export async function readStopTokenIds(dir: string, eosTokenId: number): Promise<number[]> {
  const files: Record<string, Record<string, unknown> | null> = {};
  for (const file of ["generation_config.json", "config.json"]) {
    try {
      files[file] = JSON.parse(await Deno.readTextFile(`${dir}/${file}`));
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) files[file] = null;
      else throw new Error(`Cannot parse ${dir}/${file}: ${(e as Error).message}`);
    }
  }
  return stopTokenIdsOf(eosTokenId, files, dir);
}

/**
 * {@linkcode readStopTokenIds} on files already parsed (the browser has no folder to read).
 *
 * @param eosTokenId The tokenizer's EOS id.
 * @param files `generation_config.json` and `config.json` parsed, or null when absent.
 * @param dir Where they came from, for messages.
 * @returns The distinct stop ids, EOS first.
 * @throws {Error} When `eos_token_id` is neither an id nor a list of ids.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * deepStrictEqual(stopTokenIdsOf(2, { "config.json": { eos_token_id: [2, 7] } }, "m"), [2, 7]);
 * ```
 */
export function stopTokenIdsOf(
  eosTokenId: number,
  files: Record<string, Record<string, unknown> | null>,
  dir: string,
): number[] {
  const ids = new Set([eosTokenId]);
  for (const file of ["generation_config.json", "config.json"]) {
    const raw = files[file];
    if (!raw) continue;
    const value = raw.eos_token_id;
    if (value === undefined || value === null) continue;
    const list = Array.isArray(value) ? value : [value];
    if (!list.every((id) => Number.isInteger(id) && id >= 0)) {
      throw new Error(
        `Bad "eos_token_id" in ${dir}/${file}: expected a token id or a list of ids, got ${
          JSON.stringify(value)
        }`,
      );
    }
    for (const id of list) ids.add(id);
    break; // generation_config.json, when present, is what generate() reads.
  }
  return [...ids];
}

/**
 * The one-line warning for a template that renders more than whitespace after the last
 * assistant turn, or null.
 *
 * @param turnEnd The probed end of turn.
 * @returns The warning, or null when the suffix is empty or whitespace.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * equal(suffixWarning({ tokenId: 1, suffix: "\n" }), null);
 * ```
 */
export function suffixWarning(turnEnd: TurnEnd): string | null {
  if (turnEnd.suffix.trim() === "") return null;
  return `Warning: the chat template renders ${
    JSON.stringify(turnEnd.suffix)
  } after the last assistant turn even without add_generation_prompt (a generation prompt added unconditionally); it is cut from every completion`;
}
