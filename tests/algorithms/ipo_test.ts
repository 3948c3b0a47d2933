/**
 * IPO against (Δ − 1/(2β))², with per-token averaged log-ratios by default and summed ones with
 * `ipo_average: false`; its loss scale at the start; gradients against finite differences.
 */
import { evaluateLoss } from "../../algorithms/mod.ts";
import { assertClose, checkGraphGradient, checkLoss, randomBatch } from "./_check.ts";
import * as ref from "./_reference.ts";

Deno.test("ipo.loss() is (1/(2β))² = 25 at the start for β = 0.1", async () => {
  const b = randomBatch(3, 21);
  const start = {
    ...b,
    policy_chosen_logps: b.reference_chosen_logps,
    policy_rejected_logps: b.reference_rejected_logps,
  };
  const out = await evaluateLoss("ipo", start);
  assertClose(out.loss, 25, 1e-15, "loss");
  // d/dπ_c,i = 2(Δ̄ − 5)/(B·|y_c,i|) = −10/(3·|y_c,i|)
  out.grad.policy_chosen_logps.forEach((g, i) =>
    assertClose(g, -10 / (3 * b.chosen_lengths![i]), 1e-15, `d/dπ_c[${i}]`)
  );
});

Deno.test("ipo.loss() matches (Δ − 1/(2β))² on per-token averaged log-ratios", async () => {
  await checkLoss("ipo", randomBatch(7, 22), {}, ref.ipo);
  await checkLoss("ipo", randomBatch(4, 23), { beta: 0.5 }, ref.ipo);
  await checkGraphGradient("ipo", randomBatch(3, 24));
});

Deno.test("ipo.loss() with ipo_average false matches the summed-log-ratio formula", async () => {
  await checkLoss("ipo", randomBatch(6, 25), { ipo_average: false }, ref.ipo, { gradTol: 1e-6 });
  await checkGraphGradient("ipo", randomBatch(3, 26), { ipo_average: false });
  // Summed and averaged differ whenever lengths are not 1.
  const b = randomBatch(4, 27);
  const summed = await evaluateLoss("ipo", b, { hyperparameters: { ipo_average: "false" } });
  assertClose(summed.loss, ref.ipo(b, { beta: 0.1, ipo_average: false }).loss, 1e-12, "loss");
});
