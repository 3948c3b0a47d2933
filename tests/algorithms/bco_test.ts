/**
 * BCO against −log σ(βr_c − δ) − log σ(−(βr_r − δ)), with δ the running mean of rewards kept as
 * state across steps (gradient-free: finite differences hold δ fixed), on paired and unpaired
 * data, and its state update. (No finite-difference check of the graph itself: δ depends on
 * the batch's rewards in value but, by design, not in gradient.)
 */
import { deepStrictEqual } from "node:assert/strict";
import { algorithm } from "../../algorithms/mod.ts";
import { assertClose, checkLoss, randomBatch } from "./_check.ts";
import * as ref from "./_reference.ts";

const δFixed = (b: ref.Batch, β = 0.1) => {
  const δ = ref.bcoDelta(b, β);
  return (perturbed: ref.Batch) => ref.bcoLoss(perturbed, β, δ);
};

Deno.test("bco.loss() at the first step uses δ = the batch's mean reward", async () => {
  const b = randomBatch(6, 61);
  const out = await checkLoss("bco", b, {}, ref.bco, { gradOf: δFixed(b) });
  const { r } = ref.completions(b);
  assertClose(out.metrics.delta, ref.mean(r.map((v) => 0.1 * v)), 1e-15, "delta");
});

Deno.test("bco.loss() folds the batch into the running mean carried as state", async () => {
  const b = { ...randomBatch(5, 62), state: { delta: 0.3, steps: 9 } };
  const out = await checkLoss("bco", b, { beta: 0.2 }, ref.bco, { gradOf: δFixed(b, 0.2) });
  const batchMean = ref.mean(ref.completions(b).r.map((v) => 0.2 * v));
  assertClose(out.metrics.delta, (9 * 0.3 + batchMean) / 10, 1e-15, "delta");
});

Deno.test("bco.loss() on unpaired data matches the classifier loss", async () => {
  const p = randomBatch(5, 63);
  const b = {
    policy_logps: p.policy_rejected_logps,
    reference_logps: p.reference_rejected_logps,
    lengths: p.rejected_lengths,
    labels: [0, 1, 1, 0, 1],
    state: { delta: -0.05, steps: 2 },
  };
  await checkLoss("bco", b, {}, ref.bco, { gradOf: δFixed(b) });
});

Deno.test("bco.state.update() keeps δ and counts steps", () => {
  const state = algorithm("bco").state!;
  deepStrictEqual(state.initial, { delta: 0, steps: 0 });
  deepStrictEqual(state.update({ delta: 0, steps: 3 }, { delta: 0.25, loss: 1 }), {
    delta: 0.25,
    steps: 4,
  });
});
