/**
 * The one held-out figure that means the same for every loss: pairwise preference accuracy, the
 * fraction of held-out pairs whose chosen answer gets the higher implicit reward.
 *
 * The reward is DPO's implicit reward up to its positive scale β, log π_θ(y|x) − log π_ref(y|x),
 * for losses with a reference model (KTO and BCO included: their rewards are the same log-ratio),
 * and the mean token log-prob (SimPO's and ORPO's reward, up to β) for losses without one. A pair
 * counts as correct only when the chosen reward is higher by more than float32 noise: at step 0
 * the policy equals the reference and every margin is rounding error, which TRL's plain `>`
 * scores as a coin flip.
 *
 * @module
 */
import type { TokenizedExample } from "../data/types.ts";

/** Relative size of float32 rounding in a sum of log-probs (a few ulps). */
const NOISE = 1e-6;

/** One completion's reward and the magnitude of the terms it was computed from. */
interface Scored {
  reward: number;
  scale: number;
}

/** Collects rewards of held-out completions by source row and scores the complete pairs. */
export class PairwiseTally {
  #pairs = new Map<number, { chosen?: Scored; rejected?: Scored }>();

  /**
   * Adds one completion.
   *
   * @param row The dataset row (pair) it belongs to.
   * @param chosen Whether it is the pair's chosen answer.
   * @param seq Its summed log-prob under the policy, its token count and, for losses with a
   * reference model, its summed log-prob under the reference.
   */
  add(row: number, chosen: boolean, seq: { logp: number; count: number; ref?: number }): void {
    const scored = seq.ref === undefined
      ? { reward: seq.logp / Math.max(1, seq.count), scale: Math.abs(seq.logp) / seq.count }
      : { reward: seq.logp - seq.ref, scale: Math.abs(seq.logp) + Math.abs(seq.ref) };
    const pair = this.#pairs.get(row) ?? {};
    pair[chosen ? "chosen" : "rejected"] = scored;
    this.#pairs.set(row, pair);
  }

  /**
   * Adds a batch's completions: row-group 0 (chosen, or the unpaired completions) and, for pairs,
   * row-group 1 (rejected), as the step graph stacks them.
   *
   * @param examples The batch's examples, in batch order.
   * @param seq Per-row summed policy log-probs and token counts (G·B), and the reference's.
   */
  addBatch(
    examples: TokenizedExample[],
    seq: { logps: ArrayLike<unknown>; counts: ArrayLike<unknown>; reference?: Float32Array },
  ): void {
    const B = examples.length;
    const at = (i: number) => ({
      logp: Number(seq.logps[i]),
      count: Number(seq.counts[i]),
      ref: seq.reference ? seq.reference[i] : undefined,
    });
    examples.forEach((e, b) => {
      if (e.kind === "paired") {
        this.add(e.row, true, at(b));
        this.add(e.row, false, at(B + b));
      } else {
        this.add(e.row, e.label, at(b));
      }
    });
  }

  /**
   * The accuracy over the pairs with both answers seen.
   *
   * @returns The fraction in [0, 1], or NaN when no pair is complete.
   * @example
   * ```ts
   * import { PairwiseTally } from "./pairwise.ts";
   * const t = new PairwiseTally();
   * t.add(0, true, { logp: -10, count: 5, ref: -12 }); // reward +2
   * t.add(0, false, { logp: -12, count: 6, ref: -11 }); // reward −1
   * t.add(1, true, { logp: -20, count: 5, ref: -20 }); // a tie: not correct
   * t.add(1, false, { logp: -20, count: 5, ref: -20 });
   * if (t.accuracy() !== 0.5) throw new Error("unexpected");
   * ```
   */
  accuracy(): number {
    let pairs = 0, correct = 0;
    for (const { chosen, rejected } of this.#pairs.values()) {
      if (!chosen || !rejected) continue;
      pairs++;
      const noise = NOISE * (chosen.scale + rejected.scale);
      if (chosen.reward - rejected.reward > noise) correct++;
    }
    return pairs === 0 ? NaN : correct / pairs;
  }
}
