/**
 * AOT's quantile matching: with unsorted margins the loss equals the logistic loss of the sorted
 * policy margins minus the sorted reference margins (sorted here with Array.sort), value and
 * gradient (away from ties, where the sort has no derivative); with ties, the value. TRL parity
 * is in trl_parity_test.ts.
 */
import { evaluateLoss } from "../../algorithms/mod.ts";
import { assertClose, checkLoss } from "./_check.ts";
import * as ref from "./_reference.ts";

const sorted = (a: number[]) => [...a].sort((x, y) => x - y);
const margins = (c: number[], r: number[]) => c.map((v, i) => v - r[i]);

/** −(1 − ε) log σ(βδ) − ε log σ(−βδ), averaged over the matched quantiles. */
const quantileLoss = (a: number[], b: number[], β: number, ε: number) =>
  ref.mean(
    sorted(a).map((v, k) => {
      const δ = v - sorted(b)[k];
      return -(1 - ε) * ref.logSigmoid(β * δ) - ε * ref.logSigmoid(-β * δ);
    }),
  );

const batch = {
  // Policy margins 1, −2, 1.3, reference margins 0, 3, −1: sorting pairs them across rows.
  policy_chosen_logps: [-4, -7, -5.2],
  policy_rejected_logps: [-5, -5, -6.5],
  reference_chosen_logps: [-5, -3, -7],
  reference_rejected_logps: [-5, -6, -6],
  chosen_lengths: [3, 4, 5],
  rejected_lengths: [3, 4, 5],
};

Deno.test("aot.loss() compares sorted policy margins with sorted reference margins", async () => {
  await checkLoss("aot", batch, { label_smoothing: 0.1, beta: 0.5 }, (b, hp) => ({
    loss: quantileLoss(
      margins(b.policy_chosen_logps!, b.policy_rejected_logps!),
      margins(b.reference_chosen_logps!, b.reference_rejected_logps!),
      hp.beta as number,
      hp.label_smoothing as number,
    ),
  }));
});

Deno.test("aot_unpaired.loss() compares sorted chosen log-ratios with sorted rejected ones", async () => {
  await checkLoss("aot_unpaired", batch, { beta: 0.5 }, (b, hp) => ({
    loss: quantileLoss(
      margins(b.policy_chosen_logps!, b.reference_chosen_logps!),
      margins(b.policy_rejected_logps!, b.reference_rejected_logps!),
      hp.beta as number,
      0,
    ),
  }));
});

Deno.test("aot.loss() sorts tied margins to the same value as any order would", async () => {
  // Policy margins 1, −2, 1 (a tie): either order of the two 1s gives the same sorted vector.
  const tied = { ...batch, policy_chosen_logps: [-4, -7, -5.5] };
  const { loss } = await evaluateLoss("aot", tied);
  const want = quantileLoss([1, -2, 1], [0, 3, -1], 0.1, 0);
  assertClose(loss, want, 1e-12, "aot loss with a tie");
});
