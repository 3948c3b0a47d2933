import assert from "node:assert/strict";
import { httpJudge, JudgeFailure, loadRuleJudge } from "../../judges/mod.ts";

Deno.test("loadRuleJudge() runs the built-in shorter-answer judge", async () => {
  const judge = await loadRuleJudge("judges/shorter.ts");
  assert.equal(await judge.judge("p", "a long answer", "short"), "b");
  assert.equal(await judge.judge("p", "same", "same"), "tie");
});

Deno.test("loadRuleJudge() maps numeric scores and rejects modules without judge()", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(
    `${dir}/score.ts`,
    "export const judge = (_p: string, a: string) => a.includes('yes') ? -1 : 2;",
  );
  await Deno.writeTextFile(`${dir}/bad.ts`, "export const rank = 1;");
  const judge = await loadRuleJudge(`${dir}/score.ts`);
  assert.equal(await judge.judge("p", "yes", "no"), "a");
  assert.equal(await judge.judge("p", "no", "yes"), "b");
  await assert.rejects(loadRuleJudge(`${dir}/bad.ts`), /must export a function judge/);
  await Deno.remove(dir, { recursive: true });
});

/** A local OpenAI-compatible server whose answers follow `script`, one entry per request. */
function fakeServer(script: (string | number | "hang")[]) {
  let calls = 0;
  const bodies: unknown[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    bodies.push(await req.json());
    const step = script[Math.min(calls++, script.length - 1)];
    if (step === "hang") await new Promise((r) => setTimeout(r, 400));
    if (typeof step === "number") return new Response("error", { status: step });
    const content = step === "hang" ? "A" : step;
    return Response.json({ choices: [{ message: { role: "assistant", content } }] });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}/v1`,
    calls: () => calls,
    bodies,
    close: () => server.shutdown(),
  };
}

Deno.test("httpJudge() reads the letter the model answers", async () => {
  const server = fakeServer(["B", " a"]);
  const judge = httpJudge({ url: server.url, model: "m" });
  assert.equal(await judge.judge("2+2?", "5", "4"), "b");
  assert.equal(await judge.judge("2+2?", "4", "5"), "a");
  const first = server.bodies[0] as { model: string; messages: { content: string }[] };
  assert.equal(first.model, "m");
  assert.match(first.messages[1].content, /Answer A:\n5\n\nAnswer B:\n4/);
  await server.close();
});

Deno.test("httpJudge() retries server errors and timeouts a bounded number of times", async () => {
  const flaky = fakeServer([503, "hang", "A"]);
  const judge = httpJudge({
    url: flaky.url,
    model: "m",
    timeoutMs: 150,
    maxRetries: 2,
    backoffMs: 1,
  });
  assert.equal(await judge.judge("p", "x", "y"), "a");
  assert.equal(flaky.calls(), 3);
  await flaky.close();

  const down = fakeServer([500]);
  const failing = httpJudge({ url: down.url, model: "m", maxRetries: 2, backoffMs: 1 });
  const error = await failing.judge("p", "x", "y").catch((e) => e);
  assert.ok(error instanceof JudgeFailure);
  assert.equal(error.reason, "http_500");
  assert.equal(down.calls(), 3);
  await down.close();
});

Deno.test("httpJudge() does not retry client errors or unparseable replies", async () => {
  const server = fakeServer([401, "maybe"]);
  const judge = httpJudge({ url: server.url, model: "m", maxRetries: 3, backoffMs: 1 });
  assert.equal((await judge.judge("p", "x", "y").catch((e) => e)).reason, "http_401");
  assert.equal((await judge.judge("p", "x", "y").catch((e) => e)).reason, "unparseable");
  assert.equal(server.calls(), 2);
  await server.close();
});

Deno.test("httpJudge() requires the named API key variable to be set", () => {
  assert.throws(
    () => httpJudge({ url: "http://127.0.0.1:1", model: "m", apiKeyEnv: "NO_SUCH_JUDGE_KEY" }),
    /Judge API key variable NO_SUCH_JUDGE_KEY is not set/,
  );
});
