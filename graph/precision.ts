/**
 * Mixed precision as a compiler rule: which dtype each primitive computes in when a graph is
 * built under `withPrecision("bfloat16", …)` (TRL's `bf16: true`, i.e. PyTorch's autocast to
 * bfloat16 with float32 master weights; Micikevicius et al. 2018, arXiv 1710.03740).
 *
 * One table beside `PRIMITIVES` gives each primitive one rule, applied by `apply` to its operands:
 * - `low`: matrix products. Float operands are cast to bfloat16 (a weight once per graph, before
 *   its transpose), so the product runs on bf16 tensor cores with float32 accumulation.
 * - `float32`: statistics and every op without a CUDA bfloat16 kernel in onnxruntime 1.29/1.30
 *   (runtime/cuda_kernels.ts): bfloat16 operands are widened first. Reductions (norm statistics,
 *   sums, the gradient norm), log, log-softmax and the loss come out float32.
 * - `follow`: cheap elementwise and layout ops compute in their operands' dtype; bfloat16 operands
 *   meeting float32 ones are widened (a bf16 branch joining the float32 residual stream gives
 *   float32, as PyTorch's type promotion does). Other mismatches stay errors.
 * - `keep`: operands are left alone (`Cast` itself, and `Checkpoint`, whose operands only steer
 *   the gradient).
 *
 * Outside a `low` op nothing narrows, so whatever reads only float32 tensors (AdamW, the master
 * weights, gradient buffers, a float32 graph) is untouched: the rule is the identity there. The
 * backward needs no mode: each VJP sees its forward's operand dtypes, and `grad` casts every
 * gradient to its tensor's dtype, so a weight's gradient comes back float32 through its Cast.
 *
 * @module
 */
import { cast, transpose } from "./ops.ts";
import type { Tensor } from "./tensor.ts";

/** The dtype matrix products compute in while a graph is built. */
export type Precision = "float32" | "bfloat16";

/** How one primitive treats its float operands under mixed precision (see the module doc). */
export type PrecisionRule = "low" | "float32" | "follow" | "keep";

/** The rule of every primitive. */
export const PRECISION: Readonly<Record<string, PrecisionRule>> = {
  MatMul: "low",
  // Statistics: summed in float32 whatever their operands (a norm's mean of squares, the loss).
  ReduceSum: "float32",
  ReduceSumSquare: "float32",
  ReduceProd: "float32",
  ReduceMax: "float32",
  LogSoftmax: "float32",
  CumSum: "float32",
  // No CUDA bfloat16 kernel at opset 18.
  Log: "float32",
  Reciprocal: "float32",
  Softplus: "float32",
  Sin: "float32",
  Cos: "float32",
  Clip: "float32",
  Pad: "float32",
  Equal: "float32",
  Less: "float32",
  LessOrEqual: "float32",
  Greater: "float32",
  GreaterOrEqual: "float32",
  IsInf: "float32",
  ArgMax: "float32",
  // bfloat16 kernels (Softmax's accumulates its max and sum in float32 on CUDA).
  Add: "follow",
  Sub: "follow",
  Mul: "follow",
  Div: "follow",
  Pow: "follow",
  Max: "follow",
  Min: "follow",
  Neg: "follow",
  Exp: "follow",
  Sqrt: "follow",
  Abs: "follow",
  Sign: "follow",
  Tanh: "follow",
  Sigmoid: "follow",
  Relu: "follow",
  Erf: "follow",
  Where: "follow",
  Softmax: "follow",
  IsNaN: "follow",
  Transpose: "follow",
  Reshape: "follow",
  Expand: "follow",
  Squeeze: "follow",
  Unsqueeze: "follow",
  Concat: "follow",
  Slice: "follow",
  Gather: "follow",
  GatherElements: "follow",
  ScatterND: "follow",
  ScatterElements: "follow",
  Identity: "follow",
  Shape: "follow",
  ConstantOfShape: "follow",
  Range: "follow",
  And: "follow",
  Or: "follow",
  Not: "follow",
  Cast: "keep",
  Checkpoint: "keep",
};

let active: Precision = "float32";

/**
 * Builds a graph with matrix products in `precision` (see the module doc).
 *
 * @param precision `bfloat16` for mixed precision; `float32` builds the plain graph.
 * @param build Builds the graph (synchronously).
 * @returns What `build` returns.
 * @example
 * ```ts
 * import { input, withPrecision } from "./mod.ts";
 * const x = input("x", [2, 3]);
 * const w = input("w", [3, 4]);
 * const y = withPrecision("bfloat16", () => x.matmul(w));
 * if (y.toString() !== "bfloat16[2,4]") throw new Error("unexpected");
 * if (y.sum().toString() !== "float32[]") throw new Error("sums are float32");
 * ```
 */
export function withPrecision<T>(precision: Precision, build: () => T): T {
  const outer = active;
  active = precision;
  try {
    return build();
  } finally {
    active = outer;
  }
}

/** The precision graphs are being built in (`checkpoint` rebuilds its block in the same one). */
export function currentPrecision(): Precision {
  return active;
}

/**
 * The operands `op` computes on under its rule: cast where the rule says, unchanged otherwise.
 *
 * @param op Primitive name.
 * @param x Its operands.
 * @returns The operands to build the node from.
 */
export function autocast(op: string, x: Tensor[]): Tensor[] {
  const rule = PRECISION[op];
  if (!rule) throw new Error(`No precision rule for op "${op}": add it to PRECISION`);
  if (rule === "keep") return x;
  if (rule === "low" && active === "bfloat16") return x.map((t) => t.isFloat ? narrowed(t) : t);
  const floats = x.filter((t) => t.isFloat);
  const widen = floats.some((t) => t.dtype === "bfloat16") &&
    (rule === "float32" || floats.some((t) => t.dtype !== "bfloat16"));
  return widen ? x.map((t) => t.dtype === "bfloat16" ? cast(t, "float32") : t) : x;
}

/** bfloat16 copies of weights, so each is cast once per graph however many matmuls read it. */
const narrowedWeights = new WeakMap<Tensor, Tensor>();

/**
 * `t` as bfloat16: a widened bf16 tensor is taken back as it was, a transpose is done after the
 * cast (half the bytes moved), and a weight (a graph leaf, or one op on leaves) is cast once.
 */
function narrowed(t: Tensor): Tensor {
  if (t.dtype === "bfloat16") return t;
  if (t.op === "Cast" && t.inputs[0].dtype === "bfloat16") return t.inputs[0];
  const weight = t.inputs.every((i) => i.inputs.length === 0);
  const memo = weight ? narrowedWeights.get(t) : undefined;
  if (memo) return memo;
  const out = t.op === "Transpose"
    ? transpose(narrowed(t.inputs[0]), t.attrs.perm as number[])
    : cast(t, "bfloat16");
  if (weight) narrowedWeights.set(t, out);
  return out;
}
