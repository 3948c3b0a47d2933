/**
 * IPO: Identity Preference Optimization.
 *
 * Azar, Rowland, Piot, Guo, Calandriello, Valko and Munos (2023), "A General Theoretical Paradigm
 * to Understand Learning from Human Preferences", arXiv:2310.12036.
 *
 * DPO fits the Bradley–Terry logit of the preference, which is infinite for a deterministic
 * preference, so on finite data nothing stops Δ from growing and the KL regulariser is ignored.
 * IPO instead regresses the log-ratio gap onto a fixed target, 1/(2β) (Eq. 17, with τ = β):
 *
 *     L_IPO = E[ (Δ − 1/(2β))² ]
 *     Δ = (log π_θ(y_c|x) − log π_ref(y_c|x)) − (log π_θ(y_r|x) − log π_ref(y_r|x))
 *
 * Which log-probs go into Δ: by default (`ipo_average: true`) each log-ratio is *averaged* over
 * its completion's tokens, Δ = (π_c − ref_c)/|y_c| − (π_r − ref_r)/|y_r|, as the authors' code
 * and TRL do, so the target 1/(2β) is a per-token gap that does not depend on answer length.
 * `ipo_average: false` uses summed log-ratios, the formula as written in the paper and in this
 * project's seed; then long answers reach the target with a tiny per-token change.
 *
 * Loss scale: at the start π_θ = π_ref, Δ = 0 and the loss is (1/(2β))², i.e. 25 for β = 0.1; it
 * falls towards 0 as the gap approaches 1/(2β) = 5 nats (per token, when averaged).
 *
 * Implicit rewards (logged): β times the same (averaged or summed) log-ratios.
 *
 * Hyperparameters: `beta` β (τ in the paper), smaller means a larger target gap.
 *
 * @module
 */
import { pairMetrics } from "./_metrics.ts";
import type { Algorithm, LossOutput, PairedInputs, PairedReference } from "./types.ts";

/** IPO's hyperparameters. */
export const defaults = {
  /**
   * β (the paper's τ): the target gap is 1/(2β).
   * @default 0.1
   */
  beta: 0.1,
  /**
   * Average log-ratios over completion tokens (the authors and TRL) rather than sum them.
   * @default true
   */
  ipo_average: true,
};

/**
 * The IPO loss of a batch of pairs.
 *
 * @param x Policy and reference summed log-probs and lengths of each pair `(B)`.
 * @param hp Hyperparameters.
 * @returns The mean loss and TRL's metrics.
 */
export function loss(x: PairedInputs & PairedReference, hp: typeof defaults): LossOutput {
  const β = hp.beta;
  let chosen = x.policyChosenLogps.sub(x.referenceChosenLogps); // log π_θ/π_ref of y_c
  let rejected = x.policyRejectedLogps.sub(x.referenceRejectedLogps); // and of y_r
  if (hp.ipo_average) {
    chosen = chosen.div(x.chosenLengths);
    rejected = rejected.div(x.rejectedLengths);
  }
  const Δ = chosen.sub(rejected);
  const losses = Δ.sub(1 / (2 * β)).pow(2); // Eq. 17
  return { loss: losses.mean(), metrics: pairMetrics(x, chosen.mul(β), rejected.mul(β)) };
}

/** The IPO module. */
export const ipo: Algorithm<typeof defaults, PairedInputs & PairedReference> = {
  name: "ipo",
  trlLossTypes: ["ipo"],
  needsReference: true,
  data: "paired",
  defaults,
  loss,
};
