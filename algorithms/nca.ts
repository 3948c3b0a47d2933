/**
 * NCA: Noise Contrastive Alignment (the pairwise form).
 *
 * Chen, He, Yuan, Cui, Su and Zhu (2024), "Noise Contrastive Alignment of Language Models with
 * Explicit Rewards", arXiv:2402.05369. TRL's `loss_type="nca_pair"`.
 *
 * DPO is InfoNCE-like: it only learns *relative* likelihoods, and in practice the chosen answer's
 * likelihood often falls along with the rejected one. NCA instead classifies each answer against
 * noise on its own, via its absolute reward r = β log π_θ/π_ref: the chosen answer's reward is
 * pushed up, and both answers are pulled towards the reference:
 *
 *     L_NCA = E[ −log σ(r_c) − ½ log σ(−r_c) − ½ log σ(−r_r) ]
 *     r_c = β(log π_θ(y_c|x) − log π_ref(y_c|x)),   r_r = β(log π_θ(y_r|x) − log π_ref(y_r|x))
 *
 * The loss is minimal at σ(r_c) = 2/3 and r_r → −∞; at the start (r = 0) it is 2 log 2 ≈ 1.386.
 *
 * Implicit rewards (logged): r_c, r_r.
 *
 * Hyperparameters: `beta` β, default 0.1 (TRL's).
 *
 * @module
 */
import { logSigmoid } from "../graph/mod.ts";
import { pairMetrics } from "./_metrics.ts";
import type { Algorithm, LossOutput, PairedInputs, PairedReference } from "./types.ts";

/** NCA's hyperparameters. */
export const defaults = {
  /**
   * β: scale of the implicit rewards.
   * @default 0.1
   */
  beta: 0.1,
};

/**
 * The NCA loss of a batch of pairs.
 *
 * @param x Policy and reference summed log-probs of each pair `(B)`.
 * @param hp Hyperparameters.
 * @returns The mean loss and TRL's metrics.
 */
export function loss(x: PairedInputs & PairedReference, hp: typeof defaults): LossOutput {
  const β = hp.beta;
  const rc = x.policyChosenLogps.sub(x.referenceChosenLogps).mul(β); // r_c
  const rr = x.policyRejectedLogps.sub(x.referenceRejectedLogps).mul(β); // r_r
  const losses = logSigmoid(rc).neg()
    .sub(logSigmoid(rc.neg()).mul(0.5))
    .sub(logSigmoid(rr.neg()).mul(0.5));
  return { loss: losses.mean(), metrics: pairMetrics(x, rc, rr) };
}

/** The NCA module. */
export const nca: Algorithm<typeof defaults, PairedInputs & PairedReference> = {
  name: "nca",
  trlLossTypes: ["nca_pair"],
  needsReference: true,
  data: "paired",
  defaults,
  loss,
};
