import { equal, match, ok, rejects } from "node:assert/strict";
import { dataReport } from "../../data/cli.ts";

/** The completion mask lines of the report, e.g. "000111" per row. */
const maskLines = (
  report: string,
) => [...report.matchAll(/mask ([01]+) {2}\(loss on (\d+) of (\d+) tokens\)/g)];

Deno.test("dataReport() shows templating, tokens and masks for the UltraFeedback sample", async () => {
  const report = await dataReport([
    "--dataset",
    "data/samples/ultrafeedback_sample.jsonl",
    "--limit",
    "2",
  ]);
  match(report, /format: conversational \(detected\)/);
  match(report, /templated prompt: "<\|im_start\|>user\\n/);
  equal([...report.matchAll(/── Example/g)].length, 2);
  const masks = maskLines(report);
  equal(masks.length, 4);
  for (const [, mask, loss, width] of masks) {
    equal(mask.length, Number(width));
    equal(mask.replaceAll("0", "").length, Number(loss));
    match(mask, /^0+1+0*$/, "prompt, then completion, then padding");
  }
  match(report, /Kept 480 examples, skipped 0/);
});

Deno.test("dataReport() shows HH and unpaired files, truncation and skips", async () => {
  const hh = await dataReport([
    "--dataset",
    "data/samples/hh_sample.jsonl",
    "--limit",
    "3",
    "--max_length",
    "24",
    "--truncation_mode",
    "keep_start",
  ]);
  match(hh, /format: hh_rlhf/);
  match(hh, /truncated from \d+/);
  match(hh, /skipped: empty_completion_after_truncation: row 2:/);
  match(hh, /skipped\/empty_completion_after_truncation: \d+/);
  const unpaired = await dataReport([
    "--dataset",
    "data/samples/unpaired_sample.jsonl",
    "--limit",
    "1",
  ]);
  match(unpaired, /format: unpaired/);
  match(unpaired, /completion \(label (desirable|undesirable)\)/);
  equal(maskLines(unpaired).length, 1);
  const kto = await dataReport([
    "--dataset",
    "data/samples/hh_sample.jsonl",
    "--limit",
    "1",
    "--kind",
    "unpaired",
  ]);
  ok(kto.includes("label desirable") && /Kept 24 examples/.test(kto), kto.slice(-200));
});

Deno.test("dataReport() rejects bad arguments", async () => {
  await rejects(() => dataReport([]), /Missing --dataset/);
  await rejects(() => dataReport(["--dataset", "x.jsonl", "--limit", "0"]), /Invalid --limit 0/);
  await rejects(() => dataReport(["--dataset", "x.jsonl", "--bogus"]), /bogus/);
});

Deno.test("dataReport() names the chat template file of a transformers 5 folder", async () => {
  const report = await dataReport([
    "--dataset",
    "data/samples/ultrafeedback_sample.jsonl",
    "--model",
    "tests/fixtures/hf_saved/olmo2_jinja",
    "--limit",
    "1",
  ]);
  match(report, /chat template: chat_template\.jinja; completions end with 510 "<\|im_end\|>"\n/);
  match(report, /templated prompt: "<\|im_start\|>USER: /);
});

Deno.test("dataReport() takes train's --dataset_name and --model_name_or_path too", async () => {
  const args = ["--limit", "1", "--max_samples", "4"];
  const short = await dataReport([
    ...args,
    "--dataset",
    "data/samples/hh_sample.jsonl",
    "--model",
    "model/tiny",
  ]);
  const long = await dataReport([
    ...args,
    "--dataset_name",
    "data/samples/hh_sample.jsonl",
    "--model_name_or_path",
    "model/tiny",
  ]);
  equal(long, short);
  await rejects(
    dataReport(["--dataset", "a.jsonl", "--dataset_name", "b.jsonl"]),
    /^Error: Conflicting --dataset a\.jsonl and --dataset_name b\.jsonl: keep one$/,
  );
});

Deno.test("dataReport() refuses a file that is not UTF-8 instead of showing replacement characters", async () => {
  const dir = await Deno.makeTempDir();
  const line = new TextEncoder().encode('{"chosen": "caf?", "rejected": "no"}\n');
  line[line.indexOf(0x3f)] = 0xe9; // "é" in cp1252
  await Deno.writeFile(`${dir}/d.jsonl`, line);
  await rejects(
    dataReport(["--dataset_name", `${dir}/d.jsonl`]),
    new RegExp(`^Error: Invalid UTF-8 on line 1 of ${dir}/d\\.jsonl: save the file as UTF-8`),
  );
  await Deno.remove(dir, { recursive: true });
});
