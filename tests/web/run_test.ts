import { deepEqual, equal, match, ok, rejects } from "node:assert/strict";
import { unzipSync } from "fflate";
import { score } from "../../score.ts";
import { train } from "../../train.ts";
import type { MetricsRow } from "../../trainer/log.ts";
import { PageRun } from "../../web/run.ts";
import { tinyFiles, tinySettings } from "./_tiny_files.ts";

const SAMPLE = "data/samples/ultrafeedback_sample.jsonl";

Deno.test("PageRun (on Deno's runtime) raises held-out reward accuracy and its checkpoint scores as shown", async () => {
  const run = await PageRun.create(await tinyFiles(), {
    data: { text: await Deno.readTextFile(SAMPLE), name: "ultrafeedback_sample.jsonl" },
    settings: await tinySettings({ loss: "dpo", max_steps: "30" }),
  });
  const dir = await Deno.makeTempDir();
  try {
    const before = (await run.session.evaluate())!["eval_rewards/accuracies"];
    for (let i = 0; i < 30; i++) await run.advance();
    const after = (await run.session.evaluate())!["eval_rewards/accuracies"];
    ok(after > before, `held-out reward accuracy ${before} → ${after}`);
    const shown = await run.heldOutScores(4);
    equal(shown.length, 4);
    for (const [name, bytes] of Object.entries(unzipSync(await run.checkpointZip()))) {
      await Deno.writeFile(`${dir}/${name}`, bytes);
    }
    await Deno.writeTextFile(
      `${dir}/rows.jsonl`,
      shown.map((s) => JSON.stringify(s.row)).join("\n"),
    );
    const { lines } = await score([
      "--model",
      dir,
      "--data",
      `${dir}/rows.jsonl`,
      "--max_length",
      "128",
    ]);
    const cli = lines.map((l) => JSON.parse(l));
    let worst = 0;
    shown.forEach((s, i) => {
      worst = Math.max(worst, Math.abs(cli[i].chosen.logp_sum - s.chosen));
      worst = Math.max(worst, Math.abs(cli[i].rejected.logp_sum - s.rejected));
    });
    ok(worst <= 1e-4, `max |Δ Σ log π| = ${worst}`);
    // The trained policy moved: the scores are not the initial model's.
    const initial = await score(["--data", `${dir}/rows.jsonl`, "--max_length", "128"]);
    ok(
      initial.lines.some((l, i) =>
        Math.abs(JSON.parse(l).chosen.logp_sum - shown[i].chosen) > 1e-3
      ),
    );
  } finally {
    await run.release();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("PageRun counts bad uploaded rows and names the file of malformed JSONL", async () => {
  const good = (await Deno.readTextFile(SAMPLE)).split("\n").slice(0, 40);
  const rows = [
    ...good,
    JSON.stringify({ chosen: "only chosen" }),
    JSON.stringify({ prompt: "p", chosen: "", rejected: "" }),
  ];
  const files = await tinyFiles();
  const run = await PageRun.create(files, {
    data: { text: rows.join("\n"), name: "mine.jsonl" },
    settings: await tinySettings({ loss: "simpo", max_steps: "1" }),
  });
  try {
    const summary = run.data.skips.summary(run.data.train.length + run.data.eval.length);
    match(summary, /skipped 2\b/);
  } finally {
    await run.release();
  }
  await rejects(
    PageRun.create(files, {
      data: { text: `${good[0]}\n{not json`, name: "mine.jsonl" },
      settings: await tinySettings({ loss: "dpo", max_steps: "1" }),
    }),
    /Invalid JSON on line 2 of mine\.jsonl/,
  );
  await rejects(
    PageRun.create(files, {
      data: { text: good.join("\n"), name: "mine.jsonl" },
      settings: await tinySettings({ loss: "online_dpo", max_steps: "1" }),
    }),
    /needs a judge/,
  );
});

Deno.test("PageRun logs bitwise the rows train() logs for the same 10 steps with gradient accumulation", async () => {
  const flags = {
    loss: "dpo",
    max_steps: "10",
    gradient_accumulation_steps: "2",
    logging_steps: "1",
    eval_steps: "4",
  };
  const out = await Deno.makeTempDir();
  Deno.env.set("DA_CACHE_DIR", `${out}/cache`);
  const args = Object.entries(flags).flatMap(([k, v]) => [`--${k}`, v]);
  const cli = await train([...args, "--output_dir", `${out}/run`], { quiet: true });
  const run = await PageRun.create(await tinyFiles(), {
    data: { text: await Deno.readTextFile(SAMPLE), name: "ultrafeedback_sample.jsonl" },
    settings: await tinySettings(flags),
  });
  const page: MetricsRow[] = [(await run.session.evaluate())!];
  try {
    while (run.stepCount < run.session.schedule.total) {
      const { row, evaluation } = await run.advance();
      page.push(row);
      if (evaluation) page.push(evaluation);
    }
  } finally {
    await run.release();
    await Deno.remove(out, { recursive: true });
  }
  // Wall-clock figures aside (throughput, runtimes, the CLI's closing summary row), every value
  // is the same float.
  const clock = /(_per_s|_per_second|runtime|step_ms)$/;
  const values = (rows: MetricsRow[]) =>
    rows.filter((r) => !("train_runtime" in r)).map((r) =>
      Object.fromEntries(Object.entries(r).filter(([k]) => !clock.test(k)))
    );
  equal(cli.rows.filter((r) => "eval_pairwise_accuracy" in r).length, 4);
  deepEqual(values(page), values(cli.rows));
});
