/**
 * The session takes the starting parameters over: their host arrays are freed as soon as the
 * step holds its copy (not at V8's next collection), and that copy is the whole model.
 */
import assert from "node:assert/strict";
import type { HostTensor } from "../../graph/mod.ts";
import { loadConfig } from "../../model/config.ts";
import { TINY_MODEL_DIR } from "../../model/load.ts";
import { loadWeights } from "../../model/weights.ts";
import { resolveConfig } from "../../trainer/config.ts";
import { RefLogpCache } from "../../trainer/ref_cache.ts";
import { Session } from "../../trainer/session.ts";

Deno.test("Session.create frees the starting parameters' host arrays and trains on its own copy", async () => {
  const config = await loadConfig(TINY_MODEL_DIR);
  const params = await loadWeights(TINY_MODEL_DIR, config);
  const before: Record<string, HostTensor> = {};
  for (const [name, t] of Object.entries(params)) before[name] = { ...t, data: t.data.slice() };
  const cache = RefLogpCache.memory();
  cache.set("train:0", [-20, -20]);
  const session = await Session.create(
    {
      tokenizer: { padTokenId: 0, stopTokenIds: [], decode: () => "" },
      policy: { config, model: {} },
      params,
      data: {
        kind: "paired",
        train: [{
          kind: "paired",
          promptIds: [5, 6, 7],
          chosenIds: [8, 9],
          rejectedIds: [10],
          row: 0,
        }],
        eval: [],
      },
    },
    resolveConfig({ cli: { loss: "dpo", per_device_train_batch_size: "1", max_steps: "1" } }),
    { device: "cpu", cache },
  );
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
