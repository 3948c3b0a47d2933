/**
 * The session takes the starting parameters over: their host arrays are freed as soon as the
 * step holds its copy (not at V8's next collection), and that copy is the whole model. Arrays an
 * in-memory reference model shares (the page's) are kept.
 */
import assert from "node:assert/strict";
import type { HostTensor } from "../../graph/mod.ts";
import { loadConfig } from "../../model/config.ts";
import { TINY_MODEL_DIR } from "../../model/load.ts";
import { loadWeights } from "../../model/weights.ts";
import { resolveConfig } from "../../trainer/config.ts";
import { RefLogpCache } from "../../trainer/ref_cache.ts";
import { Session } from "../../trainer/session.ts";

/** A one-pair DPO session on the tiny model; `sharedReference`: the params double as the reference. */
async function tinySession(params: Record<string, HostTensor>, sharedReference: boolean) {
  const config = await loadConfig(TINY_MODEL_DIR);
  const cache = RefLogpCache.memory();
  if (!sharedReference) cache.set("train:0", [-20, -20]);
  const pair = {
    kind: "paired" as const,
    promptIds: [5, 6, 7],
    chosenIds: [8, 9],
    rejectedIds: [10],
  };
  return await Session.create(
    {
      tokenizer: { padTokenId: 0, stopTokenIds: [], decode: () => "" },
      policy: { config, model: {} },
      params,
      data: { kind: "paired", train: [{ ...pair, row: 0 }], eval: [] },
      reference: sharedReference ? { config, weights: params } : undefined,
    },
    resolveConfig({ cli: { loss: "dpo", per_device_train_batch_size: "1", max_steps: "1" } }),
    { device: "cpu", cache },
  );
}

Deno.test("Session.create frees the starting parameters' host arrays and trains on its own copy", async () => {
  const params = await loadWeights(TINY_MODEL_DIR, await loadConfig(TINY_MODEL_DIR));
  const before: Record<string, HostTensor> = {};
  for (const [name, t] of Object.entries(params)) before[name] = { ...t, data: t.data.slice() };
  const session = await tinySession(params, false);
  try {
    for (const [name, t] of Object.entries(params)) {
      assert.equal(t.data.length, 0, `${name}'s host array is still allocated`);
    }
    const held = await session.readState();
    for (const [name, t] of Object.entries(before)) {
      assert.deepEqual(held.params[name].data, t.data, `${name} differs from what was handed over`);
    }
    assert.equal((await session.step()).skipped, null);
    assert.ok(Number.isFinite(session.takeRow().loss));
  } finally {
    await session.release();
  }
});

Deno.test("Session.create keeps the arrays an in-memory reference model shares with the parameters", async () => {
  const params = await loadWeights(TINY_MODEL_DIR, await loadConfig(TINY_MODEL_DIR));
  const session = await tinySession(params, true);
  try {
    for (const [name, t] of Object.entries(params)) {
      assert.ok(t.data.length > 0, `${name} was freed though the reference feeds it`);
    }
    assert.equal((await session.step()).skipped, null);
    assert.ok(Number.isFinite(session.takeRow().loss));
  } finally {
    await session.release();
  }
});
