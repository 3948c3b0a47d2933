/**
 * Optimizers as graph expressions: global-norm clipping, AdamW and SGD.
 *
 * They are applied inside the train-step graph, so the update runs where the parameters live.
 * The learning rate and the step count are graph inputs: schedules stay in TypeScript and one
 * compiled graph serves every step.
 *
 * @module
 */
import { sqrt } from "./ops.ts";
import { constant, type Tensor } from "./tensor.ts";

/** AdamW (Loshchilov & Hutter, arXiv 1711.05101), as PyTorch's `torch.optim.AdamW`. */
export interface AdamWConfig {
  /** Optimizer name. */
  name: "adamw";
  /** @default 0.9 */
  beta1?: number;
  /** @default 0.999 */
  beta2?: number;
  /** @default 1e-8 */
  eps?: number;
  /** Decoupled weight decay. @default 0 */
  weightDecay?: number;
}

/** Plain SGD with optional L2 weight decay, as PyTorch's `torch.optim.SGD` without momentum. */
export interface SgdConfig {
  /** Optimizer name. */
  name: "sgd";
  /** @default 0 */
  weightDecay?: number;
}

/** Either optimizer. */
export type OptimizerConfig = AdamWConfig | SgdConfig;

/** Names of the per-parameter state slots an optimizer keeps. */
export function stateSlots(config: OptimizerConfig): string[] {
  return config.name === "adamw" ? ["m", "v"] : [];
}

/** Everything one parameter's update needs. */
export interface UpdateInputs {
  /** Current value. */
  param: Tensor;
  /** Raw gradient (scaled by the schedule's `gradScale`). */
  grad: Tensor;
  /** State tensors by slot name (see {@linkcode stateSlots}). */
  state: Record<string, Tensor>;
  /** Whether weight decay applies to this parameter. */
  decay: boolean;
}

/** The scalars of one step, all graph tensors of shape `[]`. */
export interface StepScalars {
  /** Learning rate. */
  lr: Tensor;
  /** 1-based step count (AdamW's bias corrections). */
  step: Tensor;
  /**
   * Factor applied to every gradient: the clipping coefficient, times 1/n when n micro-batches
   * were summed. It is folded into the optimizer's scalar factors, so scaling costs no pass over
   * the gradients.
   */
  gradScale: Tensor;
}

/**
 * The updated parameter and state of one parameter. The math is PyTorch's: SGD
 * `p − lr·(g + wd·p)`; AdamW `p·(1 − lr·wd) − lr/(1−β₁ᵗ) · m / (√v / √(1−β₂ᵗ) + ε)` with
 * `m = β₁m + (1−β₁)g`, `v = β₂v + (1−β₂)g²`.
 *
 * @param config Optimizer and hyperparameters.
 * @param inputs Parameter, gradient, state and decay flag.
 * @param scalars Learning rate, step and gradient scale.
 * @returns The new parameter and new state tensors.
 */
export function update(
  config: OptimizerConfig,
  inputs: UpdateInputs,
  scalars: StepScalars,
): { param: Tensor; state: Record<string, Tensor> } {
  const { param: p, grad: g, state, decay } = inputs;
  const { lr, step, gradScale } = scalars;
  const wd = decay ? config.weightDecay ?? 0 : 0;
  if (config.name === "sgd") {
    const descent = p.sub(g.mul(lr.mul(gradScale)));
    return { param: wd ? descent.sub(p.mul(lr.mul(wd))) : descent, state: {} };
  }
  const { beta1 = 0.9, beta2 = 0.999, eps = 1e-8 } = config;
  // Full-size passes are what costs on large models (12, 13 with decay); scalar factors are free.
  const m = state.m.mul(beta1).add(g.mul(gradScale.mul(1 - beta1)));
  const v = state.v.mul(beta2).add(g.mul(g.mul(gradScale.mul(gradScale).mul(1 - beta2))));
  const one = constant(1, [], p.dtype);
  const correction1 = one.sub(constant(beta1, [], p.dtype).pow(step));
  const root2 = sqrt(one.sub(constant(beta2, [], p.dtype).pow(step)));
  // PyTorch's m / (√v / √(1−β₂ᵗ) + ε) · lr/(1−β₁ᵗ), with √(1−β₂ᵗ) moved into the scalars:
  // m / (√v + ε√(1−β₂ᵗ)) · lr√(1−β₂ᵗ)/(1−β₁ᵗ).
  const denom = sqrt(v).add(root2.mul(eps));
  const decayed = wd ? p.mul(one.sub(lr.mul(wd))) : p;
  const next = decayed.sub(m.div(denom).mul(lr.mul(root2).div(correction1)));
  return { param: next, state: { m, v } };
}

/**
 * Global-norm clipping as `torch.nn.utils.clip_grad_norm_`: the coefficient
 * `min(1, maxNorm / (norm + 1e-6))` that all gradients are multiplied by.
 *
 * @param grads Gradients of every parameter (times `scale`).
 * @param options `maxNorm` (0 or absent: no clipping); `scale`: a factor the gradients still
 *   need (1/n for summed micro-batches), included in the norm and the coefficient.
 * @returns The norm of the scaled gradients and the total coefficient.
 */
export function clipByGlobalNorm(
  grads: Tensor[],
  options: { maxNorm?: number; scale?: Tensor } = {},
): { norm: Tensor; coefficient: Tensor } {
  let squares = grads[0].mul(grads[0]).sum();
  for (const g of grads.slice(1)) squares = squares.add(g.mul(g).sum());
  const scale = options.scale ?? constant(1, [], grads[0].dtype);
  const norm = sqrt(squares).mul(scale);
  if (!options.maxNorm) return { norm, coefficient: scale };
  const clip = norm.add(1e-6).div(options.maxNorm).maximum(1);
  return { norm, coefficient: scale.div(clip) };
}
