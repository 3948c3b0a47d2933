/**
 * Activation recomputation (graph/checkpoint.ts): gradients equal the plain graph's, and the
 * recomputation survives onnxruntime's optimizer. The second point is read off the graph
 * onnxruntime actually runs (`optimizedModelFilePath`, all optimizations on): the recomputed
 * block's ops are still there, while a recomputation without the gradient dependency is merged
 * back into the forward by common-subexpression elimination.
 */
import assert from "node:assert/strict";
import * as ort from "onnxruntime-node";
import {
  apply,
  checkpoint,
  grad,
  type HostTensor,
  input,
  type Tensor,
  toOnnx,
} from "../../graph/mod.ts";
import { recomputations } from "../../graph/primitives.ts";
import { Program } from "../../runtime/mod.ts";

type Wrap = (x: Tensor, f: (x: Tensor) => Tensor, leaves: Tensor[]) => Tensor;

/** A recomputation from the saved input itself, with no dependency on the incoming gradient. */
const naive: Wrap = (x, f, leaves) => {
  const y = apply("Checkpoint", [f(x.stopGradient()), x, ...leaves]);
  recomputations.set(y, (g) => grad(f(x), [x, ...leaves], { seed: g, stopAt: [x] }));
  return y;
};
const plain: Wrap = (x, f) => f(x);

/** Gradients of Σ h² w.r.t. three weights after three tanh blocks wrapped by `wrap`. */
function gradients(wrap: Wrap): Record<string, Tensor> {
  const x = input("x", ["M", 8]);
  const ws = [0, 1, 2].map((i) => input(`w${i}`, [8, 8]));
  let h = x;
  for (const w of ws) h = wrap(h, (t) => t.matmul(w).tanh().matmul(w), [w]);
  const gs = grad(h.mul(h).sum(), [x, ...ws]);
  return Object.fromEntries(gs.map((g, i) => [`g${i}`, g]));
}

/** How many nodes of `opType` the graph onnxruntime optimized for running has. */
async function optimizedCount(outputs: Record<string, Tensor>, opType: string): Promise<number> {
  const path = await Deno.makeTempFile({ suffix: ".onnx" });
  await ort.InferenceSession.create(toOnnx(outputs).model, {
    graphOptimizationLevel: "all",
    optimizedModelFilePath: path,
    logSeverityLevel: 3,
  });
  const bytes = await Deno.readFile(path);
  await Deno.remove(path);
  // NodeProto.op_type is field 4 (tag 0x22), length-prefixed: count that exact byte pattern.
  const pattern = [0x22, opType.length, ...new TextEncoder().encode(opType)];
  let n = 0;
  for (let i = 0; i + pattern.length <= bytes.length; i++) {
    if (pattern.every((b, j) => bytes[i + j] === b)) n++;
  }
  return n;
}

Deno.test("checkpoint() gives the plain graph's gradients", async () => {
  const feeds: Record<string, HostTensor> = {
    x: { dtype: "float32", shape: [4, 8], data: Float32Array.from({ length: 32 }, Math.sin) },
  };
  for (let i = 0; i < 3; i++) {
    feeds[`w${i}`] = {
      dtype: "float32",
      shape: [8, 8],
      data: Float32Array.from({ length: 64 }, (_, k) => 0.3 * Math.cos(k * (i + 1))),
    };
  }
  const run = async (wrap: Wrap) => {
    const program = await Program.compile(gradients(wrap));
    const out = await program.run(feeds);
    await program.release();
    return out;
  };
  const [a, b] = [await run(plain), await run(checkpoint)];
  for (const key of Object.keys(a)) {
    assert.deepEqual(
      Array.from(b[key].data as Float32Array),
      Array.from(a[key].data as Float32Array),
    );
  }
});

Deno.test("checkpoint() recomputation survives onnxruntime's common-subexpression elimination", async () => {
  assert.equal(await optimizedCount(gradients(plain), "Tanh"), 3);
  assert.equal(await optimizedCount(gradients(checkpoint), "Tanh"), 6, "3 forward + 3 recomputed");
  // Without the dependency on the gradient, the recomputation is merged into the forward: the
  // activations would be kept after all.
  assert.equal(await optimizedCount(gradients(naive), "Tanh"), 3);
});
