import { deepStrictEqual, equal, match, ok, rejects } from "node:assert/strict";
import { epochBatches, prepareData } from "../../data/dataset.ts";
import type { PairedExample, UnpairedExample } from "../../data/types.ts";
import { loadTokenizer } from "../../model/tokenizer.ts";
import { TINY } from "../_tiny_variant.ts";

const tok = await loadTokenizer(TINY);
const SAMPLES = "data/samples";

async function jsonl(rows: unknown[]): Promise<string> {
  const path = await Deno.makeTempFile({ suffix: ".jsonl" });
  await Deno.writeTextFile(path, rows.map((r) => JSON.stringify(r)).join("\n"));
  return path;
}

Deno.test("prepareData() reads the UltraFeedback sample with scores and a seeded eval split", async () => {
  const lines = (await Deno.readTextFile(`${SAMPLES}/ultrafeedback_sample.jsonl`)).trim().split(
    "\n",
  );
  const data = await prepareData({
    dataset_name: `${SAMPLES}/ultrafeedback_sample.jsonl`,
    eval_split: 0.1,
    seed: 1,
  }, tok);
  equal(data.format, "conversational");
  equal(data.kind, "paired");
  equal(data.skips.total, 0);
  equal(data.train.length + data.eval.length, lines.length);
  equal(data.eval.length, Math.round(lines.length * 0.1));
  const rows = new Set([...data.train, ...data.eval].map((e) => e.row));
  equal(rows.size, lines.length, "every row lands in exactly one split");
  const again = await prepareData({
    dataset_name: `${SAMPLES}/ultrafeedback_sample.jsonl`,
    eval_split: 0.1,
    seed: 1,
  }, tok);
  deepStrictEqual(again.eval.map((e) => e.row), data.eval.map((e) => e.row));
  const first = data.train.find((e) => e.row === 0) as PairedExample;
  const row0 = JSON.parse(lines[0]);
  deepStrictEqual(first.extras, {
    score_chosen: row0.score_chosen,
    score_rejected: row0.score_rejected,
  });
  equal(tok.decode(first.chosenIds), `${row0.chosen[1].content}<|im_end|>`);
  ok(
    first.chosenIds.length <= 40 && first.rejectedIds.length <= 40,
    "sample completions stay short",
  );
});

Deno.test("prepareData() reads the HH and unpaired samples", async () => {
  const hh = await prepareData({ dataset_name: `${SAMPLES}/hh_sample.jsonl` }, tok);
  equal(hh.format, "hh_rlhf");
  ok(hh.train.every((e) => tok.decode(e.promptIds).endsWith("\n\nAssistant:")));
  const unpaired = await prepareData({ dataset_name: `${SAMPLES}/unpaired_sample.jsonl` }, tok);
  equal(unpaired.format, "unpaired");
  const labels = (unpaired.train as UnpairedExample[]).map((e) => e.label);
  ok(labels.includes(true) && labels.includes(false));
});

Deno.test("prepareData() unpairs pairs for KTO and refuses unpaired data for paired losses", async () => {
  const paired = await prepareData({ dataset_name: `${SAMPLES}/hh_sample.jsonl` }, tok);
  const unpaired = await prepareData({ dataset_name: `${SAMPLES}/hh_sample.jsonl` }, tok, {
    kind: "unpaired",
  });
  equal(unpaired.kind, "unpaired");
  equal(unpaired.train.length, 2 * paired.train.length);
  await rejects(
    () =>
      prepareData({ dataset_name: `${SAMPLES}/unpaired_sample.jsonl` }, tok, { kind: "paired" }),
    /algorithm needs chosen\/rejected pairs/,
  );
});

Deno.test("prepareData() counts every skipped row by reason", async () => {
  const path = await jsonl([
    { prompt: "Q", chosen: " A", rejected: " B" },
    { prompt: null, chosen: " A", rejected: " B" },
    { prompt: "Q", chosen: "", rejected: " B" },
    { prompt: "Q", chosen: " same", rejected: " same" },
    { prompt: "Q", chosen: 7, rejected: " B" },
    { prompt: "Q ".repeat(50), chosen: " A", rejected: " B" },
    { prompt: "Q2", chosen: " A2", rejected: " B2" },
  ]);
  const data = await prepareData(
    { dataset_name: path, max_length: 20, truncation_mode: "keep_start", eval_split: 0 },
    tok,
  );
  deepStrictEqual(data.train.map((e) => e.row), [0, 6]);
  deepStrictEqual(data.skips.metrics(), {
    "skipped/null_field": 1,
    "skipped/empty_field": 1,
    "skipped/identical_chosen_rejected": 1,
    "skipped/non_string_content": 1,
    "skipped/empty_completion_after_truncation": 1,
  });
  const summary = data.skips.summary(data.train.length);
  match(summary, /^Kept 2 examples, skipped 5/);
  match(summary, /skipped\/null_field: 1 \(row 1: field "prompt" is null\)/);
  const bad = await jsonl([{ prompt: null, chosen: " A", rejected: " B" }]);
  await rejects(
    () => prepareData({ dataset_name: bad }, tok),
    /No usable examples[^]*skipped\/null_field: 1/,
  );
  await rejects(
    async () => prepareData({ dataset_name: await jsonl([{ question: "Q" }]) }, tok),
    /found question/,
  );
});

Deno.test("prepareData() honours max_samples and the format override", async () => {
  const data = await prepareData({
    dataset_name: `${SAMPLES}/ultrafeedback_sample.jsonl`,
    max_samples: 5,
    eval_split: 0,
  }, tok);
  deepStrictEqual(data.train.map((e) => e.row), [0, 1, 2, 3, 4]);
  await rejects(
    () => prepareData({ dataset_name: `${SAMPLES}/hh_sample.jsonl`, format: "unpaired" }, tok),
    /Missing columns for format "unpaired".*prompt, completion, label/,
  );
});

Deno.test("epochBatches() pads each batch to its own longest sequence", async () => {
  const data = await prepareData({
    dataset_name: `${SAMPLES}/ultrafeedback_sample.jsonl`,
    max_samples: 40,
  }, tok);
  const batches = [
    ...epochBatches(data.train, { batch_size: 8, seed: 0, padTokenId: tok.padTokenId }),
  ];
  equal(batches.length, 5);
  const widths = new Set<number>();
  for (const b of batches) {
    if (b.kind !== "paired") throw new Error("Expected paired batches");
    const longest = Math.max(...b.indices.map((i) => {
      const e = data.train[i] as PairedExample;
      return e.promptIds.length + Math.max(e.chosenIds.length, e.rejectedIds.length);
    }));
    equal(b.shape[1], longest);
    equal(b.shape[0], 2 * b.pairs);
    widths.add(b.shape[1]);
  }
  ok(widths.size > 1, "batches differ in width, not all max_length");
});
