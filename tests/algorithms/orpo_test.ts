/**
 * ORPO against NLL(chosen) − λ·log σ(log-odds ratio), computed with Math.expm1/log1p; gradients
 * against finite differences; and numerical safety: mean token log-probs near 0, exactly 0 and
 * very negative give finite losses and gradients, in float64 and float32.
 */
import { ok } from "node:assert/strict";
import { evaluateLoss } from "../../algorithms/mod.ts";
import { orpo } from "../../algorithms/orpo.ts";
import { grad, input } from "../../graph/mod.ts";
import { Program } from "../../runtime/mod.ts";
import { assertClose, checkGraphGradient, checkLoss, randomBatch } from "./_check.ts";
import * as ref from "./_reference.ts";

const pairs = (lc: number[], lr: number[], Lc: number[], Lr: number[]) => ({
  policy_chosen_logps: lc.map((l, i) => l * Lc[i]),
  policy_rejected_logps: lr.map((l, i) => l * Lr[i]),
  chosen_lengths: Lc,
  rejected_lengths: Lr,
});

Deno.test("orpo.loss() matches NLL − λ log σ(log odds(y_c) − log odds(y_r))", async () => {
  const { reference_chosen_logps: _c, reference_rejected_logps: _r, ...b } = randomBatch(7, 41);
  await checkLoss("orpo", b, {}, ref.orpo);
  await checkLoss("orpo", b, { beta: 0.5 }, ref.orpo);
});

Deno.test("orpo.loss() hand-worked: equal odds give NLL + λ log 2", async () => {
  const out = await evaluateLoss("orpo", pairs([-0.5], [-0.5], [4], [8]));
  assertClose(out.loss, 0.5 + 0.1 * Math.LN2, 1e-15, "loss");
  assertClose(out.metrics.log_odds_chosen, 0, 1e-15, "log odds");
});

Deno.test("orpo.loss() is accurate for mean log-probs near 0 and very negative", async () => {
  // Near 0 the odds ratio is huge; at −80 per token, log(1 − P) ≈ −e^−80 must not round badly.
  const b = pairs(
    [-1e-6, -2e-9, -80, -0.7, -3],
    [-2e-6, -0.01, -1e-7, -80, -0.69],
    [5, 3, 7, 2, 9],
    [4, 6, 2, 3, 1],
  );
  await checkLoss("orpo", b, {}, ref.orpo, { gradTol: Infinity });
  // Gradients one pair at a time: a batch mean of O(10) would drown the finite differences of a
  // pair whose ℓ̄ is −2e-9 in rounding error.
  for (let i = 0; i < 5; i++) {
    const one = Object.fromEntries(Object.entries(b).map(([k, v]) => [k, [v[i]]]));
    await checkLoss("orpo", one, {}, ref.orpo, { gradTol: 1e-6 });
  }
  await checkGraphGradient(
    "orpo",
    pairs([-1e-3, -2, -0.7], [-0.5, -1e-2, -40], [3, 2, 5], [2, 4, 3]),
  );
});

Deno.test("orpo.loss() stays finite at ℓ̄ = 0 and ℓ̄ = −1e4, in float64", async () => {
  const out = await evaluateLoss("orpo", pairs([0, -1e4, 0], [-1e4, 0, 0], [3, 3, 3], [3, 3, 3]));
  ok(Number.isFinite(out.loss), `loss ${out.loss}`);
  for (const g of [...out.grad.policy_chosen_logps, ...out.grad.policy_rejected_logps]) {
    ok(Number.isFinite(g), `gradient ${g}`);
  }
  for (const [name, v] of Object.entries(out.metrics)) ok(Number.isFinite(v), `${name} = ${v}`);
});

Deno.test("orpo.loss() in float32 matches float64 at ℓ̄ = −1e-6 and −80, with finite gradients", async () => {
  const names = [
    "policyChosenLogps",
    "policyRejectedLogps",
    "chosenLengths",
    "rejectedLengths",
  ] as const;
  const x = Object.fromEntries(names.map((n) => [n, input(n, ["B"], "float32")])) as Record<
    typeof names[number],
    ReturnType<typeof input>
  >;
  const { loss, metrics } = orpo.loss(x, { beta: 0.1 });
  const [gc, gr] = grad(loss, [x.policyChosenLogps, x.policyRejectedLogps]);
  const p = await Program.compile({ loss, gc, gr, odds: metrics.log_odds_chosen });
  const b = pairs([-1e-6, -80, -0.5, 0], [-80, -1e-6, -1e-6, -90], [1, 1, 1, 1], [1, 1, 1, 1]);
  const f = (v: number[]) => ({
    dtype: "float32" as const,
    shape: [v.length],
    data: Float32Array.from(v),
  });
  const out = await p.run({
    policyChosenLogps: f(b.policy_chosen_logps),
    policyRejectedLogps: f(b.policy_rejected_logps),
    chosenLengths: f(b.chosen_lengths),
    rejectedLengths: f(b.rejected_lengths),
  });
  await p.release();
  // Compare with float64 on the float32-rounded inputs (ℓ̄ = 0 is capped at −1e-10 in the graph).
  const rounded = {
    ...b,
    policy_chosen_logps: Array.from(Float32Array.from(b.policy_chosen_logps)).map((v) =>
      v === 0 ? -1e-10 : v
    ),
    policy_rejected_logps: Array.from(Float32Array.from(b.policy_rejected_logps)),
  };
  const want = ref.orpo(rounded, { beta: 0.1 });
  assertClose(out.loss.data[0] as number, want.loss, 1e-6, "float32 loss");
  assertClose(out.odds.data[0] as number, want.metrics!.log_odds_chosen, 1e-6, "float32 log odds");
  for (const g of [...out.gc.data, ...out.gr.data]) {
    ok(Number.isFinite(g as number), `gradient ${g}`);
  }
});
