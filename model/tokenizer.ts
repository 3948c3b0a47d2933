/**
 * Tokenizer loading: a Hugging Face tokenizer (`tokenizer.json` + `tokenizer_config.json`) from a
 * local folder or a Hub id, behind a small interface the data pipeline and generation use.
 *
 * The chat template is found by `model/chat_template.ts` (chat_template.jinja, named templates,
 * tokenizer_config.json, chat_template.json, with transformers' precedence) and rendered by
 * transformers.js; `chatTemplateSource` says which file was used, or why the fallback is.
 *
 * Built on `@huggingface/transformers` (`AutoTokenizer`, which runs `@huggingface/tokenizers` and
 * renders chat templates with `@huggingface/jinja`), as the user asked; it picks the right
 * tokenizer class from `tokenizer_config.json` and matches Python's `transformers` output. Files
 * of Hub ids are fetched with `data/hub.ts` into the standard HF cache, then loaded from that
 * folder, so transformers.js never downloads anything itself.
 *
 * @module
 */

import { AutoTokenizer, env as transformersEnv } from "@huggingface/transformers";
import { type ChatMessage, findChatTemplate, renderFallbackChat } from "./chat_template.ts";

export { renderFallbackChat };
import { hubDownloadMatching, type HubOptions, isHubId } from "./hub.ts";
import { probeTurnEnd, readStopTokenIds, suffixWarning, type TurnEnd } from "./turn_end.ts";

/** A loaded tokenizer. */
export interface Tokenizer {
  /** Token ids of `text`; `addSpecialTokens` (default true) runs the post-processor (e.g. BOS). */
  encode(text: string, options?: { addSpecialTokens?: boolean }): number[];
  /** Text of `ids`; `skipSpecialTokens` (default false) drops special tokens. */
  decode(ids: number[], options?: { skipSpecialTokens?: boolean }): string;
  /** Text of the conversation rendered by the chat template (or the documented fallback when the tokenizer has none). */
  applyChatTemplate(messages: ChatMessage[], options?: { addGenerationPrompt?: boolean }): string;
  /** Whether the folder has a chat template (else `applyChatTemplate` uses {@link renderFallbackChat}). */
  readonly hasChatTemplate: boolean;
  /** Which file the chat template came from (`chat_template.jinja`...), or `none: <why>; <fallback>`. */
  readonly chatTemplateSource: string;
  readonly bosTokenId: number | null;
  readonly eosTokenId: number;
  /** What generation stops on and every completion ends with: EOS + generation_config.json's `eos_token_id`. */
  readonly stopTokenIds: readonly number[];
  /** The template's end-of-turn token and the suffix it renders after the last assistant turn. */
  readonly turnEnd: TurnEnd;
  /** A one-line warning when the template renders text after the last assistant turn, else null. */
  readonly templateWarning: string | null;
  readonly padTokenId: number;
  /** Number of token ids (highest id + 1, special tokens included). */
  readonly vocabSize: number;
  /** Ids of all special tokens (BOS, EOS, pad, chat markers...). */
  readonly specialTokenIds: readonly number[];
  /** Whether `encode(text)` with special tokens starts with BOS (Llama-style post-processors). */
  readonly addsBos: boolean;
  /** The string form of one token id (byte-level tokens shown as their text), for displays. */
  tokenText(id: number): string;
}

/** The transformers.js tokenizer, reduced to the members used here. */
interface HfTokenizer {
  encode(text: string, options: { add_special_tokens: boolean }): number[];
  decode(ids: number[], options: { skip_special_tokens: boolean }): string;
  apply_chat_template(
    messages: ChatMessage[],
    options: { tokenize: false; add_generation_prompt: boolean; chat_template: string },
  ): string;
  bos_token_id: number | null | undefined;
  eos_token_id: number | null | undefined;
  pad_token_id: number | null | undefined;
  all_special_ids: number[];
  model_max_length: number;
  get_vocab(): Map<string, number> | Record<string, number>;
}

/** Files the loader fetches for a Hub id. */
function isTokenizerFile(path: string): boolean {
  return [
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "chat_template.json",
    "generation_config.json",
  ].includes(path) || /^additional_chat_templates\/[^/]+\.jinja$/.test(path);
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isDirectory;
  } catch {
    return false;
  }
}

/**
 * Loads a tokenizer from a local folder (tokenizer.json + tokenizer_config.json) or a Hub id
 * (downloaded into the HF cache; offline, the cached copy is used and a missing one is an error
 * naming the id and the cache path).
 *
 * @param pathOrId A folder such as `model/tiny`, or a Hub id such as `Qwen/Qwen2.5-0.5B-Instruct`.
 * @param options Hub options (revision, token, cache folder) for Hub ids.
 * @returns The tokenizer.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * const tok = await loadTokenizer("model/tiny");
 * equal(tok.decode(tok.encode("What is 2 + 2?")), "What is 2 + 2?");
 * ```
 */
export async function loadTokenizer(
  pathOrId: string,
  options: HubOptions = {},
): Promise<Tokenizer> {
  let dir = pathOrId;
  if (!(await isDirectory(pathOrId))) {
    if (!isHubId(pathOrId)) {
      throw new Error(`Tokenizer folder not found: ${pathOrId}`);
    }
    const { snapshot } = await hubDownloadMatching(
      pathOrId,
      isTokenizerFile,
      { ...options, repoType: "model" },
    );
    if (!snapshot.files.includes("tokenizer.json")) {
      throw new Error(
        `Model "${pathOrId}" has no tokenizer.json: only fast (tokenizer.json) tokenizers are supported`,
      );
    }
    dir = snapshot.dir;
  }
  for (const file of ["tokenizer.json", "tokenizer_config.json"]) {
    if (!(await isDirectory(dir)) || !(await Deno.stat(`${dir}/${file}`).catch(() => null))) {
      throw new Error(`Missing tokenizer file "${file}": ${dir}`);
    }
  }
  // Local folder only: transformers.js must neither download nor look in its own model folder.
  transformersEnv.allowLocalModels = true;
  transformersEnv.allowRemoteModels = false;
  transformersEnv.localModelPath = "";
  const absolute = dir.startsWith("/") ? dir : `${Deno.cwd()}/${dir}`;
  const hf = await AutoTokenizer.from_pretrained(absolute, {
    local_files_only: true,
  }) as unknown as HfTokenizer;
  const eos = hf.eos_token_id;
  if (eos === null || eos === undefined) {
    throw new Error(`Tokenizer has no EOS token: set "eos_token" in ${dir}/tokenizer_config.json`);
  }
  return wrap(hf, {
    chat: await findChatTemplate(absolute),
    eos,
    stopTokenIds: await readStopTokenIds(absolute, eos),
  });
}

function wrap(
  hf: HfTokenizer,
  files: { chat: { template: string | null; source: string }; eos: number; stopTokenIds: number[] },
): Tokenizer {
  const { chat, eos } = files;
  const pad = hf.pad_token_id ?? eos; // transformers.js already falls back to EOS; keep it explicit.
  const bos = hf.bos_token_id ?? null;
  const vocab = hf.get_vocab();
  const ids = vocab instanceof Map ? [...vocab.values()] : Object.values(vocab);
  // A loop, not Math.max(...ids): 150k arguments overflow V8's call stack (Qwen's vocabulary).
  let highest = -1;
  for (const id of [...ids, ...hf.all_special_ids]) if (id > highest) highest = id;
  const vocabSize = highest + 1;
  const template = chat.template;
  const probe = hf.encode("a", { add_special_tokens: true });
  const addsBos = bos !== null && probe[0] === bos;
  const specialTokenIds = [...hf.all_special_ids];
  const tokenText = (id: number) => hf.decode([id], { skip_special_tokens: false });
  const turnEnd: TurnEnd = template === null ? { tokenId: null, suffix: "" } : probeTurnEnd(
    (messages) =>
      hf.apply_chat_template(messages, {
        tokenize: false,
        add_generation_prompt: false,
        chat_template: template,
      }),
    {
      encode: (text) => hf.encode(text, { add_special_tokens: false }),
      specialTokenIds,
      tokenText,
    },
  );
  return {
    encode: (text, options = {}) =>
      hf.encode(text, { add_special_tokens: options.addSpecialTokens ?? true }),
    decode: (tokenIds, options = {}) =>
      tokenIds.length === 0
        ? ""
        : hf.decode(tokenIds, { skip_special_tokens: options.skipSpecialTokens ?? false }),
    applyChatTemplate: (messages, options = {}) =>
      template === null ? renderFallbackChat(messages, options) : hf.apply_chat_template(messages, {
        tokenize: false,
        add_generation_prompt: options.addGenerationPrompt ?? false,
        chat_template: template,
      }),
    hasChatTemplate: template !== null,
    chatTemplateSource: template === null
      ? `${chat.source}; using the base-model fallback "User: ...\\n\\nAssistant:"`
      : chat.source,
    bosTokenId: bos,
    eosTokenId: eos,
    stopTokenIds: files.stopTokenIds,
    turnEnd,
    templateWarning: suffixWarning(turnEnd),
    padTokenId: pad,
    vocabSize,
    specialTokenIds,
    addsBos,
    tokenText,
  };
}
