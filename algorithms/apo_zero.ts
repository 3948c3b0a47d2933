/**
 * APO-zero: Anchored Preference Optimization, for chosen answers better than the model's own.
 *
 * D'Oosterlinck, Xu, Develder, Demeester, Singh, Potts, Kiela and Mehri (2024), "Anchored
 * Preference Optimization and Contrastive Revisions: Addressing Underspecification in Alignment",
 * arXiv:2408.06266. TRL's `loss_type="apo_zero"`.
 *
 * DPO only constrains the *difference* of the two log-ratios, so both likelihoods may fall
 * together. APO anchors each answer to the reference separately. APO-zero is the variant for data
 * whose chosen answers are better than what the model writes: push the chosen log-ratio up and
 * the rejected one down, each through its own sigmoid:
 *
 *     L_APO-zero = E[ (1 − σ(β·r_c)) + σ(β·r_r) ]
 *     r_c = log π_θ(y_c|x) − log π_ref(y_c|x),   r_r = log π_θ(y_r|x) − log π_ref(y_r|x)
 *
 * (Its sibling APO-down, for chosen answers *worse* than the model's, is
 * σ(β·r_c) + 1 − σ(β(r_c − r_r)): algorithms/apo_down.ts.) At the start r = 0 and the loss is 1.
 *
 * Implicit rewards (logged): β·r.
 *
 * Hyperparameters: `beta` β, default 0.1 (TRL's).
 *
 * @module
 */
import { pairMetrics } from "./_metrics.ts";
import type { Algorithm, LossOutput, PairedInputs, PairedReference } from "./types.ts";

/** APO-zero's hyperparameters. */
export const defaults = {
  /**
   * β: scale of the log-ratios inside the sigmoids.
   * @default 0.1
   */
  beta: 0.1,
};

/**
 * The APO-zero loss of a batch of pairs.
 *
 * @param x Policy and reference summed log-probs of each pair `(B)`.
 * @param hp Hyperparameters.
 * @returns The mean loss and TRL's metrics.
 */
export function loss(x: PairedInputs & PairedReference, hp: typeof defaults): LossOutput {
  const β = hp.beta;
  const rc = x.policyChosenLogps.sub(x.referenceChosenLogps); // r_c
  const rr = x.policyRejectedLogps.sub(x.referenceRejectedLogps); // r_r
  // 1 − σ(a) = σ(−a), exact for large a where 1 − σ(a) rounds to 0.
  const losses = rc.mul(-β).sigmoid().add(rr.mul(β).sigmoid());
  return { loss: losses.mean(), metrics: pairMetrics(x, rc.mul(β), rr.mul(β)) };
}

/** The APO-zero module. */
export const apoZero: Algorithm<typeof defaults, PairedInputs & PairedReference> = {
  name: "apo_zero",
  trlLossTypes: ["apo_zero"],
  needsReference: true,
  data: "paired",
  defaults,
  loss,
};
