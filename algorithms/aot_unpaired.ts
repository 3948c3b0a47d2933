/**
 * AOT, the unpaired form: Alignment via Optimal Transport between chosen and rejected rewards.
 *
 * Melnyk et al. (2024), "Distributional Preference Alignment of LLMs via Optimal Transport",
 * arXiv:2406.05882 (see aot.ts for the paired form). TRL's `loss_type="aot_unpaired"`.
 *
 * Here the distribution of chosen log-ratios must dominate that of rejected log-ratios, with no
 * pairing between them (the paper's unpaired setting, Eq. 8): each batch is sorted and compared
 * quantile by quantile:
 *
 *     L = mean_k [ −(1 − ε) log σ(β·δ_k) − ε log σ(−β·δ_k) ]
 *     δ_k = sort(r_c)_k − sort(r_r)_k,   r = log π_θ(y|x) − log π_ref(y|x)
 *
 * Implicit rewards (logged): β·r.
 *
 * Hyperparameters: `beta` β, default 0.1; `label_smoothing` ε, default 0 (TRL's).
 *
 * @module
 */
import { logSigmoid } from "../graph/mod.ts";
import { pairMetrics } from "./_metrics.ts";
import { sortAscending } from "./_sort.ts";
import type { Algorithm, LossOutput, PairedInputs, PairedReference } from "./types.ts";

/** Unpaired AOT's hyperparameters. */
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
 * The unpaired AOT loss of a batch of pairs.
 *
 * @param x Policy and reference summed log-probs of each pair `(B)`.
 * @param hp Hyperparameters.
 * @returns The mean loss and TRL's metrics.
 */
export function loss(x: PairedInputs & PairedReference, hp: typeof defaults): LossOutput {
  const { beta: β, label_smoothing: ε } = hp;
  const rc = x.policyChosenLogps.sub(x.referenceChosenLogps); // r_c
  const rr = x.policyRejectedLogps.sub(x.referenceRejectedLogps); // r_r
  const δ = sortAscending(rc).sub(sortAscending(rr)); // quantiles matched (Eq. 8)
  const losses = logSigmoid(δ.mul(β)).mul(-(1 - ε)).sub(logSigmoid(δ.mul(-β)).mul(ε));
  return { loss: losses.mean(), metrics: pairMetrics(x, rc.mul(β), rr.mul(β)) };
}

/** The unpaired AOT module. */
export const aotUnpaired: Algorithm<typeof defaults, PairedInputs & PairedReference> = {
  name: "aot_unpaired",
  trlLossTypes: ["aot_unpaired"],
  needsReference: true,
  data: "paired",
  defaults,
  loss,
};
