/**
 * A weighted sum of losses: TRL's `loss_type` list with `loss_weights`.
 *
 * TRL's DPOTrainer accepts several loss types at once and adds them up, each mean loss times its
 * weight (`loss += per_sequence_loss.mean() * loss_weight`, weights 1 when unset):
 *
 *     L = Σᵢ wᵢ · Lᵢ
 *
 * This is how RPO (`[sigmoid, sft]`, Pang et al. 2024, arXiv:2404.19733) and the MPO recipe
 * (`[sigmoid, bco_pair, sft]`, Wang et al. 2024, arXiv:2411.10442) are written as configs. Here
 * each term is a registered algorithm, the sum is the loss `a+b+…` (e.g. `dpo+sft`), and
 * `loss_weights` is its one hyperparameter of its own. The terms share the other hyperparameters
 * (one `beta`, as in TRL); where two terms default a key differently, the first term's default
 * holds. The logged rewards and metrics are the first term's (TRL logs the DPO rewards whatever the
 * loss types), plus any metric only a later term has.
 *
 * @module
 */
import type { Algorithm, Hyperparameters, LossInputs, LossOutput } from "./types.ts";

/** The key of the weights, as TRL names it: comma-separated numbers, one per term. */
const WEIGHTS = "loss_weights";

/**
 * The algorithm whose loss is the weighted sum of `terms`' losses.
 *
 * @param terms The registered algorithms, in `loss_type` order (two or more).
 * @returns The combined algorithm, named `a+b+…`, reading `loss_weights` (default all 1).
 * @example
 * ```ts
 * import { weightedSum } from "./weighted_sum.ts";
 * import { dpo } from "./dpo.ts";
 * import { sft } from "./sft.ts";
 * const rpo = weightedSum([dpo, sft]);
 * if (rpo.name !== "dpo+sft" || rpo.defaults.loss_weights !== "1,1") throw new Error("unexpected");
 * ```
 */
export function weightedSum(terms: readonly Algorithm[]): Algorithm {
  const name = terms.map((t) => t.name).join("+");
  for (const t of terms) {
    if (t.data === "unpaired" || t.online) {
      throw new Error(
        `Invalid loss_type ${name}: "${t.name}" ${
          t.online ? "generates its own pairs" : "trains on unpaired data"
        }; a combination takes offline paired losses only`,
      );
    }
  }
  const stateful = terms.filter((t) => t.state);
  if (stateful.length > 1) {
    throw new Error(`Invalid loss_type ${name}: at most one term may keep state across steps`);
  }
  const defaults: Hyperparameters = {};
  for (const t of [...terms].reverse()) Object.assign(defaults, t.defaults);
  defaults[WEIGHTS] = terms.map(() => 1).join(",");
  return {
    name,
    needsReference: terms.some((t) => t.needsReference),
    data: "paired",
    defaults,
    learningRate: terms[0].learningRate,
    state: stateful[0]?.state,
    requires: (hp) => [...new Set(terms.flatMap((t) => t.requires?.(hp) ?? []))],
    loss(x: LossInputs, hp: Hyperparameters): LossOutput {
      const weights = weightsOf(hp[WEIGHTS], terms.length);
      const outputs = terms.map((t) => t.loss(x, hp));
      const loss = outputs.map((o, i) => o.loss.mul(weights[i])).reduce((a, b) => a.add(b));
      const metrics: LossOutput["metrics"] = {};
      for (const o of [...outputs].reverse()) Object.assign(metrics, o.metrics); // the first wins
      return { loss, metrics };
    },
  };
}

/** The weights of `loss_weights` ("0.8,0.2"), checked against the number of terms. */
function weightsOf(value: unknown, n: number): number[] {
  const weights = String(value).split(",").map(Number);
  if (weights.length !== n || weights.some((w) => !Number.isFinite(w))) {
    throw new Error(
      `Invalid loss_weights "${value}": got ${weights.length} weights for ${n} loss types ` +
        `(one finite number per loss_type, e.g. ${Array(n).fill(1).join(",")})`,
    );
  }
  return weights;
}
