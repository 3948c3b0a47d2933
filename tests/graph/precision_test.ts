/** bf16 mixed precision: the precision table's rules, and their CPU emulation on onnxruntime. */
import assert from "node:assert/strict";
import {
  grad,
  type HostTensor,
  input,
  primitiveNames,
  reachable,
  type Tensor,
  withPrecision,
} from "../../graph/mod.ts";
import { PRECISION } from "../../graph/precision.ts";
import { Program } from "../../runtime/mod.ts";
import { loadConfig } from "../../model/config.ts";
import { algorithm } from "../../algorithms/mod.ts";
import { buildStepGraph } from "../../trainer/step_graph.ts";

const f32 = (shape: number[], values: number[]): HostTensor => ({
  dtype: "float32",
  shape,
  data: Float32Array.from(values),
});

Deno.test("PRECISION has a rule for every primitive", () => {
  const missing = primitiveNames.filter((op) => !PRECISION[op]);
  assert.deepEqual(missing, []);
});

Deno.test("onnxruntime keeps the float32 → bf16 → float32 cast pair that emulates rounding", async () => {
  const x = input("x", [5]);
  const program = await Program.compile({ y: x.cast("bfloat16").cast("float32") });
  const ulp = 2 ** -7; // bf16 keeps 7 fraction bits: the spacing of values in [1, 2)
  const { y } = await program.run({
    x: f32([5], [1 + ulp / 4, 1 + ulp * 3 / 4, 1 + ulp / 2, 1 + ulp * 3 / 2, 3.140625]),
  });
  // Nearest, ties to even: 1 + ulp/2 goes down to 1, 1 + 3ulp/2 up to 1 + 2ulp.
  assert.deepEqual(Array.from(y.data as Float32Array), [1, 1 + ulp, 1, 1 + 2 * ulp, 3.140625]);
  await program.release();
});

/** L = Σ C ⊙ tanh(X W), its value and dL/dW in float64 (the independent reference). */
function reference(X: number[][], W: number[][], C: number[][]) {
  let loss = 0;
  const dW = W.map((row) => row.map(() => 0));
  for (let i = 0; i < X.length; i++) {
    for (let j = 0; j < W[0].length; j++) {
      const z = X[i].reduce((s, x, k) => s + x * W[k][j], 0);
      loss += C[i][j] * Math.tanh(z);
      const dz = C[i][j] * (1 - Math.tanh(z) ** 2);
      for (let k = 0; k < W.length; k++) dW[k][j] += X[i][k] * dz;
    }
  }
  return { loss, dW: dW.flat() };
}

Deno.test("a bf16 matmul step, emulated on the CPU, matches float64 within bf16 precision", async () => {
  // Values with more than 8 significant bits, so rounding them to bf16 changes them.
  const X = [[0.3141, -1.2718, 0.5772], [1.4142, 0.1732, -0.2236], [-0.6931, 0.9999, 1.0986]];
  const W = [[0.1234, -0.5678, 0.9012, 0.3456], [-0.789, 0.0123, 0.4567, -0.8901], [
    0.2345,
    0.6789,
    -0.0123,
    0.5555,
  ]];
  const C = [[1, -2, 0.5, 1.5], [0.25, 1, -1, 2], [-0.75, 0.5, 1, -1]];
  const x = input("x", [3, 3]);
  const w = input("w", [3, 4]);
  const c = input("c", [3, 4]);
  const build = () => x.matmul(w).tanh().mul(c).sum();
  const feeds = { x: f32([3, 3], X.flat()), w: f32([3, 4], W.flat()), c: f32([3, 4], C.flat()) };
  const run = async (loss: Tensor) => {
    const [dw] = grad(loss, [w]);
    assert.equal(dw.dtype, "float32", "the master weight's gradient is float32");
    const program = await Program.compile({ loss, dw });
    const out = await program.run(feeds);
    await program.release();
    return { loss: out.loss.data[0] as number, dW: Array.from(out.dw.data as Float32Array) };
  };
  const mixed = await run(withPrecision("bfloat16", build));
  const plain = await run(build());
  const exact = reference(X, W, C);
  const relative = (a: number[], b: number[]) =>
    Math.max(...a.map((v, i) => Math.abs(v - b[i]))) / Math.max(...b.map(Math.abs));
  const lossError = Math.abs(mixed.loss - exact.loss) / Math.abs(exact.loss);
  const gradError = relative(mixed.dW, exact.dW);
  assert.ok(lossError < 1e-2 && gradError < 2e-2, `loss ${lossError}, dW ${gradError}`);
  // The emulation really rounds: float32 is far closer to float64 than bf16 (2⁻⁸ relative) is.
  assert.ok(relative(plain.dW, exact.dW) < 1e-5, "float32 matches float64");
  assert.ok(gradError > 1e-4, `bf16 rounding left no trace: ${gradError}`);
});

Deno.test("withPrecision() casts each weight to bf16 once and keeps statistics float32", () => {
  const x = input("x", [2, 3]);
  const w = input("w", [4, 3]);
  const { y, sumSquares, logp } = withPrecision("bfloat16", () => {
    const h = x.matmul(w.transpose()); // (2,4)
    const y = h.matmul(w); // (2,3): the same weight again
    return { y, sumSquares: y.mul(y).sum(), logp: y.logSoftmax(-1) };
  });
  const nodes = reachable([y, sumSquares, logp]);
  const casts = nodes.filter((t) => t.op === "Cast" && t.inputs[0] === w);
  assert.equal(casts.length, 1, "one bf16 copy of w for both products and its transpose");
  for (const m of nodes.filter((t) => t.op === "MatMul")) {
    assert.deepEqual(m.inputs.map((t) => t.dtype), ["bfloat16", "bfloat16"]);
  }
  const transposed = nodes.find((t) => t.op === "Transpose")!;
  assert.equal(transposed.inputs[0].dtype, "bfloat16", "the cast comes before the transpose");
  assert.equal(y.dtype, "bfloat16");
  assert.equal(sumSquares.dtype, "float32");
  assert.equal(logp.dtype, "float32");
  assert.equal(logp.inputs[0].dtype, "float32");
});

Deno.test("a float32 step graph holds no bf16 tensor; a bf16 one keeps loss and gradients float32", async () => {
  const config = await loadConfig("model/tiny");
  const build = (precision: "float32" | "bfloat16") => {
    const dpo = algorithm("dpo");
    const graph = buildStepGraph(config, {
      algorithm: dpo,
      hp: dpo.defaults,
      kind: "paired",
      model: { precision },
    });
    return { graph, grads: grad(graph.loss, graph.model.params) };
  };
  const plain = build("float32");
  const plainNodes = reachable([plain.graph.loss, ...plain.grads]);
  assert.ok(plainNodes.every((t) => t.dtype !== "bfloat16"));
  const mixed = build("bfloat16");
  const nodes = reachable([mixed.graph.loss, ...mixed.grads]);
  const matmuls = nodes.filter((t) => t.op === "MatMul");
  assert.ok(matmuls.length > 0 && matmuls.every((m) => m.dtype === "bfloat16"));
  assert.equal(mixed.graph.loss.dtype, "float32");
  assert.ok(mixed.grads.every((g) => g.dtype === "float32"));
  for (const op of ["LogSoftmax", "ReduceSumSquare", "ReduceSum", "Log", "ReduceMax"]) {
    const wrong = nodes.filter((t) => t.op === op && t.dtype === "bfloat16");
    assert.deepEqual(wrong.map(String), [], `${op} computes in float32`);
  }
  // Gradient contributions meeting at a float32 weight (the tied embedding: lookup and LM head)
  // add up in float32.
  const adds = nodes.filter((t) =>
    t.op === "Add" && t.inputs.some((i) => i.dtype === "bfloat16") &&
    mixed.grads.includes(t)
  );
  assert.deepEqual(adds.map(String), []);
});
