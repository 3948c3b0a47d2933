/**
 * Runs never lose or mix data (issue #12): one live run per output folder, no new run over an old
 * one, resume writing where it is pointed, every step logged once, a graceful interrupt, and runs
 * that applied no step failing. Real processes and real signals where the case is about them.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { train } from "../train.ts";
import { REPEAT_MS } from "../trainer/interrupt.ts";
import { metricSteps, nanModel, QUICK } from "./_run_helpers.ts";

Deno.env.set("DA_CACHE_DIR", await Deno.makeTempDir({ prefix: "da-cache-" }));
const canRun = Deno.permissions.querySync({ name: "run" }).state === "granted";
const TRAIN = new URL("../train.ts", import.meta.url).pathname;

/** `deno task train ARGS` as a child process whose output is collected as it comes. */
function spawnTrain(args: string[]) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", TRAIN, ...args],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const output = { stdout: "", stderr: "" };
  const collect = async (stream: ReadableStream<Uint8Array>, key: "stdout" | "stderr") => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) output[key] += chunk;
  };
  const done = Promise.all([collect(child.stdout, "stdout"), collect(child.stderr, "stderr")])
    .then(() => child.status);
  /** Resolves once `predicate` holds for the output so far. */
  const until = async (predicate: () => boolean | Promise<boolean>) => {
    while (!await predicate()) {
      const status = await Promise.race([done, new Promise((r) => setTimeout(r, 50, null))]);
      if (status) throw new Error(`train ended early:\n${output.stdout}\n${output.stderr}`);
    }
  };
  return { child, output, done, until };
}

/** Every file under `dir` with its contents, for "nothing changed" checks (the lock excepted). */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  const walk = async (path: string, rel: string) => {
    for await (const e of Deno.readDir(path)) {
      const [p, r] = [join(path, e.name), rel ? `${rel}/${e.name}` : e.name];
      if (e.isDirectory) await walk(p, r);
      else if (e.name !== "run.lock") {
        const bytes = await Deno.readFile(p);
        const hash = await crypto.subtle.digest("SHA-256", bytes);
        files[r] = Array.from(new Uint8Array(hash), (b) => b.toString(16)).join("");
      }
    }
  };
  await walk(dir, "");
  return files;
}

const checkpoints = (dir: string) =>
  [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.startsWith("checkpoint-"))
    .sort();

const quiet = (args: string[]) => train(args, { quiet: true });

Deno.test({
  name:
    "train: a second live run on the same output_dir is refused naming the first's pid (case 1); SIGTERM checkpoints and exits 130 (case 5)",
  ignore: !canRun,
  async fn() {
    const out = await Deno.makeTempDir();
    const first = spawnTrain([...QUICK, "--max_steps", "5000", "--output_dir", out]);
    // metrics.jsonl, not the console: a non-TTY progress bar prints only about twenty lines.
    await first.until(async () => (await metricSteps(out).catch(() => [])).length >= 2);
    const second = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", TRAIN, "--loss", "dpo", "--output_dir", out, "--max_steps", "2"],
    }).output();
    assert.equal(second.code, 1);
    assert.match(
      new TextDecoder().decode(second.stderr),
      new RegExp(
        `^error: Output folder ${out} is in use by another run \\(pid ${first.child.pid}\\)`,
      ),
    );
    // SIGTERM (what `kill` and job schedulers send) is handled as Ctrl-C is.
    first.child.kill("SIGTERM");
    const status = await first.done;
    assert.equal(status.code, 130, first.output.stderr);
    assert.match(first.output.stderr, /SIGTERM: stopping after the current step/);
    assert.match(first.output.stderr, new RegExp(`Resume with: deno task train --resume ${out}`));
    const steps = await metricSteps(out);
    const last = steps.at(-1)!;
    assert.deepEqual(await checkpoints(out), [`checkpoint-${last}`]);
    const state = JSON.parse(
      await Deno.readTextFile(`${out}/checkpoint-${last}/run_state.json`),
    );
    assert.equal(state.step, last);
    assert.equal(state.config.loss, "simpo");
    assert.deepEqual(steps, Array.from({ length: last }, (_, i) => i + 1));
    await Deno.remove(out, { recursive: true });
  },
});

Deno.test({
  name: "train: a second Ctrl-C aborts at once (case 5)",
  ignore: !canRun,
  async fn() {
    const out = await Deno.makeTempDir();
    // A judge that never answers holds the first step open, so the second signal surely comes
    // before the step could end.
    await Deno.writeTextFile(
      `${out}/hang.ts`,
      `export function judge() { console.error("judging"); return new Promise(() => {}); }`,
    );
    const run = spawnTrain([
      "--loss",
      "online_dpo",
      "--judge",
      `${out}/hang.ts`,
      "--judge_timeout",
      "600",
      "--output_dir",
      `${out}/run`,
    ]);
    await run.until(() => run.output.stderr.includes("judging"));
    run.child.kill("SIGINT");
    await run.until(() => run.output.stderr.includes("SIGINT: stopping"));
    // A press, not the same Ctrl-C delivered twice (process group and deno task).
    await new Promise((r) => setTimeout(r, REPEAT_MS + 50));
    run.child.kill("SIGINT");
    assert.equal((await run.done).code, 130);
    assert.match(run.output.stderr, /SIGINT again: aborting without a checkpoint/);
    assert.doesNotMatch(run.output.stderr, /Resume with/);
    assert.deepEqual(await checkpoints(`${out}/run`), []);
    await Deno.remove(out, { recursive: true });
  },
});

Deno.test("train: a new run into a folder holding a run is refused; --overwrite_output_dir clears it (case 2)", async () => {
  const out = await Deno.makeTempDir();
  await quiet([...QUICK, "--max_steps", "2", "--output_dir", out]);
  const before = await snapshot(out);
  await assert.rejects(
    quiet(["--loss", "dpo", "--max_steps", "1", "--output_dir", out]),
    new RegExp(
      `^Error: Output folder ${out} already holds a run \\(checkpoint-2, config.yaml, curves.svg, ` +
        `metrics.jsonl\\): pass --resume ${out} to continue it, or --overwrite_output_dir to clear it first$`,
    ),
  );
  assert.deepEqual(await snapshot(out), before);
  await quiet([...QUICK, "--max_steps", "1", "--output_dir", out, "--overwrite_output_dir"]);
  assert.deepEqual(await checkpoints(out), ["checkpoint-1"]);
  assert.deepEqual(await metricSteps(out), [1]);
  await Deno.remove(out, { recursive: true });
});

Deno.test("train --resume COPY writes to the copy and leaves the original alone (case 3)", async () => {
  const out = await Deno.makeTempDir();
  await quiet([...QUICK, "--max_steps", "2", "--output_dir", out]);
  const original = await snapshot(out);
  const copy = `${out}-copy`;
  await new Deno.Command("cp", { args: ["-r", out, copy] }).output();
  await assert.rejects(
    quiet(["--resume", copy, "--output_dir", `${out}-other`]),
    /--resume .*-copy writes to .*-copy, not --output_dir .*-other: copy the run folder/,
  );
  const resumed = await quiet(["--resume", copy, "--max_steps", "4"]);
  assert.equal(resumed.checkpoint, join(copy, "checkpoint-4"));
  assert.deepEqual(await checkpoints(copy), ["checkpoint-2", "checkpoint-4"]);
  assert.deepEqual(await metricSteps(copy), [1, 2, 3, 4]);
  assert.deepEqual(await snapshot(out), original);
  for (const d of [out, copy]) await Deno.remove(d, { recursive: true });
});

Deno.test({
  name:
    "train: after kill -9, --resume logs every step once, redraws the curves, removes debris; a finished run resumes to nothing (case 4)",
  ignore: !canRun,
  async fn() {
    const out = await Deno.makeTempDir();
    const args = [...QUICK, "--max_steps", "16", "--save_steps", "4", "--output_dir", out];
    const run = spawnTrain(args);
    await run.until(async () => (await metricSteps(out).catch(() => [])).length >= 10);
    run.child.kill("SIGKILL");
    await run.done;
    // What a save cut short (or a full disk) leaves behind; the kill may have left one already.
    await Deno.mkdir(`${out}/checkpoint-12.partial`, { recursive: true });
    await Deno.mkdir(`${out}/.checkpoint-12.partial.tmp-x1y2`, { recursive: true });
    const resumed = await train(["--resume", out], { quiet: true });
    assert.equal(resumed.outcome, "done");
    assert.deepEqual(await metricSteps(out), Array.from({ length: 16 }, (_, i) => i + 1));
    const names = [...Deno.readDirSync(out)].map((e) => e.name).sort();
    assert.deepEqual(names, [
      "checkpoint-12",
      "checkpoint-16",
      "checkpoint-4",
      "checkpoint-8",
      "config.yaml",
      "curves.svg",
      "metrics.jsonl",
      "run.lock",
    ]);
    // The loss curve has one point per step of the whole run, not only the resumed ones.
    const svg = await Deno.readTextFile(`${out}/curves.svg`);
    const lossPath = /<path d="(M[^"]+)" fill="none" stroke="#1f77b4"/.exec(svg)![1];
    assert.equal(lossPath.match(/[ML]/g)!.length, 16);

    const finished = await snapshot(out);
    const again = await train(["--resume", out], { quiet: true });
    assert.equal(again.outcome, "nothing_to_do");
    assert.deepEqual(await snapshot(out), finished);
    await Deno.remove(out, { recursive: true });
  },
});

Deno.test("train --resume names a corrupt latest checkpoint and offers the previous complete one (cases 4, 10)", async () => {
  const out = await Deno.makeTempDir();
  await quiet([...QUICK, "--max_steps", "4", "--save_steps", "2", "--output_dir", out]);
  const weights = `${out}/checkpoint-4/model.safetensors`;
  const bytes = await Deno.readFile(weights);
  await Deno.writeFile(weights, bytes.slice(0, bytes.length - 100));
  await assert.rejects(
    quiet(["--resume", out]),
    new RegExp(
      `The latest checkpoint is corrupt: ${weights}: truncated: \\d+ bytes of \\d+\\. ` +
        `The previous complete one is ${out}/checkpoint-2: resume from it with --resume ${out}/checkpoint-2`,
    ),
  );
  await Deno.writeTextFile(`${out}/checkpoint-2/run_state.json`, '{"step": 2,');
  await assert.rejects(
    quiet(["--resume", `${out}/checkpoint-2`]),
    new RegExp(`Cannot read ${out}/checkpoint-2/run_state.json: `),
  );
  await Deno.remove(out, { recursive: true });
});

Deno.test("train: save_total_limit keeps the newest checkpoints and the one resumed from; epoch only grows (case 11)", async () => {
  const out = await Deno.makeTempDir();
  const args = [...QUICK, "--save_steps", "1", "--save_total_limit", "1", "--output_dir", out];
  await quiet([...args, "--max_steps", "3"]);
  assert.deepEqual(await checkpoints(out), ["checkpoint-3"]);
  await quiet(["--resume", out, "--max_steps", "6"]);
  assert.deepEqual(await checkpoints(out), ["checkpoint-3", "checkpoint-6"]);
  await Deno.remove(out, { recursive: true });

  const epochs = await Deno.makeTempDir();
  const run = await quiet([
    ...QUICK,
    "--max_samples",
    "24",
    "--per_device_train_batch_size",
    "4",
    "--num_train_epochs",
    "3",
    "--max_steps",
    "-1",
    "--output_dir",
    epochs,
  ]);
  const values = run.rows.filter((r) => "loss" in r).map((r) => r.epoch);
  for (let i = 1; i < values.length; i++) {
    assert.ok(values[i] > values[i - 1], `epoch went ${values[i - 1]} → ${values[i]}`);
  }
  assert.ok(Math.abs(values.at(-1)! - 3) < 1e-9, `last epoch ${values.at(-1)}`);
  await Deno.remove(epochs, { recursive: true });
});

/** Runs `fn` with console.error collected. */
async function capturingErrors<T>(
  fn: () => Promise<T>,
): Promise<{ result: T | Error; errors: string[] }> {
  const errors: string[] = [];
  const original = console.error;
  console.error = (...parts: unknown[]) => errors.push(parts.join(" "));
  try {
    return { result: await fn().catch((e) => e as Error), errors };
  } finally {
    console.error = original;
  }
}

/** A local OpenAI-style judge endpoint: `reply` answers each request; the requests are kept. */
function judgeServer(reply: (req: Request) => Promise<Response>) {
  const seen = { requests: 0, bodies: [] as string[] };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    seen.requests++;
    seen.bodies.push(await req.text());
    return await reply(req);
  });
  return { url: `http://127.0.0.1:${server.addr.port}/v1`, seen, close: () => server.shutdown() };
}

const ONLINE = [
  "--loss",
  "online_dpo",
  "--eval_steps",
  "0",
  "--per_device_train_batch_size",
  "4",
  "--max_new_tokens",
  "8",
];

Deno.test("online_dpo: an HTTP judge answering 500 is shown once, counted, warned per step, and the run fails (cases 6, 7)", async () => {
  const server = judgeServer(() => Promise.resolve(new Response("down", { status: 500 })));
  const out = await Deno.makeTempDir();
  const { result, errors } = await capturingErrors(() =>
    quiet([
      ...ONLINE,
      "--judge",
      "http",
      "--judge_url",
      server.url,
      "--judge_model",
      "m",
      "--judge_max_retries",
      "1",
      "--max_steps",
      "2",
      "--output_dir",
      out,
    ])
  );
  await server.close();
  assert.match(
    String(result),
    /^Error: No step was applied: all 2 steps were skipped \(no_judged_pair 2\)/,
  );
  const shown = errors.filter((e) => e.includes("judge failure (http_500)"));
  assert.equal(shown.length, 1, errors.join("\n"));
  assert.match(
    shown[0],
    /Judge http:\/\/127\.0\.0\.1:\d+\/v1\/chat\/completions answered HTTP 500/,
  );
  assert.ok(errors.includes("Warning: step 1: the judge failed on 4 of 4 pairs: http_500 ×4"));
  assert.equal(server.seen.requests, 2 * 4 * 2); // steps × pairs × (retries + 1)
  const rows = (await Deno.readTextFile(`${out}/metrics.jsonl`)).trim().split("\n")
    .map((l) => JSON.parse(l)).filter((r) => "judge/failures" in r);
  assert.deepEqual(rows.map((r) => [r.step, r["judge/failures"], r["judge/failures/http_500"]]), [
    [1, 4, 4],
    [2, 4, 4],
  ]);
  await Deno.remove(out, { recursive: true });
});

Deno.test("online_dpo: a hung HTTP judge costs judge_timeout × (retries + 1) per batch of judge_concurrency pairs (case 6)", async () => {
  // Answers only once the test is over.
  let release = () => {};
  const released = new Promise<void>((resolve) => release = resolve);
  const server = judgeServer(() => released.then(() => new Response("late")));
  const out = await Deno.makeTempDir();
  const { result, errors } = await capturingErrors(() =>
    quiet([
      ...ONLINE,
      "--judge",
      "http",
      "--judge_url",
      server.url,
      "--judge_model",
      "m",
      "--judge_timeout",
      "0.2",
      "--judge_max_retries",
      "1",
      "--judge_concurrency",
      "4",
      "--max_steps",
      "1",
      "--output_dir",
      out,
    ])
  );
  release();
  await server.close();
  assert.match(String(result), /no_judged_pair 1/);
  assert.equal(server.seen.requests, 8);
  // Judged one at a time, the second request would be the first pair's retry.
  assert.equal(new Set(server.seen.bodies.slice(0, 4)).size, 4, "four pairs were judged at once");
  assert.deepEqual(server.seen.bodies.slice(4).sort(), server.seen.bodies.slice(0, 4).sort());
  assert.ok(
    errors.some((e) => /judge failure \(timeout\): .*did not answer within 0\.2 s/.test(e)),
  );
  await Deno.remove(out, { recursive: true });
});

Deno.test("online_dpo: a judge module that throws is a counted failure with its message (case 6)", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(
    `${dir}/flaky.ts`,
    `let calls = 0;
export function judge(_p: string, a: string, b: string) {
  if (++calls % 2 === 0) throw new TypeError("cannot read properties of undefined");
  return a.length <= b.length ? "a" : "b";
}`,
  );
  const { result, errors } = await capturingErrors(() =>
    quiet([
      ...ONLINE,
      "--judge",
      `${dir}/flaky.ts`,
      "--max_steps",
      "2",
      "--output_dir",
      `${dir}/run`,
    ])
  );
  assert.ok(!(result instanceof Error), String(result));
  const shown = errors.filter((e) => e.includes("judge failure (exception)"));
  assert.equal(shown.length, 1);
  assert.match(shown[0], /flaky\.ts threw: cannot read properties of undefined/);
  const rows = (result as Awaited<ReturnType<typeof train>>).rows.filter((r) => "loss" in r);
  assert.equal(rows.reduce((n, r) => n + r["judge/failures/exception"], 0), 4);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("train: a run whose every step is non-finite fails naming the reason (case 7)", async () => {
  const model = await nanModel();
  const out = await Deno.makeTempDir();
  const { result } = await capturingErrors(() =>
    quiet([...QUICK, "--model_name_or_path", model, "--max_steps", "2", "--output_dir", out])
  );
  assert.match(
    String(result),
    /^Error: No step was applied: all 2 steps were skipped \(nonfinite_loss 2\)/,
  );
  const rows = (await Deno.readTextFile(`${out}/metrics.jsonl`)).trim().split("\n")
    .map((l) => JSON.parse(l)).filter((r) => "skipped/nonfinite_loss" in r);
  assert.deepEqual(rows.map((r) => r["skipped/nonfinite_loss"]), [1, 2]);
  for (const d of [model, out]) await Deno.remove(d, { recursive: true });
});

Deno.test("train data: a completion ending with a user turn and pairs identical after truncation are counted skips (case 8)", async () => {
  const { prepareData } = await import("../data/dataset.ts");
  const { loadTokenizer } = await import("../model/tokenizer.ts");
  const tokenizer = await loadTokenizer("model/tiny");
  const truncated = await prepareData(
    { dataset_name: "data/samples/ultrafeedback_sample.jsonl", max_completion_length: 4 },
    tokenizer,
    { kind: "paired" },
  );
  const identical = truncated.skips.counts.identical_after_truncation ?? 0;
  assert.ok(identical > 0, "some pairs share their first four tokens");
  assert.ok(
    truncated.train.every((e) =>
      e.kind === "paired" && e.chosenIds.join() !== e.rejectedIds.join()
    ),
  );

  const dir = await Deno.makeTempDir();
  const turn = (role: string, content: string) => ({ role, content });
  const rows = [
    {
      chosen: [turn("user", "Q"), turn("assistant", "A"), turn("user", "thanks")],
      rejected: [turn("user", "Q"), turn("assistant", "B")],
    },
    {
      chosen: [turn("user", "Q2"), turn("assistant", "A2")],
      rejected: [turn("user", "Q2"), turn("assistant", "B2")],
    },
  ];
  await Deno.writeTextFile(`${dir}/d.jsonl`, rows.map((r) => JSON.stringify(r)).join("\n"));
  const data = await prepareData({ dataset_name: `${dir}/d.jsonl`, eval_split: 0 }, tokenizer, {
    kind: "paired",
  });
  assert.deepEqual(data.skips.counts, { last_turn_not_assistant: 1 });
  assert.match(
    data.skips.summary(1),
    /skipped\/last_turn_not_assistant: 1 \(row 0: "chosen" ends with a "user" message/,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("train: a reference cache edited by hand is reported and recomputed, not trained on (case 8)", async () => {
  Deno.env.set("DA_CACHE_DIR", await Deno.makeTempDir({ prefix: "da-cache-" }));
  const args = ["--loss", "ipo", "--max_steps", "2", "--eval_steps", "0", "--max_samples", "24"];
  const first = await quiet([...args, "--output_dir", await Deno.makeTempDir()]);
  assert.ok(first.referenceComputed > 0);
  const dir = `${Deno.env.get("DA_CACHE_DIR")}/ref_logps`;
  const [name] = [...Deno.readDirSync(dir)].map((e) => e.name);
  const file = JSON.parse(await Deno.readTextFile(`${dir}/${name}`));
  const key = Object.keys(file.values)[0];
  file.values[key][0] += 5;
  await Deno.writeTextFile(`${dir}/${name}`, JSON.stringify(file));
  const { result, errors } = await capturingErrors(() =>
    Deno.makeTempDir().then((out) => quiet([...args, "--output_dir", out]))
  );
  assert.equal(
    (result as Awaited<ReturnType<typeof train>>).referenceComputed,
    first.referenceComputed,
  );
  assert.ok(
    errors.some((e) =>
      e.includes(`ignoring reference cache ${dir}/${name}: its values do not match their checksum`)
    ),
    errors.join("\n"),
  );
});

Deno.test("train and deno task loss refuse out-of-range hyperparameters with one rule (case 8)", async () => {
  const { main: loss } = await import("../algorithms/cli.ts");
  const cases: [string, string, string, RegExp][] = [
    ["kto", "desirable_weight", "-1", /^Invalid desirable_weight: -1, expected a number > 0$/],
    ["simpo", "simpo_gamma", "-100", /^Invalid simpo_gamma: -100, expected a number >= 0$/],
    ["online_dpo", "max_new_tokens", "0", /^Invalid max_new_tokens: 0, expected a number >= 1$/],
    ["online_dpo", "top_p", "0", /^Invalid top_p: 0, expected a number in \(0, 1\]$/],
  ];
  for (const [name, key, value, message] of cases) {
    const fromTrain = await quiet([
      "--loss",
      name,
      `--${key}`,
      value,
      "--output_dir",
      "/nonexistent",
    ])
      .catch((e) => e);
    assert.match(fromTrain.message, message);
    if (name === "online_dpo") continue; // not a loss `deno task loss` evaluates on numbers
    const fromLoss = await loss(["--loss", name, `--${key}=${value}`, "--input", "x.json"])
      .catch((e) => e);
    assert.equal(fromLoss.message, fromTrain.message);
  }
});
