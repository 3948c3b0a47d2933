/**
 * TRL's logging metrics, shared so that every loss reports the same names the same way.
 *
 * @module
 */
import { sub, type Tensor } from "../graph/mod.ts";
import type { PairedInputs, UnpairedInputs } from "./types.ts";

/**
 * Metrics of a pairwise loss from its implicit rewards per pair.
 *
 * @param x The paired inputs (for `logps/*`).
 * @param chosen Implicit reward of each chosen answer `(B)`, e.g. β·(π_c − ref_c).
 * @param rejected Implicit reward of each rejected answer `(B)`.
 * @returns `rewards/{chosen,rejected,accuracies,margins}` and `logps/{chosen,rejected}`.
 */
export function pairMetrics(
  x: PairedInputs,
  chosen: Tensor,
  rejected: Tensor,
): Record<string, Tensor> {
  return {
    "rewards/chosen": chosen.mean(),
    "rewards/rejected": rejected.mean(),
    "rewards/accuracies": chosen.gt(rejected).cast(chosen.dtype).mean(),
    "rewards/margins": chosen.sub(rejected).mean(),
    "logps/chosen": x.policyChosenLogps.mean(),
    "logps/rejected": x.policyRejectedLogps.mean(),
  };
}

/**
 * Metrics of a per-completion (KTO-style) loss: means over the desirable and the undesirable
 * completions (0 when the batch has none), and the fraction of completions whose reward lies on
 * the side of the reference point their label asks for.
 *
 * @param u The unpaired inputs.
 * @param rewards Implicit reward of each completion `(B)`.
 * @param point The reference point the rewards are judged against (a scalar).
 * @returns `rewards/{chosen,rejected,accuracies,margins}` and `logps/{chosen,rejected}`.
 */
export function labelMetrics(
  u: UnpairedInputs,
  rewards: Tensor,
  point: Tensor,
): Record<string, Tensor> {
  const good = u.labels, bad = sub(1, u.labels);
  const meanOver = (v: Tensor, mask: Tensor) => v.mul(mask).sum().div(mask.sum().maximum(1));
  const right = good.mul(rewards.gt(point).cast(rewards.dtype))
    .add(bad.mul(rewards.lt(point).cast(rewards.dtype)));
  return {
    "rewards/chosen": meanOver(rewards, good),
    "rewards/rejected": meanOver(rewards, bad),
    "rewards/accuracies": right.mean(),
    "rewards/margins": meanOver(rewards, good).sub(meanOver(rewards, bad)),
    "logps/chosen": meanOver(u.policyLogps, good),
    "logps/rejected": meanOver(u.policyLogps, bad),
  };
}
