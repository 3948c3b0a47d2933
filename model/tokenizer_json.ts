/**
 * A tokenizer built from the contents of `tokenizer.json` and `tokenizer_config.json` (no file
 * system, no transformers.js): what the browser page uses. Tokenization is `@huggingface/tokenizers`
 * and chat templates are rendered by `@huggingface/jinja`, the two libraries transformers.js
 * itself runs, so ids and texts match `loadTokenizer` (checked in tests/model/tokenizer_json_test.ts).
 *
 * @module
 */
import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import { Template } from "@huggingface/jinja";
import { renderFallbackChat } from "./chat_template.ts";
import type { ChatMessage } from "./chat_template.ts";
import type { Tokenizer } from "./tokenizer.ts";
import { probeTurnEnd, stopTokenIdsOf, suffixWarning, type TurnEnd } from "./turn_end.ts";

/** The parsed tokenizer files. */
export interface TokenizerFiles {
  /** `tokenizer.json`, parsed. */
  tokenizer: Record<string, unknown>;
  /** `tokenizer_config.json`, parsed. */
  config: Record<string, unknown>;
  /** The text of `chat_template.jinja`, which wins over the config's `chat_template`. */
  chatTemplateJinja?: string;
  /** `generation_config.json`, parsed (its `eos_token_id` adds stop tokens). */
  generationConfig?: Record<string, unknown>;
  /** The model's `config.json`, parsed. */
  modelConfig?: Record<string, unknown>;
}

/** A special token's text: tokenizer_config.json holds a string or an `{content}` object. */
function specialText(value: unknown): string | null {
  if (typeof value === "string") return value;
  if (value && typeof value === "object" && "content" in value) {
    return String((value as { content: unknown }).content);
  }
  return null;
}

/**
 * Builds a tokenizer from its files' contents.
 *
 * @param files Parsed tokenizer.json and tokenizer_config.json; chat_template.jinja, config.json and
 *   generation_config.json when the model has them.
 * @returns The same interface `loadTokenizer` returns.
 * @example
 * ```ts
 * import { tokenizerFromJson } from "./tokenizer_json.ts";
 * const read = (f: string) => JSON.parse(Deno.readTextFileSync(`model/tiny/${f}`));
 * const tok = tokenizerFromJson({
 *   tokenizer: read("tokenizer.json"),
 *   config: read("tokenizer_config.json"),
 * });
 * if (tok.decode(tok.encode("What is 2 + 2?")) !== "What is 2 + 2?") throw new Error("unexpected");
 * ```
 */
export function tokenizerFromJson(files: TokenizerFiles): Tokenizer {
  const hf = new HfTokenizer(files.tokenizer, files.config);
  const special = (key: string) => specialText(files.config[key]);
  const idOf = (key: string) => {
    const text = special(key);
    if (text === null) return null;
    const id = hf.token_to_id(text);
    if (id === undefined) {
      throw new Error(`tokenizer_config.json: ${key} "${text}" is not a token of tokenizer.json`);
    }
    return id;
  };
  const eos = idOf("eos_token");
  if (eos === null) {
    throw new Error('Tokenizer has no EOS token: set "eos_token" in tokenizer_config.json');
  }
  const bos = idOf("bos_token");
  const pad = idOf("pad_token") ?? eos;
  const fromConfig = files.config.chat_template;
  if (fromConfig !== undefined && fromConfig !== null && typeof fromConfig !== "string") {
    throw new Error(
      'tokenizer_config.json: only a single "chat_template" string is supported here, ' +
        "not a list of named templates: save the one to use as chat_template.jinja",
    );
  }
  const source = files.chatTemplateJinja !== undefined
    ? "chat_template.jinja"
    : typeof fromConfig === "string"
    ? "tokenizer_config.json"
    : null;
  const template = source === null
    ? null
    : new Template(files.chatTemplateJinja ?? fromConfig as string);
  // The special tokens a template may name, as transformers.js passes them.
  const context: Record<string, unknown> = {};
  for (const key of ["bos_token", "eos_token", "pad_token", "unk_token"]) {
    const text = special(key);
    if (text !== null) context[key] = text;
  }
  const specialIds = [...hf.get_added_tokens_decoder()].filter(([, t]) => t.special).map(([id]) =>
    id
  );
  let highest = -1;
  for (const id of hf.get_vocab(true).values()) if (id > highest) highest = id;
  const probe = hf.encode("a", { add_special_tokens: true }).ids;
  const render = (messages: ChatMessage[], options: { addGenerationPrompt?: boolean } = {}) =>
    template === null ? renderFallbackChat(messages, options) : template.render({
      ...context,
      messages,
      add_generation_prompt: options.addGenerationPrompt ?? false,
    });
  const tokenText = (id: number) => hf.decode([id], { skip_special_tokens: false });
  const turnEnd: TurnEnd = template === null ? { tokenId: null, suffix: "" } : probeTurnEnd(
    render,
    {
      encode: (text) => hf.encode(text, { add_special_tokens: false }).ids,
      specialTokenIds: specialIds,
      tokenText,
    },
  );
  const stopTokenIds = stopTokenIdsOf(eos, {
    "generation_config.json": files.generationConfig ?? null,
    "config.json": files.modelConfig ?? null,
  }, "the model");
  return {
    encode: (text, options = {}) =>
      hf.encode(text, { add_special_tokens: options.addSpecialTokens ?? true }).ids,
    decode: (ids, options = {}) =>
      ids.length === 0
        ? ""
        : hf.decode(ids, { skip_special_tokens: options.skipSpecialTokens ?? false }),
    applyChatTemplate: render,
    hasChatTemplate: template !== null,
    chatTemplateSource: source ?? 'none; using the base-model fallback "User: ...\\n\\nAssistant:"',
    bosTokenId: bos,
    eosTokenId: eos,
    stopTokenIds,
    turnEnd,
    templateWarning: suffixWarning(turnEnd),
    padTokenId: pad,
    vocabSize: highest + 1,
    specialTokenIds: specialIds,
    addsBos: bos !== null && probe[0] === bos,
    tokenText,
  };
}

/**
 * {@linkcode tokenizerFromJson} from the files' texts by name, as fetched or uploaded.
 *
 * @param texts `tokenizer.json`, `tokenizer_config.json` and, when the model has them,
 *   `chat_template.jinja` and `generation_config.json`, by file name.
 * @param modelConfig The model's `config.json`, parsed.
 * @returns The tokenizer.
 * @example
 * ```ts
 * import { tokenizerFromTexts } from "./tokenizer_json.ts";
 * const texts = Object.fromEntries(["tokenizer.json", "tokenizer_config.json"].map((f) =>
 *   [f, Deno.readTextFileSync(`model/tiny/${f}`)]
 * ));
 * if (tokenizerFromTexts(texts).decode(tokenizerFromTexts(texts).encode("hi")) !== "hi") {
 *   throw new Error("unexpected");
 * }
 * ```
 */
export function tokenizerFromTexts(
  texts: Record<string, string>,
  modelConfig?: Record<string, unknown>,
): Tokenizer {
  const json = (name: string) => texts[name] === undefined ? undefined : JSON.parse(texts[name]);
  return tokenizerFromJson({
    tokenizer: json("tokenizer.json"),
    config: json("tokenizer_config.json"),
    chatTemplateJinja: texts["chat_template.jinja"],
    generationConfig: json("generation_config.json"),
    modelConfig,
  });
}
