/**
 * Emission of a symbolic graph as an ONNX model (opset 18).
 *
 * Every op node becomes one ONNX node; constants become initializers (weights larger than
 * `externalThreshold` in total go to an external-data file, as protobuf cannot exceed 2 GB);
 * `Input` tensors become graph inputs with their static and named sizes.
 *
 * @module
 */
import { ProtoWriter } from "./_protobuf.ts";
import { primitive } from "./primitives.ts";
import {
  type AttrValue,
  type DType,
  type HostTensor,
  ONNX_DTYPE,
  type StoredTensor,
  type Tensor,
} from "./tensor.ts";

/** ONNX opset this engine emits. */
export const OPSET = 18;
const IR_VERSION = 9;
/** Protobuf's hard limit, less headroom for the graph itself. */
const PROTOBUF_LIMIT = 1.8 * 2 ** 30;

/** A graph input or output as the session sees it. */
export interface ValueSpec {
  /** Name in the ONNX graph. */
  name: string;
  /** Element type. */
  dtype: DType;
  /** Static sizes and named dynamic sizes (outputs: as inferred at build time). */
  shape: readonly (number | string)[];
}

/** A serialized model and its interface. */
export interface OnnxModel {
  /** The ModelProto bytes. */
  model: Uint8Array;
  /** Weights stored outside the protobuf (write them beside the model under `file`). */
  externalData?: { file: string; chunks: Uint8Array[] };
  /**
   * Files that file-backed constants point into: make each `path` reachable as `name` beside the
   * model (a hard link, or a copy), since onnxruntime only reads external data from there.
   */
  linkedFiles?: { name: string; path: string }[];
  /** Graph inputs, in order. */
  inputs: ValueSpec[];
  /** Graph outputs, in order. */
  outputs: ValueSpec[];
}

/** Options for {@linkcode toOnnx}. */
export interface ToOnnxOptions {
  /**
   * Total initializer bytes above which weights go to external data.
   * @default 1.8 GiB
   */
  externalThreshold?: number;
  /**
   * File name (relative to the model file) for external data.
   * @default "model.onnx.data"
   */
  externalFile?: string;
}

/**
 * Serializes the graph that computes `outputs`.
 *
 * @param outputs Named result tensors.
 * @param options External-data settings.
 * @returns The model bytes and its inputs/outputs.
 * @example
 * ```ts
 * import { input, toOnnx } from "./mod.ts";
 * const x = input("x", ["B", 2]);
 * const { inputs } = toOnnx({ y: x.mul(2) });
 * if (inputs[0].name !== "x") throw new Error("unexpected");
 * ```
 */
export function toOnnx(outputs: Record<string, Tensor>, options: ToOnnxOptions = {}): OnnxModel {
  const nodes = reachable(Object.values(outputs));
  const inputNames = new Map<string, Tensor>();
  for (const t of nodes) {
    if (t.op !== "Input") continue;
    const other = inputNames.get(t.name!);
    if (other && other !== t) throw new Error(`Two different inputs are named "${t.name}"`);
    inputNames.set(t.name!, t);
  }

  // Value names: inputs keep theirs, an op node producing an output takes the output's name; the
  // rest are numbered by position, so the same graph gives the same bytes in any process (the
  // optimized-model cache is keyed by them), whatever tensors were built before it.
  const position = new Map(nodes.map((t, i) => [t.id, i]));
  const names = new Map<number, string>();
  const constKeys = new Map<string, string>();
  const consts: Tensor[] = [];
  for (const t of nodes) {
    if (t.op === "Input") names.set(t.id, t.name!);
    else if (t.op === "Const") {
      const key = t.value?.data.length === 1 ? `${t.dtype}:${t.shape}:${t.value!.data[0]}` : "";
      const shared = key ? constKeys.get(key) : undefined;
      if (shared) names.set(t.id, shared);
      else {
        names.set(t.id, `c${position.get(t.id)}`);
        consts.push(t);
        if (key) constKeys.set(key, `c${position.get(t.id)}`);
      }
    }
  }
  const aliases: [string, Tensor][] = [];
  for (const [key, t] of Object.entries(outputs)) {
    if (inputNames.has(key)) throw new Error(`Output "${key}" has the name of an input`);
    if (t.op === "Input" || t.op === "Const" || names.has(t.id)) aliases.push([key, t]);
    else names.set(t.id, key);
  }
  const nameOf = (t: Tensor) => names.get(t.id) ?? `t${position.get(t.id)}`;

  const graph = new ProtoWriter();
  for (const t of nodes) {
    if (t.op === "Input" || t.op === "Const") continue;
    graph.message(1, nodeProto(t, nameOf, `${t.op}_${position.get(t.id)}`));
  }
  for (const [key, t] of aliases) {
    graph.message(1, new ProtoWriter().string(1, nameOf(t)).string(2, key).string(4, "Identity"));
  }
  graph.string(2, "train_step");

  const inMemory = consts.filter((t) => t.value);
  const total = inMemory.reduce((n, t) => n + t.value!.data.byteLength, 0);
  const external = total > (options.externalThreshold ?? PROTOBUF_LIMIT)
    ? { file: options.externalFile ?? "model.onnx.data", chunks: [] as Uint8Array[], offset: 0 }
    : null;
  for (const t of inMemory) graph.message(5, tensorProto(nameOf(t), t.value!, external));
  const linked = new Map<string, string>();
  for (const t of consts.filter((t) => t.stored)) {
    const { file } = t.stored!;
    if (!linked.has(file)) linked.set(file, `weights-${linked.size}.bin`);
    graph.message(5, storedTensorProto(nameOf(t), t.stored!, linked.get(file)!));
  }

  const inputs = [...inputNames.values()].map((t) => ({
    name: t.name!,
    dtype: t.dtype,
    shape: t.shape,
  }));
  for (const spec of inputs) graph.message(11, valueInfo(spec, true));
  const outputSpecs = Object.entries(outputs).map(([name, t]) => ({
    name,
    dtype: t.dtype,
    shape: t.shape,
  }));
  for (const spec of outputSpecs) graph.message(12, valueInfo(spec, false));

  const model = new ProtoWriter()
    .int(1, IR_VERSION)
    .string(2, "direct-alignment-ts")
    .message(8, new ProtoWriter().string(1, "").int(2, OPSET))
    .message(7, graph);
  return {
    model: model.finish(),
    externalData: external ? { file: external.file, chunks: external.chunks } : undefined,
    linkedFiles: linked.size ? [...linked].map(([path, name]) => ({ name, path })) : undefined,
    inputs,
    outputs: outputSpecs,
  };
}

/**
 * All tensors `outputs` depend on, sorted by id (a topological order).
 *
 * @param outputs Result tensors.
 * @returns Every node they read, leaves included, inputs before their readers.
 * @example
 * ```ts
 * import { input, reachable } from "./mod.ts";
 * const x = input("x", [2]);
 * if (reachable([x.mul(2)]).length !== 3) throw new Error("x, the constant 2, the product");
 * ```
 */
export function reachable(outputs: Tensor[]): Tensor[] {
  const seen = new Map<number, Tensor>();
  const stack = [...outputs];
  while (stack.length) {
    const t = stack.pop()!;
    if (seen.has(t.id)) continue;
    seen.set(t.id, t);
    stack.push(...t.inputs);
  }
  return [...seen.values()].sort((a, b) => a.id - b.id);
}

function nodeProto(t: Tensor, nameOf: (t: Tensor) => string, name: string): ProtoWriter {
  const node = new ProtoWriter();
  const rule = primitive(t.op);
  for (const x of t.inputs.slice(0, rule.arity)) node.string(1, nameOf(x));
  node.string(2, nameOf(t));
  node.string(3, name);
  node.string(4, rule.onnx ?? t.op);
  for (const [name, value] of Object.entries(t.attrs)) node.message(5, attribute(name, value));
  return node;
}

function attribute(name: string, value: AttrValue): ProtoWriter {
  const a = new ProtoWriter().string(1, name);
  if (typeof value === "number") return a.int(3, value).int(20, 2);
  if (typeof value === "string") return a.string(4, value).int(20, 3);
  if (Array.isArray(value)) return a.packedInts(8, value).int(20, 7);
  if ("float" in value) return a.float(2, value.float).int(20, 1);
  if ("floats" in value) return a.packedFloats(7, value.floats).int(20, 6);
  return a.message(5, tensorProto("", value.tensor, null)).int(20, 4);
}

function tensorProto(
  name: string,
  value: HostTensor,
  external: { file: string; chunks: Uint8Array[]; offset: number } | null,
): ProtoWriter {
  const t = new ProtoWriter().packedInts(1, value.shape).int(2, ONNX_DTYPE[value.dtype]);
  if (name) t.string(8, name);
  const bytes = new Uint8Array(value.data.buffer, value.data.byteOffset, value.data.byteLength);
  if (external && bytes.length >= 1024) {
    t.message(13, new ProtoWriter().string(1, "location").string(2, external.file));
    t.message(13, new ProtoWriter().string(1, "offset").string(2, `${external.offset}`));
    t.message(13, new ProtoWriter().string(1, "length").string(2, `${bytes.length}`));
    t.int(14, 1);
    external.chunks.push(bytes);
    external.offset += bytes.length;
  } else {
    t.bytes(9, bytes);
  }
  return t;
}

/** An initializer whose bytes are a region of a linked file (`location` beside the model). */
function storedTensorProto(name: string, stored: StoredTensor, location: string): ProtoWriter {
  const t = new ProtoWriter().packedInts(1, stored.shape).int(2, ONNX_DTYPE[stored.dtype]);
  t.string(8, name);
  t.message(13, new ProtoWriter().string(1, "location").string(2, location));
  t.message(13, new ProtoWriter().string(1, "offset").string(2, `${stored.offset}`));
  t.message(13, new ProtoWriter().string(1, "length").string(2, `${stored.length}`));
  return t.int(14, 1);
}

function valueInfo(spec: ValueSpec, withShape: boolean): ProtoWriter {
  const tensorType = new ProtoWriter().int(1, ONNX_DTYPE[spec.dtype]);
  if (withShape) {
    const shape = new ProtoWriter();
    for (const d of spec.shape) {
      shape.message(
        1,
        typeof d === "number" ? new ProtoWriter().int(1, d) : new ProtoWriter().string(2, d),
      );
    }
    tensorType.message(2, shape);
  }
  return new ProtoWriter().string(1, spec.name).message(
    2,
    new ProtoWriter().message(1, tensorType),
  );
}
