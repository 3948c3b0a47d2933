/**
 * EXO: Efficient Exact Optimization of language model alignment (the pairwise form).
 *
 * Ji, Cheng, Yang, Li, Dai, Dong, Huang and Wu (2024), "Towards Efficient Exact Optimization of
 * Language Model Alignment", arXiv:2402.00856. TRL's `loss_type="exo_pair"`.
 *
 * DPO minimises the forward KL between the preference labels and the model's Bradley–Terry
 * probability, which makes the policy cover every mode of the optimal one. EXO minimises the
 * *reverse* KL instead (mode seeking), KL(p_θ ‖ p_ε), between the model's distribution over the
 * two answers, p_θ = softmax(β·r) over {y_c, y_r}, and the smoothed labels p_ε = (1 − ε, ε)
 * (Eq. 16 with K = 2):
 *
 *     L_EXO = E[ σ(β·Δ)·(log σ(β·Δ) − log(1 − ε)) + σ(−β·Δ)·(log σ(−β·Δ) − log ε) ]
 *     Δ = (log π_θ(y_c|x) − log π_ref(y_c|x)) − (log π_θ(y_r|x) − log π_ref(y_r|x))
 *
 * ε must be > 0 (log ε); the paper uses 1e-3.
 *
 * Implicit rewards (logged): β(log π_θ − log π_ref) of each answer.
 *
 * Hyperparameters: `beta` β, default 0.1; `label_smoothing` ε, default 1e-3 (the paper's).
 *
 * @module
 */
import { logSigmoid } from "../graph/mod.ts";
import { pairMetrics } from "./_metrics.ts";
import type { Algorithm, LossOutput, PairedInputs, PairedReference } from "./types.ts";

/** EXO's hyperparameters. */
export const defaults = {
  /**
   * β: scale of the log-ratio difference.
   * @default 0.1
   */
  beta: 0.1,
  /**
   * ε: the label distribution's weight on the rejected answer; must be > 0.
   * @default 0.001
   */
  label_smoothing: 1e-3,
};

/**
 * The EXO loss of a batch of pairs.
 *
 * @param x Policy and reference summed log-probs of each pair `(B)`.
 * @param hp Hyperparameters.
 * @returns The mean loss and TRL's metrics.
 */
export function loss(x: PairedInputs & PairedReference, hp: typeof defaults): LossOutput {
  const { beta: β, label_smoothing: ε } = hp;
  if (!(ε > 0)) throw new Error("Invalid label_smoothing 0 for exo: EXO needs ε > 0, e.g. 0.001");
  const chosen = x.policyChosenLogps.sub(x.referenceChosenLogps);
  const rejected = x.policyRejectedLogps.sub(x.referenceRejectedLogps);
  const z = chosen.sub(rejected).mul(β); // β·Δ
  const [logQw, logQl] = [logSigmoid(z), logSigmoid(z.neg())];
  // Eq. 16, K = 2: KL((σ(z), σ(−z)) ‖ (1 − ε, ε))
  const losses = logQw.exp().mul(logQw.sub(Math.log1p(-ε)))
    .add(logQl.exp().mul(logQl.sub(Math.log(ε))));
  return { loss: losses.mean(), metrics: pairMetrics(x, chosen.mul(β), rejected.mul(β)) };
}

/** The EXO module. */
export const exo: Algorithm<typeof defaults, PairedInputs & PairedReference> = {
  name: "exo",
  trlLossTypes: ["exo_pair"],
  needsReference: true,
  data: "paired",
  defaults,
  loss,
};
