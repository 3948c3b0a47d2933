/**
 * AOT: Alignment via Optimal Transport, the paired form.
 *
 * Melnyk, Mroueh, Belgodere, Rigotti, Nitsure, Yurochkin, Greenewald, Navratil and Ross (2024),
 * "Distributional Preference Alignment of LLMs via Optimal Transport", arXiv:2406.05882. TRL's
 * `loss_type="aot"`.
 *
 * DPO asks each pair's margin to be positive. AOT asks for *first-order stochastic dominance* of
 * the distribution of policy margins over the reference's: in one dimension the optimal transport
 * plan matches quantiles, so both batches of log-ratios are sorted and compared rank by rank
 * through DPO's smooth loss (the paired form, Eq. 9 with the logistic loss):
 *
 *     L_AOT = mean_k [ −(1 − ε) log σ(β·δ_k) − ε log σ(−β·δ_k) ]
 *     δ_k = sort(ρ_θ)_k − sort(ρ_ref)_k,   ρ = log π(y_c|x) − log π(y_r|x)
 *
 * The sorts pair the k-th smallest policy margin with the k-th smallest reference margin, which
 * need not come from the same prompt. Implicit rewards (logged): β(log π_θ − log π_ref).
 *
 * Hyperparameters: `beta` β, default 0.1; `label_smoothing` ε, default 0 (TRL's).
 *
 * @module
 */
import { logSigmoid } from "../graph/mod.ts";
import { pairMetrics } from "./_metrics.ts";
import { sortAscending } from "./_sort.ts";
import type { Algorithm, LossOutput, PairedInputs, PairedReference } from "./types.ts";

/** AOT's hyperparameters. */
export const defaults = {
  /**
   * β: scale of the quantile differences.
   * @default 0.1
   */
  beta: 0.1,
  /**
   * ε: weight of the flipped-label term.
   * @default 0
   */
  label_smoothing: 0,
};

/**
 * The paired AOT loss of a batch of pairs.
 *
 * @param x Policy and reference summed log-probs of each pair `(B)`.
 * @param hp Hyperparameters.
 * @returns The mean loss and TRL's metrics.
 */
export function loss(x: PairedInputs & PairedReference, hp: typeof defaults): LossOutput {
  const { beta: β, label_smoothing: ε } = hp;
  const ρθ = x.policyChosenLogps.sub(x.policyRejectedLogps);
  const ρref = x.referenceChosenLogps.sub(x.referenceRejectedLogps);
  const δ = sortAscending(ρθ).sub(sortAscending(ρref)); // quantiles matched (Eq. 9)
  const losses = logSigmoid(δ.mul(β)).mul(-(1 - ε)).sub(logSigmoid(δ.mul(-β)).mul(ε));
  const chosen = x.policyChosenLogps.sub(x.referenceChosenLogps).mul(β);
  const rejected = x.policyRejectedLogps.sub(x.referenceRejectedLogps).mul(β);
  return { loss: losses.mean(), metrics: pairMetrics(x, chosen, rejected) };
}

/** The AOT module. */
export const aot: Algorithm<typeof defaults, PairedInputs & PairedReference> = {
  name: "aot",
  trlLossTypes: ["aot"],
  needsReference: true,
  data: "paired",
  defaults,
  loss,
};
