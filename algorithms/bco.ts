/**
 * BCO: Binary Classifier Optimization.
 *
 * Jung, Han, Nam and On (2024), "Binary Classifier Optimization for Large Language
 * Model Alignment", arXiv:2404.04656. TRL's BCOTrainer (and DPOTrainer's `bco_pair`).
 *
 * Train a binary classifier whose logit is the implicit reward r_θ = β·log π_θ(y|x)/π_ref(y|x):
 * desirable completions are class 1, undesirable ones class 0. The paper shows this logistic loss
 * upper-bounds the DPO loss once the logit is shifted by a reward baseline δ:
 *
 *     L_BCO = −E_desirable[ log σ(r_θ − δ) ] − E_undesirable[ log σ(−(r_θ − δ)) ]
 *
 * δ is a running mean of the rewards, kept across steps as `state` (the train loop feeds it back):
 * this step uses δ = (s·δ_prev + mean_batch(r_θ)) / (s + 1) after s steps, with no gradient, and
 * logs it as `delta`. Like TRL, the current batch counts; unlike TRL, every step has the same
 * weight (TRL weights by example count, the same for equal batches).
 *
 * Data: unpaired (prompt, completion, label) rows, or preference pairs, chosen answers desirable
 * and rejected ones undesirable. (The paper's underlying-distribution matching, a density-ratio
 * reweighting with an extra classifier on prompt embeddings, is not implemented.)
 *
 * Hyperparameters: `beta` β, default 0.1 (TRL's).
 *
 * @module
 */
import { logSigmoid, sub } from "../graph/mod.ts";
import { labelMetrics } from "./_metrics.ts";
import { asUnpaired, type EitherInputs } from "./_unpaired.ts";
import type { Algorithm, LossOutput, StateInputs } from "./types.ts";

/** BCO's hyperparameters. */
export const defaults = {
  /**
   * β: scale of the implicit reward (the classifier's logit).
   * @default 0.1
   */
  beta: 0.1,
};

/**
 * The BCO loss of a batch.
 *
 * @param x Paired or unpaired inputs, and the running mean as `state.delta` after
 *   `state.steps` steps.
 * @param hp Hyperparameters.
 * @returns The mean loss over completions, metrics and `delta` (this step's δ).
 */
export function loss(x: EitherInputs & StateInputs, hp: typeof defaults): LossOutput {
  const β = hp.beta;
  const u = asUnpaired(x);
  const rθ = u.policyLogps.sub(u.referenceLogps).mul(β); // the classifier's logit
  const { delta, steps } = x.state; // running mean so far, and how many steps it covers
  const δ = delta.mul(steps).add(rθ.mean()).div(steps.add(1)).stopGradient();
  const losses = u.labels.mul(logSigmoid(rθ.sub(δ)).neg()) // desirable: class 1
    .add(sub(1, u.labels).mul(logSigmoid(δ.sub(rθ)).neg())); // undesirable: class 0
  return { loss: losses.mean(), metrics: { ...labelMetrics(u, rθ, δ), delta: δ } };
}

/** The BCO module. */
export const bco: Algorithm<typeof defaults, EitherInputs & StateInputs> = {
  name: "bco",
  trlLossTypes: ["bco_pair"],
  needsReference: true,
  data: "both",
  defaults,
  learningRate: 5e-7, // TRL's BCOConfig default
  state: {
    initial: { delta: 0, steps: 0 },
    update: (state, metrics) => ({ delta: metrics.delta, steps: state.steps + 1 }),
  },
  loss,
};
