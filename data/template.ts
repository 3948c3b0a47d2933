/**
 * Templating and tokenization of parsed examples, with TRL's rules made exact:
 * - conversational prompts are rendered with the tokenizer's chat template and the generation
 *   prompt (or the base-model fallback of `model/tokenizer.ts`); a completion is what rendering
 *   prompt + completion adds after the rendered prompt (the template must extend the prompt);
 * - text prompts and completions (formats `text`, `hh_rlhf`) are used as they are, with no template;
 * - the prompt is tokenized once and shared by both completions;
 * - BOS appears at most once, at the start of the prompt, and only if the tokenizer adds one
 *   (a template that writes BOS itself does not get a second);
 * - each completion ends with EOS exactly once: whitespace the template puts after the EOS
 *   (ChatML's `<|im_end|>\n` when EOS is `<|im_end|>`) is dropped, and EOS is appended if missing;
 * - pre-tokenized examples pass through untouched.
 *
 * @module
 */

import type { ChatMessage, Tokenizer } from "../model/tokenizer.ts";
import { SkipRow } from "./skips.ts";
import type { ParsedExample, TextOrMessages, TokenizedExample } from "./types.ts";

/**
 * Renders a prompt and its completions to text: the prompt once, then each completion as the
 * text the full conversation adds after the prompt.
 *
 * @param tokenizer The tokenizer whose chat template (or fallback) renders messages.
 * @param prompt A text prompt or the prompt messages.
 * @param completions The completions, in the same form as the prompt.
 * @returns The prompt text and one text per completion.
 * @throws {SkipRow} `template_mismatch` when the template does not extend the rendered prompt.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { loadTokenizer } from "../model/tokenizer.ts";
 * const tok = await loadTokenizer("model/tiny");
 * const r = renderTexts(tok, "Q:", [" A", " B"]);
 * deepStrictEqual(r, { prompt: "Q:", completions: [" A", " B"] });
 * ```
 */
export function renderTexts(
  tokenizer: Tokenizer,
  prompt: TextOrMessages,
  completions: TextOrMessages[],
): { prompt: string; completions: string[] } {
  if (typeof prompt === "string") {
    return { prompt, completions: completions.map((c) => c as string) };
  }
  const promptText = tokenizer.applyChatTemplate(prompt, { addGenerationPrompt: true });
  return {
    prompt: promptText,
    completions: completions.map((c) => {
      const full = tokenizer.applyChatTemplate([...prompt, ...(c as ChatMessage[])]);
      if (!full.startsWith(promptText)) {
        throw new SkipRow(
          "template_mismatch",
          "the chat template's rendering of prompt + completion does not start with the rendered prompt",
        );
      }
      return full.slice(promptText.length);
    }),
  };
}

/**
 * Tokenizes a prompt: no post-processor tokens except exactly one leading BOS when the tokenizer
 * adds BOS (or when the text already starts with one).
 *
 * @param tokenizer The tokenizer.
 * @param text The rendered prompt.
 * @returns The prompt's token ids.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { loadTokenizer } from "../model/tokenizer.ts";
 * const tok = await loadTokenizer("model/tiny");
 * deepStrictEqual(encodePrompt(tok, "Hi"), tok.encode("Hi", { addSpecialTokens: false }));
 * ```
 */
export function encodePrompt(tokenizer: Tokenizer, text: string): number[] {
  const ids = tokenizer.encode(text, { addSpecialTokens: false });
  const bos = tokenizer.bosTokenId;
  if (bos === null) return ids;
  let start = 0;
  while (ids[start] === bos) start++;
  const hadBos = start > 0;
  return hadBos || tokenizer.addsBos ? [bos, ...ids.slice(start)] : ids;
}

/**
 * Tokenizes a completion so that it ends with EOS exactly once.
 *
 * @param tokenizer The tokenizer.
 * @param text The completion text.
 * @returns The completion's token ids, ending with `tokenizer.eosTokenId`.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { loadTokenizer } from "../model/tokenizer.ts";
 * const tok = await loadTokenizer("model/tiny");
 * const ids = encodeCompletion(tok, "4<|im_end|>\n");
 * equal(ids.filter((id) => id === tok.eosTokenId).length, 1);
 * ```
 */
export function encodeCompletion(tokenizer: Tokenizer, text: string): number[] {
  const eos = tokenizer.eosTokenId;
  const ids = tokenizer.encode(text, { addSpecialTokens: false });
  while (ids.length && ids[0] === tokenizer.bosTokenId) ids.shift();
  const lastEos = ids.lastIndexOf(eos);
  if (lastEos >= 0 && tokenizer.decode(ids.slice(lastEos + 1)).trim() === "") {
    ids.length = lastEos + 1; // The template's separator after the end of turn.
  }
  if (ids.at(-1) !== eos) ids.push(eos);
  return ids;
}

/**
 * Tokenizes a parsed example (pre-tokenized examples are returned as they are).
 *
 * @param example The parsed example.
 * @param tokenizer The tokenizer.
 * @returns The tokenized example.
 * @throws {SkipRow} On a template mismatch, or token ids outside the vocabulary.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { loadTokenizer } from "../model/tokenizer.ts";
 * const tok = await loadTokenizer("model/tiny");
 * const ex = tokenizeExample({ kind: "unpaired", prompt: "Q:", completion: " A", label: true, row: 0 }, tok);
 * equal(ex.kind === "unpaired" && ex.completionIds.at(-1), tok.eosTokenId);
 * ```
 */
export function tokenizeExample(example: ParsedExample, tokenizer: Tokenizer): TokenizedExample {
  if ("promptIds" in example) {
    const all = example.kind === "paired"
      ? [...example.promptIds, ...example.chosenIds, ...example.rejectedIds]
      : [...example.promptIds, ...example.completionIds];
    const bad = all.find((id) => id >= tokenizer.vocabSize);
    if (bad !== undefined) {
      throw new SkipRow(
        "bad_token_ids",
        `token id ${bad} is outside the vocabulary (size ${tokenizer.vocabSize})`,
      );
    }
    return example;
  }
  if (example.kind === "paired") {
    const r = renderTexts(tokenizer, example.prompt, [example.chosen, example.rejected]);
    return {
      kind: "paired",
      promptIds: encodePrompt(tokenizer, r.prompt),
      chosenIds: encodeCompletion(tokenizer, r.completions[0]),
      rejectedIds: encodeCompletion(tokenizer, r.completions[1]),
      ...(example.extras ? { extras: example.extras } : {}),
      row: example.row,
    };
  }
  const r = renderTexts(tokenizer, example.prompt, [example.completion]);
  return {
    kind: "unpaired",
    promptIds: encodePrompt(tokenizer, r.prompt),
    completionIds: encodeCompletion(tokenizer, r.completions[0]),
    label: example.label,
    row: example.row,
  };
}
