/**
 * The safetensors format (https://github.com/huggingface/safetensors): an 8-byte little-endian
 * header length, a JSON header `{ name: { dtype, shape, data_offsets }, __metadata__ }` and the raw
 * little-endian tensor bytes. Reads and writes F32, F16 and BF16 weights as {@link HostTensor}s
 * (`float32`, `float16`, `bfloat16` with the 16-bit patterns in a `Uint16Array`), and I64 / I32
 * tensors (token ids of fixtures).
 *
 * @module
 */
import { DTYPE_BYTES, type HostTensor, type StoredTensor } from "../graph/mod.ts";

/** The checkpoint dtypes this project reads and writes, by safetensors name. */
const DTYPES = {
  F32: "float32",
  F16: "float16",
  BF16: "bfloat16",
  I64: "int64",
  I32: "int32",
} as const;
type StDtype = keyof typeof DTYPES;

/** The safetensors dtype name of a host dtype. */
function stName(dtype: string, name: string): StDtype {
  const found = Object.entries(DTYPES).find(([, d]) => d === dtype);
  if (!found) {
    throw new Error(
      `Cannot write tensor "${name}" of dtype ${dtype}: expected float32, float16, bfloat16, int64 or int32`,
    );
  }
  return found[0] as StDtype;
}

/** A parsed safetensors file: tensors by name plus the string metadata. */
export interface Safetensors {
  /** Tensors by name, in file order. */
  tensors: Record<string, HostTensor>;
  /** The `__metadata__` entries (e.g. `{ format: "pt" }`). */
  metadata: Record<string, string>;
}

interface HeaderEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

/** The tensors a safetensors header lists, each with its dtype; an unknown dtype names `source`. */
function headerTensors(
  header: Record<string, unknown>,
  source: string,
): { name: string; entry: HeaderEntry; dtype: (typeof DTYPES)[StDtype] }[] {
  const tensors = [];
  for (const [name, value] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    const entry = value as HeaderEntry;
    const dtype = DTYPES[entry.dtype as StDtype];
    if (!dtype) {
      throw new Error(
        `Unsupported dtype ${entry.dtype} of tensor "${name}" in ${source}: expected F32, F16, BF16, I64 or I32`,
      );
    }
    tensors.push({ name, entry, dtype });
  }
  return tensors;
}

/**
 * Parses the bytes of a `.safetensors` file.
 *
 * @param bytes The whole file.
 * @param source Where the bytes came from, for error messages.
 * @returns Tensors (copied into aligned typed arrays) and metadata.
 * @example
 * ```ts
 * import { parseSafetensors, serializeSafetensors } from "./safetensors.ts";
 * const t = { dtype: "float32" as const, shape: [2], data: new Float32Array([1, 2]) };
 * const back = parseSafetensors(serializeSafetensors({ w: t }));
 * if (back.tensors.w.data[1] !== 2) throw new Error("unexpected");
 * ```
 */
export function parseSafetensors(bytes: Uint8Array, source = "safetensors bytes"): Safetensors {
  if (bytes.length < 8) throw new Error(`Truncated safetensors file: ${source}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  if (8 + headerLength > bytes.length) {
    throw new Error(`Safetensors header runs past the end of the file: ${source}`);
  }
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength)));
  } catch (e) {
    throw new Error(`Invalid safetensors header in ${source}: ${(e as Error).message}`);
  }
  const base = 8 + headerLength;
  const tensors: Record<string, HostTensor> = {};
  for (const { name, entry, dtype } of headerTensors(header, source)) {
    const [begin, end] = entry.data_offsets;
    const count = entry.shape.reduce((a, b) => a * b, 1);
    const width = DTYPE_BYTES[dtype];
    if (end - begin !== count * width || base + end > bytes.length) {
      throw new Error(`Tensor "${name}" has bad data offsets [${begin}, ${end}] in ${source}`);
    }
    const raw = bytes.slice(base + begin, base + end).buffer;
    tensors[name] = {
      dtype,
      shape: [...entry.shape],
      data: dtype === "float32"
        ? new Float32Array(raw)
        : dtype === "int64"
        ? new BigInt64Array(raw)
        : dtype === "int32"
        ? new Int32Array(raw)
        : new Uint16Array(raw),
    };
  }
  return { tensors, metadata: (header.__metadata__ ?? {}) as Record<string, string> };
}

/**
 * Serializes tensors as a `.safetensors` file (header padded to 8 bytes, as the reference writer).
 *
 * @param tensors Tensors by name (float32, float16 or bfloat16).
 * @param metadata String metadata; `format: "pt"` is what `transformers` expects.
 * @returns The file bytes.
 * @example
 * ```ts
 * import { serializeSafetensors } from "./safetensors.ts";
 * const bytes = serializeSafetensors({ b: { dtype: "float32", shape: [], data: new Float32Array([3]) } });
 * if (bytes.length % 4 !== 0) throw new Error("unexpected");
 * ```
 */
export function serializeSafetensors(
  tensors: Record<string, HostTensor>,
  metadata: Record<string, string> = { format: "pt" },
): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  const chunks: Uint8Array[] = [];
  for (const [name, t] of Object.entries(tensors)) {
    const dtype = stName(t.dtype, name);
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (t.data.length !== count) {
      throw new Error(`Tensor "${name}" has ${t.data.length} values for shape [${t.shape}]`);
    }
    const data = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + data.length] };
    chunks.push(data);
    offset += data.length;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) {
    json = new TextEncoder().encode(JSON.stringify(header) + " ".repeat(padded - json.length));
  }
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

/**
 * Reads one `.safetensors` file.
 *
 * @param path File path.
 * @returns Its tensors and metadata.
 * @example
 * ```ts
 * import { readSafetensors } from "./safetensors.ts";
 * const { tensors } = await readSafetensors("model/tiny/model.safetensors");
 * if (!tensors["model.embed_tokens.weight"]) throw new Error("unexpected");
 * ```
 */
export async function readSafetensors(path: string): Promise<Safetensors> {
  return parseSafetensors(await Deno.readFile(path), path);
}

/**
 * Where each tensor of a `.safetensors` file lies, reading only its header: the regions that
 * file-backed constants point at (see `storedConstant`), so weights need not be read at all.
 *
 * @param path File path (made absolute).
 * @returns File regions by tensor name.
 * @example
 * ```ts
 * import { readSafetensorsLayout } from "./safetensors.ts";
 * const layout = await readSafetensorsLayout("model/tiny/model.safetensors");
 * if (layout["model.norm.weight"].dtype !== "bfloat16") throw new Error("unexpected");
 * ```
 */
export async function readSafetensorsLayout(path: string): Promise<Record<string, StoredTensor>> {
  const file = await Deno.realPath(path);
  const handle = await Deno.open(file);
  try {
    const head = new Uint8Array(8);
    if (await handle.read(head) !== 8) throw new Error(`Truncated safetensors file: ${path}`);
    const headerLength = Number(new DataView(head.buffer).getBigUint64(0, true));
    const bytes = new Uint8Array(headerLength);
    for (let got = 0; got < headerLength;) {
      const n = await handle.read(bytes.subarray(got));
      if (n === null) throw new Error(`Safetensors header runs past the end of the file: ${path}`);
      got += n;
    }
    const header = JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>;
    const out: Record<string, StoredTensor> = {};
    for (const { name, entry, dtype } of headerTensors(header, path)) {
      const [begin, end] = entry.data_offsets;
      out[name] = {
        dtype,
        shape: [...entry.shape],
        file,
        offset: 8 + headerLength + begin,
        length: end - begin,
      };
    }
    return out;
  } finally {
    handle.close();
  }
}
