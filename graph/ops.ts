/**
 * The primitive table and the op functions built on it.
 *
 * Each primitive is one entry: its shape rule (`infer`) and its vector-Jacobian product (`vjp`),
 * written with the same ops, so the backward graph is ordinary graph nodes. A primitive is emitted
 * as the ONNX op of the same name (or `onnx`). Composites (mean, softmax-free log-sigmoid, SiLU,
 * GELU, log-sum-exp, RMSNorm-style expressions) are functions of primitives and need no VJP.
 * Adding an op means adding one entry here and, if it is user-facing, one function.
 *
 * Shapes: sizes are numbers or names of dynamic sizes. Broadcasting follows numpy; a named size
 * only broadcasts against 1 or the same name, so every gradient reduction is decided at build time.
 *
 * @module
 */
import {
  type Attrs,
  constant,
  type Dim,
  type DType,
  dtypeOfCode,
  ONNX_DTYPE,
  type Shape,
  Tensor,
} from "./tensor.ts";

/** Shape and dtype of a primitive's result. */
interface Inferred {
  dtype: DType;
  shape: Shape;
}

/** One primitive: how its result's shape is derived, and how gradients flow back through it. */
interface Primitive {
  /** ONNX op type when it differs from the primitive's name. */
  onnx?: string;
  /** Result dtype and shape; throws naming the op and the shapes on a mismatch. */
  infer(x: readonly Tensor[], attrs: Attrs, shapeHint?: Shape): Inferred;
  /** Gradients w.r.t. each input given the result's gradient `g` (null: none flows). */
  vjp?(g: Tensor, x: readonly Tensor[], y: Tensor): (Tensor | null)[];
  /** The result carries no gradient (comparisons, shapes, `stopGradient`). */
  noGrad?: true;
}

// ---------------------------------------------------------------- shape rules

function fail(op: string, x: readonly Tensor[], why: string): never {
  throw new Error(`${op}: ${why} (operands ${x.map(String).join(", ")})`);
}

function broadcastShapes(op: string, x: readonly Tensor[]): Shape {
  const rank = Math.max(...x.map((t) => t.rank));
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    let dim: Dim = 1;
    for (const t of x) {
      const d = t.shape[i - (rank - t.rank)] ?? 1;
      if (d === 1 || d === dim) continue;
      if (dim !== 1) fail(op, x, `sizes ${dim} and ${d} do not broadcast`);
      dim = d;
    }
    out.push(dim);
  }
  return out;
}

function sameDtype(op: string, x: readonly Tensor[]): DType {
  for (const t of x) if (t.dtype !== x[0].dtype) fail(op, x, "dtypes differ");
  return x[0].dtype;
}

const elementwise = (op: string) => (x: readonly Tensor[]): Inferred => ({
  dtype: sameDtype(op, x),
  shape: broadcastShapes(op, x),
});
const unary = (x: readonly Tensor[]): Inferred => ({ dtype: x[0].dtype, shape: x[0].shape });
const comparison = (op: string) => (x: readonly Tensor[]): Inferred => ({
  dtype: (sameDtype(op, x), "bool"),
  shape: broadcastShapes(op, x),
});
const hinted = (x: readonly Tensor[], _a: Attrs, hint?: Shape): Inferred => ({
  dtype: x[0].dtype,
  shape: hint!,
});

function normAxis(axis: number, rank: number, op = "axis"): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw new Error(`${op}: axis ${axis} is out of range for rank ${rank}`);
  return a;
}

/** The int64 values of a constant operand (axes, starts, ...). */
function constInts(t: Tensor): number[] {
  if (!t.value) throw new Error(`${t.op}: expected a constant operand`);
  return Array.from(t.value.data as BigInt64Array, Number);
}

function reduceInfer(x: readonly Tensor[], attrs: Attrs): Inferred {
  const axes = constInts(x[1]).map((a) => normAxis(a, x[0].rank));
  const keep = attrs.keepdims === 1;
  const shape = x[0].shape.flatMap((d, i) => axes.includes(i) ? (keep ? [1] : []) : [d]);
  return { dtype: x[0].dtype, shape };
}

function concatSize(dims: Dim[]): Dim {
  if (dims.every((d) => typeof d === "number")) {
    return (dims as number[]).reduce((a, b) => a + b, 0);
  }
  return dims.join("+");
}

// ---------------------------------------------------------------- gradient helpers

/** Sums `g` over the axes that broadcasting expanded, giving it `shape`. */
function sumTo(g: Tensor, shape: Shape): Tensor {
  const lead = g.rank - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < g.rank; i++) {
    if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
  }
  if (axes.length === 0) return g;
  const summed = apply("ReduceSum", [g, ints(axes)], { keepdims: 1 });
  return lead > 0 ? squeeze(summed, [...Array(lead).keys()]) : summed;
}

/** An int64 1-D constant. */
function ints(values: number[]): Tensor {
  return constant(values, [values.length], "int64");
}

const zerosLike = (x: Tensor): Tensor =>
  apply("ConstantOfShape", [shapeOf(x)], { value: { tensor: scalarHost(x.dtype, 0) } }, x.shape);

function scalarHost(dtype: DType, value: number) {
  return constant(value, [1], dtype).value!;
}

/** `where(cond, g, 0)`, the gradient mask of piecewise ops. */
const maskGrad = (cond: Tensor, g: Tensor): Tensor => where(cond, g, 0);

// ---------------------------------------------------------------- the primitive table

const PRIMITIVES: Record<string, Primitive> = {
  Add: {
    infer: elementwise("Add"),
    vjp: (g, [a, b]) => [sumTo(g, a.shape), sumTo(g, b.shape)],
  },
  Sub: {
    infer: elementwise("Sub"),
    vjp: (g, [a, b]) => [sumTo(g, a.shape), sumTo(neg(g), b.shape)],
  },
  Mul: {
    infer: elementwise("Mul"),
    vjp: (g, [a, b]) => [sumTo(mul(g, b), a.shape), sumTo(mul(g, a), b.shape)],
  },
  Div: {
    infer: elementwise("Div"),
    vjp: (g, [a, b], y) => [sumTo(div(g, b), a.shape), sumTo(neg(div(mul(g, y), b)), b.shape)],
  },
  Pow: {
    infer: elementwise("Pow"),
    vjp: (g, [a, b], y) => [
      sumTo(mul(g, mul(b, pow(a, sub(b, 1)))), a.shape),
      sumTo(mul(g, mul(y, log(a))), b.shape),
    ],
  },
  Max: {
    infer: elementwise("Max"),
    vjp: (g, [a, b]) => [
      sumTo(maskGrad(compare("GreaterOrEqual", a, b), g), a.shape),
      sumTo(maskGrad(compare("Less", a, b), g), b.shape),
    ],
  },
  Min: {
    infer: elementwise("Min"),
    vjp: (g, [a, b]) => [
      sumTo(maskGrad(compare("LessOrEqual", a, b), g), a.shape),
      sumTo(maskGrad(compare("Greater", a, b), g), b.shape),
    ],
  },
  Neg: { infer: unary, vjp: (g) => [neg(g)] },
  Exp: { infer: unary, vjp: (g, _x, y) => [mul(g, y)] },
  Log: { infer: unary, vjp: (g, [a]) => [div(g, a)] },
  Sqrt: { infer: unary, vjp: (g, _x, y) => [div(mul(g, 0.5), y)] },
  Reciprocal: { infer: unary, vjp: (g, _x, y) => [neg(mul(g, mul(y, y)))] },
  Abs: { infer: unary, vjp: (g, [a]) => [mul(g, apply("Sign", [a]))] },
  Sign: { infer: unary, noGrad: true },
  Tanh: { infer: unary, vjp: (g, _x, y) => [mul(g, sub(1, mul(y, y)))] },
  Sigmoid: { infer: unary, vjp: (g, _x, y) => [mul(g, mul(y, sub(1, y)))] },
  // Fed only x ≤ 40 by `softplus` below, where no EP's evaluation can overflow.
  Softplus: { infer: unary, vjp: (g, [a]) => [mul(g, sigmoid(a))] },
  Relu: { infer: unary, vjp: (g, [a]) => [maskGrad(compare("Greater", a, 0), g)] },
  Erf: {
    infer: unary,
    vjp: (g, [a]) => [mul(g, mul(exp(neg(mul(a, a))), 2 / Math.sqrt(Math.PI)))],
  },
  Sin: { infer: unary, vjp: (g, [a]) => [mul(g, apply("Cos", [a]))] },
  Cos: { infer: unary, vjp: (g, [a]) => [neg(mul(g, apply("Sin", [a])))] },
  Clip: {
    infer: unary,
    vjp: (g, [a, lo, hi]) => [
      maskGrad(apply("And", [compare("GreaterOrEqual", a, lo), compare("LessOrEqual", a, hi)]), g),
      null,
      null,
    ],
  },
  Where: {
    infer: (x) => {
      if (x[0].dtype !== "bool") fail("Where", x, "condition must be bool");
      return { dtype: sameDtype("Where", x.slice(1)), shape: broadcastShapes("Where", x) };
    },
    vjp: (g, [c, a, b]) => [
      null,
      sumTo(where(c, g, 0), a.shape),
      sumTo(where(c, 0, g), b.shape),
    ],
  },
  MatMul: {
    infer: (x) => {
      const [a, b] = x;
      if (a.rank < 2 || b.rank < 2) fail("MatMul", x, "operands must be at least 2-D");
      if (a.shape[a.rank - 1] !== b.shape[b.rank - 2]) fail("MatMul", x, "inner sizes differ");
      const batch = broadcastShapes("MatMul", [
        new Tensor("Input", [], {}, a.dtype, a.shape.slice(0, -2)),
        new Tensor("Input", [], {}, b.dtype, b.shape.slice(0, -2)),
      ]);
      return {
        dtype: sameDtype("MatMul", x),
        shape: [...batch, a.shape[a.rank - 2], b.shape[b.rank - 1]],
      };
    },
    vjp: (g, [a, b]) => [
      sumTo(matmul(g, transpose(b)), a.shape),
      sumTo(matmul(transpose(a), g), b.shape),
    ],
  },
  Transpose: {
    infer: ([a], attrs) => ({
      dtype: a.dtype,
      shape: (attrs.perm as number[]).map((p) => a.shape[p]),
    }),
    vjp: (g, _x, y) => {
      const perm = y.attrs.perm as number[];
      const inverse = perm.map((_, i) => perm.indexOf(i));
      return [transpose(g, inverse)];
    },
  },
  Reshape: { infer: hinted, vjp: (g, [a]) => [reshapeLike(g, a), null] },
  Expand: { infer: hinted, vjp: (g, [a]) => [sumTo(g, a.shape), null] },
  Squeeze: {
    infer: ([a, axes]) => {
      const drop = constInts(axes).map((ax) => normAxis(ax, a.rank, "Squeeze"));
      for (const ax of drop) {
        if (a.shape[ax] !== 1) fail("Squeeze", [a], `axis ${ax} has size ${a.shape[ax]}, not 1`);
      }
      return { dtype: a.dtype, shape: a.shape.filter((_, i) => !drop.includes(i)) };
    },
    vjp: (g, [_a, axes]) => [unsqueeze(g, constInts(axes)), null],
  },
  Unsqueeze: {
    infer: ([a, axes]) => {
      const rank = a.rank + (axes.shape[0] as number);
      const add = constInts(axes).map((ax) => normAxis(ax, rank, "Unsqueeze"));
      const shape: Dim[] = [];
      let src = 0;
      for (let i = 0; i < rank; i++) shape.push(add.includes(i) ? 1 : a.shape[src++]);
      return { dtype: a.dtype, shape };
    },
    vjp: (g, [_a, axes], y) => [
      squeeze(g, constInts(axes).map((ax) => normAxis(ax, y.rank))),
      null,
    ],
  },
  Concat: {
    infer: (x, attrs) => {
      const axis = attrs.axis as number;
      for (const t of x) {
        if (t.rank !== x[0].rank) fail("Concat", x, "ranks differ");
        t.shape.forEach((d, i) => {
          if (i !== axis && d !== x[0].shape[i]) fail("Concat", x, `sizes differ on axis ${i}`);
        });
      }
      const shape = [...x[0].shape];
      shape[axis] = concatSize(x.map((t) => t.shape[axis]));
      return { dtype: sameDtype("Concat", x), shape };
    },
    vjp: (g, x, y) => {
      const axis = y.attrs.axis as number;
      let start: Tensor | number = 0;
      return x.map((t) => {
        const end = addSizes(start, sizeOf(t, axis));
        const piece = sliceRange(g, axis, start, end, t.shape);
        start = end;
        return piece;
      });
    },
  },
  Slice: {
    infer: hinted,
    vjp: (g, [a, starts, ends, axes]) => {
      const axis = constInts(axes)[0];
      const size = sizeOf(a, axis);
      const begin = starts.value ? clampIndex(constInts(starts)[0], size) : starts;
      const end = ends.value ? clampIndex(constInts(ends)[0], size) : ends;
      const zeros = Array(a.rank).fill(0) as (Tensor | number)[];
      const before = [...zeros], after = [...zeros];
      before[axis] = begin;
      after[axis] = addSizes(size, negSize(end));
      return [apply("Pad", [g, shapeVector([...before, ...after])], {}, a.shape), null, null, null];
    },
  },
  Pad: { infer: hinted },
  Gather: {
    infer: ([data, idx], attrs) => {
      const axis = attrs.axis as number;
      if (idx.isFloat) fail("Gather", [data, idx], "indices must be integers");
      return {
        dtype: data.dtype,
        shape: [...data.shape.slice(0, axis), ...idx.shape, ...data.shape.slice(axis + 1)],
      };
    },
    vjp: (g, [data, idx], y) => {
      if (y.attrs.axis !== 0) throw new Error(`No VJP for op "Gather" on axis ${y.attrs.axis}`);
      const at = unsqueeze(cast(idx, "int64"), -1);
      const scatter = apply("ScatterND", [zerosLike(data), at, g], {
        reduction: "add",
      }, data.shape);
      return [scatter, null];
    },
  },
  GatherElements: {
    infer: ([data, idx]) => {
      if (data.rank !== idx.rank) fail("GatherElements", [data, idx], "ranks differ");
      return { dtype: data.dtype, shape: idx.shape };
    },
    vjp: (g, [data, idx], y) => [
      apply("ScatterElements", [zerosLike(data), idx, g], {
        axis: y.attrs.axis,
        reduction: "add",
      }, data.shape),
      null,
    ],
  },
  ScatterND: { infer: hinted },
  ScatterElements: { infer: hinted },
  ReduceSum: {
    infer: reduceInfer,
    vjp: (g, [a, axes], y) => {
      const kept = y.attrs.keepdims === 1 ? g : unsqueeze(g, constInts(axes));
      return [expandLike(kept, a), null];
    },
  },
  ReduceProd: { infer: reduceInfer, noGrad: true },
  ReduceMax: {
    infer: reduceInfer,
    vjp: (g, [a, axes], y) => {
      const keep = (t: Tensor) => y.attrs.keepdims === 1 ? t : unsqueeze(t, constInts(axes));
      // Ties share the gradient equally, as in PyTorch's amax.
      const hit = cast(compare("Equal", a, keep(y)), a.dtype);
      const count = apply("ReduceSum", [hit, axes], { keepdims: 1 });
      return [mul(hit, div(keep(g), count)), null];
    },
  },
  LogSoftmax: {
    infer: unary,
    vjp: (g, _x, y) => {
      const axis = y.attrs.axis as number;
      return [sub(g, mul(exp(y), sum(g, axis, true)))];
    },
  },
  Softmax: {
    infer: unary,
    vjp: (g, _x, y) => [mul(y, sub(g, sum(mul(g, y), y.attrs.axis as number, true)))],
  },
  CumSum: {
    infer: unary,
    vjp: (g, [_a, axis], y) => [
      apply("CumSum", [g, axis], {
        exclusive: y.attrs.exclusive,
        reverse: y.attrs.reverse === 1 ? 0 : 1,
      }),
      null,
    ],
  },
  Cast: {
    infer: ([a], attrs) => ({ dtype: dtypeOfCode(attrs.to as number), shape: a.shape }),
    vjp: (g, [a]) => [a.isFloat ? cast(g, a.dtype) : null],
  },
  Identity: { infer: unary, noGrad: true },
  Equal: { infer: comparison("Equal"), noGrad: true },
  Less: { infer: comparison("Less"), noGrad: true },
  LessOrEqual: { infer: comparison("LessOrEqual"), noGrad: true },
  Greater: { infer: comparison("Greater"), noGrad: true },
  GreaterOrEqual: { infer: comparison("GreaterOrEqual"), noGrad: true },
  And: { infer: comparison("And"), noGrad: true },
  Or: { infer: comparison("Or"), noGrad: true },
  Not: { infer: ([a]) => ({ dtype: "bool", shape: a.shape }), noGrad: true },
  IsNaN: { infer: ([a]) => ({ dtype: "bool", shape: a.shape }), noGrad: true },
  IsInf: { infer: ([a]) => ({ dtype: "bool", shape: a.shape }), noGrad: true },
  ArgMax: {
    infer: ([a], attrs) => ({
      dtype: "int64",
      shape: a.shape.flatMap((d, i) => i === attrs.axis ? (attrs.keepdims === 1 ? [1] : []) : [d]),
    }),
    noGrad: true,
  },
  Shape: {
    infer: ([a], attrs) => ({
      dtype: "int64",
      shape: [(attrs.end as number ?? a.rank) - (attrs.start as number ?? 0)],
    }),
    noGrad: true,
  },
  ConstantOfShape: {
    infer: (_x, attrs, hint) => ({
      dtype: (attrs.value as { tensor: { dtype: DType } }).tensor.dtype,
      shape: hint!,
    }),
    noGrad: true,
  },
  Range: { infer: hinted, noGrad: true },
};

/** The primitive record for `op` (the emitter and autodiff read it). */
export function primitive(op: string): Primitive {
  const p = PRIMITIVES[op];
  if (!p) throw new Error(`Unknown primitive "${op}"`);
  return p;
}

/** Names of all primitives (for documentation and tests). */
export const primitiveNames: readonly string[] = Object.keys(PRIMITIVES);

/** Builds a node of primitive `op`, checking shapes now. */
export function apply(op: string, x: Tensor[], attrs: Attrs = {}, shapeHint?: Shape): Tensor {
  const { dtype, shape } = primitive(op).infer(x, attrs, shapeHint);
  return new Tensor(op, x, attrs, dtype, shape);
}

// ---------------------------------------------------------------- runtime sizes

/** Size of `axis` of `t`: a number when static, else an int64 [1] tensor read at run time. */
export function sizeOf(t: Tensor, axis: number): Tensor | number {
  const a = normAxis(axis, t.rank);
  const d = t.shape[a];
  return typeof d === "number" ? d : apply("Shape", [t], { start: a, end: a + 1 });
}

/** The full runtime shape of `t` as an int64 vector. */
export function shapeOf(t: Tensor): Tensor {
  return t.shape.every((d) => typeof d === "number")
    ? ints(t.shape as number[])
    : apply("Shape", [t]);
}

function addSizes(a: Tensor | number, b: Tensor | number): Tensor | number {
  if (typeof a === "number" && typeof b === "number") return a + b;
  return apply("Add", [asSize(a), asSize(b)]);
}

function negSize(a: Tensor | number): Tensor | number {
  return typeof a === "number" ? -a : apply("Neg", [a]);
}

const asSize = (v: Tensor | number): Tensor => typeof v === "number" ? ints([v]) : v;

/** An int64 vector from static and runtime pieces. */
function shapeVector(dims: (Tensor | number)[]): Tensor {
  if (dims.every((d) => typeof d === "number")) return ints(dims as number[]);
  return apply("Concat", dims.map(asSize), { axis: 0 });
}

/** Python-style index normalisation and clamping, with a runtime size if need be. */
function clampIndex(i: number, size: Tensor | number): Tensor | number {
  if (typeof size === "number") return Math.min(Math.max(i < 0 ? i + size : i, 0), size);
  if (i >= 0) return apply("Min", [ints([i]), size]);
  return apply("Max", [apply("Add", [size, ints([i])]), ints([0])]);
}

/**
 * The runtime shape for a target that may name dynamic sizes. Names are looked up in the shapes of
 * `anchor` and its ancestors; at most one unresolved size becomes -1 (inferred by ONNX Reshape).
 */
function targetShape(anchor: Tensor, target: Shape, allowInfer: boolean): Tensor {
  let inferred = false;
  const dims = target.map((d): Tensor | number => {
    if (typeof d === "number") {
      if (d === -1) {
        if (!allowInfer || inferred) throw new Error(`Shape [${target}] has more than one -1`);
        inferred = true;
      }
      return d;
    }
    const found = findDim(anchor, d);
    if (found) return found;
    if (!allowInfer || inferred) {
      throw new Error(`Size "${d}" of [${target}] is not a size of ${anchor} or its inputs`);
    }
    inferred = true;
    return -1;
  });
  return shapeVector(dims);
}

function findDim(anchor: Tensor, name: string): Tensor | null {
  const seen = new Set<number>();
  const stack = [anchor];
  while (stack.length) {
    const t = stack.pop()!;
    if (seen.has(t.id)) continue;
    seen.add(t.id);
    const axis = t.shape.indexOf(name);
    if (axis >= 0) return sizeOf(t, axis) as Tensor;
    stack.push(...t.inputs);
  }
  return null;
}

// ---------------------------------------------------------------- op functions

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

/** Permutes axes (default: swap the last two). */
export function transpose(x: Tensor, perm?: number[]): Tensor {
  const p = perm ??
    [...Array(x.rank).keys()].map((i) =>
      i === x.rank - 2 ? x.rank - 1 : i === x.rank - 1 ? x.rank - 2 : i
    );
  if (p.length !== x.rank || new Set(p.map((a) => normAxis(a, x.rank))).size !== x.rank) {
    throw new Error(`Transpose: perm [${p}] is not a permutation of ${x.rank} axes of ${x}`);
  }
  return apply("Transpose", [x], { perm: p.map((a) => normAxis(a, x.rank)) });
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

/** Reshapes `g` to the runtime shape of `like`. */
function reshapeLike(g: Tensor, like: Tensor): Tensor {
  return apply("Reshape", [g, shapeOf(like)], {}, like.shape);
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

function sliceRange(
  x: Tensor,
  axis: number,
  start: Tensor | number,
  end: Tensor | number,
  shape: Shape,
): Tensor {
  return apply("Slice", [x, asSize(start), asSize(end), ints([axis])], {}, shape);
}

/** Picks entries of `data` along `axis` by integer `indices` (embedding lookup on axis 0). */
export const gather = (data: Tensor, indices: Tensor, axis = 0): Tensor =>
  apply("Gather", [data, indices], { axis: normAxis(axis, data.rank, "Gather") });

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

/** Maximum over `axes` (default: all). */
export const max = (x: Tensor, axes?: number | number[], keepDims = false): Tensor =>
  apply("ReduceMax", [x, ints(axesOf(x, axes))], { keepdims: keepDims ? 1 : 0 });

/** Number of elements over `axes`, as a scalar of `x`'s dtype (static when possible). */
export function count(x: Tensor, axes?: number | number[]): Tensor {
  const sizes = axesOf(x, axes).map((a) => sizeOf(x, a));
  if (sizes.every((s) => typeof s === "number")) {
    return constant((sizes as number[]).reduce((a, b) => a * b, 1), [], x.dtype);
  }
  const n = apply("ReduceProd", [shapeVector(sizes), ints([0])], { keepdims: 0 }, []);
  return cast(n, x.dtype);
}

/** Mean over `axes` (default: all). */
export const mean = (x: Tensor, axes?: number | number[], keepDims = false): Tensor =>
  div(sum(x, axes, keepDims), count(x, axes));

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

/** Zeros shaped like `x` (at run time). */
export { zerosLike };

/** `[0, 1, …, n-1]` where `n` is the size of `axis` of `like` (int64). */
export function arange(like: Tensor, axis: number): Tensor {
  const n = sizeOf(like, axis);
  const limit = typeof n === "number" ? constant(n, [], "int64") : squeeze(n, 0);
  return apply("Range", [constant(0, [], "int64"), limit, constant(1, [], "int64")], {}, [
    like.shape[normAxis(axis, like.rank)],
  ]);
}
