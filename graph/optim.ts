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
  /** Gradient (already clipped). */
  grad: Tensor;
  /** State tensors by slot name (see {@linkcode stateSlots}). */
  state: Record<string, Tensor>;
  /** Whether weight decay applies to this parameter. */
  decay: boolean;
}

/**
 * The updated parameter and state of one parameter.
 *
 * @param config Optimizer and hyperparameters.
 * @param inputs Parameter, gradient, state and decay flag.
 * @param schedule `lr` (scalar) and 1-based `step` (scalar), both graph inputs.
 * @returns The new parameter and new state tensors.
 */
export function update(
  config: OptimizerConfig,
  inputs: UpdateInputs,
  schedule: { lr: Tensor; step: Tensor },
): { param: Tensor; state: Record<string, Tensor> } {
  const { param: p, grad: g, state, decay } = inputs;
  const { lr, step } = schedule;
  const wd = decay ? config.weightDecay ?? 0 : 0;
  if (config.name === "sgd") {
    const direction = wd ? g.add(p.mul(wd)) : g;
    return { param: p.sub(direction.mul(lr)), state: {} };
  }
  const { beta1 = 0.9, beta2 = 0.999, eps = 1e-8 } = config;
  const m = state.m.mul(beta1).add(g.mul(1 - beta1));
  const v = state.v.mul(beta2).add(g.mul(g).mul(1 - beta2));
  // Bias corrections 1 - β^t from the step input; PyTorch adds eps after the √(1 - β₂^t) rescale.
  const one = constant(1, [], p.dtype);
  const correction1 = one.sub(constant(beta1, [], p.dtype).pow(step));
  const correction2 = one.sub(constant(beta2, [], p.dtype).pow(step));
  const denom = sqrt(v).div(sqrt(correction2)).add(eps);
  const decayed = wd ? p.mul(one.sub(lr.mul(wd))) : p;
  const next = decayed.sub(m.div(denom).mul(lr.div(correction1)));
  return { param: next, state: { m, v } };
}

/**
 * Global-norm clipping as `torch.nn.utils.clip_grad_norm_`: scales all gradients by
 * `min(1, maxNorm / (norm + 1e-6))`.
 *
 * @param grads Gradients of every parameter.
 * @param maxNorm Largest allowed norm; `undefined` or 0 disables clipping.
 * @returns The (possibly) scaled gradients and the norm before clipping.
 */
export function clipByGlobalNorm(
  grads: Tensor[],
  maxNorm?: number,
): { grads: Tensor[]; norm: Tensor } {
  let squares = grads[0].mul(grads[0]).sum();
  for (const g of grads.slice(1)) squares = squares.add(g.mul(g).sum());
  const norm = sqrt(squares);
  if (!maxNorm) return { grads, norm };
  const scale = norm.add(1e-6).div(maxNorm).maximum(1);
  return { grads: grads.map((g) => g.div(scale)), norm };
}
