/**
 * Reverse-mode automatic differentiation over the symbolic graph.
 *
 * `grad(loss, wrt)` walks the nodes between `wrt` and `loss` in reverse creation order (creation
 * order is a topological order, since a node is always made after its inputs) and asks each
 * primitive's VJP rule for its inputs' gradients. The result is more graph nodes, emitted into the
 * same ONNX model as the forward pass. No gradient flows into integer or bool tensors, through
 * primitives marked `noGrad` (comparisons, shapes, `stopGradient`), or into constants.
 *
 * @module
 */
import { add, cast, zerosLike } from "./ops.ts";
import { primitive } from "./primitives.ts";
import { constant, type Tensor } from "./tensor.ts";

/**
 * Gradients of the scalar `loss` with respect to each tensor of `wrt`.
 *
 * @param loss A float scalar (shape `[]`), or any tensor when `options.seed` gives its gradient.
 * @param wrt Tensors to differentiate by (usually parameter inputs).
 * @param options `seed`: the gradient of `loss` itself (default 1 for a scalar). `stopAt`: tensors
 *   whose own inputs are not walked (boundaries such as a recomputed layer's input), so the
 *   gradient stops there instead of flowing on through the rest of the graph.
 * @returns One gradient per `wrt` entry, shaped like it (zeros where `loss` does not depend on it).
 * @example
 * ```ts
 * import { grad, input } from "./mod.ts";
 * const x = input("x", [3]);
 * const [dx] = grad(x.mul(x).sum(), [x]);
 * if (dx.toString() !== "float32[3]") throw new Error("unexpected");
 * ```
 */
export function grad(
  loss: Tensor,
  wrt: Tensor[],
  options: { seed?: Tensor; stopAt?: Tensor[] } = {},
): Tensor[] {
  if (!options.seed && loss.rank !== 0) {
    throw new Error(`grad: loss must be a scalar, got ${loss}: reduce it or pass a seed`);
  }
  if (!loss.isFloat) throw new Error(`grad: loss must be floating point, got ${loss}`);
  const targets = new Set(wrt.map((t) => t.id));
  const stops = new Set(options.stopAt?.map((t) => t.id));
  const order = nodesBetween(loss, targets, stops);
  const grads = new Map<number, Tensor>();
  grads.set(loss.id, options.seed ?? constant(1, [], loss.dtype));
  for (const node of order) {
    const g = grads.get(node.id);
    if (!g || node.inputs.length === 0 || stops.has(node.id)) continue;
    const rule = primitive(node.op);
    if (!rule.vjp) throw new Error(`No VJP for op "${node.op}"`);
    const inputGrads = rule.vjp(g, node.inputs, node);
    node.inputs.forEach((x, i) => {
      // A gradient has its tensor's dtype (a float32 statistic of a bfloat16 activation goes
      // back as bfloat16; a bfloat16 weight copy's gradient goes back float32 through its Cast).
      if (!inputGrads[i] || !order.has(x)) return;
      const gx = cast(inputGrads[i]!, x.dtype);
      const prev = grads.get(x.id);
      grads.set(x.id, prev ? add(prev, gx) : gx);
    });
  }
  return wrt.map((w) => grads.get(w.id) ?? zerosLike(w));
}

/**
 * The float nodes on a path from any target to `loss`, in reverse topological order. A `Set`
 * keeps insertion order, which is what the backward loop iterates.
 */
function nodesBetween(loss: Tensor, targets: Set<number>, stops: Set<number>): Set<Tensor> {
  const reaches = new Map<number, boolean>();
  const all: Tensor[] = [];
  const stack: Tensor[] = [loss];
  while (stack.length) {
    const t = stack.pop()!;
    if (reaches.has(t.id)) continue;
    reaches.set(t.id, false);
    all.push(t);
    if (!stops.has(t.id)) stack.push(...t.inputs);
  }
  all.sort((a, b) => a.id - b.id);
  for (const t of all) {
    const flows = t.isFloat && (targets.has(t.id) ||
      (t.inputs.length > 0 && !stops.has(t.id) && !primitive(t.op).noGrad &&
        t.inputs.some((x) => reaches.get(x.id))));
    reaches.set(t.id, flows);
  }
  return new Set(all.filter((t) => reaches.get(t.id)).reverse());
}
