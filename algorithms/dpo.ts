/**
 * DPO: Direct Preference Optimization.
 *
 * Rafailov, Sharma, Mitchell, Ermon, Manning and Finn (2023), "Direct Preference Optimization:
 * Your Language Model is Secretly a Reward Model", arXiv:2305.18290.
 *
 * The KL-constrained RLHF objective has the closed-form optimum π*(y|x) ∝ π_ref(y|x)·e^{r(x,y)/β},
 * so every reward can be written r(x, y) = β log π(y|x)/π_ref(y|x) + β log Z(x) (Eq. 5). In the
 * Bradley–Terry model of preferences, Z(x) cancels between the two answers to one prompt, and
 * the reward model's likelihood becomes a loss on the policy itself (Eq. 7):
 *
 *     L_DPO = −E[ log σ(β·Δ) ]
 *     Δ = (log π_θ(y_c|x) − log π_ref(y_c|x)) − (log π_θ(y_r|x) − log π_ref(y_r|x))
 *
 * with y_c the chosen and y_r the rejected answer, log-probs summed over the completion. With
 * label smoothing ε, each label is assumed flipped with probability ε (Mitchell, "A note on DPO
 * with noisy preferences & relationship to IPO", 2023, Eq. 3: the conservative form, see cdpo.ts):
 *
 *     L = −(1 − ε) log σ(β·Δ) − ε log σ(−β·Δ)
 *
 * Implicit rewards (logged as `rewards/*`): β(log π_θ − log π_ref) of each answer.
 *
 * Hyperparameters: `beta` β, the strength of the pull towards π_ref; `label_smoothing` ε.
 * Learning rate: 5e-6 in this project's table (the paper used 1e-6 with RMSprop; TRL defaults
 * to 1e-6); DPO is sensitive to it, lower it first if rewards/chosen falls fast.
 *
 * @module
 */
import { logSigmoid } from "../graph/mod.ts";
import { pairMetrics } from "./_metrics.ts";
import type { Algorithm, LossOutput, PairedInputs, PairedReference } from "./types.ts";

/** DPO's hyperparameters. */
export const defaults = {
  /**
   * β: inverse temperature of the implicit reward; larger keeps the policy closer to π_ref.
   * The paper's default for dialogue and sentiment (it used 0.5 for summarisation).
   * @default 0.1
   */
  beta: 0.1,
  /**
   * ε: assumed probability that a preference label is flipped; 0 is plain DPO.
   * @default 0
   */
  label_smoothing: 0,
};

/**
 * The DPO loss of a batch of pairs.
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
  // Eq. 7, and the conservative form (cDPO Eq. 3) when ε > 0
  const losses = logSigmoid(Δ.mul(β)).mul(-(1 - ε)).sub(logSigmoid(Δ.mul(-β)).mul(ε));
  return { loss: losses.mean(), metrics: pairMetrics(x, chosen.mul(β), rejected.mul(β)) };
}

/** The DPO module. */
export const dpo: Algorithm<typeof defaults, PairedInputs & PairedReference> = {
  name: "dpo",
  trlLossTypes: ["sigmoid"],
  needsReference: true,
  data: "paired",
  defaults,
  loss,
};
