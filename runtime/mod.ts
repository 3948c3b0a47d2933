/**
 * The runtime: running emitted graphs on cpu, cuda or webgpu through one {@linkcode Program}
 * interface (native onnxruntime through Deno FFI, or onnxruntime-node's JS session for WebGPU), and
 * the train step whose parameters and optimizer state live in runtime memory, updated in place.
 *
 * ```ts
 * import { grad, input } from "../graph/mod.ts";
 * import { Program } from "./mod.ts";
 * const w = input("w", [3]);
 * const [dw] = grad(w.mul(w).sum(), [w]);
 * const p = await Program.compile({ dw });
 * const out = await p.run({ w: { dtype: "float32", shape: [3], data: new Float32Array([1, 2, 3]) } });
 * if (out.dw.data[2] !== 6) throw new Error("unexpected");
 * await p.release();
 * ```
 *
 * @module
 */
export * from "./program.ts";
export * from "./train_step.ts";
export { inPlaceSafe } from "./in_place.ts";
