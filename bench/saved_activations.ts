/**
 * What a train step keeps from its forward for its backward: every forward tensor that a gradient
 * node reads, grouped by the op that made it and its shape, with bytes at a given batch size and
 * length. The step's activation memory before any allocator: where a smaller live set must come
 * from (BENCHMARKS.md, issue 18).
 *
 *   deno task bench:saved [--model smollm2-135m] [--batch_size 1] [--max_length 512] [--loss dpo]
 *                         [--gradient_checkpointing false] [--bf16 false] [--top 20]
 *
 * Forward and backward are told apart by creation order: the loss is the newest node of the
 * forward, and every node `grad` makes is newer. Parameters and constants are not counted (they
 * live anyway).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { algorithm } from "../algorithms/mod.ts";
import { DTYPE_BYTES, grad, type Tensor } from "../graph/mod.ts";
import { parseConfig } from "../model/config.ts";
import { hyperparameters, resolveConfig } from "../trainer/config.ts";
import { buildStepGraph } from "../trainer/step_graph.ts";
import { PRESETS } from "./presets.ts";

/** Bytes of `t` with its symbolic dimensions set to `sizes` (a product like "N*T" included). */
export function bytesOf(t: Tensor, sizes: Record<string, number>): number {
  const dim = (d: number | string): number =>
    typeof d === "number" ? d : d.split("*").reduce((n, part) => {
      if (!(part in sizes)) throw new Error(`No size for dimension "${part}" of ${t}`);
      return n * sizes[part];
    }, 1);
  return t.shape.reduce((n: number, d) => n * dim(d), DTYPE_BYTES[t.dtype]);
}

/**
 * The forward tensors that the gradients of `loss` with respect to `params` read.
 *
 * @param loss The scalar loss (its graph is the forward).
 * @param params The tensors differentiated.
 * @returns The kept tensors.
 * @example
 * ```ts
 * import { input } from "../graph/mod.ts";
 * import { savedForBackward } from "./saved_activations.ts";
 * const [x, w] = [input("x", ["N", 4]), input("w", [4, 4])];
 * const h = x.matmul(w);
 * const kept = savedForBackward(h.tanh().sum(), [w]);
 * // tanh's VJP reads its output; matmul's reads x (an input, not counted).
 * if (kept.length !== 1 || kept[0].op !== "Tanh") throw new Error(`unexpected ${kept}`);
 * ```
 */
export function savedForBackward(loss: Tensor, params: Tensor[]): Tensor[] {
  // Ids grow with creation (graph/tensor.ts): no forward tensor is newer than the loss.
  const isForward = (t: Tensor) => t.id <= loss.id;
  const kept = new Map<number, Tensor>();
  const seen = new Set<number>();
  const visit = (t: Tensor) => {
    if (isForward(t) || seen.has(t.id)) return;
    seen.add(t.id);
    for (const i of t.inputs) {
      if (isForward(i) && i.op !== "Input" && i.op !== "Const") kept.set(i.id, i);
      visit(i);
    }
  };
  grad(loss, params).forEach((g) => g && visit(g));
  return [...kept.values()];
}

if (import.meta.main) {
  const option = (value: string) => ({ type: "string" as const, default: value });
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      model: option("smollm2-135m"),
      batch_size: option("1"),
      max_length: option("512"),
      loss: option("dpo"),
      gradient_checkpointing: option("false"),
      bf16: option("false"),
      top: option("20"),
    },
  });
  const preset = PRESETS[values.model];
  if (!preset) {
    throw new Error(`--model ${values.model}: one of ${Object.keys(PRESETS).join(", ")}`);
  }
  const config = parseConfig(preset, `${values.model} preset`);
  const algo = algorithm(values.loss);
  const hp = hyperparameters(resolveConfig({ cli: { loss: algo.name } }));
  const { loss, model, groups } = buildStepGraph(config, {
    algorithm: algo,
    hp,
    kind: algo.data === "unpaired" ? "unpaired" : "paired",
    model: {
      gradientCheckpointing: values.gradient_checkpointing === "true",
      precision: values.bf16 === "true" ? "bfloat16" : "float32",
    },
  });
  const [B, T] = [Number(values.batch_size), Number(values.max_length)];
  // The bench's rows: half prompt, half completion, so C = N·T/2 hidden states reach the head.
  const sizes = { B, N: groups * B, T, C: (groups * B * T) / 2 };
  const kept = savedForBackward(loss, model.params);
  const groupsOf = new Map<string, { count: number; bytes: number }>();
  for (const t of kept) {
    const key = `${t.op} ${t.dtype}[${t.shape.join(",")}]`;
    const entry = groupsOf.get(key) ?? { count: 0, bytes: 0 };
    entry.count++;
    entry.bytes += bytesOf(t, sizes);
    groupsOf.set(key, entry);
  }
  const mib = (b: number) => (b / 2 ** 20).toFixed(1).padStart(8);
  const total = [...groupsOf.values()].reduce((s, e) => s + e.bytes, 0);
  console.log(
    `${values.model} ${values.loss} ${B} × ${T}${values.bf16 === "true" ? " bf16" : ""}: ` +
      `${kept.length} tensors kept, ${mib(total)} MiB`,
  );
  const largest = [...groupsOf].sort((a, b) => b[1].bytes - a[1].bytes);
  for (const [key, e] of largest.slice(0, Number(values.top))) {
    console.log(`${mib(e.bytes)} MiB ${String(e.count).padStart(4)} × ${key}`);
  }
}
