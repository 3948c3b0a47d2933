/**
 * The op functions: what models and losses are written with. Each builds a node of a primitive
 * (`primitives.ts`, where shape rules and gradients live) or is a composite of them needing no
 * gradient rule of its own (mean, log-sigmoid, SiLU, GELU, log-sum-exp).
 *
 * @module
 */
import { apply, broadcastShapes, normAxis } from "./primitives.ts";
import {
  clampIndex,
  ints,
  shapeOf,
  shapeVector,
  sizeOf,
  sliceRange,
  targetShape,
} from "./_sizes.ts";
import { constant, type Dim, type DType, ONNX_DTYPE, type Shape, Tensor } from "./tensor.ts";

const lift = (v: Tensor | number, like: Tensor): Tensor =>
  typeof v === "number" ? constant(v, [], like.dtype) : v;

function binary(op: string, a: Tensor | number, b: Tensor | number): Tensor {
  if (typeof a === "number" && typeof b === "number") {
    throw new Error(`${op}: at least one operand must be a tensor`);
  }
  const like = (typeof a === "number" ? b : a) as Tensor;
  return apply(op, [lift(a, like), lift(b, like)]);
}

/** Elementwise sum with broadcasting. */
export const add = (a: Tensor | number, b: Tensor | number): Tensor => binary("Add", a, b);
/** Elementwise difference with broadcasting. */
export const sub = (a: Tensor | number, b: Tensor | number): Tensor => binary("Sub", a, b);
/** Elementwise product with broadcasting. */
export const mul = (a: Tensor | number, b: Tensor | number): Tensor => binary("Mul", a, b);
/** Elementwise quotient with broadcasting. */
export const div = (a: Tensor | number, b: Tensor | number): Tensor => binary("Div", a, b);
/** Elementwise power. */
export const pow = (a: Tensor | number, b: Tensor | number): Tensor => binary("Pow", a, b);
/** Elementwise maximum (ties send the gradient to `a`). */
export const maximum = (a: Tensor | number, b: Tensor | number): Tensor => binary("Max", a, b);
/** Elementwise minimum (ties send the gradient to `a`). */
export const minimum = (a: Tensor | number, b: Tensor | number): Tensor => binary("Min", a, b);
/** Elementwise comparison or logic op producing bool. */
export const compare = (
  op: "Equal" | "Less" | "LessOrEqual" | "Greater" | "GreaterOrEqual" | "And" | "Or",
  a: Tensor | number,
  b: Tensor | number,
): Tensor => binary(op, a, b);
/** True where `x` is neither NaN nor ±∞. */
export const isFinite = (x: Tensor): Tensor =>
  not(apply("Or", [apply("IsNaN", [x]), apply("IsInf", [x])]));

/** Logical not. */
export const not = (a: Tensor): Tensor => apply("Not", [a]);

/** `-x`. */
export const neg = (x: Tensor): Tensor => apply("Neg", [x]);
/** `e^x`. */
export const exp = (x: Tensor): Tensor => apply("Exp", [x]);
/** Natural log. */
export const log = (x: Tensor): Tensor => apply("Log", [x]);
/** Square root. */
export const sqrt = (x: Tensor): Tensor => apply("Sqrt", [x]);
/** `1 / sqrt(x)`. */
export const rsqrt = (x: Tensor): Tensor => apply("Reciprocal", [sqrt(x)]);
/** `|x|`. */
export const abs = (x: Tensor): Tensor => apply("Abs", [x]);
/** Hyperbolic tangent. */
export const tanh = (x: Tensor): Tensor => apply("Tanh", [x]);
/** Logistic sigmoid. */
export const sigmoid = (x: Tensor): Tensor => apply("Sigmoid", [x]);
/**
 * `log(1 + e^x)`, finite for every finite x in any dtype. onnxruntime's float64 kernel (and a
 * naive one on other EPs) overflows for large x, so the primitive only ever sees x ≤ 40; above,
 * the value is x (the rest, e^-x < 5e-18, is below float64 resolution) with gradient 1.
 */
export function softplus(x: Tensor): Tensor {
  return where(compare("Greater", x, 40), x, apply("Softplus", [minimum(x, 40)]));
}
/** `log σ(x) = -softplus(-x)`, stable for large |x|. */
export const logSigmoid = (x: Tensor): Tensor => neg(softplus(neg(x)));
/** `max(x, 0)`. */
export const relu = (x: Tensor): Tensor => apply("Relu", [x]);
/** SiLU / swish: `x σ(x)`. */
export const silu = (x: Tensor): Tensor => mul(x, sigmoid(x));
/** Error function. */
export const erf = (x: Tensor): Tensor => apply("Erf", [x]);
/** Sine. */
export const sin = (x: Tensor): Tensor => apply("Sin", [x]);
/** Cosine. */
export const cos = (x: Tensor): Tensor => apply("Cos", [x]);

/** GELU, exact (erf) form `x Φ(x)` or the tanh approximation. */
export function gelu(x: Tensor, approximate: "none" | "tanh" = "none"): Tensor {
  if (approximate === "none") return mul(mul(x, 0.5), add(erf(mul(x, Math.SQRT1_2)), 1));
  const inner = mul(add(x, mul(pow(x, 3), 0.044715)), Math.sqrt(2 / Math.PI));
  return mul(mul(x, 0.5), add(tanh(inner), 1));
}

/** Clamps `x` into `[min, max]` (gradient 1 inside, 0 outside). */
export const clamp = (x: Tensor, min: number, max: number): Tensor =>
  apply("Clip", [x, constant(min, [], x.dtype), constant(max, [], x.dtype)]);

/** `cond ? a : b`, broadcasting all three. */
export function where(cond: Tensor, a: Tensor | number, b: Tensor | number): Tensor {
  const like = (typeof a === "number" ? b : a) as Tensor;
  return apply("Where", [cond, lift(a, like), lift(b, like)]);
}

/** Batched matrix product with numpy broadcasting of batch dims. */
export const matmul = (a: Tensor, b: Tensor): Tensor => apply("MatMul", [a, b]);

/**
 * Permutes axes (default: swap the last two). A transpose of a transpose is one transpose of the
 * original (none when they cancel), so gradients of transposed weights move no weight-sized copy.
 */
export function transpose(x: Tensor, perm?: number[]): Tensor {
  const p = perm ??
    [...Array(x.rank).keys()].map((i) =>
      i === x.rank - 2 ? x.rank - 1 : i === x.rank - 1 ? x.rank - 2 : i
    );
  if (p.length !== x.rank || new Set(p.map((a) => normAxis(a, x.rank))).size !== x.rank) {
    throw new Error(`Transpose: perm [${p}] is not a permutation of ${x.rank} axes of ${x}`);
  }
  const axes = p.map((a) => normAxis(a, x.rank));
  if (x.op !== "Transpose") return apply("Transpose", [x], { perm: axes });
  const inner = x.attrs.perm as number[];
  const composed = axes.map((a) => inner[a]);
  return composed.every((a, i) => a === i)
    ? x.inputs[0]
    : apply("Transpose", [x.inputs[0]], { perm: composed });
}

/** Reshapes to `shape`; names resolve against `x`'s ancestry, one entry may be -1. */
export function reshape(x: Tensor, shape: Shape): Tensor {
  const known = shape.filter((d) => typeof d === "number" && d !== -1) as number[];
  const staticIn = x.shape.every((d) => typeof d === "number");
  let out: Dim[] = [...shape];
  if (shape.includes(-1)) {
    out = shape.map((d) => d === -1 ? inferredSize(x.shape, shape) : d);
  } else if (staticIn && known.length === shape.length) {
    const a = (x.shape as number[]).reduce((p, q) => p * q, 1);
    const b = known.reduce((p, q) => p * q, 1);
    if (a !== b) throw new Error(`Reshape: cannot reshape ${x} into [${shape}]`);
  }
  return apply("Reshape", [x, targetShape(x, shape, true)], {}, out);
}

/** The size standing for -1 in a reshape of `from` into `to`: a number, or a name like "B*T/2". */
function inferredSize(from: Shape, to: Shape): Dim {
  const rest = [...from];
  const extra: number[] = [];
  for (const d of to) {
    if (d === -1) continue;
    const i = rest.indexOf(d);
    if (i >= 0) rest.splice(i, 1);
    else if (typeof d === "number") extra.push(d);
    else throw new Error(`Reshape: size "${d}" of [${to}] cannot be combined with -1 here`);
  }
  const numbers = rest.filter((d) => typeof d === "number") as number[];
  const names = rest.filter((d) => typeof d === "string");
  const divisor = extra.reduce((a, b) => a * b, 1);
  const factor = numbers.reduce((a, b) => a * b, 1);
  if (names.length === 0) {
    if (factor % divisor !== 0) throw new Error(`Reshape: cannot reshape [${from}] into [${to}]`);
    return factor / divisor;
  }
  const scale = factor % divisor === 0 ? factor / divisor : factor;
  const name = [...(scale !== 1 ? [scale] : []), ...names].join("*");
  return factor % divisor === 0 ? name : `${name}/${divisor}`;
}

/** Broadcasts `x` to `shape` (names resolve against `x`'s ancestry). */
export function expand(x: Tensor, shape: Shape): Tensor {
  const probe = new Tensor("Input", [], {}, x.dtype, shape);
  const out = broadcastShapes("Expand", [x, probe]);
  return apply("Expand", [x, targetShape(x, shape, false)], {}, out);
}

/** Broadcasts `x` against the run-time shape of `like` (numpy rules, both ways). */
export const expandLike = (x: Tensor, like: Tensor): Tensor =>
  apply("Expand", [x, shapeOf(like)], {}, broadcastShapes("Expand", [x, like]));

/** Inserts size-1 axes at `axes` (positions in the result). */
export const unsqueeze = (x: Tensor, axes: number | number[]): Tensor =>
  apply("Unsqueeze", [x, ints([axes].flat())]);

/** Removes the size-1 axes `axes`. */
export const squeeze = (x: Tensor, axes: number | number[]): Tensor =>
  apply("Squeeze", [x, ints([axes].flat())]);

/** Joins tensors along `axis`. */
export function concat(xs: Tensor[], axis: number): Tensor {
  return apply("Concat", xs, { axis: normAxis(axis, xs[0].rank, "Concat") });
}

/** `x[start:end]` along `axis`, Python semantics (negative indices count from the end). */
export function slice(x: Tensor, axis: number, start: number, end?: number): Tensor {
  const a = normAxis(axis, x.rank, "Slice");
  const d = x.shape[a];
  let size: Dim;
  if (typeof d === "number") {
    const lo = clampIndex(start, d) as number;
    const hi = clampIndex(end ?? d, d) as number;
    size = Math.max(hi - lo, 0);
  } else if (start < 0 && end === undefined) {
    size = -start;
  } else if (start >= 0 && end !== undefined && end >= 0) {
    size = end - start;
  } else {
    size = `${d}${start > 0 ? `-${start}` : ""}${end !== undefined && end < 0 ? `-${-end}` : ""}`;
  }
  const shape = x.shape.map((s, i) => i === a ? size : s);
  return sliceRange(x, a, start, end ?? Number.MAX_SAFE_INTEGER, shape);
}

/** Picks entries of `data` along `axis` by integer `indices` (embedding lookup on axis 0). */
export const gather = (data: Tensor, indices: Tensor, axis = 0): Tensor =>
  apply("Gather", [data, indices], { axis: normAxis(axis, data.rank, "Gather") });

/**
 * `data` with `data[indices[i]] = updates[i]` (ONNX ScatterND on a vector): the inverse of
 * {@linkcode gather} on axis 0, e.g. per-row values put back at their places in a longer vector.
 *
 * @param data The vector (L).
 * @param indices Distinct positions (C), integers.
 * @param updates The values (C).
 * @returns The vector (L).
 * @example
 * ```ts
 * import { grad, input, scatterInto, zerosLike } from "./mod.ts";
 * const [base, v] = [input("base", [4]), input("v", [2])];
 * const y = scatterInto(zerosLike(base), input("at", [2], "int64"), v);
 * const [dv] = grad(y.mul(base).sum(), [v]);
 * if (`${y} ${dv}` !== "float32[4] float32[2]") throw new Error("unexpected");
 * ```
 */
export function scatterInto(data: Tensor, indices: Tensor, updates: Tensor): Tensor {
  if (data.rank !== 1 || indices.rank !== 1 || updates.rank !== 1) {
    throw new Error(`scatterInto: vectors only, not ${data}, ${indices}, ${updates}`);
  }
  return apply("ScatterND", [data, unsqueeze(cast(indices, "int64"), 1), updates], {}, data.shape);
}

/** numpy `take_along_axis` (ONNX GatherElements): `indices` has `data`'s rank. */
export const takeAlongAxis = (data: Tensor, indices: Tensor, axis: number): Tensor =>
  apply("GatherElements", [data, indices], { axis: normAxis(axis, data.rank) });

function axesOf(x: Tensor, axes?: number | number[]): number[] {
  return axes === undefined
    ? [...Array(x.rank).keys()]
    : [axes].flat().map((a) => normAxis(a, x.rank));
}

/** Sum over `axes` (default: all). */
export const sum = (x: Tensor, axes?: number | number[], keepDims = false): Tensor =>
  apply("ReduceSum", [x, ints(axesOf(x, axes))], { keepdims: keepDims ? 1 : 0 });

/** Sum of squares over `axes` (default: all), in one pass (no squared copy). */
export const sumSquares = (x: Tensor, axes?: number | number[], keepDims = false): Tensor =>
  apply("ReduceSumSquare", [x, ints(axesOf(x, axes))], { keepdims: keepDims ? 1 : 0 });

/** Maximum over `axes` (default: all). */
export const max = (x: Tensor, axes?: number | number[], keepDims = false): Tensor =>
  apply("ReduceMax", [x, ints(axesOf(x, axes))], { keepdims: keepDims ? 1 : 0 });

/** Number of elements over `axes`, as a scalar of `dtype` (static when possible). */
export function count(x: Tensor, axes?: number | number[], dtype: DType = x.dtype): Tensor {
  const sizes = axesOf(x, axes).map((a) => sizeOf(x, a));
  if (sizes.every((s) => typeof s === "number")) {
    return constant((sizes as number[]).reduce((a, b) => a * b, 1), [], dtype);
  }
  const n = apply("ReduceProd", [shapeVector(sizes), ints([0])], { keepdims: 0 }, []);
  return cast(n, dtype);
}

/** Mean over `axes` (default: all), divided in the sum's dtype (float32 for bfloat16 `x`). */
export function mean(x: Tensor, axes?: number | number[], keepDims = false): Tensor {
  const total = sum(x, axes, keepDims);
  return div(total, count(x, axes, total.dtype));
}

/** Softmax along `axis`. */
export const softmax = (x: Tensor, axis = -1): Tensor =>
  apply("Softmax", [x], { axis: normAxis(axis, x.rank) });

/** Log-softmax along `axis`, computed by onnxruntime with the log-sum-exp shift. */
export const logSoftmax = (x: Tensor, axis = -1): Tensor =>
  apply("LogSoftmax", [x], { axis: normAxis(axis, x.rank) });

/** `log Σ e^x` over `axes`, shifted by the (gradient-free) max for stability. */
export function logSumExp(x: Tensor, axes?: number | number[], keepDims = false): Tensor {
  const m = stopGradient(max(x, axes, true));
  const out = add(log(sum(exp(sub(x, m)), axes, true)), m);
  return keepDims ? out : squeeze(out, axesOf(x, axes));
}

/** Cumulative sum along `axis`. */
export const cumsum = (
  x: Tensor,
  axis: number,
  options: { exclusive?: boolean; reverse?: boolean } = {},
): Tensor =>
  apply("CumSum", [x, constant(normAxis(axis, x.rank), [], "int64")], {
    exclusive: options.exclusive ? 1 : 0,
    reverse: options.reverse ? 1 : 0,
  });

/** Converts to `dtype` (gradients flow back between float types). */
export function cast(x: Tensor, dtype: DType): Tensor {
  return x.dtype === dtype ? x : apply("Cast", [x], { to: ONNX_DTYPE[dtype] });
}

/** The same values; no gradient flows back through it. */
export const stopGradient = (x: Tensor): Tensor => apply("Identity", [x]);

/** Index of the maximum along `axis` (int64). */
export const argmax = (x: Tensor, axis = -1, keepDims = false): Tensor =>
  apply("ArgMax", [x], { axis: normAxis(axis, x.rank), keepdims: keepDims ? 1 : 0 });

/** Zeros shaped like `x` (at run time), of `x`'s dtype or `dtype`. */
export const zerosLike = (x: Tensor, dtype: DType = x.dtype): Tensor =>
  apply("ConstantOfShape", [shapeOf(x)], {
    value: { tensor: constant(0, [1], dtype).value! },
  }, x.shape);

/** `[0, 1, …, n-1]` where `n` is the size of `axis` of `like` (int64). */
export function arange(like: Tensor, axis: number): Tensor {
  const n = sizeOf(like, axis);
  const limit = typeof n === "number" ? constant(n, [], "int64") : squeeze(n, 0);
  return apply("Range", [constant(0, [], "int64"), limit, constant(1, [], "int64")], {}, [
    like.shape[normAxis(axis, like.rank)],
  ]);
}
