/**
 * Embedding-gradient benchmark: three graphs for ∂L/∂E of a lookup E[ids], E (V,D), ids (M),
 * given the lookup's gradient g (M,D) — the scatter-add that ends every train step's backward:
 *
 * - `scatter_nd`: ScatterND(zeros(V,D), ids (M,1), g, reduction add) (what Gather's VJP emits);
 * - `scatter_elements`: ScatterElements(zeros(V,D), ids broadcast to (M,D), g, axis 0, add);
 * - `one_hot_matmul`: per vocabulary chunk k, onehot(ids)ᵀ (Vk,M) @ g (M,D), then one Concat.
 *
 *   deno task bench:embedding [--device cpu|cuda] [--vocab 49152] [--dim 576] [--rows 256,1024]
 *                             [--chunk 8192] [--runs 10]
 *
 * Prints the median run time of each graph per row count (outputs stay in runtime memory, so no
 * host copy is timed) and the largest difference from `scatter_nd`'s result. The scatters add
 * rows in index order on the CPU; on CUDA they add with atomics, whose order (and so float
 * rounding) may change between runs; the one-hot product's sums are a fixed GEMM.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { apply } from "../graph/primitives.ts";
import { concat, expand, zerosLike } from "../graph/ops.ts";
import { constant, input, type Tensor } from "../graph/tensor.ts";
import { parseDevice, Program } from "../runtime/mod.ts";

const { values } = parseArgs({
  options: {
    device: { type: "string", default: "cpu" },
    vocab: { type: "string", default: "49152" },
    dim: { type: "string", default: "576" },
    rows: { type: "string", default: "256,1024" },
    chunk: { type: "string", default: "8192" },
    runs: { type: "string", default: "10" },
  },
});
const device = parseDevice(values.device!);
const [V, D, chunk, runs] = [values.vocab, values.dim, values.chunk, values.runs].map(Number);

/** The graphs, by name: dE (V,D) from ids (M) and g (M,D). */
const METHODS: Record<string, (table: Tensor, ids: Tensor, g: Tensor) => Tensor> = {
  scatter_nd: (table, ids, g) =>
    apply("ScatterND", [zerosLike(table), ids.unsqueeze(-1), g], { reduction: "add" }, [V, D]),
  scatter_elements: (table, ids, g) =>
    apply("ScatterElements", [zerosLike(table), expand(ids.unsqueeze(-1), ["M", D]), g], {
      axis: 0,
      reduction: "add",
    }, [V, D]),
  one_hot_matmul: (_table, ids, g) => {
    const parts: Tensor[] = [];
    for (let start = 0; start < V; start += chunk) {
      const size = Math.min(chunk, V - start);
      const vocab = constant(Array.from({ length: size }, (_, v) => start + v), [1, size], "int64");
      const oneHot = ids.unsqueeze(-1).eq(vocab).cast(g.dtype); // (M,Vk)
      parts.push(oneHot.transpose().matmul(g)); // (Vk,D)
    }
    return concat(parts, 0);
  },
};

let seed = 3;
const uniform = () => (seed = (seed * 48271) % 2147483647) / 2147483647;

for (const M of values.rows!.split(",").map(Number)) {
  const feeds = {
    ids: {
      dtype: "int64" as const,
      shape: [M],
      data: BigInt64Array.from({ length: M }, () => BigInt(Math.floor(uniform() * V))),
    },
    g: {
      dtype: "float32" as const,
      shape: [M, D],
      data: Float32Array.from({ length: M * D }, () => uniform() - 0.5),
    },
  };
  let reference: Float32Array | null = null;
  for (const [name, method] of Object.entries(METHODS)) {
    const table = input("table", [V, D]);
    const ids = input("ids", ["M"], "int64");
    const g = input("g", ["M", D]);
    // The table only gives the result its (static) shape: it is not an input of the graph.
    const program = await Program.compile({ dE: method(table, ids, g) }, { device });
    const all = feeds;
    const result = (await program.run(all)).dE.data as Float32Array;
    reference ??= result;
    let diff = 0;
    for (let i = 0; i < result.length; i++) {
      diff = Math.max(diff, Math.abs(result[i] - reference[i]));
    }
    const times: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      const out = await program.runRaw(all);
      times.push(performance.now() - t0);
      for (const v of Object.values(out)) v.release();
    }
    await program.release();
    const median = times.sort((a, b) => a - b)[Math.floor(times.length / 2)];
    console.log(JSON.stringify({
      device: program.device,
      method: name,
      rows: M,
      vocab: V,
      dim: D,
      run_ms_median: +median.toFixed(2),
      max_abs_diff_vs_scatter_nd: diff,
    }));
  }
}
