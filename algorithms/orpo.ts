/**
 * ORPO: Odds Ratio Preference Optimization, SFT and preference learning in one loss.
 *
 * Hong, Lee and Thorne (2024), "ORPO: Monolithic Preference Optimization without Reference
 * Model", arXiv:2403.07691.
 *
 * Supervised fine-tuning on the chosen answer, plus a penalty that pushes the *odds* of the chosen
 * answer above those of the rejected one. No reference model. With P(y|x) = exp(ℓ̄), ℓ̄ the mean
 * token log-prob, and odds(y|x) = P/(1 − P):
 *
 *     L_ORPO = E[ L_SFT + λ·L_OR ]
 *     L_SFT  = −ℓ̄_c
 *     L_OR   = −log σ( log odds(y_c|x) − log odds(y_r|x) )
 *     log odds(y_c|x) − log odds(y_r|x) = (ℓ̄_c − ℓ̄_r) − (log(1 − e^{ℓ̄_c}) − log(1 − e^{ℓ̄_r}))
 *
 * Numerics: log(1 − e^ℓ̄) is catastrophic for ℓ̄ near 0 (a confident answer) and for very negative
 * ℓ̄, and TRL's ORPO produced NaN losses from it (huggingface/trl#1473, #2564). Here it is
 * `log1mexp` (see _math.ts), accurate in value and gradient at both ends. ℓ̄ is capped at −1e-10
 * inside it (odds ≤ 1e10): at ℓ̄ = 0 the odds are infinite and the gradient undefined, and float32
 * cannot tell a mean token probability above 1 − 1e-7 from 1 anyway.
 *
 * L_SFT is the per-sequence mean-token NLL averaged over the batch (the paper's form); TRL
 * averages over all chosen tokens of the batch instead, weighting long answers more.
 *
 * Implicit rewards (logged, as TRL): λ·ℓ̄. Own metrics: `nll_loss` (L_SFT, TRL's name), `log_odds_ratio` (the
 * mean of log σ(log-odds ratio), TRL's name) and `log_odds_chosen` (the mean log-odds ratio).
 *
 * Hyperparameters: `beta`, λ in the paper (TRL's name), the weight of the odds-ratio term,
 * default 0.1 (TRL's default).
 *
 * @module
 */
import { logSigmoid, type Tensor } from "../graph/mod.ts";
import { log1mexp } from "./_math.ts";
import { pairMetrics } from "./_metrics.ts";
import type { Algorithm, LossOutput, PairedInputs } from "./types.ts";

/** ORPO's hyperparameters. */
export const defaults = {
  /**
   * λ: weight of the odds-ratio term relative to the SFT term.
   * @default 0.1
   */
  beta: 0.1,
};

/** Largest mean token log-prob the odds are computed at (odds ≤ 1e10). */
const MAX_MEAN_LOGP = -1e-10;

/**
 * The ORPO loss of a batch of pairs.
 *
 * @param x Policy summed log-probs and lengths of each pair `(B)`.
 * @param hp Hyperparameters.
 * @returns The mean loss, TRL's metrics, `nll_loss`, `log_odds_ratio` and `log_odds_chosen`.
 */
export function loss(x: PairedInputs, hp: typeof defaults): LossOutput {
  const λ = hp.beta; // TRL's ORPOConfig calls λ `beta`
  const ℓc = x.policyChosenLogps.div(x.chosenLengths); // ℓ̄_c = log P(y_c|x)
  const ℓr = x.policyRejectedLogps.div(x.rejectedLengths); // ℓ̄_r
  const log1mP = (ℓ: Tensor) => log1mexp(ℓ.minimum(MAX_MEAN_LOGP)); // log(1 − P)
  const logOdds = ℓc.sub(ℓr).sub(log1mP(ℓc).sub(log1mP(ℓr))); // log odds(y_c) − log odds(y_r)
  const ratio = logSigmoid(logOdds);
  const nll = ℓc.neg().mean(); // L_SFT
  return {
    loss: nll.sub(ratio.mean().mul(λ)), // L_SFT + λ·L_OR
    metrics: {
      ...pairMetrics(x, ℓc.mul(λ), ℓr.mul(λ)),
      nll_loss: nll,
      log_odds_ratio: ratio.mean(),
      log_odds_chosen: logOdds.mean(),
    },
  };
}

/** The ORPO module. */
export const orpo: Algorithm<typeof defaults, PairedInputs> = {
  name: "orpo",
  needsReference: false,
  data: "paired",
  defaults,
  loss,
};
