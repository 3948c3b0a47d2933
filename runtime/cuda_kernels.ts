/**
 * Which float dtypes onnxruntime's CUDA execution provider has kernels for, per op this compiler
 * emits (opset 18), and a check of an emitted graph against them, run on the CPU.
 *
 * Source: onnxruntime's generated kernel registry, docs/OperatorKernels.md, section
 * "Operators implemented by CUDAExecutionProvider" (github.com/microsoft/onnxruntime, file at
 * commit 001d12d2623fd411ce0f83d05abb5e82304a3389), the type constraint of each op's float
 * operand for the opset range holding 18. F = float32, D = float64, H = float16, B = bfloat16.
 * Ops with no float operand (And, Or, Not) are not listed; Cast takes every float dtype.
 *
 * @module
 */
import { primitive } from "../graph/primitives.ts";
import { reachable } from "../graph/onnx.ts";
import type { DType, Tensor } from "../graph/tensor.ts";

const BDFH: readonly DType[] = ["bfloat16", "float64", "float32", "float16"];
const DFH: readonly DType[] = ["float64", "float32", "float16"];

/** Float dtypes with a CUDA kernel, by ONNX op type (opset 18). */
export const CUDA_FLOAT_KERNELS: Readonly<Record<string, readonly DType[]>> = {
  Abs: BDFH,
  Add: BDFH,
  Sub: BDFH,
  Mul: BDFH,
  Div: BDFH,
  Pow: BDFH,
  Max: BDFH,
  Min: BDFH,
  Neg: BDFH,
  Exp: BDFH,
  Sqrt: BDFH,
  Sign: BDFH,
  Tanh: BDFH,
  Sigmoid: BDFH,
  Relu: BDFH,
  Erf: BDFH,
  Where: BDFH,
  MatMul: BDFH,
  FusedMatMul: BDFH,
  Softmax: BDFH,
  ReduceSum: BDFH,
  IsNaN: BDFH,
  Cast: BDFH,
  Identity: BDFH,
  Transpose: BDFH,
  Reshape: BDFH,
  Expand: BDFH,
  Squeeze: BDFH,
  Unsqueeze: BDFH,
  Concat: BDFH,
  Slice: BDFH,
  Gather: BDFH,
  GatherElements: BDFH,
  ScatterND: BDFH,
  ScatterElements: BDFH,
  Shape: BDFH,
  ConstantOfShape: BDFH,
  Log: DFH,
  LogSoftmax: DFH,
  Reciprocal: DFH,
  Softplus: DFH,
  Sin: DFH,
  Cos: DFH,
  Clip: DFH,
  Pad: DFH,
  CumSum: DFH,
  ReduceMax: DFH,
  ReduceSumSquare: DFH,
  ReduceProd: DFH,
  ArgMax: DFH,
  Equal: DFH,
  Less: DFH,
  LessOrEqual: DFH,
  Greater: DFH,
  GreaterOrEqual: DFH,
  IsInf: ["float64", "float32"],
  Range: ["float64", "float32"],
};

/**
 * The nodes of a graph that the CUDA provider has no kernel for, one line each.
 *
 * @param outputs Named result tensors of the graph.
 * @param kernels Float dtypes per op type (the CUDA table unless testing the check itself).
 * @returns `"<op> on <dtype> (node <shape>)"` per node without a kernel; empty when all have one.
 * @example
 * ```ts
 * import { input, withPrecision } from "../graph/mod.ts";
 * import { missingCudaKernels } from "./cuda_kernels.ts";
 * const x = input("x", [2, 2]);
 * const y = withPrecision("bfloat16", () => x.matmul(x).exp().sum());
 * if (missingCudaKernels({ y }).length !== 0) throw new Error("all have bf16 kernels");
 * ```
 */
export function missingCudaKernels(
  outputs: Record<string, Tensor>,
  kernels: Readonly<Record<string, readonly DType[]>> = CUDA_FLOAT_KERNELS,
): string[] {
  const missing: string[] = [];
  for (const t of reachable(Object.values(outputs))) {
    if (t.inputs.length === 0) continue;
    const op = primitive(t.op).onnx ?? t.op;
    const operand = t.inputs.find((x) => x.isFloat) ?? (t.isFloat ? t : undefined);
    if (!operand) continue;
    if (!kernels[op]?.includes(operand.dtype)) missing.push(`${op} on ${operand.dtype} (${t})`);
  }
  return missing;
}
