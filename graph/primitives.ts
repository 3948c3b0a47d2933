/**
 * The primitive table: each primitive is one entry holding its shape rule (`infer`) and its
 * vector-Jacobian product (`vjp`), written with the ops of `ops.ts`, so the backward graph is
 * ordinary graph nodes. A primitive is emitted as the ONNX op of the same name (or `onnx`).
 * Adding an op means adding one entry here, its rule in the precision table beside it
 * (`precision.ts`: which dtype it computes in under bf16 mixed precision) and, if it is
 * user-facing, one function in `ops.ts`.
 *
 * Shapes: sizes are numbers or names of dynamic sizes. Broadcasting follows numpy; a named size
 * only broadcasts against 1 or the same name, so every gradient reduction is decided at build time.
 *
 * @module
 */
import {
  cast,
  compare,
  div,
  exp,
  expandLike,
  log,
  matmul,
  mul,
  neg,
  pow,
  sigmoid,
  squeeze,
  sub,
  sum,
  transpose,
  unsqueeze,
  where,
  zerosLike,
} from "./ops.ts";
import {
  addSizes,
  clampIndex,
  ints,
  negSize,
  reshapeLike,
  shapeVector,
  sizeOf,
  sliceRange,
} from "./_sizes.ts";
import { autocast } from "./precision.ts";
import { type Attrs, type Dim, type DType, dtypeOfCode, type Shape, Tensor } from "./tensor.ts";

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
  /** Only the first `arity` operands are ONNX inputs (the rest only steer the gradient). */
  arity?: number;
}

/**
 * How the gradient of each `Checkpoint` node is computed: the recomputation `checkpoint()`
 * (graph/checkpoint.ts) registered for it.
 */
export const recomputations: WeakMap<Tensor, (g: Tensor) => (Tensor | null)[]> = new WeakMap();

// ---------------------------------------------------------------- shape rules

function fail(op: string, x: readonly Tensor[], why: string): never {
  throw new Error(`${op}: ${why} (operands ${x.map(String).join(", ")})`);
}

export function broadcastShapes(op: string, x: readonly Tensor[]): Shape {
  const rank = x.reduce((r, t) => Math.max(r, t.rank), 0);
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

export function normAxis(axis: number, rank: number, op = "axis"): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw new Error(`${op}: axis ${axis} is out of range for rank ${rank}`);
  return a;
}

/** The int64 values of a constant operand (axes, starts, ...). */
export function constInts(t: Tensor): number[] {
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
      // The gradient of a transposed weight, x @ Wᵀ, arrives as the product (xᵀ g): its transpose
      // is gᵀ x, a product of activation transposes that onnxruntime folds into the matmul, not a
      // weight-sized Transpose each step.
      const swapsLastTwo = inverse.every((a, i) =>
        i < perm.length - 2 ? a === i : a === (i === perm.length - 1 ? i - 1 : i + 1)
      );
      if (g.op === "MatMul" && g.rank === perm.length && swapsLastTwo) {
        const [a, b] = g.inputs;
        return [matmul(transpose(b), transpose(a))];
      }
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
  ScatterND: {
    infer: hinted,
    // Vectors only (what `scatterInto` and Gather's VJP make): indices (C,1) into data (L).
    vjp: (g, [data, at, updates], y) => {
      if (data.rank !== 1) throw new Error(`No VJP for op "ScatterND" on ${data}`);
      const picked = apply("Gather", [g, squeeze(at, -1)], { axis: 0 });
      // Added updates leave data's gradient whole; replacing ones cut it where they land.
      const kept = y.attrs.reduction === "add"
        ? g
        : apply("ScatterND", [g, at, zerosLike(updates)], {}, data.shape);
      return [kept, null, picked];
    },
  },
  ScatterElements: { infer: hinted },
  ReduceSum: {
    infer: reduceInfer,
    vjp: (g, [a, axes], y) => {
      const kept = y.attrs.keepdims === 1 ? g : unsqueeze(g, constInts(axes));
      return [expandLike(kept, a), null];
    },
  },
  ReduceSumSquare: {
    infer: reduceInfer,
    vjp: (g, [a, axes], y) => {
      const kept = y.attrs.keepdims === 1 ? g : unsqueeze(g, constInts(axes));
      return [mul(expandLike(kept, a), mul(a, 2)), null];
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
  // Operands [y, x, ...leaves]: the value is y = f(x) computed without keeping its
  // activations for the backward; the gradient recomputes f (see graph/checkpoint.ts).
  Checkpoint: {
    onnx: "Identity",
    arity: 1,
    infer: unary,
    vjp: (g, _x, y) => [null, ...recomputations.get(y)!(g)],
  },
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

/**
 * Builds a node of primitive `op`, checking shapes now. Its operands are first cast as the
 * precision table says (graph/precision.ts; the identity on float32 graphs).
 */
export function apply(op: string, x: Tensor[], attrs: Attrs = {}, shapeHint?: Shape): Tensor {
  const operands = autocast(op, x);
  const { dtype, shape } = primitive(op).infer(operands, attrs, shapeHint);
  return new Tensor(op, operands, attrs, dtype, shape);
}
