/**
 * Hinge loss on the DPO margin (SLiC's calibration loss).
 *
 * Zhao, Joshi, Liu, Khalman, Saleh and Liu (2023), "SLiC-HF: Sequence Likelihood Calibration with
 * Human Feedback", arXiv:2305.10425. TRL's `loss_type="hinge"`.
 *
 * SLiC ranks answers with a max-margin loss instead of a logistic one: a pair whose log-ratio gap
 * already exceeds the margin 1/β costs nothing and gets no gradient, so training stops pushing
 * separated pairs apart (DPO's logistic loss never quite does):
 *
 *     L = E[ max(0, 1 − β·Δ) ]
 *     Δ = (log π_θ(y_c|x) − log π_ref(y_c|x)) − (log π_θ(y_r|x) − log π_ref(y_r|x))
 *
 * SLiC-HF itself compares log π_θ(y_c|x) − log π_θ(y_r|x) with no reference and adds a
 * cross-entropy term on SFT data to stay close to it; like TRL, this uses the reference model's
 * log-ratio in Δ for that role instead.
 *
 * Implicit rewards (logged): β(log π_θ − log π_ref).
 *
 * Hyperparameters: `beta` β, the inverse margin (0.1 asks for a 10-nat gap).
 *
 * @module
 */
import { pairMetrics } from "./_metrics.ts";
import type { Algorithm, LossOutput, PairedInputs, PairedReference } from "./types.ts";

/** The hinge loss's hyperparameters. */
export const defaults = {
  /**
   * β: inverse of the margin the log-ratio gap must reach.
   * @default 0.1
   */
  beta: 0.1,
};

/**
 * The hinge loss of a batch of pairs.
 *
 * @param x Policy and reference summed log-probs of each pair `(B)`.
 * @param hp Hyperparameters.
 * @returns The mean loss and TRL's metrics.
 */
export function loss(x: PairedInputs & PairedReference, hp: typeof defaults): LossOutput {
  const β = hp.beta;
  const chosen = x.policyChosenLogps.sub(x.referenceChosenLogps); // log π_θ/π_ref of y_c
  const rejected = x.policyRejectedLogps.sub(x.referenceRejectedLogps); // and of y_r
  const Δ = chosen.sub(rejected);
  const losses = Δ.mul(-β).add(1).relu(); // max(0, 1 − βΔ)
  return { loss: losses.mean(), metrics: pairMetrics(x, chosen.mul(β), rejected.mul(β)) };
}

/** The hinge module. */
export const hinge: Algorithm<typeof defaults, PairedInputs & PairedReference> = {
  name: "hinge",
  trlLossTypes: ["hinge"],
  needsReference: true,
  data: "paired",
  defaults,
  loss,
};
