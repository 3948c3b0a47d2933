/**
 * When an output may be written into the memory of one of its graph's inputs.
 *
 * ONNX has no control edges: a session may run any node once its inputs exist. Writing output O
 * into input X's buffer is safe only if every node that reads X has finished before O's producer
 * writes, i.e. every reader of X is an ancestor of O (sequential execution runs ancestors first).
 * Nodes that may alias their input instead of copying it (Reshape, Identity, ...) extend X: their
 * readers count as X's readers.
 *
 * @module
 */
import type { Tensor } from "../graph/tensor.ts";

/** Ops onnxruntime may run as views of their first input's memory. */
const VIEWS = new Set(["Reshape", "Squeeze", "Unsqueeze", "Identity", "Flatten"]);

/**
 * True when writing `output` into the buffer of the graph input named `inputName` cannot change
 * what any node of the graph reads.
 *
 * @param outputs Every output of the graph (its nodes are those they reach).
 * @param inputName The graph input whose memory would be reused.
 * @param output The output that would be written there.
 * @returns Whether the write is safe.
 * @example
 * ```ts
 * import { input } from "../graph/mod.ts";
 * import { inPlaceSafe } from "./in_place.ts";
 * const w = input("w", [2]);
 * const next = w.mul(0.5).add(w.mul(0.5));
 * if (!inPlaceSafe({ next }, "w", next)) throw new Error("unexpected");
 * const leak = w.mul(2);
 * if (inPlaceSafe({ next, leak }, "w", next)) throw new Error("leak reads w after next may run");
 * ```
 */
export function inPlaceSafe(
  outputs: Record<string, Tensor>,
  inputName: string,
  output: Tensor,
): boolean {
  if (output.op === "Input" || output.op === "Const" || VIEWS.has(output.op)) return false;
  const nodes = new Map<number, Tensor>();
  const visit = (t: Tensor) => {
    if (nodes.has(t.id)) return;
    nodes.set(t.id, t);
    for (const i of t.inputs) visit(i);
  };
  for (const t of Object.values(outputs)) visit(t);
  const ancestors = new Set<number>();
  const up = (t: Tensor) => {
    if (ancestors.has(t.id)) return;
    ancestors.add(t.id);
    for (const i of t.inputs) up(i);
  };
  up(output);
  const aliases = new Set<number>();
  for (const t of nodes.values()) if (t.op === "Input" && t.name === inputName) aliases.add(t.id);
  // Nodes are created after their inputs, so one pass in id order closes the alias set.
  const ordered = [...nodes.values()].sort((a, b) => a.id - b.id);
  for (const t of ordered) {
    if (VIEWS.has(t.op) && aliases.has(t.inputs[0]?.id)) aliases.add(t.id);
  }
  for (const t of ordered) {
    if (aliases.has(t.id)) continue;
    const reads = t.inputs.some((i) => aliases.has(i.id));
    if (reads && !ancestors.has(t.id)) return false;
  }
  // An output that is itself an alias of the input would be read by the caller after the write.
  return !Object.values(outputs).some((t) => t !== output && aliases.has(t.id));
}
