/**
 * wandb logging through @wandb/sdk against a local stand-in of the W&B API (the SDK honours
 * WANDB_BASE_URL): metrics reach the run's history under HF's names (`train/…`, `eval/…`);
 * `report_to` switches it on and off as in HF, with `run_name` and the key `wandb login` stored in
 * netrc; a failing server does not stop training; and without WANDB_PROJECT or report_to nothing
 * is sent.
 */
import assert from "node:assert/strict";
import { train } from "../train.ts";

Deno.env.set("DA_CACHE_DIR", await Deno.makeTempDir({ prefix: "da-cache-" }));

/** Answers the SDK's GraphQL calls and records file_stream uploads; `fail` answers 500 to all. */
function fakeWandb(fail = false) {
  const requests: { path: string; body: string; auth: string }[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const path = new URL(req.url).pathname;
    const body = await req.text();
    requests.push({ path, body, auth: req.headers.get("authorization") ?? "" });
    if (fail) return new Response("down", { status: 500 });
    if (path !== "/graphql") return Response.json({});
    const { query, variables } = JSON.parse(body);
    if (query.includes("Viewer")) {
      return Response.json({
        data: { viewer: { id: "1", entity: "me", flags: "{}", teams: { edges: [] } } },
      });
    }
    const bucket = {
      id: "b",
      name: variables.name,
      displayName: "run",
      description: "",
      config: variables.config ?? "{}",
      sweepName: null,
      project: { id: "p", name: variables.project, entity: { id: "e", name: "me" } },
    };
    return Response.json({ data: { upsertBucket: { inserted: true, bucket } } });
  });
  return { url: `http://127.0.0.1:${server.addr.port}`, requests, close: () => server.shutdown() };
}

async function runWith(env: Record<string, string>, args: string[] = []) {
  for (const [k, v] of Object.entries(env)) Deno.env.set(k, v);
  const out = await Deno.makeTempDir({ prefix: "da-wandb-" });
  try {
    return await train(
      ["--loss", "dpo", "--max_steps", "3", "--eval_steps", "0", "--output_dir", out, ...args],
      { quiet: true },
    );
  } finally {
    for (const k of Object.keys(env)) Deno.env.delete(k);
    await Deno.remove(out, { recursive: true });
  }
}

const options = { sanitizeOps: false, sanitizeResources: false };

Deno.test({
  name: "train() logs config and metrics to wandb when WANDB_PROJECT is set",
  ...options,
  fn: async () => {
    const wandb = fakeWandb();
    await runWith({
      WANDB_PROJECT: "rlhf",
      WANDB_API_KEY: "k".repeat(40),
      WANDB_BASE_URL: wandb.url,
    });
    await wandb.close();
    const upsert = wandb.requests.find((r) => r.body.includes("UpsertBucket"))!;
    assert.equal(
      JSON.parse(JSON.parse(upsert.body).variables.config).beta.value ??
        JSON.parse(JSON.parse(upsert.body).variables.config).beta,
      0.1,
    );
    const history = historyOf(wandb.requests);
    const steps = history.filter((h) => "train/loss" in h).map((h) => h._step);
    assert.deepEqual(steps, [1, 2, 3]);
    assert.ok(history.every((h) => !("train/loss" in h) || "train/rewards/accuracies" in h));
    // HF's WandbCallback names: eval_loss → eval/loss, and the global step beside each row.
    assert.deepEqual(history.filter((h) => "eval/loss" in h).map((h) => h._step), [0, 3]);
    assert.ok(history.every((h) => h["train/global_step"] === h._step));
    assert.ok(history.every((h) => !Object.keys(h).some((k) => k.startsWith("eval_"))));
  },
});

/** The rows the stand-in received in the run's history stream. */
function historyOf(requests: { path: string; body: string }[]): Record<string, number>[] {
  return requests.filter((r) => r.path.endsWith("/file_stream"))
    .flatMap((r) => JSON.parse(r.body).files?.["wandb-history.jsonl"]?.content ?? [])
    .map((line: string) => JSON.parse(line));
}

Deno.test({
  name: "train() --report_to wandb logs with the netrc key and run_name, without WANDB_PROJECT",
  ...options,
  fn: async () => {
    const wandb = fakeWandb();
    const dir = await Deno.makeTempDir({ prefix: "da-netrc-" });
    const key = "n".repeat(40);
    // As `wandb login --host` writes it: the machine is the server's host.
    await Deno.writeTextFile(
      `${dir}/netrc`,
      `machine other.example\n  login user\n  password ${"x".repeat(40)}\n` +
        `machine 127.0.0.1\n  login user\n  password ${key}\n`,
    );
    await runWith(
      { NETRC: `${dir}/netrc`, WANDB_BASE_URL: wandb.url },
      ["--report_to", "wandb", "--run_name", "dpo-tiny"],
    );
    await wandb.close();
    await Deno.remove(dir, { recursive: true });
    const upsert = JSON.parse(wandb.requests.find((r) => r.body.includes("UpsertBucket"))!.body);
    assert.equal(upsert.variables.project, "huggingface"); // HF's default project
    assert.equal(upsert.variables.displayName, "dpo-tiny");
    const streams = wandb.requests.filter((r) => r.path.endsWith("/file_stream"));
    assert.ok(streams.length > 0);
    assert.ok(streams.every((r) => atob(r.auth.replace("Basic ", "")) === `api:${key}`));
    assert.equal(historyOf(wandb.requests).filter((h) => "train/loss" in h).length, 3);
  },
});

Deno.test("train() --report_to none sends nothing even with WANDB_PROJECT set", async () => {
  const wandb = fakeWandb();
  await runWith(
    { WANDB_PROJECT: "rlhf", WANDB_API_KEY: "k".repeat(40), WANDB_BASE_URL: wandb.url },
    ["--report_to", "none"],
  );
  await wandb.close();
  assert.equal(wandb.requests.length, 0);
});

Deno.test({
  name: "train() keeps training when the wandb server fails",
  ...options,
  fn: async () => {
    const wandb = fakeWandb(true);
    const result = await runWith({
      WANDB_INIT_TIMEOUT: "3",
      WANDB_PROJECT: "rlhf",
      WANDB_API_KEY: "k".repeat(40),
      WANDB_BASE_URL: wandb.url,
    });
    await wandb.close();
    assert.ok(wandb.requests.length > 0);
    assert.equal(result.rows.filter((r) => "loss" in r).length, 3);
  },
});

Deno.test("train() sends nothing to wandb without WANDB_PROJECT", async () => {
  const wandb = fakeWandb();
  await runWith({ WANDB_API_KEY: "k".repeat(40), WANDB_BASE_URL: wandb.url });
  await wandb.close();
  assert.equal(wandb.requests.length, 0);
});

Deno.test({
  name:
    "train() runs TRL's dpo_dashboard.yaml unchanged: wandb, evaluation from the start, a resume",
  ...options,
  fn: async () => {
    const wandb = fakeWandb();
    const dir = await Deno.makeTempDir({ prefix: "da-dashboard-" });
    const recipe = `${dir}/recipe.yaml`;
    // The fixture as written, its output folder moved into the temporary one.
    const text = await Deno.readTextFile("tests/fixtures/trl/dpo_dashboard.yaml");
    await Deno.writeTextFile(recipe, text.replaceAll("out/trl-dashboard", `${dir}/run`));
    for (
      const [k, v] of Object.entries({ WANDB_API_KEY: "k".repeat(40), WANDB_BASE_URL: wandb.url })
    ) {
      Deno.env.set(k, v);
    }
    try {
      // The first run makes the checkpoint the recipe resumes from (HF: resume_from_checkpoint false).
      const first = await train(["--config", recipe, "--resume_from_checkpoint", "false"], {
        quiet: true,
      });
      assert.deepEqual(first.rows.filter((r) => "eval_loss" in r).map((r) => r.step), [0, 2, 3]);
      assert.equal(first.config.lr_scheduler_type, "cosine_with_min_lr");
      assert.equal(first.config.lora_target_modules, "q_proj,v_proj");
      // cosine_with_min_lr after step 3 of 3 (1 warmup): the floor, 0.1 × 5e-4.
      const last = first.rows.findLast((r) => "learning_rate" in r)!;
      assert.ok(Math.abs(last.learning_rate - 5e-5) < 1e-12, `learning_rate ${last.learning_rate}`);
      // Going back to checkpoint-2 means dropping the later one first (trainer/checkpoint.ts).
      await Deno.remove(`${dir}/run/checkpoint-3`, { recursive: true });
      const resumed = await train(["--config", recipe], { quiet: true });
      assert.deepEqual(resumed.rows.filter((r) => "loss" in r).map((r) => r.step), [1, 2, 3]);
    } finally {
      for (const k of ["WANDB_API_KEY", "WANDB_BASE_URL"]) Deno.env.delete(k);
      await wandb.close();
      await Deno.remove(dir, { recursive: true });
    }
    const names = wandb.requests.filter((r) => r.body.includes("UpsertBucket"))
      .map((r) => JSON.parse(r.body).variables.displayName);
    assert.deepEqual(names, ["tiny-dpo-lora", "tiny-dpo-lora"]);
    assert.ok(historyOf(wandb.requests).some((h) => "eval/loss" in h && h._step === 0));
  },
});
