/**
 * What onnxruntime makes of the SmolLM2-135M gradient graph: no Transpose of a weight-sized
 * tensor survives its optimizations (forward weight transposes fold into FusedMatMul, and weight
 * gradients are built as gᵀ x products instead of transposed (xᵀ g) ones).
 */
import assert from "node:assert/strict";
import { grad, input, reachable, type Tensor } from "../graph/mod.ts";
import { sqrt, sumSquares } from "../graph/ops.ts";
import { algorithm } from "../algorithms/mod.ts";
import { parseConfig } from "../model/config.ts";
import { Program } from "../runtime/mod.ts";
import { buildStepGraph } from "../trainer/step_graph.ts";
import { PRESETS } from "../bench/presets.ts";
import { readSavedGraph } from "./_onnx_nodes.ts";

/**
 * Shapes of the Transposes in onnxruntime's optimized form of `outputs` (or of their operands,
 * as many elements): from the shapes it recorded, else from the tensor of ours whose value name it
 * kept; null where neither says.
 */
async function optimizedTransposes(outputs: Record<string, Tensor>) {
  const dir = await Deno.makeTempDir({ prefix: "da-optimized-" });
  try {
    await (await Program.compile(outputs, { cacheDir: dir })).release();
    const [file] = [...Deno.readDirSync(dir)].filter((e) => e.name.endsWith(".onnx"));
    const saved = readSavedGraph(await Deno.readFile(`${dir}/${file.name}`));
    // toOnnx names inputs and outputs by their names and the rest `t<position>`.
    const ours = new Map<string, Tensor>();
    reachable(Object.values(outputs)).forEach((t, i) => ours.set(t.name ?? `t${i}`, t));
    for (const [name, t] of Object.entries(outputs)) ours.set(name, t);
    const shape = (name: string) => saved.shapes.get(name) ?? ours.get(name)?.shape;
    return saved.nodes.filter((n) => n.opType === "Transpose").map((n) =>
      shape(n.outputs[0]) ?? shape(n.inputs[0]) ?? null
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A transposed weight (or its gradient): every size static, as a parameter's. */
const weightSized = (shape: readonly (number | string)[] | null) =>
  shape === null || shape.every((d) => typeof d === "number");

Deno.test("the optimized SmolLM2-135M gradient graph transposes no weight-sized tensor", async () => {
  const dpo = algorithm("dpo");
  const graph = buildStepGraph(parseConfig(PRESETS["smollm2-135m"]), {
    algorithm: dpo,
    hp: dpo.defaults,
    kind: "paired",
  });
  const grads = grad(graph.loss, graph.model.params);
  const outputs: Record<string, Tensor> = {
    loss: graph.loss,
    grad_norm: sqrt(grads.map((g) => sumSquares(g)).reduce((a, b) => a.add(b))),
  };
  grads.forEach((g, i) => outputs[`${graph.model.params[i].name}::grad`] = g);
  const shapes = await optimizedTransposes(outputs);
  assert.ok(shapes.length > 0, "attention still moves heads around");
  assert.deepEqual(shapes.filter(weightSized), []);
});

Deno.test("optimizedTransposes() sees a weight-sized Transpose that nothing folds", async () => {
  const w = input("w", [3, 5]);
  const shapes = await optimizedTransposes({ wt: w.transpose().mul(2) });
  assert.deepEqual(shapes.filter(weightSized), [[5, 3]]);
});
