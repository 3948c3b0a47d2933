/**
 * SimPO: Simple Preference Optimization with a reference-free reward.
 *
 * Meng, Xia and Chen (2024), "SimPO: Simple Preference Optimization with a Reference-Free
 * Reward", arXiv:2405.14734; code at princeton-nlp/SimPO.
 *
 * Two changes to DPO. The implicit reward is the policy's *average* token log-prob, which is what
 * generation ranks by, with no reference model: r(x, y) = β/|y| · log π_θ(y|x). And the
 * Bradley–Terry model gets a target margin γ > 0 that the chosen answer must win by (Eq. 6):
 *
 *     L_SimPO = −E[ log σ( β·(ℓ̄_c − ℓ̄_r) − γ ) ],   ℓ̄ = log π_θ(y|x) / |y|
 *
 * Optionally an SFT term on the chosen answer (the SimPO repo's `sft_weight`,
 * TRL's CPO `cpo_alpha`): + cpo_alpha · E[−ℓ̄_c]. Off by default here (TRL: 1.0), as in the paper.
 *
 * Hyperparameters: `beta` β, much larger than DPO's because ℓ̄ is per token (the paper sweeps
 * 2.0–2.5, and up to 10 for some instruct models); `simpo_gamma` γ, *absolute* as in the paper's equation, default
 * 0.5, i.e. γ/β = 0.25 with β = 2.0 (the repo's `gamma_beta_ratio`; TRL's `simpo_gamma` is also
 * absolute). Learning rate 1e-6 (this project's table; the paper found SimPO sensitive to it
 * and used 3e-7 to 1e-6). Without a reference nothing anchors the policy: watch `logps/chosen`.
 *
 * @module
 */
import { logSigmoid } from "../graph/mod.ts";
import { pairMetrics } from "./_metrics.ts";
import type { Algorithm, LossOutput, PairedInputs } from "./types.ts";

/** SimPO's hyperparameters. */
export const defaults = {
  /**
   * β: scale of the length-normalised reward.
   * @default 2.0
   */
  beta: 2.0,
  /**
   * γ: target reward margin, in reward units (absolute, not γ/β).
   * @default 0.5
   */
  simpo_gamma: 0.5,
  /**
   * Weight of the chosen answer's mean-token NLL; 0 turns it off.
   * @default 0
   */
  cpo_alpha: 0,
};

/**
 * The SimPO loss of a batch of pairs.
 *
 * @param x Policy summed log-probs and lengths of each pair `(B)`.
 * @param hp Hyperparameters.
 * @returns The mean loss, TRL's metrics and `nll_loss` (the chosen answers' mean-token NLL).
 */
export function loss(x: PairedInputs, hp: typeof defaults): LossOutput {
  const { beta: β, simpo_gamma: γ } = hp;
  const ℓc = x.policyChosenLogps.div(x.chosenLengths); // ℓ̄_c: mean token log-prob of y_c
  const ℓr = x.policyRejectedLogps.div(x.rejectedLengths); // ℓ̄_r
  const nll = ℓc.neg().mean();
  const losses = logSigmoid(ℓc.sub(ℓr).mul(β).sub(γ)).neg(); // Eq. 6
  return {
    loss: losses.mean().add(nll.mul(hp.cpo_alpha)),
    metrics: { ...pairMetrics(x, ℓc.mul(β), ℓr.mul(β)), nll_loss: nll },
  };
}

/** The SimPO module. */
export const simpo: Algorithm<typeof defaults, PairedInputs> = {
  name: "simpo",
  trlLossTypes: ["simpo"],
  needsReference: false,
  data: "paired",
  defaults,
  learningRate: 1e-6,
  loss,
};
