/**
 * SFT: the chosen answers' negative log-likelihood, as a term of a combined loss.
 *
 * The supervised fine-tuning objective on the preferred completions, which TRL's DPOTrainer offers
 * as `loss_type="sft"` so that it can be mixed into a preference loss with `loss_weights` (RPO,
 * Pang et al. 2024, arXiv:2404.19733, Eq. 3; the MPO recipe, Wang et al. 2024, arXiv:2411.10442,
 * combines `[sigmoid, bco_pair, sft]`). TRL computes it as the cross-entropy over every chosen
 * completion token of the batch, so it is a token-weighted mean, not a mean over pairs:
 *
 *     L_SFT = −Σ_b log π_θ(y_c,b|x_b) / Σ_b |y_c,b|
 *
 * The rejected answer and the reference model are not read. Alone it is plain SFT on the chosen
 * answers; in `loss_type: [sigmoid, sft]` with `loss_weights: [w₁, w₂]` the run's loss is
 * w₁·L_DPO + w₂·L_SFT.
 *
 * Hyperparameters: none. Implicit rewards (logged): the summed log-probs of each answer.
 *
 * @module
 */
import { pairMetrics } from "./_metrics.ts";
import type { Algorithm, LossOutput, PairedInputs } from "./types.ts";

/** SFT reads no hyperparameter. */
export const defaults = {};

/**
 * The chosen answers' token-mean NLL over the batch.
 *
 * @param x Policy summed log-probs and lengths of each pair `(B)`.
 * @returns The loss and TRL's metrics (rewards: the summed log-probs).
 */
export function loss(x: PairedInputs): LossOutput {
  const nll = x.policyChosenLogps.sum().neg().div(x.chosenLengths.sum());
  return {
    loss: nll,
    metrics: { ...pairMetrics(x, x.policyChosenLogps, x.policyRejectedLogps), nll_loss: nll },
  };
}

/** The SFT module. */
export const sft: Algorithm<typeof defaults, PairedInputs> = {
  name: "sft",
  trlLossTypes: ["sft"],
  needsReference: false,
  data: "paired",
  defaults,
  loss,
};
