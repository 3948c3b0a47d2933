/**
 * Where a model folder keeps its chat template, found with the precedence transformers 5 uses
 * when `AutoTokenizer.from_pretrained` loads a folder:
 * 1. `chat_template.jinja` (the default template) and `additional_chat_templates/NAME.jinja`
 *    (named templates): when either exists, the templates in `tokenizer_config.json` are ignored;
 * 2. `tokenizer_config.json`'s `chat_template`: a string, or a list of `{name, template}`;
 * 3. `chat_template.json` (`{"chat_template": ...}`, the legacy file of a multimodal processor),
 *    which the tokenizer itself never reads; used here only when nothing above has a template, so
 *    such a folder is not silently trained in the base-model format.
 *
 * Of several named templates the one named `default` is used (transformers picks `tool_use` only
 * when tools are passed, and this trainer passes none). A folder without any template gets the
 * base-model fallback ({@linkcode renderFallbackChat}, below), and the returned `source` says why.
 *
 * @module
 */

/** One chat message, as in the `messages` a chat template renders. */
export interface ChatMessage {
  role: string;
  content: string;
}

/** The chat template a folder provides, and where it came from. */
export interface ChatTemplateChoice {
  /** The Jinja template, or null when the base-model fallback is used. */
  template: string | null;
  /**
   * One line for logs: the file (and template name) used, e.g. `chat_template.jinja`, or why
   * there is none, e.g. `none: no chat_template.jinja, ...`.
   */
  source: string;
}

/** The file of a folder holding the default template (transformers' `CHAT_TEMPLATE_FILE`). */
export const CHAT_TEMPLATE_FILE = "chat_template.jinja";
/** The folder of named templates (transformers' `CHAT_TEMPLATE_DIR`). */
export const CHAT_TEMPLATE_DIR = "additional_chat_templates";
/** The legacy processor file (transformers' `LEGACY_PROCESSOR_CHAT_TEMPLATE_FILE`). */
export const LEGACY_CHAT_TEMPLATE_FILE = "chat_template.json";

async function readText(path: string): Promise<string | null> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

async function namedTemplateFiles(dir: string): Promise<Record<string, string>> {
  const named: Record<string, string> = {};
  try {
    for await (const entry of Deno.readDir(`${dir}/${CHAT_TEMPLATE_DIR}`)) {
      if (!entry.isFile || !entry.name.endsWith(".jinja")) continue;
      const name = entry.name.slice(0, -".jinja".length);
      named[name] = await Deno.readTextFile(`${dir}/${CHAT_TEMPLATE_DIR}/${entry.name}`);
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return named;
}

/** Picks the `default` of named templates, as transformers' `get_chat_template` does without tools. */
function pickDefault(
  named: Record<string, string>,
  where: (name: string) => string,
): ChatTemplateChoice {
  if ("default" in named) return { template: named.default, source: where("default") };
  return {
    template: null,
    source: `none: ${where("*")} has templates named ${
      Object.keys(named).sort().join(", ")
    } but none named "default" (rename the one to train with to "default")`,
  };
}

/**
 * Finds the chat template of a tokenizer folder (see the module doc for the precedence).
 *
 * @param dir The folder holding tokenizer_config.json and any template files.
 * @returns The template (or null) and a one-line description of its source.
 * @throws {Error} When tokenizer_config.json or chat_template.json is not valid JSON, or a
 *   `chat_template` value is neither a string nor a list of `{name, template}`.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * const choice = await findChatTemplate("model/tiny");
 * equal(choice.source, "tokenizer_config.json");
 * equal(choice.template?.includes("<|im_start|>"), true);
 * ```
 */
export async function findChatTemplate(dir: string): Promise<ChatTemplateChoice> {
  const jinja = await readText(`${dir}/${CHAT_TEMPLATE_FILE}`);
  const named = await namedTemplateFiles(dir);
  if (jinja !== null) named.default = jinja;
  if (Object.keys(named).length > 0) {
    return pickDefault(
      named,
      (name) =>
        name === "default" && jinja !== null
          ? CHAT_TEMPLATE_FILE
          : `${CHAT_TEMPLATE_DIR}/${name}.jinja`,
    );
  }
  const configText = await readText(`${dir}/tokenizer_config.json`);
  const config = configText === null ? {} : parseJson(configText, `${dir}/tokenizer_config.json`);
  const fromConfig = config.chat_template;
  if (typeof fromConfig === "string") {
    return { template: fromConfig, source: "tokenizer_config.json" };
  }
  if (Array.isArray(fromConfig)) {
    const list: Record<string, string> = {};
    for (const entry of fromConfig) {
      if (typeof entry?.name !== "string" || typeof entry?.template !== "string") {
        throw new Error(
          `Bad "chat_template" in ${dir}/tokenizer_config.json: a list must hold {"name", "template"} strings`,
        );
      }
      list[entry.name] = entry.template;
    }
    return pickDefault(list, (name) => `tokenizer_config.json (template "${name}")`);
  }
  if (fromConfig !== undefined && fromConfig !== null) {
    throw new Error(
      `Bad "chat_template" in ${dir}/tokenizer_config.json: expected a string or a list of {"name", "template"}`,
    );
  }
  const legacyText = await readText(`${dir}/${LEGACY_CHAT_TEMPLATE_FILE}`);
  if (legacyText !== null) {
    const legacy = parseJson(legacyText, `${dir}/${LEGACY_CHAT_TEMPLATE_FILE}`).chat_template;
    if (typeof legacy !== "string") {
      throw new Error(
        `Bad ${dir}/${LEGACY_CHAT_TEMPLATE_FILE}: expected {"chat_template": "<jinja text>"}`,
      );
    }
    return { template: legacy, source: LEGACY_CHAT_TEMPLATE_FILE };
  }
  return {
    template: null,
    source:
      `none: no ${CHAT_TEMPLATE_FILE}, ${CHAT_TEMPLATE_DIR}/, "chat_template" in tokenizer_config.json or ${LEGACY_CHAT_TEMPLATE_FILE} (a base model)`,
  };
}

// deno-lint-ignore no-explicit-any
function parseJson(text: string, path: string): Record<string, any> {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`Cannot parse ${path}: ${(e as Error).message}`);
  }
}

/**
 * The chat rendering used when a tokenizer has no chat template (base models): HH-RLHF's plain
 * transcript, `Role: content` turns separated by a blank line, e.g.
 * `User: What is 2 + 2?\n\nAssistant: 4`. The generation prompt is `\n\nAssistant:` so the
 * completion is ` answer`, and rendering a longer conversation extends a shorter one exactly.
 *
 * @param messages The conversation.
 * @param options `addGenerationPrompt` appends the assistant's turn header.
 * @returns The transcript text.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * equal(
 *   renderFallbackChat([{ role: "user", content: "Hi" }], { addGenerationPrompt: true }),
 *   "User: Hi\n\nAssistant:",
 * );
 * ```
 */
export function renderFallbackChat(
  messages: ChatMessage[],
  options: { addGenerationPrompt?: boolean } = {},
): string {
  const turn = (m: ChatMessage) =>
    `${m.role[0]?.toUpperCase() ?? ""}${m.role.slice(1)}: ${m.content}`;
  const text = messages.map(turn).join("\n\n");
  if (!options.addGenerationPrompt) return text;
  return messages.length ? `${text}\n\nAssistant:` : "Assistant:";
}
