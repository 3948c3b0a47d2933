/** Online DPO end to end on the tiny model: the judge's preference moves the policy; ties and judge failures are counted and skipped. */
import assert from "node:assert/strict";
import { train } from "../train.ts";

Deno.env.set("DA_CACHE_DIR", await Deno.makeTempDir({ prefix: "da-cache-" }));

async function run(args: string[]) {
  const out = await Deno.makeTempDir({ prefix: "da-online-" });
  const result = await train(["--loss", "online_dpo", "--output_dir", out, ...args], {
    quiet: true,
  });
  return { ...result, out, rows: result.rows.filter((r) => "loss" in r) };
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

Deno.test("online_dpo with the shorter-answer judge shortens the policy's completions", async () => {
  const { rows, out } = await run([
    "--max_steps",
    "30",
    "--max_new_tokens",
    "32",
    "--eval_steps",
    "0",
  ]);
  const lengths = rows.map((r) => r["completions/mean_length"]);
  const [first, last] = [mean(lengths.slice(0, 5)), mean(lengths.slice(-5))];
  assert.ok(last < 0.8 * first, `mean completion length went from ${first} to ${last}`);
  const samples = (await Deno.readTextFile(`${out}/samples.jsonl`)).trim().split("\n");
  const first_ = JSON.parse(samples[0]);
  assert.ok("prompt" in first_ && "a" in first_ && "b" in first_ && "verdict" in first_);
  await Deno.remove(out, { recursive: true });
});

Deno.test("online_dpo counts and skips ties and judge failures", async () => {
  const dir = await Deno.makeTempDir();
  const judge = `${dir}/flaky.ts`;
  await Deno.writeTextFile(
    judge,
    `import { JudgeFailure } from "${new URL("../judges/mod.ts", import.meta.url).href}";
let calls = 0;
export function judge(_p: string, a: string, b: string) {
  calls++;
  if (calls % 3 === 0) throw new JudgeFailure("judge is down", "timeout");
  if (calls % 3 === 1) return "tie";
  return a.length <= b.length ? "a" : "b";
}`,
  );
  const { rows, out } = await run(["--max_steps", "4", "--judge", judge, "--eval_steps", "0"]);
  assert.equal(rows.length, 4);
  const failures = rows.reduce((n, r) => n + r["judge/failures"], 0);
  assert.ok(failures > 0, "failures were counted");
  assert.ok(rows.every((r) => r["judge/ties"] > 0.2), "ties were counted");
  assert.ok(rows.every((r) => r["judge/pairs"] < 8), "only decided pairs train");

  await Deno.writeTextFile(`${dir}/ties.ts`, `export const judge = () => "tie";`);
  const tiesOut = await Deno.makeTempDir({ prefix: "da-online-" });
  await assert.rejects(
    train([
      "--loss",
      "online_dpo",
      "--output_dir",
      tiesOut,
      "--max_steps",
      "2",
      "--judge",
      `${dir}/ties.ts`,
      "--eval_steps",
      "0",
    ], { quiet: true }),
    /^Error: No step was applied: all 2 steps were skipped \(no_judged_pair 2\)/,
  );
  const logged = (await Deno.readTextFile(`${tiesOut}/metrics.jsonl`)).trim().split("\n")
    .map((line) => JSON.parse(line)).filter((r) => "judge/ties" in r);
  assert.deepEqual(logged.map((r) => [r["judge/ties"], r["skipped/no_judged_pair"]]), [
    [1, 1],
    [1, 2],
  ]);
  assert.ok(logged.every((r) => !("loss" in r)), "no step trains without a decided pair");
  for (const d of [dir, out, tiesOut]) await Deno.remove(d, { recursive: true });
});

Deno.test("online_dpo reads a prompt-only dataset through the chat template", async () => {
  const dir = await Deno.makeTempDir();
  const rows = ["What is 2 + 2?", "Name the color of grass.", "Say hello.", "What is 3 + 5?"];
  await Deno.writeTextFile(
    `${dir}/prompts.jsonl`,
    rows.map((prompt) => JSON.stringify({ prompt })).join("\n") + "\n",
  );
  const { rows: logged, out } = await run([
    "--dataset_name",
    `${dir}/prompts.jsonl`,
    "--max_steps",
    "2",
    "--per_device_train_batch_size",
    "4",
  ]);
  assert.ok(logged.length > 0, "at least one step had a decided pair");
  const samples = (await Deno.readTextFile(`${out}/samples.jsonl`)).trim().split("\n")
    .map((line) => JSON.parse(line));
  assert.equal(samples.length, 8); // 2 steps × 4 prompts
  assert.ok(samples.every((s) => s.prompt.startsWith("<|im_start|>user\n")));
  assert.ok(rows.some((r) => samples[0].prompt.includes(r)));
  for (const d of [dir, out]) await Deno.remove(d, { recursive: true });
});
