/**
 * Direct-alignment training (DPO and its family) for Hugging Face causal LMs, in Deno on
 * onnxruntime-node.
 *
 * The engine (`graph/`) compiles a whole train step — forward, loss, backward, optimizer — into
 * one ONNX model: write a loss as tensor expressions, get gradients by reverse-mode autodiff.
 *
 * ```ts
 * import { grad, input, Program } from "./mod.ts";
 * const w = input("w", [2]);
 * const [dw] = grad(w.mul(w).sum(), [w]);
 * const out = await (await Program.compile({ dw })).run({
 *   w: { dtype: "float32", shape: [2], data: new Float32Array([1, -2]) },
 * });
 * if (out.dw.data[1] !== -4) throw new Error("unexpected");
 * ```
 *
 * @module
 */
export * from "./graph/mod.ts";
export * from "./runtime/mod.ts";
export {
  type Algorithm,
  algorithm,
  ALGORITHMS,
  evaluateLoss,
  type Hyperparameters,
  type LossOutput,
  requiredInputs,
  resolveHyperparameters,
} from "./algorithms/mod.ts";
