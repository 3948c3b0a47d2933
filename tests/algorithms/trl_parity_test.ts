/**
 * The loss types added for TRL 1.13 recipes against TRL's own loss code: the float64 fixtures of
 * tools/make_trl_loss_fixtures.py run the branches of `DPOTrainer._compute_loss` unchanged on a
 * seeded batch (sft's cross-entropy from the logits themselves), and `evaluateLoss` must give
 * the same batch loss from the per-sequence sums and counts.
 */
import { algorithm, evaluateLoss } from "../../algorithms/mod.ts";
import { lossOfType } from "../../trainer/config.ts";
import { assertClose } from "./_check.ts";

interface Case {
  loss_type: string[];
  loss_weights: number[];
  hyperparameters: Record<string, number>;
  inputs: Record<string, number[]>;
  loss: number;
}

const { cases }: { cases: Case[] } = JSON.parse(
  await Deno.readTextFile(new URL("../fixtures/trl/losses.json", import.meta.url)),
);

for (const c of cases) {
  const name = c.loss_type.map(lossOfType).join("+");
  Deno.test(`evaluateLoss("${name}") matches TRL 1.13's loss_type ${c.loss_type.join("+")}`, async () => {
    const reads = algorithm(name).defaults;
    const hp: Record<string, unknown> = Object.fromEntries(
      Object.entries(c.hyperparameters).filter(([k]) => Object.hasOwn(reads, k)),
    );
    // TRL 1.13's sigmoid branch has no label smoothing (its robust branch does): plain DPO.
    if (c.loss_type.includes("sigmoid")) hp.label_smoothing = 0;
    if (c.loss_type.length > 1) hp.loss_weights = c.loss_weights.join(",");
    const { loss } = await evaluateLoss(name, c.inputs, { hyperparameters: hp });
    assertClose(loss, c.loss, 1e-12, `${name} loss`);
  });
}
