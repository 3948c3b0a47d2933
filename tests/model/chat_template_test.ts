/**
 * Chat templates from every place Hugging Face keeps them, with transformers' precedence; the
 * folders under tests/fixtures/hf_saved were written by transformers 5.17's save_pretrained
 * (tools/make_template_fixtures.py), and expected.json holds transformers' own renderings.
 */
import { deepStrictEqual, equal, match } from "node:assert/strict";
import { findChatTemplate } from "../../model/chat_template.ts";
import { loadTokenizer } from "../../model/tokenizer.ts";
import { loadConfig, loadWeights } from "../../model/mod.ts";
import { tinyVariant } from "../_tiny_variant.ts";

const SAVED = "tests/fixtures/hf_saved";
const expected = JSON.parse(await Deno.readTextFile(`${SAVED}/expected.json`));
const conversation = expected.conversation;

for (const name of ["olmo2_jinja", "named"]) {
  Deno.test(`loadTokenizer() renders a folder saved by transformers 5.17 (${name}) as transformers does`, async () => {
    const tok = await loadTokenizer(`${SAVED}/${name}`);
    equal(tok.chatTemplateSource, "chat_template.jinja");
    equal(
      tok.applyChatTemplate(conversation.slice(0, 1), { addGenerationPrompt: true }),
      expected[name].prompt,
    );
    equal(tok.applyChatTemplate(conversation), expected[name].full);
  });
}

Deno.test("the transformers-saved Olmo2 folder loads as a bfloat16 model", async () => {
  const config = await loadConfig(`${SAVED}/olmo2_jinja`);
  equal(config.model_type, "olmo2");
  const weights = await loadWeights(`${SAVED}/olmo2_jinja`, config);
  equal(weights["model.embed_tokens.weight"].shape.join(), "512,4");
});

/** A tiny-tokenizer folder plus extra template files. */
async function variant(files: Record<string, string>, configTemplate?: unknown): Promise<string> {
  const dir = await tinyVariant((_, config) => {
    if (configTemplate === undefined) delete config.chat_template;
    else config.chat_template = configTemplate;
  });
  for (const [path, text] of Object.entries(files)) {
    if (path.includes("/")) {
      await Deno.mkdir(`${dir}/${path.slice(0, path.lastIndexOf("/"))}`, { recursive: true });
    }
    await Deno.writeTextFile(`${dir}/${path}`, text);
  }
  return dir;
}

Deno.test("findChatTemplate() follows transformers' precedence", async () => {
  const cases: [Record<string, string>, unknown, string | null, string][] = [
    // chat_template.jinja beats tokenizer_config.json and chat_template.json.
    [
      { "chat_template.jinja": "J", "chat_template.json": '{"chat_template": "L"}' },
      "C",
      "J",
      "chat_template.jinja",
    ],
    // A named default in additional_chat_templates/ also replaces the config's template.
    [
      { "additional_chat_templates/default.jinja": "D" },
      "C",
      "D",
      "additional_chat_templates/default.jinja",
    ],
    // tokenizer_config.json beats the legacy processor file.
    [{ "chat_template.json": '{"chat_template": "L"}' }, "C", "C", "tokenizer_config.json"],
    [
      {},
      [{ name: "tool_use", template: "T" }, { name: "default", template: "D" }],
      "D",
      'tokenizer_config.json (template "default")',
    ],
    [{ "chat_template.json": '{"chat_template": "L"}' }, undefined, "L", "chat_template.json"],
  ];
  for (const [files, configTemplate, template, source] of cases) {
    const dir = await variant(files, configTemplate);
    deepStrictEqual(await findChatTemplate(dir), { template, source });
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("findChatTemplate() says why the base-model fallback is used", async () => {
  const none = await variant({});
  const choice = await findChatTemplate(none);
  equal(choice.template, null);
  match(choice.source, /^none: no chat_template\.jinja, .*tokenizer_config\.json/);
  const tok = await loadTokenizer(none);
  equal(tok.hasChatTemplate, false);
  equal(
    tok.chatTemplateSource,
    `${choice.source}; using the base-model fallback "User: ...\\n\\nAssistant:"`,
  );
  const noDefault = await variant({ "additional_chat_templates/tool_use.jinja": "T" }, "C");
  match((await findChatTemplate(noDefault)).source, /^none: .*tool_use but none named "default"/);
  for (const dir of [none, noDefault]) await Deno.remove(dir, { recursive: true });
});

Deno.test("findChatTemplate() names the file of a malformed template", async () => {
  const dir = await variant({ "chat_template.json": '{"template": "x"}' });
  const error = await findChatTemplate(dir).then(() => null, (e) => e as Error);
  match(error?.message ?? "", /chat_template\.json: expected \{"chat_template"/);
  await Deno.remove(dir, { recursive: true });
});
