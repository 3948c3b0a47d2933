/**
 * Every node of the bf16 train step has a CUDA kernel for its operands' dtype (checked on the
 * CPU against onnxruntime's kernel table), and the check catches a node that has none.
 */
import assert from "node:assert/strict";
import { grad, input, type StoredTensor, Tensor, withPrecision } from "../../graph/mod.ts";
import { sqrt, sumSquares } from "../../graph/ops.ts";
import { algorithm } from "../../algorithms/mod.ts";
import { parseConfig } from "../../model/config.ts";
import { LINEAR_MODULES } from "../../model/lora.ts";
import { weightShapes } from "../../model/weights.ts";
import { CUDA_FLOAT_KERNELS, missingCudaKernels } from "../../runtime/cuda_kernels.ts";
import { buildStepGraph } from "../../trainer/step_graph.ts";
import type { CausalLMOptions } from "../../model/decoder.ts";
import { PRESETS } from "../../bench/presets.ts";

/** The gradient graph's outputs as TrainStep builds them: loss, metrics, norm, gradients. */
function gradientOutputs(preset: string, model: CausalLMOptions): Record<string, Tensor> {
  const dpo = algorithm("dpo");
  const config = parseConfig(PRESETS[preset]);
  const graph = buildStepGraph(config, {
    algorithm: dpo,
    hp: dpo.defaults,
    kind: "paired",
    model: { precision: "bfloat16", ...model },
  });
  const grads = grad(graph.loss, graph.model.params);
  const norm = sqrt(grads.map((g) => sumSquares(g)).reduce((a, b) => a.add(b)));
  const outputs: Record<string, Tensor> = { loss: graph.loss, ...graph.metrics, grad_norm: norm };
  grads.forEach((g, i) => outputs[`${graph.model.params[i].name}::grad`] = g);
  return outputs;
}

/** A frozen bf16 base that is never read (the graph only points at it). */
function storedBase(preset: string): Record<string, StoredTensor> {
  const shapes = weightShapes(parseConfig(PRESETS[preset]));
  return Object.fromEntries(
    Object.entries(shapes).map(([name, shape]) => [name, {
      dtype: "bfloat16",
      shape,
      file: "/nonexistent/model.safetensors",
      offset: 0,
      length: shape.reduce((a, b) => a * b, 2),
    }]),
  );
}

Deno.test("missingCudaKernels() finds a kernel for every node of the SmolLM2-135M bf16 step", () => {
  assert.deepEqual(missingCudaKernels(gradientOutputs("smollm2-135m", {})), []);
  const recomputed = gradientOutputs("smollm2-135m", { gradientCheckpointing: true });
  assert.deepEqual(missingCudaKernels(recomputed), []);
});

Deno.test("missingCudaKernels() finds a kernel for every node of the OLMo-2-1B bf16 step", () => {
  assert.deepEqual(missingCudaKernels(gradientOutputs("olmo2-1b", {})), []);
  const lora = {
    frozen: storedBase("olmo2-1b"),
    lora: { r: 16, alpha: 32, dropout: 0.05, targetModules: [...LINEAR_MODULES] },
  };
  const seeded = { ...lora, lora: { ...lora.lora, dropoutSeed: input("seed", []) } };
  assert.deepEqual(missingCudaKernels(gradientOutputs("olmo2-1b", seeded)), []);
});

Deno.test("missingCudaKernels() reports a node forced to bf16 that has no CUDA bf16 kernel", () => {
  const x = input("x", [4, 4]);
  const h = withPrecision("bfloat16", () => x.matmul(x)); // bf16
  // Log has no CUDA bf16 kernel; the precision table would widen its operand, so force it.
  const forced = new Tensor("Log", [h], {}, "bfloat16", h.shape);
  const missing = missingCudaKernels({ y: forced.cast("float32").sum() });
  assert.deepEqual(missing, ["Log on bfloat16 (bfloat16[4,4])"]);
  // The same check passes once the table is told (wrongly) that the kernel exists.
  const pretend = { ...CUDA_FLOAT_KERNELS, Log: [...CUDA_FLOAT_KERNELS.Log, "bfloat16" as const] };
  assert.deepEqual(missingCudaKernels({ y: forced.cast("float32").sum() }, pretend), []);
});
