/**
 * The smaller pairwise losses against their formulas, with gradients against finite differences:
 * dpo_norm, odpo, hinge (SLiC), apo_zero, nca and rpo. Tolerances as in dpo_test.ts.
 */
import { equal } from "node:assert/strict";
import { evaluateLoss } from "../../algorithms/mod.ts";
import { assertClose, checkGraphGradient, checkLoss, randomBatch } from "./_check.ts";
import * as ref from "./_reference.ts";

Deno.test("dpo_norm.loss() matches −log σ(β·Δ) on per-token log-ratios, β = 5", async () => {
  await checkLoss(
    "dpo_norm",
    randomBatch(7, 71),
    {},
    (b, hp) => ref.dpoNorm(b, { ...hp, beta: 5 }),
  );
  await checkLoss("dpo_norm", randomBatch(4, 72), { label_smoothing: 0.1, beta: 2 }, ref.dpoNorm);
  await checkGraphGradient("dpo_norm", randomBatch(3, 73));
});

Deno.test("dpo_norm.loss() equals dpo.loss() when every completion is one token long", async () => {
  const b = {
    ...randomBatch(5, 74),
    chosen_lengths: [1, 1, 1, 1, 1],
    rejected_lengths: [1, 1, 1, 1, 1],
  };
  const n = await evaluateLoss("dpo_norm", b, { hyperparameters: { beta: 0.1 } });
  const d = await evaluateLoss("dpo", b);
  assertClose(n.loss, d.loss, 1e-15, "loss");
});

Deno.test("odpo.loss() matches −log σ(βΔ − α log(s_c − s_r))", async () => {
  await checkLoss("odpo", randomBatch(7, 75), {}, ref.odpo);
  await checkLoss("odpo", randomBatch(4, 76), { odpo_alpha: 0.5, beta: 0.3 }, ref.odpo);
  await checkGraphGradient("odpo", randomBatch(3, 77));
});

Deno.test("odpo.loss() with α = 0 equals dpo.loss(), and ties get the smallest offset", async () => {
  const b = randomBatch(5, 78);
  const o = await evaluateLoss("odpo", b, { hyperparameters: { odpo_alpha: 0 } });
  assertClose(o.loss, (await evaluateLoss("dpo", b)).loss, 1e-15, "loss");
  const tie = { ...b, chosen_scores: [7, 7, 7, 7, 7], rejected_scores: [7, 8, 7, 7, 7] };
  const t = await evaluateLoss("odpo", tie);
  assertClose(t.metrics.offset, Math.log(1e-3), 1e-15, "offset of ties and inverted pairs");
});

Deno.test("hinge.loss() matches max(0, 1 − βΔ)", async () => {
  const b = randomBatch(7, 79);
  await checkLoss("hinge", b, {}, ref.hinge);
  const out = await checkLoss("hinge", b, { beta: 0.5 }, ref.hinge);
  // Pairs past the margin get no gradient; the others get −β/B.
  const Δ = b.policy_chosen_logps!.map((p, i) =>
    p - b.reference_chosen_logps![i] - b.policy_rejected_logps![i] + b.reference_rejected_logps![i]
  );
  out.grad.policy_chosen_logps.forEach((g, i) => equal(g, 0.5 * Δ[i] < 1 ? -0.5 / 7 : 0));
  await checkGraphGradient("hinge", randomBatch(3, 80));
});

Deno.test("apo_zero.loss() matches (1 − σ(βr_c)) + σ(βr_r), 1 at the start", async () => {
  await checkLoss("apo_zero", randomBatch(7, 81), {}, ref.apoZero);
  await checkLoss("apo_zero", randomBatch(4, 82), { beta: 0.4 }, ref.apoZero);
  await checkGraphGradient("apo_zero", randomBatch(3, 83));
  const b = randomBatch(2, 84);
  const start = {
    ...b,
    policy_chosen_logps: b.reference_chosen_logps,
    policy_rejected_logps: b.reference_rejected_logps,
  };
  assertClose((await evaluateLoss("apo_zero", start)).loss, 1, 1e-15, "loss at the start");
});

Deno.test("nca.loss() matches −log σ(r_c) − ½ log σ(−r_c) − ½ log σ(−r_r), 2 log 2 at the start", async () => {
  await checkLoss("nca", randomBatch(7, 85), {}, ref.nca);
  await checkLoss("nca", randomBatch(4, 86), { beta: 0.7 }, ref.nca);
  await checkGraphGradient("nca", randomBatch(3, 87));
  const b = randomBatch(2, 88);
  const start = {
    ...b,
    policy_chosen_logps: b.reference_chosen_logps,
    policy_rejected_logps: b.reference_rejected_logps,
  };
  assertClose((await evaluateLoss("nca", start)).loss, 2 * Math.LN2, 1e-15, "loss at the start");
});

Deno.test("rpo.loss() matches −log σ(βΔ) + α·NLL(chosen)/|y_c|", async () => {
  await checkLoss("rpo", randomBatch(7, 89), {}, ref.rpo);
  await checkLoss("rpo", randomBatch(4, 90), { rpo_alpha: 0.25 }, ref.rpo);
  await checkGraphGradient("rpo", randomBatch(3, 91));
  const b = randomBatch(4, 92);
  const r = await evaluateLoss("rpo", b, { hyperparameters: { rpo_alpha: 0 } });
  assertClose(r.loss, (await evaluateLoss("dpo", b)).loss, 1e-15, "α = 0 is DPO");
});
