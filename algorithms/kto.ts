/**
 * KTO: Kahneman–Tversky Optimization, alignment from thumbs-up / thumbs-down labels.
 *
 * Ethayarajh, Xu, Muennighoff, Jurafsky and Kiela (2024), "KTO: Model Alignment as Prospect
 * Theoretic Optimization", arXiv:2402.01306.
 *
 * Each completion is judged alone, as desirable or undesirable, against a reference point z:
 * a human values a gain relative to where they stand. With the implicit reward
 * r = log π_θ(y|x) − log π_ref(y|x) and the value v (prospect theory's S-shaped curve, here σ):
 *
 *     L_KTO = E[ w(y) − v(x, y) ]
 *     v(x, y) = w_d·σ(β(r − z))   if y is desirable,   w_u·σ(β(z − r))   if undesirable
 *     z = max(0, KL(π_θ(y′|x) ‖ π_ref(y′|x))),  no gradient through z
 *
 * so a desirable completion costs w_d(1 − σ(β(r − z))) and an undesirable one w_u(1 − σ(β(z − r))).
 * The KL is estimated on *mismatched* pairs: row i's prompt with row (i + 1) mod B's completion,
 * an answer that is neither good nor bad for that prompt (`kl_estimate: "mismatched"`, the paper
 * and TRL; the loop supplies `policyKlLogps` / `referenceKlLogps`). With B = 1 there is no
 * mismatched pair: z = 0 and the metric `kl/pairs` reads 0 (TRL #1911); any B ≥ 2, odd or even,
 * pairs every row (TRL #2554). `kl_estimate: "batch"` is this project's seed's cheap estimate, the
 * mean r of the batch's own completions, needing no extra forward passes.
 *
 * Data: unpaired (prompt, completion, label) rows, or preference pairs, whose chosen answers are
 * desirable and rejected ones undesirable (the paper's setup on UltraFeedback).
 *
 * Hyperparameters: `beta` β; `desirable_weight` w_d and `undesirable_weight` w_u (the paper's
 * λ_D, λ_U): with n_d desirable and n_u undesirable examples, keep w_d·n_d / (w_u·n_u) in
 * [1, 4/3], so raise one weight on imbalanced data; `kl_estimate` as above.
 *
 * Metrics: `rewards/*` are βr over the desirable (chosen) and undesirable (rejected) completions,
 * `rewards/accuracies` the fraction with r on the side of z their label asks for; `kl` is z.
 *
 * @module
 */
import { constant, count, sub, type Tensor, where } from "../graph/mod.ts";
import { labelMetrics } from "./_metrics.ts";
import { asUnpaired, type EitherInputs } from "./_unpaired.ts";
import type { Algorithm, KlInputs, LossOutput } from "./types.ts";

/** KTO's hyperparameters. */
export const defaults = {
  /**
   * β: scale of the implicit reward inside the value function.
   * @default 0.1
   */
  beta: 0.1,
  /**
   * w_d: weight of desirable completions.
   * @default 1.0
   */
  desirable_weight: 1.0,
  /**
   * w_u: weight of undesirable completions.
   * @default 1.0
   */
  undesirable_weight: 1.0,
  /**
   * How z is estimated: "mismatched" (paper, TRL) or "batch" (in-batch mean, no extra passes).
   * @default "mismatched"
   */
  kl_estimate: "mismatched" as "mismatched" | "batch",
};

/** KTO's inputs: either data kind, with the mismatched log-probs when `kl_estimate` needs them. */
export type KtoInputs = EitherInputs & Partial<KlInputs>;

/**
 * The KTO loss of a batch.
 *
 * @param x Paired or unpaired inputs (and mismatched log-probs).
 * @param hp Hyperparameters.
 * @returns The mean loss over completions, metrics, `kl` (z) and `kl/pairs`.
 */
export function loss(x: KtoInputs, hp: typeof defaults): LossOutput {
  const { beta: β, desirable_weight: wd, undesirable_weight: wu } = hp;
  const u = asUnpaired(x);
  const r = u.policyLogps.sub(u.referenceLogps); // log π_θ/π_ref of each completion
  const { z, pairs } = referencePoint(x, r, hp.kl_estimate);
  // 1 − σ(a) = σ(−a): the same number, without rounding 1 − σ to 0 for large a.
  const desirable = r.sub(z).mul(-β).sigmoid().mul(wd); //    w_d(1 − σ(β(r − z)))
  const undesirable = z.sub(r).mul(-β).sigmoid().mul(wu); //  w_u(1 − σ(β(z − r)))
  const losses = u.labels.mul(desirable).add(sub(1, u.labels).mul(undesirable));
  return {
    loss: losses.mean(),
    metrics: { ...labelMetrics(u, r.mul(β), z.mul(β)), kl: z, "kl/pairs": pairs },
  };
}

/** z and the number of mismatched pairs it was estimated from (gradient-free). */
function referencePoint(x: KtoInputs, r: Tensor, estimate: string): { z: Tensor; pairs: Tensor } {
  if (estimate === "batch") {
    return { z: r.mean().maximum(0).stopGradient(), pairs: constant(0, [], r.dtype) };
  }
  if (!x.policyKlLogps || !x.referenceKlLogps) {
    throw new Error(
      'Loss "kto" with kl_estimate "mismatched" needs inputs: policyKlLogps, referenceKlLogps',
    );
  }
  const kl = x.policyKlLogps.sub(x.referenceKlLogps);
  const B = count(kl);
  // With B = 1, row 0's "mismatched" completion is its own: no estimate, so z = 0.
  const z = where(B.gt(1), kl.mean().maximum(0), 0).stopGradient();
  return { z, pairs: where(B.gt(1), B, 0) };
}

/** The KTO module. */
export const kto: Algorithm<typeof defaults, KtoInputs> = {
  name: "kto",
  trlLossTypes: ["kto"],
  needsReference: true,
  data: "both",
  defaults,
  learningRate: 5e-7, // the book's KTO runs; TRL 1.13 defaults to 1e-6
  requires: (hp) => hp.kl_estimate === "mismatched" ? ["policyKlLogps", "referenceKlLogps"] : [],
  loss,
};
