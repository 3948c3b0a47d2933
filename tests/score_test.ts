/** `deno task score` on the embedded model, a local HF folder and pre-tokenized rows. */
import { deepStrictEqual, equal, ok, rejects } from "node:assert/strict";
import { loadModel, saveModel } from "../model/mod.ts";
import { score } from "../score.ts";

Deno.test("score() prints chosen and rejected log-probs for the embedded model", async () => {
  const { lines } = await score(["--data", "data/samples/hh_sample.jsonl", "--max_samples", "4"]);
  equal(lines.length, 4);
  for (const line of lines) {
    const { chosen, rejected } = JSON.parse(line);
    for (const s of [chosen, rejected]) {
      ok(s.logp_sum < 0 && s.tokens > 0, line);
      ok(Math.abs(s.logp_mean - s.logp_sum / s.tokens) < 1e-5, line);
    }
  }
});

Deno.test("score() gives the same numbers for a saved local HF folder", async () => {
  const tiny = await loadModel("model/tiny");
  const tmp = await Deno.makeTempDir();
  await saveModel(`${tmp}/copy`, tiny, { tokenizerDir: "model/tiny" });
  const args = ["--data", "data/samples/ultrafeedback_sample.jsonl", "--max_samples", "5"];
  const a = await score(args);
  const b = await score([...args, "--model", `${tmp}/copy`, "--batch_size", "2"]);
  const values = (lines: string[]) => lines.map((l) => JSON.parse(l));
  const [x, y] = [values(a.lines), values(b.lines)];
  equal(y.length, 5);
  x.forEach((line, i) => {
    equal(y[i].row, line.row);
    for (const key of ["chosen", "rejected"]) {
      equal(y[i][key].tokens, line[key].tokens);
      ok(Math.abs(y[i][key].logp_sum - line[key].logp_sum) < 1e-4, `${key} of row ${line.row}`);
    }
  });
  await Deno.remove(tmp, { recursive: true });
});

Deno.test("score() reads pre-tokenized and unpaired rows", async () => {
  const tmp = await Deno.makeTempDir();
  await Deno.writeTextFile(
    `${tmp}/tok.jsonl`,
    JSON.stringify({
      prompt_input_ids: [509, 40, 41],
      chosen_input_ids: [50, 51, 510],
      rejected_input_ids: [60, 510],
    }) + "\n",
  );
  const paired = await score(["--data", `${tmp}/tok.jsonl`]);
  const line = JSON.parse(paired.lines[0]);
  deepStrictEqual([line.chosen.tokens, line.rejected.tokens], [3, 2]);
  const unpaired = await score([
    "--data",
    "data/samples/unpaired_sample.jsonl",
    "--max_samples",
    "2",
  ]);
  const u = JSON.parse(unpaired.lines[0]);
  equal(typeof u.label, "boolean");
  ok(u.completion.tokens > 0);
  await Deno.remove(tmp, { recursive: true });
});

Deno.test("score() requires --data", async () => {
  await rejects(() => score([]), /Missing --data/);
});
