/**
 * DPO against −log σ(βΔ) computed by hand and in plain TypeScript; gradients against central
 * differences; the large-β limit; and no overflow at extreme margins in float32 and float64.
 * Tolerances: 1e-12 relative for values (float64 both sides), 1e-7 for gradients (h = 1e-6·|x|).
 */
import { equal, ok } from "node:assert/strict";
import { evaluateLoss } from "../../algorithms/mod.ts";
import { dpo as dpoModule } from "../../algorithms/dpo.ts";
import { input } from "../../graph/mod.ts";
import { Program } from "../../runtime/mod.ts";
import { assertClose, checkGraphGradient, checkLoss, randomBatch } from "./_check.ts";
import * as ref from "./_reference.ts";

const one = (pc: number, pr: number, rc: number, rr: number) => ({
  policy_chosen_logps: [pc],
  policy_rejected_logps: [pr],
  reference_chosen_logps: [rc],
  reference_rejected_logps: [rr],
  chosen_lengths: [4],
  rejected_lengths: [6],
});

Deno.test("dpo.loss() is log 2 with gradient ∓β/2 when the policy equals the reference", async () => {
  const out = await evaluateLoss("dpo", one(-10, -12, -10, -12), {
    hyperparameters: { beta: 0.1 },
  });
  assertClose(out.loss, Math.LN2, 1e-15, "loss");
  assertClose(out.grad.policy_chosen_logps[0], -0.05, 1e-15, "d/dπ_c");
  assertClose(out.grad.policy_rejected_logps[0], 0.05, 1e-15, "d/dπ_r");
  equal(out.metrics["rewards/accuracies"], 0);
});

Deno.test("dpo.loss() matches a hand-worked pair", async () => {
  // Δ = (−10 − −11) − (−12 − −11) = 2; βΔ = 0.2; −log σ(0.2) = log(1 + e^−0.2) = 0.598138869…
  const out = await evaluateLoss("dpo", one(-10, -12, -11, -11));
  assertClose(out.loss, 0.5981388693815918, 1e-15, "loss");
  // d/dπ_c = −β σ(−βΔ) = −0.1 · 0.450166…
  assertClose(out.grad.policy_chosen_logps[0], -0.04501660026875221, 1e-15, "d/dπ_c");
  assertClose(out.metrics["rewards/chosen"], 0.1, 1e-15, "rewards/chosen");
  assertClose(out.metrics["rewards/rejected"], -0.1, 1e-15, "rewards/rejected");
  assertClose(out.metrics["rewards/margins"], 0.2, 1e-15, "rewards/margins");
  equal(out.metrics["rewards/accuracies"], 1);
});

Deno.test("dpo.loss() matches -log σ(βΔ) on a random batch, with metrics and gradient", async () => {
  await checkLoss("dpo", randomBatch(7, 3), {}, ref.dpo);
  await checkLoss("dpo", randomBatch(5, 4), { beta: 0.5 }, ref.dpo);
});

Deno.test("dpo.loss() with label_smoothing matches the conservative form", async () => {
  await checkLoss("dpo", randomBatch(6, 5), { label_smoothing: 0.2, beta: 0.3 }, ref.dpo);
});

Deno.test("dpo.loss() graph gradient matches finite differences", async () => {
  await checkGraphGradient("dpo", randomBatch(3, 6));
  await checkGraphGradient("dpo", randomBatch(3, 7), { label_smoothing: 0.1 });
});

Deno.test("dpo.loss() tends to mean(relu(−βΔ)) as β grows", async () => {
  const b = randomBatch(6, 8);
  const Δ = b.policy_chosen_logps!.map((p, i) =>
    p - b.reference_chosen_logps![i] -
    (b.policy_rejected_logps![i] - b.reference_rejected_logps![i])
  );
  for (const beta of [1e2, 1e4, 1e6]) {
    const out = await evaluateLoss("dpo", b, { hyperparameters: { beta } });
    const limit = ref.mean(Δ.map((d) => Math.max(0, -beta * d)));
    // −log σ(x) − relu(−x) = log(1 + e^−|x|) ≤ e^−|x|, negligible once β|Δ| ≫ 1.
    assertClose(out.loss, limit, 1e-9, `loss at β = ${beta}`);
    out.grad.policy_chosen_logps.forEach((g, i) => {
      assertClose(g, Δ[i] < 0 ? -beta / Δ.length : 0, 1e-9, `gradient ${i} at β = ${beta}`);
    });
  }
});

Deno.test("dpo.loss() stays finite at extreme margins in float64 and float32", async () => {
  const big = one(-1e4, -1, -1, -1e4); // Δ ≈ −2e4: βΔ = −2e3, beyond e^x's float64 range
  const out = await evaluateLoss("dpo", big, { hyperparameters: { beta: 0.1 } });
  assertClose(out.loss, 0.1 * 19998, 1e-12, "loss");
  ok(Number.isFinite(out.grad.policy_chosen_logps[0]));

  const x = Object.fromEntries(
    ["policyChosenLogps", "policyRejectedLogps", "referenceChosenLogps", "referenceRejectedLogps"]
      .map((n) => [n, input(n, ["B"], "float32")]),
  );
  const lengths = {
    chosenLengths: input("cl", ["B"], "float32"),
    rejectedLengths: input("rl", ["B"], "float32"),
  };
  const { loss } = dpoModule.loss({ ...x, ...lengths } as Parameters<typeof dpoModule.loss>[0], {
    beta: 10,
    label_smoothing: 0.1,
  });
  const p = await Program.compile({ loss });
  const f = (v: number[]) => ({
    dtype: "float32" as const,
    shape: [v.length],
    data: Float32Array.from(v),
  });
  const got = await p.run({
    policyChosenLogps: f([-500, -1]),
    policyRejectedLogps: f([-1, -500]),
    referenceChosenLogps: f([-1, -1]),
    referenceRejectedLogps: f([-1, -1]),
  });
  // Pair 1: βΔ = −4990: 0.9·4990; pair 2: βΔ = 4990: 0.1·4990 (the ε term).
  assertClose(got.loss.data[0] as number, (0.9 * 4990 + 0.1 * 4990) / 2, 1e-6, "float32 loss");
  await p.release();
});
