/**
 * ODPO: DPO with an offset, so that a clearly better answer must win by more.
 *
 * Amini, Vieira and Cotterell (2024), "Direct Preference Optimization with an Offset",
 * arXiv:2402.10571; code at rycolab/odpo. (No major trainer ships it.)
 *
 * DPO treats every pair alike, whether the chosen answer is much better or barely better. ODPO
 * asks the implicit reward gap to exceed an offset Δ_r that grows with the score gap of the pair:
 *
 *     L_ODPO = −E[ log σ(β·Δ − Δ_r) ]
 *     Δ   = (log π_θ(y_c|x) − log π_ref(y_c|x)) − (log π_θ(y_r|x) − log π_ref(y_r|x))
 *     Δ_r = α · log(s_c − s_r)
 *
 * with s_c, s_r the dataset's scores of the two answers (UltraFeedback's ratings; the loop feeds
 * them as `chosenScores` / `rejectedScores`). The log damps large score gaps, as in the authors'
 * code (`margin = log(chosen − rejected)`; `−logsigmoid(β·logits − α·margin)`). α scales the
 * offset: α = 0 is DPO; larger α makes the margin demanded per score point larger. Note that a
 * score gap below 1 gives a *negative* offset (an easier target). Ties and inverted pairs have no
 * log: their gap is clamped to 1e-3, an offset of about −6.9α, so they contribute almost nothing.
 *
 * Implicit rewards (logged): β(log π_θ − log π_ref); own metric `offset`, the mean Δ_r.
 *
 * Hyperparameters: `beta` β as in DPO; `odpo_alpha` α, default 1 (the authors' config;
 * our own name: TRL 1.13 has no ODPO, and its CPO `alpha` means something else).
 *
 * @module
 */
import { logSigmoid } from "../graph/mod.ts";
import { pairMetrics } from "./_metrics.ts";
import type { Algorithm, LossOutput, PairedInputs, PairedReference, Scores } from "./types.ts";

/** ODPO's hyperparameters. */
export const defaults = {
  /**
   * β: inverse temperature of the implicit reward, as in DPO.
   * @default 0.1
   */
  beta: 0.1,
  /**
   * α: scale of the offset α·log(s_c − s_r).
   * @default 1
   */
  odpo_alpha: 1,
};

/** Smallest score gap the offset's log is taken of (ties and inverted pairs). */
const MIN_SCORE_GAP = 1e-3;

/**
 * The ODPO loss of a batch of pairs.
 *
 * @param x Policy and reference summed log-probs and the scores of each pair `(B)`.
 * @param hp Hyperparameters.
 * @returns The mean loss, TRL's metrics and `offset`.
 */
export function loss(x: PairedInputs & PairedReference & Scores, hp: typeof defaults): LossOutput {
  const { beta: β, odpo_alpha: α } = hp;
  const chosen = x.policyChosenLogps.sub(x.referenceChosenLogps); // log π_θ/π_ref of y_c
  const rejected = x.policyRejectedLogps.sub(x.referenceRejectedLogps); // and of y_r
  const Δ = chosen.sub(rejected);
  const Δr = x.chosenScores.sub(x.rejectedScores).maximum(MIN_SCORE_GAP).log().mul(α); // offset
  const losses = logSigmoid(Δ.mul(β).sub(Δr)).neg();
  return {
    loss: losses.mean(),
    metrics: { ...pairMetrics(x, chosen.mul(β), rejected.mul(β)), offset: Δr.mean() },
  };
}

/** The ODPO module. */
export const odpo: Algorithm<typeof defaults, PairedInputs & PairedReference & Scores> = {
  name: "odpo",
  needsReference: true,
  data: "paired",
  defaults,
  requires: () => ["chosenScores", "rejectedScores"],
  loss,
};
