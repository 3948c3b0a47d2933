/**
 * Runs that survive what users really do (issue #23): one Ctrl-C in a terminal under `deno task`,
 * starts that fail before their first checkpoint, resuming with changed settings, impossible batch
 * settings, steps that are all non-finite, and the logs' notices. Real processes, a pseudo-terminal
 * and signals to the process group where the case is about them.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { train } from "../train.ts";
import { REPEAT_MS } from "../trainer/interrupt.ts";
import { metricSteps, nanModel, QUICK } from "./_run_helpers.ts";

Deno.env.set("DA_CACHE_DIR", await Deno.makeTempDir({ prefix: "da-cache-" }));

const TRAIN = new URL("../train.ts", import.meta.url).pathname;
const quiet = (args: string[]) => train(args, { quiet: true });

const runFiles = (dir: string) =>
  [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n !== "run.lock").sort();

Deno.test("train refuses batch settings the training split cannot fill, before any step", async () => {
  const out = await Deno.makeTempDir();
  // 48 rows, 10% held out: 43 training examples, 22 micro-batches of 2.
  await assert.rejects(
    quiet([...QUICK, "--gradient_accumulation_steps", "100000", "--output_dir", out]),
    new RegExp(
      "^Error: Invalid gradient_accumulation_steps: 100000: one optimizer step would pass over " +
        "the 43 training examples 4545 times \\(22 micro-batches of 2 per epoch\\): at most 22$",
    ),
  );
  await assert.rejects(
    quiet([...QUICK, "--per_device_train_batch_size", "44", "--output_dir", out]),
    /^Error: Invalid per_device_train_batch_size: 44, larger than the training split \(43 examples\): at most 43$/,
  );
  assert.deepEqual(runFiles(out), []);
  await quiet([
    ...QUICK,
    "--gradient_accumulation_steps",
    "22",
    "--max_steps",
    "1",
    "--output_dir",
    out,
  ]);
  await Deno.remove(out, { recursive: true });
});

/** Runs `fn` with console.log and console.error collected. */
async function capturing<T>(fn: () => Promise<T>): Promise<{ result: T | Error; lines: string[] }> {
  const lines: string[] = [];
  const { log, error } = console;
  console.log = console.error = (...parts: unknown[]) => lines.push(parts.join(" "));
  try {
    return { result: await fn().catch((e) => e as Error), lines };
  } finally {
    Object.assign(console, { log, error });
  }
}

Deno.test("train --resume counts a corrupt middle line of metrics.jsonl apart, and repairs a cut last line of a finished run", async () => {
  const out = await Deno.makeTempDir();
  await quiet([...QUICK, "--max_steps", "4", "--save_steps", "2", "--output_dir", out]);
  const path = join(out, "metrics.jsonl");
  const lines = (await Deno.readTextFile(path)).split("\n");
  lines[1] = lines[1].slice(0, 10) + "\u0000\u0000"; // step 1's row (after step 0's eval), corrupt
  await Deno.writeTextFile(path, lines.join("\n"));
  const { result, lines: said } = await capturing(() =>
    train(["--resume", out, "--max_steps", "6"])
  );
  assert.ok(!(result instanceof Error), String(result));
  assert.ok(
    said.includes(
      "Resume: removed 1 unreadable line (not JSON: cut or corrupt) from metrics.jsonl: line 2",
    ),
    said.join("\n"),
  );
  assert.deepEqual(await metricSteps(out), [2, 3, 4, 5, 6]);

  // A finished run whose last row was cut (a full disk, a kill): resuming it repairs the log.
  const rows = (await Deno.readTextFile(path)).trim().split("\n").length;
  await Deno.writeTextFile(path, '{"step": 7, "lo', { append: true });
  const { result: again, lines: notes } = await capturing(() => train(["--resume", out]));
  assert.equal((again as Awaited<ReturnType<typeof train>>).outcome, "nothing_to_do");
  assert.ok(
    notes.includes(
      "Resume: removed 1 unreadable line (not JSON: cut or corrupt) from metrics.jsonl: " +
        `line ${rows + 1}`,
    ),
    notes.join("\n"),
  );
  assert.deepEqual(await metricSteps(out), [2, 3, 4, 5, 6]);
  await Deno.remove(out, { recursive: true });
});

Deno.test("train --resume RUN/checkpoint-N refuses to remove the run's later complete checkpoints", async () => {
  const out = await Deno.makeTempDir();
  await quiet([...QUICK, "--max_steps", "4", "--save_steps", "2", "--output_dir", out]);
  const before = runFiles(out);
  await assert.rejects(
    quiet(["--resume", `${out}/checkpoint-2`]),
    new RegExp(
      `^Error: Cannot resume from ${out}/checkpoint-2: ${out} holds later checkpoints of the same ` +
        `run \\(checkpoint-4\\) that resuming would remove: resume the latest with --resume ${out}, ` +
        `or delete them first to continue from step 2$`,
    ),
  );
  assert.deepEqual(runFiles(out), before);
  await Deno.remove(`${out}/checkpoint-4`, { recursive: true });
  assert.equal((await quiet(["--resume", `${out}/checkpoint-2`])).outcome, "done");
  assert.deepEqual(await metricSteps(out), [1, 2, 3, 4]);
  await Deno.remove(out, { recursive: true });
});

const canRun = Deno.permissions.querySync({ name: "run" }).state === "granted";
const hasScript = canRun &&
  await new Deno.Command("script", { args: ["--version"], stdout: "null", stderr: "null" })
    .output().then((o) => o.success, () => false);

Deno.test({
  name:
    "deno task train under a terminal: one Ctrl-C (to the process group, and forwarded by deno task) stops with a checkpoint, exit 130, and --resume continues",
  ignore: !hasScript,
  async fn() {
    const out = await Deno.makeTempDir();
    const args = [...QUICK, "--max_steps", "100000", "--output_dir", out];
    // script(1) runs the task on a pseudo-terminal: a ^C written to it is the terminal's Ctrl-C,
    // SIGINT to the whole foreground process group (deno task and the run).
    const child = new Deno.Command("script", {
      args: ["-qec", [Deno.execPath(), "task", "train", ...args].join(" "), "/dev/null"],
      cwd: new URL("..", import.meta.url).pathname,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const output = child.output();
    while ((await metricSteps(out).catch(() => [])).length < 3) {
      await new Promise((r) => setTimeout(r, 50));
    }
    await child.stdin.getWriter().write(new TextEncoder().encode("\x03"));
    const { code, stdout } = await output;
    const text = new TextDecoder().decode(stdout);
    assert.equal(code, 130, text);
    assert.match(text, /SIGINT: stopping after the current step and saving a checkpoint/);
    assert.doesNotMatch(text, /SIGINT again|GetElementType/);
    assert.match(text, new RegExp(`Resume with: deno task train --resume ${out}`));
    const last = (await metricSteps(out)).at(-1)!;
    assert.ok(runFiles(out).includes(`checkpoint-${last}`), runFiles(out).join());
    const resumed = await quiet(["--resume", out, "--max_steps", String(last + 2)]);
    assert.equal(resumed.outcome, "done");
    assert.deepEqual(await metricSteps(out), Array.from({ length: last + 2 }, (_, i) => i + 1));
    await Deno.remove(out, { recursive: true });
  },
});

Deno.test({
  name:
    "train: a second Ctrl-C pressed during a step aborts at once, status 130, without onnxruntime's teardown error",
  ignore: !canRun,
  async fn() {
    const out = await Deno.makeTempDir();
    // Micro-batches of 64 pairs take over a second: both presses land in the step that has just
    // begun (Deno.exit there printed "GetElementType is not implemented" in 2 of 3 tries).
    const args = ["--loss", "dpo", "--eval_steps", "0", "--per_device_train_batch_size", "64"];
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", TRAIN, ...args, "--max_steps", "100000", "--output_dir", out],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const stderr = new Response(child.stderr).text();
    while ((await metricSteps(out).catch(() => [])).length < 1) {
      await new Promise((r) => setTimeout(r, 20));
    }
    child.kill("SIGINT");
    await new Promise((r) => setTimeout(r, REPEAT_MS + 50)); // a second press, not a repeat
    child.kill("SIGINT");
    const status = await child.status;
    const text = await stderr;
    assert.equal(status.code, 130, text);
    assert.match(text, /SIGINT again: aborting without a checkpoint/);
    assert.doesNotMatch(text, /GetElementType|Resume with/);
    await Deno.remove(out, { recursive: true });
  },
});

Deno.test("train: a folder whose run failed before its first checkpoint is started again, and --resume says so", async () => {
  const model = await nanModel();
  const out = await Deno.makeTempDir();
  const failed = await capturing(() =>
    quiet([...QUICK, "--model_name_or_path", model, "--max_steps", "2", "--output_dir", out])
  );
  assert.match(String(failed.result), /^Error: No step was applied/);
  const left = runFiles(out);
  assert.deepEqual(left, ["config.yaml", "curves.svg", "metrics.jsonl"]);
  await assert.rejects(
    quiet(["--resume", out]),
    new RegExp(
      `^Error: Cannot resume from ${out}: no checkpoint-N folder in it \\(a run that stopped ` +
        "before its first checkpoint\\): start it again without --resume, into the same folder$",
    ),
  );
  const again = await capturing(() =>
    train([...QUICK, "--max_steps", "2", "--output_dir", out], { quiet: false })
  );
  assert.ok(!(again.result instanceof Error), String(again.result));
  assert.ok(
    again.lines.includes(
      `Output folder ${out} held a run that stopped before its first checkpoint ` +
        `(${left.join(", ")}): nothing to resume, so this run starts it again`,
    ),
    again.lines.join("\n"),
  );
  assert.deepEqual(await metricSteps(out), [1, 2]);
  for (const d of [model, out]) await Deno.remove(d, { recursive: true });
});

Deno.test("train --resume refuses changes that define the run and records the ones that may change in config.yaml", async () => {
  const out = await Deno.makeTempDir();
  await quiet([...QUICK, "--max_steps", "2", "--output_dir", out]);
  const before = await Deno.readTextFile(join(out, "config.yaml"));
  await assert.rejects(
    quiet(["--resume", out, "--loss", "ipo", "--learning_rate", "0.01", "--max_steps", "4"]),
    new RegExp(
      `^Error: Cannot resume ${out}/checkpoint-2 with changed settings that define the run: ` +
        "loss simpo → ipo, learning_rate 0\\.0005 → 0\\.01: resume without them \\(only max_steps, " +
        "num_train_epochs, .*\\), or start a new run in another folder$",
    ),
  );
  await assert.rejects(
    quiet(["--resume", out, "--config", "configs/dpo.yaml"]),
    /^Error: --config configs\/dpo\.yaml with --resume .*: a resumed run's settings are its checkpoint's; pass the ones that may change as flags$/,
  );
  assert.equal(await Deno.readTextFile(join(out, "config.yaml")), before);
  // The same value again is no change.
  await quiet(["--resume", out, "--loss", "simpo", "--max_steps", "4", "--logging_steps", "2"]);
  await quiet(["--resume", out, "--max_steps", "5"]);
  const config = await Deno.readTextFile(join(out, "config.yaml"));
  assert.deepEqual(config.split("\n").slice(0, 4), [
    "# Changed on --resume (the values below apply from that step on):",
    "#   from step 3: max_steps 2 → 4",
    "#   from step 3: logging_steps 1 → 2",
    "#   from step 5: max_steps 4 → 5",
  ]);
  const { parse } = await import("@std/yaml");
  const yaml = parse(config) as Record<string, unknown>;
  assert.deepEqual([yaml.max_steps, yaml.logging_steps, yaml.loss], [5, 2, "simpo"]);
  await Deno.remove(out, { recursive: true });
});

Deno.test({
  name:
    "train: SIGTERM between micro-batches stops without finishing the step; its checkpoint is the step before",
  ignore: !canRun,
  async fn() {
    const dir = await Deno.makeTempDir();
    // Step 1's six verdicts come at once; from step 2 on each takes 1.5 s, so a step of three
    // micro-batches would take 4.5 s more.
    await Deno.writeTextFile(
      `${dir}/slow.ts`,
      `let calls = 0;
export async function judge(_p: string, a: string, b: string) {
  if (++calls > 6) {
    console.error("slow verdict");
    await new Promise((r) => setTimeout(r, 1500));
  }
  return a.length <= b.length ? "a" : "b";
}`,
    );
    const out = `${dir}/run`;
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        TRAIN,
        ...["--loss", "online_dpo", "--judge", `${dir}/slow.ts`, "--eval_steps", "0"],
        ...["--per_device_train_batch_size", "2", "--gradient_accumulation_steps", "3"],
        ...["--max_new_tokens", "8", "--max_steps", "3", "--output_dir", out],
      ],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    let stderr = "";
    const reader = (async () => {
      for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) stderr += chunk;
    })();
    while (!stderr.includes("slow verdict")) await new Promise((r) => setTimeout(r, 20));
    child.kill("SIGTERM");
    const status = await child.status;
    await reader;
    assert.equal(status.code, 130, stderr);
    assert.deepEqual(runFiles(out).filter((n) => n.startsWith("checkpoint-")), ["checkpoint-1"]);
    const state = JSON.parse(await Deno.readTextFile(`${out}/checkpoint-1/run_state.json`));
    assert.deepEqual([state.step, state.consumed], [1, 3]);
    assert.deepEqual(await metricSteps(out), [1]);
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test("train: a run whose first 5 steps are all non-finite stops there naming the likely causes", async () => {
  const model = await nanModel();
  const out = await Deno.makeTempDir();
  const { result, lines } = await capturing(() =>
    quiet([...QUICK, "--model_name_or_path", model, "--max_steps", "60", "--output_dir", out])
  );
  assert.equal(
    String(result),
    "Error: Stopped at step 5: its first 5 steps all had a non-finite loss or gradient, none " +
      "was applied. Likely causes: the loss's hyperparameters (beta 2, simpo_gamma 0.5, " +
      "cpo_alpha 0), learning_rate 0.0005, or the model or data (NaN weights, broken rows): " +
      `lower the value that is too large, or check ${model}`,
  );
  assert.equal(lines.filter((l) => l.includes("skipped: loss or gradient not finite")).length, 5);
  // Nothing to resume, nothing in the way of the next try.
  assert.ok(runFiles(out).every((n) => !n.startsWith("checkpoint-")), runFiles(out).join());
  await quiet([...QUICK, "--max_steps", "1", "--output_dir", out]);
  for (const d of [model, out]) await Deno.remove(d, { recursive: true });
});

Deno.test({
  name: "train: reference log-probs are saved with each checkpoint, so a killed run keeps them",
  ignore: !canRun,
  async fn() {
    const cache = await Deno.makeTempDir({ prefix: "da-cache-" });
    const out = await Deno.makeTempDir();
    const args = ["--loss", "ipo", "--eval_steps", "0", "--save_steps", "1"];
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", TRAIN, ...args, "--max_steps", "100000", "--output_dir", out],
      env: { DA_CACHE_DIR: cache },
      stdout: "null",
      stderr: "null",
    }).spawn();
    while (!runFiles(out).includes("checkpoint-1")) await new Promise((r) => setTimeout(r, 20));
    child.kill("SIGKILL");
    await child.status;
    const files = [...Deno.readDirSync(`${cache}/ref_logps`)].map((e) => e.name);
    assert.equal(files.length, 1);
    const saved = JSON.parse(await Deno.readTextFile(`${cache}/ref_logps/${files[0]}`));
    assert.ok(saved.count >= 8, `${saved.count} examples cached`); // at least step 1's batch
    for (const d of [cache, out]) await Deno.remove(d, { recursive: true });
  },
});
