/**
 * Activation recomputation ("gradient checkpointing", Chen et al. 2016, arXiv 1604.06174): a
 * block's forward runs without keeping its intermediate activations for the backward; the
 * backward runs the block again from its saved input and differentiates that recomputation.
 * Only block inputs stay alive between the forward and the backward.
 *
 * onnxruntime would undo a naive recomputation: its common-subexpression elimination merges the
 * recomputed nodes with the forward ones (same op, same inputs), and its scheduler may run a
 * recomputation early (holding its outputs just as long). So the recomputation starts from
 * `x + 0·g₀`, where g₀ is one element of the gradient flowing into the block: a different value
 * for CSE (it cannot prove 0·g₀ = 0) and a data dependency that keeps it after the gradient is
 * known. x + 0·g₀ = x exactly for finite g₀; a non-finite gradient makes the step skipped anyway.
 *
 * @module
 */
import { grad } from "./autodiff.ts";
import { currentPrecision, withPrecision } from "./precision.ts";
import { apply, recomputations } from "./primitives.ts";
import type { Tensor } from "./tensor.ts";

/**
 * `f(x)` whose activations are recomputed in the backward instead of kept.
 *
 * @param x The block's input.
 * @param f The block: must only read `x`, `leaves` and tensors that need no gradient.
 * @param leaves The trainable tensors `f` reads (their gradients come from the recomputation).
 * @returns `f(x)`, with the same value and gradients as calling `f` directly.
 * @example
 * ```ts
 * import { checkpoint, grad, input } from "./mod.ts";
 * const x = input("x", [2, 3]);
 * const w = input("w", [3, 3]);
 * const y = checkpoint(x, (h) => h.matmul(w).tanh(), [w]);
 * const [dw] = grad(y.sum(), [w]);
 * if (dw.toString() !== "float32[3,3]") throw new Error("unexpected");
 * ```
 */
export function checkpoint(x: Tensor, f: (x: Tensor) => Tensor, leaves: Tensor[]): Tensor {
  const y = apply("Checkpoint", [f(x.stopGradient()), x, ...leaves]);
  // The recomputation runs when `grad` reaches it: in the precision the forward was built in.
  const precision = currentPrecision();
  recomputations.set(y, (g) =>
    withPrecision(precision, () => {
      const again = afterGradient(x, g);
      return grad(f(again), [again, ...leaves], { seed: g, stopAt: [again] });
    }));
  return y;
}

/**
 * `x + 0·g₀` (g₀ one element of `g`): x's value, as a tensor that onnxruntime can neither merge
 * with the forward's x-readers nor compute before `g` exists (see the module doc).
 *
 * @param x The value a recomputation starts from.
 * @param g The gradient whose arrival it must wait for.
 * @returns x, computed after g.
 * @example
 * ```ts
 * import { afterGradient, input } from "./mod.ts";
 * const x = input("x", [2]);
 * if (afterGradient(x, input("g", [3])).toString() !== "float32[2]") throw new Error("unexpected");
 * ```
 */
export function afterGradient(x: Tensor, g: Tensor): Tensor {
  // Σ of at most one element: 0·g₀ as a scalar, and 0 where g is empty (no completion tokens).
  return x.add(g.reshape([-1]).slice(0, 0, 1).sum().mul(0).cast(x.dtype));
}
