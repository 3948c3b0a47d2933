/**
 * APO-down: Anchored Preference Optimization, for chosen answers worse than the model's own.
 *
 * D'Oosterlinck, Xu, Develder, Demeester, Singh, Potts, Kiela and Mehri (2024), "Anchored
 * Preference Optimization and Contrastive Revisions: Addressing Underspecification in Alignment",
 * arXiv:2408.06266. TRL's `loss_type="apo_down"`.
 *
 * The sibling of APO-zero (apo_zero.ts) for data whose chosen answers are still worse than what
 * the model writes: lower the chosen likelihood, and the rejected one more, so that the gap
 * opens while both fall (Eq. 8):
 *
 *     L_APO-down = E[ σ(β·r_c) + 1 − σ(β·(r_c − r_r)) ]
 *     r = log π_θ(y|x) − log π_ref(y|x)
 *
 * At the start r = 0 and the loss is 1.
 *
 * Implicit rewards (logged): β·r.
 *
 * Hyperparameters: `beta` β, default 0.1 (TRL's).
 *
 * @module
 */
import { pairMetrics } from "./_metrics.ts";
import type { Algorithm, LossOutput, PairedInputs, PairedReference } from "./types.ts";

/** APO-down's hyperparameters. */
export const defaults = {
  /**
   * β: scale of the log-ratios inside the sigmoids.
   * @default 0.1
   */
  beta: 0.1,
};

/**
 * The APO-down loss of a batch of pairs.
 *
 * @param x Policy and reference summed log-probs of each pair `(B)`.
 * @param hp Hyperparameters.
 * @returns The mean loss and TRL's metrics.
 */
export function loss(x: PairedInputs & PairedReference, hp: typeof defaults): LossOutput {
  const β = hp.beta;
  const rc = x.policyChosenLogps.sub(x.referenceChosenLogps); // r_c
  const rr = x.policyRejectedLogps.sub(x.referenceRejectedLogps); // r_r
  // Eq. 8; 1 − σ(a) = σ(−a), exact where 1 − σ(a) would round to 0.
  const losses = rc.mul(β).sigmoid().add(rc.sub(rr).mul(-β).sigmoid());
  return { loss: losses.mean(), metrics: pairMetrics(x, rc.mul(β), rr.mul(β)) };
}

/** The APO-down module. */
export const apoDown: Algorithm<typeof defaults, PairedInputs & PairedReference> = {
  name: "apo_down",
  trlLossTypes: ["apo_down"],
  needsReference: true,
  data: "paired",
  defaults,
  loss,
};
