/**
 * Just enough of an ONNX reader to inspect what onnxruntime made of a graph (its optimized model
 * file): each node's op type and values, and the shapes it recorded for them.
 *
 * @module
 */

/** One node of a saved graph. */
export interface SavedNode {
  opType: string;
  inputs: string[];
  outputs: string[];
}

/** A saved graph: nodes in order, and the static or named sizes of the values it typed. */
export interface SavedGraph {
  nodes: SavedNode[];
  shapes: Map<string, (number | string)[]>;
}

/** Protobuf fields of one message: number → raw values (varints as bigint, the rest as bytes). */
function fields(bytes: Uint8Array): Map<number, (bigint | Uint8Array)[]> {
  const out = new Map<number, (bigint | Uint8Array)[]>();
  let i = 0;
  const varint = () => {
    let v = 0n, shift = 0n;
    while (true) {
      const b = bytes[i++];
      v |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return v;
      shift += 7n;
    }
  };
  while (i < bytes.length) {
    const key = Number(varint());
    const [field, wire] = [key >>> 3, key & 7];
    let value: bigint | Uint8Array;
    if (wire === 0) value = varint();
    else if (wire === 2) {
      const n = Number(varint());
      value = bytes.subarray(i, i + n);
      i += n;
    } else if (wire === 1) value = bytes.subarray(i, i += 8);
    else if (wire === 5) value = bytes.subarray(i, i += 4);
    else throw new Error(`Unsupported protobuf wire type ${wire}`);
    if (!out.has(field)) out.set(field, []);
    out.get(field)!.push(value);
  }
  return out;
}

const text = (v: bigint | Uint8Array) => new TextDecoder().decode(v as Uint8Array);
const messages = (m: Map<number, (bigint | Uint8Array)[]>, f: number) =>
  (m.get(f) ?? []).map((v) => fields(v as Uint8Array));

/**
 * Reads the nodes and typed value shapes of an ONNX model.
 *
 * @param model ModelProto bytes.
 * @returns Its graph's nodes and value shapes.
 */
export function readSavedGraph(model: Uint8Array): SavedGraph {
  const [graph] = messages(fields(model), 7);
  const nodes = messages(graph, 1).map((n) => ({
    opType: text(n.get(4)![0]),
    inputs: (n.get(1) ?? []).map(text),
    outputs: (n.get(2) ?? []).map(text),
  }));
  const shapes = new Map<string, (number | string)[]>();
  for (const info of [...messages(graph, 13), ...messages(graph, 11), ...messages(graph, 12)]) {
    const [type] = messages(info, 2);
    const [tensor] = type ? messages(type, 1) : [];
    const [shape] = tensor ? messages(tensor, 2) : [];
    if (!shape) continue;
    const dims = messages(shape, 1).map((d) =>
      d.has(1) ? Number(d.get(1)![0] as bigint) : d.has(2) ? text(d.get(2)![0]) : "?"
    );
    shapes.set(text(info.get(1)![0]), dims);
  }
  return { nodes, shapes };
}
