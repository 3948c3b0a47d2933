/**
 * cDPO and rDPO, the noisy-label variants of DPO: their formulas, their gradients, their ε = 0
 * limits (both equal DPO), and the properties that define them (cDPO's finite optimum, rDPO's
 * unbiasedness under label flips). Tolerances as in dpo_test.ts.
 */
import { rejects } from "node:assert/strict";
import { evaluateLoss } from "../../algorithms/mod.ts";
import { assertClose, checkGraphGradient, checkLoss, randomBatch } from "./_check.ts";
import * as ref from "./_reference.ts";

Deno.test("cdpo.loss() matches −(1−ε) log σ(βΔ) − ε log σ(−βΔ) with ε = 0.1 by default", async () => {
  await checkLoss(
    "cdpo",
    randomBatch(7, 11),
    {},
    (b, hp) => ref.dpo(b, { ...hp, label_smoothing: 0.1 }),
  );
  await checkLoss("cdpo", randomBatch(4, 12), { label_smoothing: 0.3, beta: 0.2 }, ref.dpo);
  await checkGraphGradient("cdpo", randomBatch(3, 13));
});

Deno.test("cdpo.loss() with ε = 0 equals dpo.loss()", async () => {
  const b = randomBatch(5, 14);
  const c = await evaluateLoss("cdpo", b, { hyperparameters: { label_smoothing: 0 } });
  const d = await evaluateLoss("dpo", b);
  assertClose(c.loss, d.loss, 1e-15, "loss");
  c.grad.policy_chosen_logps.forEach((g, i) =>
    assertClose(g, d.grad.policy_chosen_logps[i], 1e-15, "grad")
  );
});

Deno.test("cdpo.loss() has zero gradient at the margin βΔ = log((1−ε)/ε)", async () => {
  const ε = 0.1, β = 0.1, Δ = Math.log((1 - ε) / ε) / β;
  const out = await evaluateLoss("cdpo", {
    policy_chosen_logps: [-10 + Δ],
    policy_rejected_logps: [-10],
    reference_chosen_logps: [-10],
    reference_rejected_logps: [-10],
    chosen_lengths: [3],
    rejected_lengths: [3],
  });
  assertClose(out.grad.policy_chosen_logps[0], 0, 1e-15, "gradient at the optimum");
});

Deno.test("rdpo.loss() matches [−(1−ε) log σ(βΔ) + ε log σ(−βΔ)]/(1−2ε)", async () => {
  await checkLoss("rdpo", randomBatch(7, 15), {}, ref.rdpo);
  await checkLoss("rdpo", randomBatch(4, 16), { label_smoothing: 0.25, beta: 0.5 }, ref.rdpo);
  await checkGraphGradient("rdpo", randomBatch(3, 17));
});

Deno.test("rdpo.loss() with ε = 0 equals dpo.loss()", async () => {
  const b = randomBatch(5, 18);
  const r = await evaluateLoss("rdpo", b, { hyperparameters: { label_smoothing: 0 } });
  const d = await evaluateLoss("dpo", b);
  assertClose(r.loss, d.loss, 1e-15, "loss");
  r.grad.policy_rejected_logps.forEach((g, i) =>
    assertClose(g, d.grad.policy_rejected_logps[i], 1e-15, "grad")
  );
});

Deno.test("rdpo.loss() averaged over a flip with probability ε is the clean DPO loss", async () => {
  const b = randomBatch(6, 19), ε = 0.2;
  const flipped = {
    ...b,
    policy_chosen_logps: b.policy_rejected_logps,
    policy_rejected_logps: b.policy_chosen_logps,
    reference_chosen_logps: b.reference_rejected_logps,
    reference_rejected_logps: b.reference_chosen_logps,
  };
  const hp = { hyperparameters: { label_smoothing: ε } };
  const clean = await evaluateLoss("rdpo", b, hp), noisy = await evaluateLoss("rdpo", flipped, hp);
  const dpo = await evaluateLoss("dpo", b);
  assertClose((1 - ε) * clean.loss + ε * noisy.loss, dpo.loss, 1e-12, "expected loss");
});

Deno.test("evaluateLoss() rejects ε ≥ 0.5 for cdpo and rdpo (the key's range)", async () => {
  const b = randomBatch(2, 20);
  for (const name of ["cdpo", "rdpo"]) {
    await rejects(
      evaluateLoss(name, b, { hyperparameters: { label_smoothing: 0.5 } }),
      /Invalid label_smoothing: 0\.5, expected a number in \[0, 0\.5\)/,
    );
  }
});
