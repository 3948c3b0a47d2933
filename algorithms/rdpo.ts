/**
 * rDPO: provably robust DPO, unbiased under random label flips.
 *
 * Chowdhury, Kini and Natarajan (2024), "Provably Robust DPO: Aligning Language Models with Noisy
 * Feedback", arXiv:2403.00409. TRL's `loss_type="robust"`.
 *
 * If each label is flipped with probability ε < ½, the DPO loss of the observed label is biased.
 * rDPO de-biases it: the loss below, averaged over the flip, equals the DPO loss of the true
 * label (the paper's robust loss; TRL's `robust` has the same form):
 *
 *     L_rDPO = [ −(1 − ε) log σ(β·Δ) + ε log σ(−β·Δ) ] / (1 − 2ε)
 *     Δ = (log π_θ(y_c|x) − log π_ref(y_c|x)) − (log π_θ(y_r|x) − log π_ref(y_r|x))
 *
 * Unlike cDPO (which mixes in the flipped label's loss with a *plus*, and so stops at a finite
 * margin), rDPO subtracts it: the gradient is DPO's, re-weighted by how likely the pair is to be
 * flipped. The loss is not bounded below (it falls like −εβΔ/(1 − 2ε) for large Δ), so negative
 * values are expected. With ε = 0 it is exactly DPO.
 *
 * Hyperparameters: `beta` β as in DPO; `label_smoothing` ε ∈ [0, 0.5), your estimate of the
 * label-flip rate, default 0.1 (a mild prior; the paper studies the flip rate as a known ε).
 *
 * @module
 */
import { logSigmoid } from "../graph/mod.ts";
import { pairMetrics } from "./_metrics.ts";
import type { Algorithm, LossOutput, PairedInputs, PairedReference } from "./types.ts";

/** rDPO's hyperparameters. */
export const defaults = {
  /**
   * β: inverse temperature of the implicit reward, as in DPO.
   * @default 0.1
   */
  beta: 0.1,
  /**
   * ε: assumed probability that a preference label is flipped (must be below 0.5).
   * @default 0.1
   */
  label_smoothing: 0.1,
};

/**
 * The rDPO loss of a batch of pairs.
 *
 * @param x Policy and reference summed log-probs of each pair `(B)`.
 * @param hp Hyperparameters.
 * @returns The mean loss and TRL's metrics.
 */
export function loss(x: PairedInputs & PairedReference, hp: typeof defaults): LossOutput {
  const { beta: β, label_smoothing: ε } = hp;
  const chosen = x.policyChosenLogps.sub(x.referenceChosenLogps); // log π_θ/π_ref of y_c
  const rejected = x.policyRejectedLogps.sub(x.referenceRejectedLogps); // and of y_r
  const Δ = chosen.sub(rejected);
  const losses = logSigmoid(Δ.mul(β)).mul(-(1 - ε)).add(logSigmoid(Δ.mul(-β)).mul(ε))
    .div(1 - 2 * ε); // unbiased: its mean over a flip with probability ε is the clean DPO loss
  return { loss: losses.mean(), metrics: pairMetrics(x, chosen.mul(β), rejected.mul(β)) };
}

/** The rDPO module. */
export const rdpo: Algorithm<typeof defaults, PairedInputs & PairedReference> = {
  name: "rdpo",
  trlLossTypes: ["robust"],
  needsReference: true,
  data: "paired",
  defaults,
  loss,
};
