/**
 * Templating and tokenization of parsed examples, with TRL's rules made exact:
 * - conversational prompts are rendered with the tokenizer's chat template and the generation
 *   prompt (or the base-model fallback of `model/tokenizer.ts`); a completion is what rendering
 *   prompt + completion adds after the rendered prompt (the template must extend the prompt);
 * - text prompts and completions (formats `text`, `hh_rlhf`) are used as they are, with no template;
 * - the prompt is tokenized once and shared by both completions; a completion's ids are those of
 *   prompt + completion after the prompt's ids (TRL's way: a SentencePiece tokenizer marks the
 *   start of a text, so a completion tokenized alone would start differently); where a token
 *   spans the boundary, the completion is tokenized on its own;
 * - BOS appears at most once, at the start of the prompt, and only if the tokenizer adds one
 *   (a template that writes BOS itself does not get a second);
 * - each completion ends exactly once with a token generation stops on (`Tokenizer.stopTokenIds`:
 *   EOS and generation_config.json's `eos_token_id` list);
 * - pre-tokenized examples pass through untouched.
 *
 * Tested against ids TRL 1.13 computes itself (tests/data/trl_parity_test.ts, fixtures by
 * tools/make_tokenization_fixtures.py) for Qwen3 (ChatML, 151,669 ids), Llama-3 base and a
 * template-less Llama-2 tokenizer; prompts are identical, and completions differ only where
 * this project deliberately does:
 * 1. Cut after the end of turn: TRL keeps what the template writes after the end-of-turn token
 *    (ChatML's "\n" after `<|im_end|>`); here the completion stops at the token, because a
 *    generation stops there and never produces the "\n".
 * 2. An unconditional suffix is cut: a template that renders text after the last assistant turn
 *    even without `add_generation_prompt` (Llama-3 base's variant appends
 *    `<|start_header_id|>assistant<|end_header_id|>\n\n`) would teach the model to open a new
 *    turn; it is cut and `deno task data` warns once (`Tokenizer.templateWarning`).
 * 3. EOS after a non-stopping end of turn: when the template's end-of-turn token is not a stop
 *    token (Llama-3 base: turns end with `<|eot_id|>`, EOS is `<|end_of_text|>`, no
 *    generation_config.json list) the completion gets EOS after it, so a trained model stops.
 * 4. Truncation: TRL 1.13 truncates `keep_start` by default and has no `max_prompt_length`; this
 *    project defaults to `keep_end` (drop the prompt's start, keep the completion) and has
 *    `max_prompt_length` (data/truncate.ts). The parity fixtures are untruncated.
 *
 * @module
 */

import type { ChatMessage } from "../model/chat_template.ts";
import type { Tokenizer } from "../model/tokenizer.ts";
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

/** `ids` without their leading BOS tokens. */
function withoutBos(tokenizer: Tokenizer, ids: number[]): number[] {
  let start = 0;
  while (start < ids.length && ids[start] === tokenizer.bosTokenId) start++;
  return start ? ids.slice(start) : ids;
}

/**
 * The ids of `text` as it follows the prompt: prompt + text tokenized together, minus the prompt.
 * Tokenizers cut the input at added tokens first and tokenize the pieces between them
 * independently, so only the prompt's text from its last special token on is tokenized again.
 */
function idsAfterPrompt(
  tokenizer: Tokenizer,
  text: string,
  prompt?: { text: string; ids: number[] },
): number[] {
  const alone = () => withoutBos(tokenizer, tokenizer.encode(text, { addSpecialTokens: false }));
  if (!prompt) return alone();
  const promptIds = withoutBos(tokenizer, prompt.ids);
  let from = promptIds.length - 1; // The prompt's last special token, where tokenizing restarts.
  while (from >= 0 && !tokenizer.specialTokenIds.includes(promptIds[from])) from--;
  const at = from >= 0 ? prompt.text.lastIndexOf(tokenizer.tokenText(promptIds[from])) : -1;
  const tail = at >= 0
    ? tokenizer.encode(prompt.text.slice(at) + text, { addSpecialTokens: false })
    : [];
  const joint = at >= 0 && tail[0] === promptIds[from]
    ? [...promptIds.slice(0, from), ...tail]
    : withoutBos(tokenizer, tokenizer.encode(prompt.text + text, { addSpecialTokens: false }));
  for (let i = Math.max(0, from); i < promptIds.length; i++) {
    if (joint[i] !== promptIds[i]) return alone(); // A token spans the boundary.
  }
  return joint.slice(promptIds.length);
}

/**
 * Tokenizes a completion so that it ends exactly once with a token generation stops on: the
 * template's suffix after the end-of-turn token and whitespace after the last end-of-turn or
 * stop token are cut, and EOS is appended unless the completion already ends with a stop token.
 *
 * @param tokenizer The tokenizer.
 * @param text The completion text.
 * @param options `prompt`: the rendered prompt and its ids, which the completion is tokenized after.
 * @returns The completion's token ids, ending with one of `tokenizer.stopTokenIds`.
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
export function encodeCompletion(
  tokenizer: Tokenizer,
  text: string,
  options: { prompt?: { text: string; ids: number[] } } = {},
): number[] {
  const { tokenId: endOfTurn, suffix } = tokenizer.turnEnd;
  if (endOfTurn !== null && suffix && text.endsWith(tokenizer.tokenText(endOfTurn) + suffix)) {
    text = text.slice(0, -suffix.length);
  }
  const ids = idsAfterPrompt(tokenizer, text, options.prompt);
  const stops = new Set(tokenizer.stopTokenIds);
  let last = ids.length - 1;
  while (last >= 0 && !stops.has(ids[last]) && ids[last] !== endOfTurn) last--;
  if (last >= 0 && tokenizer.decode(ids.slice(last + 1)).trim() === "") {
    ids.length = last + 1; // The template's separator after the end of turn.
  }
  if (!stops.has(ids.at(-1)!)) ids.push(tokenizer.eosTokenId);
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
    const prompt = { text: r.prompt, ids: encodePrompt(tokenizer, r.prompt) };
    return {
      kind: "paired",
      promptIds: prompt.ids,
      chosenIds: encodeCompletion(tokenizer, r.completions[0], { prompt }),
      rejectedIds: encodeCompletion(tokenizer, r.completions[1], { prompt }),
      ...(example.extras ? { extras: example.extras } : {}),
      row: example.row,
    };
  }
  const r = renderTexts(tokenizer, example.prompt, [example.completion]);
  const prompt = { text: r.prompt, ids: encodePrompt(tokenizer, r.prompt) };
  return {
    kind: "unpaired",
    promptIds: prompt.ids,
    completionIds: encodeCompletion(tokenizer, r.completions[0], { prompt }),
    label: example.label,
    row: example.row,
  };
}
