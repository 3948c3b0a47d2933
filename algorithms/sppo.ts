/**
 * SPPO (hard labels): Self-Play Preference Optimization with a won/lost probability of 1 and 0.
 *
 * Wu, Sun, Yuan, Ji, Yang and Gu (2024), "Self-Play Preference Optimization for Language Model
 * Alignment", arXiv:2405.00675. TRL's `loss_type="sppo_hard"`.
 *
 * SPPO regresses each answer's log-ratio onto its estimated win probability against the current
 * policy, centred at ½ and scaled by 1/β (Eq. 4.7 of Algorithm 1: (log π_θ/π_t − β⁻¹(P̂ − ½))²).
 * The paper estimates P̂ with a preference model (PairRM) outside the trainer; with hard labels
 * P̂ = 1 for the chosen and 0 for the rejected answer:
 *
 *     L_SPPO = E[ (r_c − 1/(2β))² + (r_r + 1/(2β))² ]
 *     r = log π_θ(y|x) − log π_ref(y|x)
 *
 * Unlike DPO each answer is pushed to a target of its own, so both cannot drift together.
 *
 * Implicit rewards (logged): β·r of each answer.
 *
 * Hyperparameters: `beta` β, default 0.1 (TRL's; targets of ±5 nats). Note TRL's β here is the
 * paper's η⁻¹.
 *
 * @module
 */
import { pairMetrics } from "./_metrics.ts";
import type { Algorithm, LossOutput, PairedInputs, PairedReference } from "./types.ts";

/** SPPO's hyperparameters. */
export const defaults = {
  /**
   * β: the targets are ±1/(2β).
   * @default 0.1
   */
  beta: 0.1,
};

/**
 * The hard-label SPPO loss of a batch of pairs.
 *
 * @param x Policy and reference summed log-probs of each pair `(B)`.
 * @param hp Hyperparameters.
 * @returns The mean loss and TRL's metrics.
 */
export function loss(x: PairedInputs & PairedReference, hp: typeof defaults): LossOutput {
  const β = hp.beta;
  const rc = x.policyChosenLogps.sub(x.referenceChosenLogps); // r_c
  const rr = x.policyRejectedLogps.sub(x.referenceRejectedLogps); // r_r
  const losses = rc.sub(0.5 / β).pow(2).add(rr.add(0.5 / β).pow(2)); // Eq. 4.7, P̂ ∈ {1, 0}
  return { loss: losses.mean(), metrics: pairMetrics(x, rc.mul(β), rr.mul(β)) };
}

/** The SPPO module. */
export const sppo: Algorithm<typeof defaults, PairedInputs & PairedReference> = {
  name: "sppo",
  trlLossTypes: ["sppo_hard"],
  needsReference: true,
  data: "paired",
  defaults,
  loss,
};
