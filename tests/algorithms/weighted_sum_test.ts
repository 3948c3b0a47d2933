/**
 * TRL's `loss_type` lists: `dpo+sft` with `loss_weights` 0.8,0.2 is 0.8·DPO + 0.2·NLL of the
 * chosen answers (token-weighted, as TRL's cross-entropy), value and gradient against the
 * independent formulas of _reference.ts; the new single losses' graph gradients against central
 * differences; and a wrong number of weights is refused naming the key.
 */
import { rejects } from "node:assert/strict";
import { evaluateLoss } from "../../algorithms/mod.ts";
import { checkGraphGradient, checkLoss, randomBatch } from "./_check.ts";
import * as ref from "./_reference.ts";

/** −Σ log π(y_c) / Σ |y_c|: the chosen tokens' mean NLL over the batch. */
const nll = (b: ref.Batch) =>
  -b.policy_chosen_logps!.reduce((a, v) => a + v, 0) /
  b.chosen_lengths!.reduce((a, v) => a + v, 0);

Deno.test("dpo+sft with loss_weights 0.8,0.2 is 0.8·DPO + 0.2·NLL", async () => {
  const combined: ref.Reference = (b, hp) => ({
    loss: 0.8 * ref.dpo(b, hp).loss + 0.2 * nll(b),
  });
  await checkLoss("dpo+sft", randomBatch(6, 31), { loss_weights: "0.8,0.2" }, combined);
  // Default weights: TRL's 1 each.
  await checkLoss("dpo+sft", randomBatch(3, 32), {}, (b, hp) => ({
    loss: ref.dpo(b, hp).loss + nll(b),
  }));
});

Deno.test("sft.loss() is the chosen tokens' mean NLL and ignores the rejected answer", async () => {
  await checkLoss("sft", randomBatch(5, 33), {}, (b) => ({ loss: nll(b) }));
});

for (const name of ["exo", "sppo", "apo_down", "discopop", "aot", "aot_unpaired", "dpo+sft"]) {
  Deno.test(`${name}.loss() graph gradient matches central differences`, async () => {
    await checkGraphGradient(name, randomBatch(4, 34));
  });
}

Deno.test("a loss_type list refuses a weight count that does not match it", async () => {
  await rejects(
    () =>
      evaluateLoss("dpo+sft", randomBatch(2, 35), { hyperparameters: { loss_weights: "1,2,3" } }),
    /Invalid loss_weights "1,2,3": got 3 weights for 2 loss types/,
  );
});
