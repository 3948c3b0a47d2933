/**
 * DiscoPOP: the log-ratio modulated loss found by LLM-driven objective discovery.
 *
 * Chris Lu, Holt, Fanconi, Chan, Foerster, van der Schaar and Lange (2024), "Discovering
 * Preference Optimization Algorithms with and for Large Language Models", arXiv:2406.08414.
 * TRL's `loss_type="discopop"`.
 *
 * A blend of DPO's logistic loss and an exponential loss, mixed by a sigmoid of the scaled
 * log-ratio difference itself (Eq. 5, "LRML"):
 *
 *     L_DiscoPOP = E[ (1 − w)·(−log σ(ρ)) + w·e^{−ρ} ],   w = σ(ρ/τ)
 *     ρ = β·Δ,   Δ = (log π_θ(y_c|x) − log π_ref(y_c|x)) − (log π_θ(y_r|x) − log π_ref(y_r|x))
 *
 * The weight w is not detached (TRL differentiates through it, as the paper's code). The loss is
 * not convex: at ρ = 0 its slope is (1 − ln 2)/(4τ) − 3/4, positive for τ < 0.102, so from the
 * reference (ρ = 0) a step lowers the margin, and with small β the policy can settle at a
 * negative one (seen on the tiny model: held-out loss falls, pairwise accuracy does not rise).
 *
 * Implicit rewards (logged): β(log π_θ − log π_ref) of each answer.
 *
 * Hyperparameters: `beta` β, default 0.1; `discopop_tau` τ, the temperature of the mixing
 * sigmoid, default 0.05 (the paper's and TRL's).
 *
 * @module
 */
import { logSigmoid } from "../graph/mod.ts";
import { pairMetrics } from "./_metrics.ts";
import type { Algorithm, LossOutput, PairedInputs, PairedReference } from "./types.ts";

/** DiscoPOP's hyperparameters. */
export const defaults = {
  /**
   * β: scale of the log-ratio difference.
   * @default 0.1
   */
  beta: 0.1,
  /**
   * τ: temperature of the sigmoid that mixes the two losses.
   * @default 0.05
   */
  discopop_tau: 0.05,
};

/**
 * The DiscoPOP loss of a batch of pairs.
 *
 * @param x Policy and reference summed log-probs of each pair `(B)`.
 * @param hp Hyperparameters.
 * @returns The mean loss and TRL's metrics.
 */
export function loss(x: PairedInputs & PairedReference, hp: typeof defaults): LossOutput {
  const { beta: β, discopop_tau: τ } = hp;
  const chosen = x.policyChosenLogps.sub(x.referenceChosenLogps);
  const rejected = x.policyRejectedLogps.sub(x.referenceRejectedLogps);
  const ρ = chosen.sub(rejected).mul(β);
  const w = ρ.div(τ).sigmoid();
  const losses = logSigmoid(ρ).neg().mul(w.neg().add(1)).add(ρ.neg().exp().mul(w)); // Eq. 5
  return { loss: losses.mean(), metrics: pairMetrics(x, chosen.mul(β), rejected.mul(β)) };
}

/** The DiscoPOP module. */
export const discopop: Algorithm<typeof defaults, PairedInputs & PairedReference> = {
  name: "discopop",
  trlLossTypes: ["discopop"],
  needsReference: true,
  data: "paired",
  defaults,
  loss,
};
