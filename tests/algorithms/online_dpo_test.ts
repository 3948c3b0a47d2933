/**
 * online_dpo's loss on judged pairs: DPO's −log σ(βΔ) or IPO's (Δ − 1/2β)², worked by hand, and the
 * agreement metric (does the policy's mean token log-prob already favour the judge's choice?).
 */
import { equal, rejects } from "node:assert/strict";
import { evaluateLoss } from "../../algorithms/mod.ts";
import { assertClose } from "./_check.ts";

// Two pairs. Δ₁ = (−10 − −11) − (−12 − −11) = 2; Δ₂ = (−9 − −9) − (−8 − −8) = 0.
const pairs = {
  policy_chosen_logps: [-10, -9],
  policy_rejected_logps: [-12, -8],
  reference_chosen_logps: [-11, -9],
  reference_rejected_logps: [-11, -8],
  chosen_lengths: [4, 3],
  rejected_lengths: [6, 2],
};

Deno.test("online_dpo.loss() is DPO on the judged pairs by default", async () => {
  const out = await evaluateLoss("online_dpo", pairs, { hyperparameters: { beta: 0.1 } });
  const expected = (Math.log1p(Math.exp(-0.2)) + Math.LN2) / 2;
  assertClose(out.loss, expected, 1e-14, "loss");
  // Mean token log-probs: pair 1: −2.5 vs −2 (policy prefers rejected), pair 2: −3 vs −4 (chosen).
  equal(out.metrics["judge/agreement"], 0.5);
});

Deno.test("online_dpo.loss() with online_loss ipo is IPO on the judged pairs", async () => {
  const out = await evaluateLoss("online_dpo", pairs, {
    hyperparameters: { beta: 0.1, online_loss: "ipo" },
  });
  // IPO averages log-ratios per token: pair 1: 1/4 − (−1/6) = 5/12; pair 2: 0. Target 1/(2β) = 5.
  const expected = ((5 / 12 - 5) ** 2 + 25) / 2;
  assertClose(out.loss, expected, 1e-12, "loss");
});

Deno.test("online_dpo.loss() rejects an unknown online_loss", async () => {
  await rejects(
    evaluateLoss("online_dpo", pairs, { hyperparameters: { online_loss: "kto" } }),
    /Invalid online_loss: "kto", expected one of dpo, ipo/,
  );
});
