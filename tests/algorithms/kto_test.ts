/**
 * KTO against w_d(1 − σ(β(r − z))) / w_u(1 − σ(β(z − r))) with z = max(0, mean mismatched KL),
 * on paired and unpaired data; z carries no gradient (finite differences hold it fixed); batch
 * size 1 (z = 0) and odd batch sizes; the cheap in-batch estimate.
 */
import { equal, rejects } from "node:assert/strict";
import { evaluateLoss } from "../../algorithms/mod.ts";
import { assertClose, checkGraphGradient, checkLoss, randomBatch } from "./_check.ts";
import * as ref from "./_reference.ts";

const HP = { beta: 0.1, desirable_weight: 1, undesirable_weight: 1, kl_estimate: "mismatched" };

/** Finite differences of the reference with z held at its value on `b` (the stop-gradient). */
const zFixed = (b: ref.Batch, hp: Record<string, unknown>) => {
  const full = { ...HP, ...hp };
  const z = ref.ktoReferencePoint(b, full.kl_estimate as string);
  return (perturbed: ref.Batch) => ref.ktoLoss(perturbed, full, z);
};

/** A batch whose mismatched KL is positive, so z > 0 and the clamp is not what is tested. */
const positiveKl = (B: number, seed: number) => {
  const b = randomBatch(B, seed);
  return { ...b, reference_kl_logps: b.policy_kl_logps!.map((p, i) => p - 0.5 - i % 3) };
};

Deno.test("kto.loss() matches the KTO value function on paired data", async () => {
  const b = positiveKl(6, 51);
  const out = await checkLoss("kto", b, {}, ref.kto, { gradOf: zFixed(b, {}) });
  equal(out.metrics["kl/pairs"], 6);
  const hp = { beta: 0.5, desirable_weight: 1.33, undesirable_weight: 0.8 };
  await checkLoss("kto", b, hp, ref.kto, { gradOf: zFixed(b, hp) });
  await checkGraphGradient("kto", positiveKl(3, 52));
});

Deno.test("kto.loss() matches the KTO value function on unpaired labelled data", async () => {
  const p = positiveKl(5, 53);
  const b = {
    policy_logps: p.policy_chosen_logps,
    reference_logps: p.reference_chosen_logps,
    lengths: p.chosen_lengths,
    labels: [1, 0, 0, 1, 0],
    policy_kl_logps: p.policy_kl_logps,
    reference_kl_logps: p.reference_kl_logps,
  };
  const out = await checkLoss("kto", b, {}, ref.kto, { gradOf: zFixed(b, {}) });
  equal(out.grad.policy_logps.length, 5);
  // Rewards are means over desirable (rows 0, 3) and undesirable rows.
  const r = b.policy_logps!.map((v, i) => 0.1 * (v - b.reference_logps![i]));
  assertClose(out.metrics["rewards/chosen"], (r[0] + r[3]) / 2, 1e-15, "rewards/chosen");
  assertClose(out.metrics["rewards/rejected"], (r[1] + r[2] + r[4]) / 3, 1e-15, "rewards/rejected");
  await checkGraphGradient("kto", b);
});

Deno.test("kto.loss() clamps z at 0 when the mismatched KL estimate is negative", async () => {
  const b = randomBatch(4, 54);
  const neg = { ...b, reference_kl_logps: b.policy_kl_logps!.map((p) => p + 1) };
  const out = await checkLoss("kto", neg, {}, ref.kto);
  equal(out.metrics.kl, 0);
});

Deno.test("kto.loss() with batch size 1 uses z = 0 and reports no mismatched pairs", async () => {
  const b = Object.fromEntries(Object.entries(positiveKl(1, 55)).map(([k, v]) => [k, v]));
  const out = await checkLoss("kto", b, {}, ref.kto);
  equal(out.metrics.kl, 0);
  equal(out.metrics["kl/pairs"], 0);
});

Deno.test("kto.loss() with an odd batch size pairs every row", async () => {
  const b = positiveKl(3, 56);
  const out = await checkLoss("kto", b, {}, ref.kto, { gradOf: zFixed(b, {}) });
  equal(out.metrics["kl/pairs"], 3);
  const kl = b.policy_kl_logps!.map((p, i) => p - b.reference_kl_logps![i]);
  assertClose(out.metrics.kl, ref.mean(kl), 1e-15, "kl");
});

Deno.test("kto.loss() with kl_estimate batch uses the in-batch mean and needs no KL inputs", async () => {
  const { policy_kl_logps: _p, reference_kl_logps: _r, ...b } = randomBatch(5, 57);
  const shifted = { ...b, policy_chosen_logps: b.reference_chosen_logps!.map((v) => v + 2) };
  const hp = { kl_estimate: "batch" };
  const out = await checkLoss("kto", shifted, hp, ref.kto, { gradOf: zFixed(shifted, hp) });
  equal(out.metrics["kl/pairs"], 0);
  await rejects(
    evaluateLoss("kto", b),
    /Missing inputs for loss "kto": policy_kl_logps, reference_kl_logps/,
  );
  await rejects(
    evaluateLoss("kto", b, { hyperparameters: { kl_estimate: "nope" } }),
    /Invalid kl_estimate: "nope", expected one of mismatched, batch/,
  );
});
