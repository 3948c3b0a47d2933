/**
 * Log-probabilities of labels under a linear layer's softmax — an LM head's
 * `log softmax(h Wᵀ)[y]` — without a (rows × V) tensor living until the backward.
 *
 * With z = W h (V logits per row) and lse = log Σ_v e^{z_v}:
 *
 *   log p(y) = z_y − lse,        ∂/∂z_v = 1[v = y] − p_v,   p_v = e^{z_v − lse}
 *   ∂L/∂h = Σ_v g (1[v = y] − p_v) W_v,     ∂L/∂W_v = Σ_rows g (1[v = y] − p_v) h
 *
 * The vocabulary is cut into chunks of W's rows. The forward keeps only lse and z_y per row (each
 * chunk's logits are reduced to a log-sum-exp at once: lse = log Σ_k e^{lse_k}); the backward
 * recomputes each chunk's logits (one more head matmul than keeping them), turns them with the
 * kept lse into that chunk's ∂L/∂z, and gives ∂L/∂h (summed over chunks in float32) and the chunk's
 * rows of ∂L/∂W, joined by one Concat. The sequence length may
 * be dynamic; the vocabulary is static, so the chunks are fixed at build time. Like `checkpoint`,
 * the recomputation reads `h + 0·g₀` so onnxruntime neither merges it with the forward nor runs it
 * early (graph/checkpoint.ts).
 *
 * @module
 */
import { afterGradient } from "./checkpoint.ts";
import { concat, logSumExp } from "./ops.ts";
import { currentPrecision, withPrecision } from "./precision.ts";
import { apply, recomputations } from "./primitives.ts";
import { ints, reshapeLike } from "./_sizes.ts";
import type { Tensor } from "./tensor.ts";

/** Options of {@linkcode linearLogSoftmaxAt}. */
export interface LinearLogSoftmaxOptions {
  /**
   * Rows of W per chunk: the largest logits block alive is rows × chunk.
   * @default 8192
   */
  chunk?: number;
}

/**
 * `log softmax(h Wᵀ)[labels]` along the last axis, chunked over W's rows (see the module doc).
 *
 * @param h Inputs (…,D), float.
 * @param w Weight (V,D) with a static V.
 * @param labels Indices (…) into V, int64.
 * @param options Chunk size.
 * @returns Log-probabilities (…), float32 (or h's dtype when wider).
 * @example
 * ```ts
 * import { grad, input, linearLogSoftmaxAt } from "./mod.ts";
 * const h = input("h", ["M", 4]);
 * const w = input("w", [10, 4]);
 * const y = input("y", ["M"], "int64");
 * const logp = linearLogSoftmaxAt(h, w, y, { chunk: 3 });
 * const [dw] = grad(logp.sum(), [w]);
 * if (logp.toString() !== "float32[M]" || dw.toString() !== "float32[10,4]") {
 *   throw new Error("unexpected");
 * }
 * ```
 */
export function linearLogSoftmaxAt(
  h: Tensor,
  w: Tensor,
  labels: Tensor,
  options: LinearLogSoftmaxOptions = {},
): Tensor {
  const V = w.shape[0];
  if (typeof V !== "number") throw new Error(`linearLogSoftmaxAt: V of ${w} must be static`);
  const size = options.chunk ?? 8192;
  const starts = Array.from({ length: Math.ceil(V / size) }, (_, k) => k * size);
  const chunkOf = (start: number) => w.slice(0, start, Math.min(start + size, V));
  /** lse (…) over all chunks, each chunk's logits reduced as soon as they are made. */
  const logNormalizer = (x: Tensor): Tensor => {
    const perChunk = starts.map((s) => logSumExp(x.matmul(chunkOf(s).transpose()), -1, true));
    return logSumExp(concat(perChunk, -1), -1);
  };
  /** z_y (…): the label's logit, as the matmul of the whole head would round it. */
  const labelLogit = (x: Tensor): Tensor =>
    x.unsqueeze(-2).matmul(w.gather(labels).unsqueeze(-1)).squeeze([-2, -1]);
  // lse (…) is kept for the backward (one value per row); the chunks' logits are not.
  const normalizer = logNormalizer(h.stopGradient());
  const value = labelLogit(h.stopGradient()).sub(normalizer);
  const y = apply("Checkpoint", [value, h, w]);
  const precision = currentPrecision();
  recomputations.set(y, (g) =>
    withPrecision(precision, () => {
      const x = afterGradient(h, g);
      const lse = normalizer.unsqueeze(-1);
      const rows = x.reshape([-1, x.shape[x.rank - 1]]); // (M,D)
      const gRows = g.reshape([-1, 1]); // (M,1)
      const labelRows = labels.reshape([-1, 1]); // (M,1)
      let dx: Tensor | null = null;
      const dw = starts.map((s) => {
        const wk = chunkOf(s);
        const z = x.matmul(wk.transpose()); // (…,Vk)
        const p = z.sub(lse).exp().reshape([-1, wk.shape[0]]); // (M,Vk)
        const ids = ints(Array.from({ length: wk.shape[0] as number }, (_, v) => s + v));
        const hit = labelRows.eq(ids.unsqueeze(0)).cast(p.dtype); // (M,Vk): 1[v = y]
        const dz = hit.sub(p).mul(gRows);
        const part = dz.matmul(wk).cast(x.dtype); // float32 sum over chunks
        dx = dx ? dx.add(part) : part;
        return dz.transpose().matmul(rows); // (Vk,D)
      });
      return [reshapeLike(dx!, x), concat(dw, 0)];
    }));
  return y;
}
