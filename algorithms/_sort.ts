/**
 * An ascending sort of a `(B)` vector inside the graph, as `torch.sort(x).values`, for losses that
 * compare quantiles (AOT). The order comes from comparisons of the values (no gradient: a
 * permutation is piecewise constant); the values move through it as a one-hot (B, B) matrix, so
 * each sorted slot's gradient flows back to the element that landed there. Ties keep their
 * index order, as a stable sort. O(B²), for the batch sizes of a train step.
 *
 * @module
 */
import type { Tensor } from "../graph/mod.ts";

/**
 * `x` sorted ascending.
 *
 * @param x Values `(B)`.
 * @returns The sorted values `(B)`.
 */
export function sortAscending(x: Tensor): Tensor {
  const v = x.stopGradient();
  const float = (t: Tensor) => t.cast(x.dtype);
  const index = float(v.eq(v)).cumsum(0); // 1..B
  const [vi, vj] = [v.unsqueeze(1), v.unsqueeze(0)]; // (B, 1), (1, B)
  const [ii, ij] = [index.unsqueeze(1), index.unsqueeze(0)];
  // rank_i: the elements that sort before x_i (smaller, or equal and earlier).
  const before = float(vj.lt(vi)).add(float(vj.eq(vi)).mul(float(ij.lt(ii))));
  const rank = before.sum(1); // 0-based
  const slot = float(rank.unsqueeze(1).eq(ij.sub(1))); // (B_i, B_k): x_i goes to slot k
  return slot.mul(x.unsqueeze(1)).sum(0); // sorted_k = Σ_i [rank_i = k]·x_i
}
