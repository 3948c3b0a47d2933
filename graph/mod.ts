/**
 * The train-step compiler: symbolic tensors, reverse-mode autodiff, in-graph optimizers and ONNX
 * emission (runtime/ runs what it emits). Knows nothing about language models.
 *
 * ```ts
 * import { grad, input } from "./mod.ts";
 * import { Program } from "../runtime/mod.ts";
 * const w = input("w", [3]);
 * const loss = w.mul(w).sum();
 * const [dw] = grad(loss, [w]);
 * const p = await Program.compile({ loss, dw });
 * const out = await p.run({ w: { dtype: "float32", shape: [3], data: new Float32Array([1, 2, 3]) } });
 * if (out.dw.data[2] !== 6) throw new Error("unexpected");
 * ```
 *
 * @module
 */
export * from "./tensor.ts";
export * from "./ops.ts";
export { apply, primitive, primitiveNames } from "./primitives.ts";
export * from "./autodiff.ts";
export * from "./checkpoint.ts";
export { currentPrecision, type Precision, withPrecision } from "./precision.ts";
export * from "./onnx.ts";
export { emulateBf16 } from "./emulate_bf16.ts";
export * from "./linear_log_softmax.ts";
export * from "./optim.ts";
