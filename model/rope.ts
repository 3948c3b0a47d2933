/**
 * Rotary position embeddings (RoPE, Su et al. 2021, arXiv:2104.09864) as HF's Llama applies them:
 * per head, `x·cos + rotate_half(x)·sin` with `rotate_half([x1, x2]) = [-x2, x1]` (the two halves
 * of the head dimension, not interleaved pairs), angles `position · inv_freq`, `inv_freq[i] =
 * θ^(-2i/d)`, optionally rescaled (`linear`, or Llama 3.1's `llama3` band scaling).
 *
 * @module
 */
import { concat, constant, cos, sin, type Tensor } from "../graph/mod.ts";
import type { ModelConfig } from "./config.ts";

/**
 * The inverse frequencies `inv_freq` (head_dim / 2 values), with the config's rope scaling,
 * computed in float32 as `transformers` does.
 *
 * @param config The model config.
 * @returns `inv_freq`.
 * @example
 * ```ts
 * import { parseConfig } from "./config.ts";
 * import { ropeInvFreq } from "./rope.ts";
 * const c = parseConfig({ model_type: "llama", vocab_size: 8, hidden_size: 8, intermediate_size: 8,
 *   num_hidden_layers: 1, num_attention_heads: 2 });
 * if (ropeInvFreq(c)[0] !== 1) throw new Error("unexpected");
 * ```
 */
export function ropeInvFreq(config: ModelConfig): Float32Array {
  const d = config.head_dim;
  const base = Math.fround(config.rope_theta);
  const inv = Float32Array.from(
    { length: d / 2 },
    (_, i) => 1 / Math.fround(base ** Math.fround((2 * i) / d)),
  );
  const s = config.rope_scaling;
  if (s.rope_type === "linear") return inv.map((f) => f / s.factor!);
  if (s.rope_type !== "llama3") return inv;
  // Llama 3.1 (transformers `_compute_llama3_parameters`): long wavelengths are divided by
  // `factor`, short ones kept, and the band between interpolated smoothly.
  const old = s.original_max_position_embeddings!;
  const lowWavelen = old / s.low_freq_factor!;
  const highWavelen = old / s.high_freq_factor!;
  return inv.map((f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < highWavelen) return f;
    if (wavelen > lowWavelen) return f / s.factor!;
    const smooth = (old / wavelen - s.low_freq_factor!) /
      (s.high_freq_factor! - s.low_freq_factor!);
    return (1 - smooth) * (f / s.factor!) + smooth * f;
  });
}

/**
 * cos and sin of the rotary angles for float positions.
 *
 * @param positions Positions (N,T), float32.
 * @param invFreq `inv_freq` (head_dim / 2).
 * @returns `{ cos, sin }`, each (N,T,head_dim).
 */
export function ropeAngles(positions: Tensor, invFreq: Float32Array): { cos: Tensor; sin: Tensor } {
  const freqs = positions.unsqueeze(-1).mul(constant(invFreq, [invFreq.length]));
  const angles = concat([freqs, freqs], -1);
  return { cos: cos(angles), sin: sin(angles) };
}

/**
 * Rotates the last axis (head_dim) of `x` by the angles whose cos and sin are given.
 *
 * @param x Queries or keys (..., head_dim).
 * @param c cos of the angles, broadcastable to `x`.
 * @param s sin of the angles, broadcastable to `x`.
 * @returns `x·cos + rotate_half(x)·sin`.
 */
export function applyRope(x: Tensor, c: Tensor, s: Tensor): Tensor {
  const half = (x.shape[x.rank - 1] as number) / 2;
  const rotated = concat([x.slice(-1, half).neg(), x.slice(-1, 0, half)], -1);
  return x.mul(c).add(rotated.mul(s));
}
