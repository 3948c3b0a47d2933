/**
 * RPO: DPO plus a likelihood term on the chosen answer.
 *
 * Pang, Yuan, Cho, He, Sukhbaatar and Weston (2024), "Iterative Reasoning Preference
 * Optimization", arXiv:2404.19733. TRL's `rpo_alpha`.
 *
 * On reasoning data DPO tends to lower the likelihood of the chosen answer too, as long as the
 * rejected one falls faster. RPO adds the chosen answer's length-normalised NLL, so the winner is
 * also made more likely in absolute terms:
 *
 *     L_RPO = E[ −log σ(β·Δ) + α·(−log π_θ(y_c|x) / |y_c|) ]
 *     Δ = (log π_θ(y_c|x) − log π_ref(y_c|x)) − (log π_θ(y_r|x) − log π_ref(y_r|x))
 *
 * (TRL averages the NLL over all chosen tokens of the batch; this is the paper's per-sequence
 * form, averaged over pairs.)
 *
 * Implicit rewards (logged): β(log π_θ − log π_ref); own metric `nll_loss`.
 *
 * Hyperparameters: `beta` β as in DPO; `rpo_alpha` α, default 1 (the paper's value;
 * TRL's name until 1.13 dropped it).
 *
 * @module
 */
import { logSigmoid } from "../graph/mod.ts";
import { pairMetrics } from "./_metrics.ts";
import type { Algorithm, LossOutput, PairedInputs, PairedReference } from "./types.ts";

/** RPO's hyperparameters. */
export const defaults = {
  /**
   * β: inverse temperature of the implicit reward, as in DPO.
   * @default 0.1
   */
  beta: 0.1,
  /**
   * α: weight of the chosen answer's mean-token NLL.
   * @default 1
   */
  rpo_alpha: 1,
};

/**
 * The RPO loss of a batch of pairs.
 *
 * @param x Policy and reference summed log-probs and lengths of each pair `(B)`.
 * @param hp Hyperparameters.
 * @returns The mean loss, TRL's metrics and `nll_loss`.
 */
export function loss(x: PairedInputs & PairedReference, hp: typeof defaults): LossOutput {
  const { beta: β, rpo_alpha: α } = hp;
  const chosen = x.policyChosenLogps.sub(x.referenceChosenLogps); // log π_θ/π_ref of y_c
  const rejected = x.policyRejectedLogps.sub(x.referenceRejectedLogps); // and of y_r
  const Δ = chosen.sub(rejected);
  const nll = x.policyChosenLogps.div(x.chosenLengths).neg().mean(); // −log π_θ(y_c|x) / |y_c|
  const dpoLoss = logSigmoid(Δ.mul(β)).neg().mean();
  return {
    loss: dpoLoss.add(nll.mul(α)),
    metrics: { ...pairMetrics(x, chosen.mul(β), rejected.mul(β)), nll_loss: nll },
  };
}

/** The RPO module. */
export const rpo: Algorithm<typeof defaults, PairedInputs & PairedReference> = {
  name: "rpo",
  needsReference: true,
  data: "paired",
  defaults,
  loss,
};
