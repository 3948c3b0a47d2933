import assert from "node:assert/strict";
import {
  createJudge,
  httpJudge,
  JudgeFailure,
  loadRuleJudge,
  withDeadline,
} from "../../judges/mod.ts";

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
function fakeServer(script: (string | number | "hang" | "garbage")[]) {
  let calls = 0;
  const bodies: unknown[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    bodies.push(await req.json());
    const step = script[Math.min(calls++, script.length - 1)];
    if (step === "hang") await new Promise((r) => setTimeout(r, 400));
    if (step === "garbage") return new Response("<html>oops</html>");
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

Deno.test("httpJudge() retries a timeout at once: a hung judge costs timeout × (retries + 1)", async () => {
  const hung = fakeServer(["hang"]);
  // A backoff this long would show in the elapsed time if it followed a timeout.
  const judge = httpJudge({
    url: hung.url,
    model: "m",
    timeoutMs: 50,
    maxRetries: 2,
    backoffMs: 60_000,
  });
  const start = performance.now();
  const error = await judge.judge("p", "x", "y").catch((e) => e);
  const elapsed = performance.now() - start;
  assert.equal(error.reason, "timeout");
  assert.match(error.message, /did not answer within 0.05 s \(judge_timeout\)/);
  assert.equal(hung.calls(), 3);
  assert.ok(elapsed < 30_000, `took ${elapsed} ms: a backoff followed a timeout`);
  await new Promise((r) => setTimeout(r, 450)); // let the server's hung handlers finish
  await hung.close();
});

Deno.test("httpJudge() names a non-JSON reply and a refused connection", async () => {
  const server = fakeServer(["garbage"]);
  const judge = httpJudge({ url: server.url, model: "m", maxRetries: 0 });
  const garbage = await judge.judge("p", "x", "y").catch((e) => e);
  assert.equal(garbage.reason, "unparseable");
  assert.match(garbage.message, /non-JSON: "<html>oops<\/html>"/);
  await server.close();
  const refused = await httpJudge({ url: server.url, model: "m", maxRetries: 1, backoffMs: 1 })
    .judge("p", "x", "y").catch((e) => e);
  assert.equal(refused.reason, "network");
  assert.match(
    refused.message,
    /Judge request to http:\/\/127\.0\.0\.1:\d+\/v1\/chat\/completions failed/,
  );
});

Deno.test("withDeadline() turns a never-settling judge into a timeout and a throw into a failure", async () => {
  const hung = withDeadline({ name: "hung", judge: () => new Promise(() => {}) }, 20);
  const timeout = await hung.judge("p", "a", "b").catch((e) => e);
  assert.ok(timeout instanceof JudgeFailure);
  assert.equal(timeout.reason, "timeout");
  assert.match(timeout.message, /hung gave no verdict within 0.02 s \(judge_timeout\)/);
  const throwing = withDeadline({
    name: "throwing",
    judge: () => Promise.reject(new TypeError("cannot read x")),
  }, 1000);
  const error = await throwing.judge("p", "a", "b").catch((e) => e);
  assert.equal(error.reason, "exception");
  assert.match(error.message, /throwing threw: cannot read x/);
});

Deno.test("createJudge() puts module judges under judge_timeout", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/hang.ts`, "export const judge = () => new Promise(() => {});");
  const judge = await createJudge({
    judge: `${dir}/hang.ts`,
    judge_timeout: 0.02,
    judge_max_retries: 2,
  });
  assert.equal((await judge.judge("p", "a", "b").catch((e) => e)).reason, "timeout");
  await Deno.remove(dir, { recursive: true });
});
