/**
 * Direct-alignment losses, one file per algorithm, and the registry that maps `--loss NAME` to
 * them. Each file is self-contained: the paper, the objective in math, the defaults and their
 * reasons, then the loss in a few lines. The contract they share is in `types.ts`.
 *
 * ```ts
 * import { evaluateLoss } from "./mod.ts";
 * const { loss, grad } = await evaluateLoss("dpo", {
 *   policy_chosen_logps: [-10], policy_rejected_logps: [-12],
 *   reference_chosen_logps: [-11], reference_rejected_logps: [-11],
 *   chosen_lengths: [5], rejected_lengths: [6],
 * });
 * // Δ = 1 − (−1) = 2, loss = −log σ(0.1·2)
 * if (Math.abs(loss - Math.log1p(Math.exp(-0.2))) > 1e-12) throw new Error("unexpected");
 * if (!(grad.policy_chosen_logps[0] < 0)) throw new Error("unexpected");
 * ```
 *
 * @module
 */
import { aot } from "./aot.ts";
import { aotUnpaired } from "./aot_unpaired.ts";
import { apoDown } from "./apo_down.ts";
import { apoZero } from "./apo_zero.ts";
import { bco } from "./bco.ts";
import { cdpo } from "./cdpo.ts";
import { dpo } from "./dpo.ts";
import { discopop } from "./discopop.ts";
import { dpoNorm } from "./dpo_norm.ts";
import { evaluate, type EvaluateOptions, type LossData, type LossResult } from "./evaluate.ts";
import { exo } from "./exo.ts";
import { hinge } from "./hinge.ts";
import { ipo } from "./ipo.ts";
import { kto } from "./kto.ts";
import { nca } from "./nca.ts";
import { odpo } from "./odpo.ts";
import { onlineDpo } from "./online_dpo.ts";
import { orpo } from "./orpo.ts";
import { rdpo } from "./rdpo.ts";
import { rpo } from "./rpo.ts";
import { sft } from "./sft.ts";
import { simpo } from "./simpo.ts";
import { sppo } from "./sppo.ts";
import type { Algorithm } from "./types.ts";
import { weightedSum } from "./weighted_sum.ts";

export * from "./types.ts";
export { LOSS_KEYS, resolveHyperparameters } from "./keys.ts";
export type { EvaluateOptions, LossData, LossResult };

/** Every algorithm, by its `--loss` name: the only place that lists them. */
export const ALGORITHMS: Readonly<Record<string, Algorithm>> = Object.fromEntries(
  [
    dpo,
    cdpo,
    ipo,
    simpo,
    orpo,
    kto,
    dpoNorm,
    odpo,
    rdpo,
    bco,
    hinge,
    apoZero,
    apoDown,
    nca,
    rpo,
    exo,
    sppo,
    discopop,
    aot,
    aotUnpaired,
    sft,
    onlineDpo,
  ].map((algorithm) => [algorithm.name, algorithm]),
);

/**
 * The algorithm called `name`: a registered one, or `a+b+…`, the weighted sum of registered ones
 * (TRL's `loss_type` list, see weighted_sum.ts).
 *
 * @param name A `--loss` value.
 * @returns The algorithm.
 * @example
 * ```ts
 * import { algorithm } from "./mod.ts";
 * if (algorithm("simpo").needsReference) throw new Error("unexpected");
 * if (!algorithm("simpo+sft").defaults.loss_weights) throw new Error("unexpected");
 * ```
 */
export function algorithm(name: string): Algorithm {
  if (name.includes("+")) return weightedSum(name.split("+").map(algorithm));
  if (!Object.hasOwn(ALGORITHMS, name)) {
    throw new Error(
      `Unknown loss "${name}": expected one of ${Object.keys(ALGORITHMS).join(", ")}`,
    );
  }
  return ALGORITHMS[name];
}

/**
 * Runs loss `name` on concrete numbers (float64, CPU): the same graph as training builds.
 *
 * @param name A `--loss` value.
 * @param data One array per input, snake_case names (see {@linkcode LossData}).
 * @param options Hyperparameter overrides.
 * @returns The loss, metrics and d loss / d each policy log-prob.
 * @example
 * ```ts
 * import { evaluateLoss } from "./mod.ts";
 * const out = await evaluateLoss("ipo", {
 *   policy_chosen_logps: [-4], policy_rejected_logps: [-4],
 *   reference_chosen_logps: [-4], reference_rejected_logps: [-4],
 *   chosen_lengths: [2], rejected_lengths: [2],
 * }, { hyperparameters: { beta: 0.1 } });
 * if (Math.abs(out.loss - 25) > 1e-9) throw new Error("unexpected");
 * ```
 */
export async function evaluateLoss(
  name: string,
  data: LossData,
  options: EvaluateOptions = {},
): Promise<LossResult> {
  return await evaluate(algorithm(name), data, options);
}
