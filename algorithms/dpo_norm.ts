/**
 * Length-normalised DPO: DPO on per-token average log-ratios.
 *
 * Used for Tülu 3 (Lambert et al., 2024, "Tülu 3: Pushing Frontiers in Open Language Model
 * Post-Training", arXiv:2411.15124; allenai/open-instruct's `dpo_loss_type: dpo_norm`).
 *
 * DPO's summed log-ratios favour long answers: a chosen answer twice as long collects twice the
 * log-ratio for the same per-token change, so DPO learns to lengthen. Dividing each log-ratio by
 * its answer's token count removes that pull (compare SimPO, which also drops the reference):
 *
 *     L = −E[ log σ(β·Δ) ]   with per-token log-ratios:
 *     Δ = (log π_θ(y_c|x) − log π_ref(y_c|x)) / |y_c| − (log π_θ(y_r|x) − log π_ref(y_r|x)) / |y_r|
 *
 * Implicit rewards (logged): β times the per-token log-ratios.
 *
 * Hyperparameters: `beta` β, default 5 (Tülu 3's value: per-token gaps are ~|y| times smaller than
 * summed ones, so β is ~50× DPO's 0.1); `label_smoothing` ε as in DPO. Learning rate: Tülu 3 used
 * 5e-7 for its 8B model (2e-7 for 70B).
 *
 * @module
 */
import { logSigmoid } from "../graph/mod.ts";
import { pairMetrics } from "./_metrics.ts";
import type { Algorithm, LossOutput, PairedInputs, PairedReference } from "./types.ts";

/** Length-normalised DPO's hyperparameters. */
export const defaults = {
  /**
   * β: inverse temperature of the per-token implicit reward.
   * @default 5
   */
  beta: 5,
  /**
   * ε: assumed probability that a preference label is flipped, as in DPO.
   * @default 0
   */
  label_smoothing: 0,
};

/**
 * The length-normalised DPO loss of a batch of pairs.
 *
 * @param x Policy and reference summed log-probs and lengths of each pair `(B)`.
 * @param hp Hyperparameters.
 * @returns The mean loss and TRL's metrics.
 */
export function loss(x: PairedInputs & PairedReference, hp: typeof defaults): LossOutput {
  const { beta: β, label_smoothing: ε } = hp;
  const chosen = x.policyChosenLogps.sub(x.referenceChosenLogps).div(x.chosenLengths); // per token
  const rejected = x.policyRejectedLogps.sub(x.referenceRejectedLogps).div(x.rejectedLengths);
  const Δ = chosen.sub(rejected);
  const losses = logSigmoid(Δ.mul(β)).mul(-(1 - ε)).sub(logSigmoid(Δ.mul(-β)).mul(ε));
  return { loss: losses.mean(), metrics: pairMetrics(x, chosen.mul(β), rejected.mul(β)) };
}

/** The length-normalised DPO module. */
export const dpoNorm: Algorithm<typeof defaults, PairedInputs & PairedReference> = {
  name: "dpo_norm",
  trlLossTypes: ["sigmoid_norm"],
  needsReference: true,
  data: "paired",
  defaults,
  learningRate: 5e-7,
  loss,
};
