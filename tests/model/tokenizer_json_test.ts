import { deepStrictEqual, equal } from "node:assert/strict";
import { loadTokenizer, type Tokenizer } from "../../model/tokenizer.ts";
import { tokenizerFromJson } from "../../model/tokenizer_json.ts";
import { prepareData } from "../../data/dataset.ts";
import { addBos, TINY, tinyVariant } from "../_tiny_variant.ts";

/** The browser's tokenizer for a folder, built from its files' contents. */
async function fromFolder(dir: string): Promise<Tokenizer> {
  const read = async (f: string) => JSON.parse(await Deno.readTextFile(`${dir}/${f}`));
  const optional = (f: string) => read(f).catch(() => undefined);
  return tokenizerFromJson({
    tokenizer: await read("tokenizer.json"),
    config: await read("tokenizer_config.json"),
    modelConfig: await optional("config.json"),
    generationConfig: await optional("generation_config.json"),
  });
}

/** Everything of a tokenizer that is not a function. */
function fields(tok: Tokenizer): Record<string, unknown> {
  return Object.fromEntries(Object.entries(tok).filter(([, v]) => typeof v !== "function"));
}

Deno.test("tokenizerFromJson() has the special tokens, stop ids and turn end of loadTokenizer()", async () => {
  for (const dir of [TINY, await tinyVariant(addBos)]) {
    const [cli, web] = [await loadTokenizer(dir), await fromFolder(dir)];
    const a = fields(cli), b = fields(web);
    // Sources are worded per loader; that both have a template is what must agree.
    delete a.chatTemplateSource, delete b.chatTemplateSource;
    a.specialTokenIds = [...cli.specialTokenIds].sort();
    b.specialTokenIds = [...web.specialTokenIds].sort();
    deepStrictEqual(b, a, dir);
  }
});

Deno.test("tokenizerFromJson() gives the CLI's ids, chat texts and decodes", async () => {
  const [cli, web] = [await loadTokenizer(TINY), await fromFolder(TINY)];
  const texts = ["Ünïcödé 日本語 🙂 tabs\tand\r\nnewlines", "<|im_start|>user\nHi<|im_end|>"];
  const chats = [[{ role: "user", content: "What is 2 + 2?" }, {
    role: "assistant",
    content: "4",
  }]];
  for (
    const line of (await Deno.readTextFile("data/samples/ultrafeedback_sample.jsonl")).split("\n")
  ) {
    if (!line) continue;
    const row = JSON.parse(line);
    texts.push(row.prompt);
    chats.push(row.chosen, row.rejected);
  }
  for (const text of texts) {
    for (const addSpecialTokens of [true, false]) {
      deepStrictEqual(
        web.encode(text, { addSpecialTokens }),
        cli.encode(text, { addSpecialTokens }),
      );
    }
    const ids = cli.encode(text);
    for (const skipSpecialTokens of [true, false]) {
      equal(web.decode(ids, { skipSpecialTokens }), cli.decode(ids, { skipSpecialTokens }));
    }
  }
  for (const chat of chats) {
    for (const addGenerationPrompt of [true, false]) {
      equal(
        web.applyChatTemplate(chat, { addGenerationPrompt }),
        cli.applyChatTemplate(chat, { addGenerationPrompt }),
      );
    }
  }
});

Deno.test("tokenizerFromJson() prepares every sample dataset exactly as the CLI", async () => {
  const [cli, web] = [await loadTokenizer(TINY), await fromFolder(TINY)];
  for (const name of ["ultrafeedback_sample", "hh_sample", "unpaired_sample"]) {
    const config = { dataset_name: `data/samples/${name}.jsonl`, max_length: 64, eval_split: 0.1 };
    const [a, b] = [await prepareData(config, cli), await prepareData(config, web)];
    deepStrictEqual(b.train, a.train, name);
    deepStrictEqual(b.eval, a.eval, name);
    equal(b.skips.summary(0), a.skips.summary(0));
  }
});
