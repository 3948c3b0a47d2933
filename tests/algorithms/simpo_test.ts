/**
 * SimPO against −log σ(β(ℓ̄_c − ℓ̄_r) − γ) (+ cpo_alpha·NLL), without reference inputs, and its
 * gradients against finite differences.
 */
import { equal } from "node:assert/strict";
import { evaluateLoss } from "../../algorithms/mod.ts";
import { assertClose, checkGraphGradient, checkLoss, randomBatch } from "./_check.ts";
import * as ref from "./_reference.ts";

const referenceFree = (seed: number, B = 5) => {
  const { reference_chosen_logps: _c, reference_rejected_logps: _r, ...b } = randomBatch(B, seed);
  return b;
};

Deno.test("simpo.loss() matches −log σ(β(ℓ̄_c − ℓ̄_r) − γ) with no reference model", async () => {
  await checkLoss("simpo", referenceFree(31, 7), {}, ref.simpo);
  await checkLoss("simpo", referenceFree(32), { beta: 2.5, simpo_gamma: 1.375 }, ref.simpo);
  await checkGraphGradient("simpo", referenceFree(33, 3));
});

Deno.test("simpo.loss() hand-worked: equal mean log-probs give −log σ(−γ)", async () => {
  const out = await evaluateLoss("simpo", {
    policy_chosen_logps: [-6],
    policy_rejected_logps: [-3],
    chosen_lengths: [4],
    rejected_lengths: [2],
  });
  assertClose(out.loss, Math.log1p(Math.exp(0.5)), 1e-15, "loss");
  // d/dπ_c = −β σ(γ − 0)·(1/|y_c|) = −2·σ(0.5)/4
  assertClose(out.grad.policy_chosen_logps[0], -0.5 * ref.sigmoid(0.5), 1e-15, "d/dπ_c");
  equal(out.metrics["rewards/chosen"], -3);
});

Deno.test("simpo.loss() adds cpo_alpha times the chosen mean-token NLL", async () => {
  await checkLoss("simpo", referenceFree(34), { cpo_alpha: 0.7 }, ref.simpo);
  await checkGraphGradient("simpo", referenceFree(35, 3), { cpo_alpha: 0.7 });
});
