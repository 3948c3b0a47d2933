/**
 * wandb logging through @wandb/sdk against a local stand-in of the W&B API (the SDK honours
 * WANDB_BASE_URL): metrics reach the run's history; a failing server does not stop training; and
 * without WANDB_PROJECT nothing is sent.
 */
import assert from "node:assert/strict";
import { train } from "../train.ts";

Deno.env.set("DA_CACHE_DIR", await Deno.makeTempDir({ prefix: "da-cache-" }));

/** Answers the SDK's GraphQL calls and records file_stream uploads; `fail` answers 500 to all. */
function fakeWandb(fail = false) {
  const requests: { path: string; body: string }[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const path = new URL(req.url).pathname;
    const body = await req.text();
    requests.push({ path, body });
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

async function runWith(env: Record<string, string>) {
  for (const [k, v] of Object.entries(env)) Deno.env.set(k, v);
  const out = await Deno.makeTempDir({ prefix: "da-wandb-" });
  try {
    return await train(
      ["--loss", "dpo", "--max_steps", "3", "--eval_steps", "0", "--output_dir", out],
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
    const history = wandb.requests.filter((r) => r.path.endsWith("/file_stream"))
      .flatMap((r) => JSON.parse(r.body).files?.["wandb-history.jsonl"]?.content ?? [])
      .map((line: string) => JSON.parse(line));
    const steps = history.filter((h) => "loss" in h).map((h) => h._step);
    assert.deepEqual(steps, [1, 2, 3]);
    assert.ok(history.every((h) => !("loss" in h) || "rewards/accuracies" in h));
  },
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
