/**
 * cDPO: conservative DPO, for preference labels that are sometimes wrong.
 *
 * Mitchell (2023), "A note on DPO with noisy preferences & relationship to IPO",
 * https://ericmitchell.ai/cdpo.pdf (no arXiv id). TRL's `label_smoothing`.
 *
 * If each label is flipped with probability ε, the Bradley–Terry likelihood of the observed
 * label is (1 − ε)·σ(βΔ) + ε·σ(−βΔ); cDPO uses the cross-entropy against these soft targets
 * instead (Eq. 3):
 *
 *     L_cDPO = −(1 − ε) log σ(β·Δ) − ε log σ(−β·Δ)
 *     Δ = (log π_θ(y_c|x) − log π_ref(y_c|x)) − (log π_θ(y_r|x) − log π_ref(y_r|x))
 *
 * Why it helps: DPO's loss keeps falling as Δ → ∞, so on separable data the implicit reward
 * margin grows without bound (and probability mass is pushed off both answers). cDPO's gradient
 * −β(1 − ε − σ(βΔ)) vanishes at σ(βΔ) = 1 − ε, i.e. at the finite margin βΔ = log((1 − ε)/ε):
 * log 9 ≈ 2.2 for ε = 0.1. Like IPO it regularises towards a target margin.
 *
 * Hyperparameters: `beta` β as in DPO; `label_smoothing` ε ∈ [0, 0.5), default 0.1, a modest
 * prior that one label in ten is noise (with ε = 0 this is exactly DPO).
 *
 * @module
 */
import { logSigmoid } from "../graph/mod.ts";
import { pairMetrics } from "./_metrics.ts";
import type { Algorithm, LossOutput, PairedInputs, PairedReference } from "./types.ts";

/** cDPO's hyperparameters. */
export const defaults = {
  /**
   * β: inverse temperature of the implicit reward, as in DPO.
   * @default 0.1
   */
  beta: 0.1,
  /**
   * ε: assumed probability that a preference label is flipped.
   * @default 0.1
   */
  label_smoothing: 0.1,
};

/**
 * The cDPO loss of a batch of pairs.
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
  const losses = logSigmoid(Δ.mul(β)).mul(-(1 - ε)).sub(logSigmoid(Δ.mul(-β)).mul(ε)); // Eq. 3
  return { loss: losses.mean(), metrics: pairMetrics(x, chosen.mul(β), rejected.mul(β)) };
}

/** The cDPO module. */
export const cdpo: Algorithm<typeof defaults, PairedInputs & PairedReference> = {
  name: "cdpo",
  needsReference: true,
  data: "paired",
  defaults,
  loss,
};
