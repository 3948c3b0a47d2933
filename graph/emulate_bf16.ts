/**
 * bfloat16 on providers without bfloat16 arithmetic (onnxruntime's CPU provider): the same graph
 * in float32, rounded to bfloat16 wherever the original holds a bfloat16 tensor.
 *
 * Rounding is a cast pair, `Cast(Cast(x, bfloat16), float32)`: round to nearest even, then widen
 * exactly. onnxruntime 1.30 keeps such pairs (it treats a float32 → 16-bit cast as lossy; the
 * test in tests/graph/precision_test.ts checks it on every run). A bfloat16 op becomes its float32
 * op on the rounded operands, then a rounding of its result: what a CUDA bfloat16 kernel computes
 * (float32 arithmetic inside, one rounding on the way out). Ops that only move or select values
 * (reshapes, slices, gathers, `Where`, …) need no rounding of their own.
 *
 * @module
 */
import { bf16ToF32 } from "./_bf16.ts";
import { reachable } from "./onnx.ts";
import { type Attrs, type DType, type HostTensor, ONNX_DTYPE, Tensor } from "./tensor.ts";

/** Ops whose results are some of their operands' values (rounded operands stay rounded). */
const MOVES_VALUES = new Set([
  "Reshape",
  "Transpose",
  "Squeeze",
  "Unsqueeze",
  "Slice",
  "Concat",
  "Expand",
  "Gather",
  "GatherElements",
  "Identity",
  "Checkpoint",
  "Where",
  "Pad",
  "Neg",
  "Abs",
  "Max",
  "Min",
  "Relu",
]);

/**
 * The float32 emulation of a graph that computes in bfloat16 (unchanged when none does).
 *
 * @param outputs Named result tensors.
 * @returns The same outputs computed in float32 with bfloat16 rounding.
 * @example
 * ```ts
 * import { emulateBf16, input, withPrecision } from "./mod.ts";
 * const x = input("x", [2, 2]);
 * const { y } = emulateBf16({ y: withPrecision("bfloat16", () => x.matmul(x)).cast("float32") });
 * if (y.dtype !== "float32" || y.op !== "Cast") throw new Error("a rounded float32 product");
 * ```
 */
export function emulateBf16(outputs: Record<string, Tensor>): Record<string, Tensor> {
  const nodes = reachable(Object.values(outputs));
  if (!nodes.some((t) => t.dtype === "bfloat16" && t.inputs.length > 0)) return outputs;
  const mapped = new Map<number, Tensor>();
  for (const t of nodes) mapped.set(t.id, emulated(t, t.inputs.map((x) => mapped.get(x.id)!)));
  return Object.fromEntries(Object.entries(outputs).map(([k, t]) => [k, mapped.get(t.id)!]));
}

/** `t` in float32 given its operands' emulations. */
function emulated(t: Tensor, inputs: Tensor[]): Tensor {
  if (t.inputs.length === 0) {
    if (t.dtype !== "bfloat16") return t;
    // A small constant is widened here; weights (inputs, file-backed constants) in the graph.
    return t.value ? widenedConstant(t.value) : castTo(t, "float32");
  }
  if (t.op === "Cast" && t.dtype === "bfloat16") return rounded(inputs[0]);
  if (t.op === "Cast" && t.inputs[0].dtype === "bfloat16") {
    return inputs[0].dtype === t.dtype ? inputs[0] : castTo(inputs[0], t.dtype);
  }
  const dtype = t.dtype === "bfloat16" ? "float32" : t.dtype;
  const attrs = widenedAttrs(t.attrs);
  const same = dtype === t.dtype && attrs === t.attrs && inputs.every((x, i) => x === t.inputs[i]);
  if (same) return t;
  const node = new Tensor(t.op, inputs, attrs, dtype, t.shape);
  return t.dtype === "bfloat16" && !MOVES_VALUES.has(t.op) ? rounded(node) : node;
}

/** float32 `x` rounded to the nearest bfloat16 value. */
const rounded = (x: Tensor): Tensor => castTo(castTo(x, "bfloat16"), "float32");

function castTo(x: Tensor, dtype: DType): Tensor {
  return new Tensor("Cast", [x], { to: ONNX_DTYPE[dtype] }, dtype, x.shape);
}

function widenedConstant(value: HostTensor): Tensor {
  const data = bf16ToF32(value.data as Uint16Array);
  const wide = { dtype: "float32" as const, shape: value.shape, data };
  return new Tensor("Const", [], {}, "float32", value.shape, undefined, wide);
}

/** `attrs` with a bfloat16 tensor attribute (ConstantOfShape's value) widened. */
function widenedAttrs(attrs: Attrs): Attrs {
  const value = attrs.value;
  if (typeof value !== "object" || !("tensor" in value) || value.tensor.dtype !== "bfloat16") {
    return attrs;
  }
  const data = bf16ToF32(value.tensor.data as Uint16Array);
  return { ...attrs, value: { tensor: { ...value.tensor, dtype: "float32", data } } };
}
