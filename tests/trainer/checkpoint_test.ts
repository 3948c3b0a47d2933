/** A checkpoint save that fails leaves no debris (issue #12, case 4: a full disk stays full). */
import assert from "node:assert/strict";
import { saveCheckpoint } from "../../trainer/checkpoint.ts";
import { resolveConfig } from "../../trainer/config.ts";
import { initialParams, loadPolicy } from "../../trainer/policy.ts";

Deno.test("saveCheckpoint() removes its partial folder when writing fails", async () => {
  const { config } = resolveConfig({ cli: { model_name_or_path: "model/tiny" } });
  const policy = await loadPolicy(config);
  const dir = await Deno.makeTempDir();
  const params = await initialParams(policy, 1);
  // The model is written, then the optimizer state cannot be (as when the disk fills up).
  const slots = { m: { w: { dtype: "complex64", shape: [1], data: new Float32Array(2) } } };
  const state = { step: 3, params, slots } as unknown as Parameters<typeof saveCheckpoint>[2];
  await assert.rejects(
    saveCheckpoint(`${dir}/checkpoint-3`, policy, state, {
      step: 3,
      consumed: 3,
      algorithmState: {},
      config,
    }),
    new RegExp(`^Error: Cannot write checkpoint ${dir}/checkpoint-3: `),
  );
  assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), []);
  await Deno.remove(dir, { recursive: true });
});
