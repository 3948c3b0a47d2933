/**
 * Running emitted graphs with onnxruntime-node: execution-provider choice, feeds checked against
 * the graph's declared shapes, and results read back to the host.
 *
 * On WebGPU, outputs named in `keepOnDevice` stay in GPU buffers (`preferredOutputLocation`) so a
 * train step can feed them straight back as next step's inputs. Such tensors are read through a
 * tiny Identity session whose output lives on the CPU, because `getData()` on a GPU tensor aborts
 * the process in onnxruntime-node.
 *
 * @module
 */
import * as ort from "onnxruntime-node";
import { dirname, join } from "node:path";
import { createRequire } from "node:module";
import { existsSync } from "node:fs";
import { type OnnxModel, toOnnx, type ValueSpec } from "./onnx.ts";
import { type HostTensor, input, type Tensor, toArray } from "./tensor.ts";

/** Devices a user may ask for. */
export const DEVICES = ["cpu", "cuda", "webgpu", "auto"] as const;
/** A device a user may ask for (`auto` tries cuda, then webgpu, then cpu). */
export type Device = typeof DEVICES[number];
/** A device a session actually runs on. */
export type ResolvedDevice = Exclude<Device, "auto">;

/** What a feed may be: a host tensor, a scalar, or an onnxruntime tensor (e.g. on the GPU). */
export type Feed = HostTensor | number | ort.Tensor;

/**
 * Checks a user's device string.
 *
 * @param value What the user typed.
 * @returns The device.
 * @example
 * ```ts
 * import { parseDevice } from "./session.ts";
 * if (parseDevice("cpu") !== "cpu") throw new Error("unexpected");
 * ```
 */
export function parseDevice(value: string): Device {
  if ((DEVICES as readonly string[]).includes(value)) return value as Device;
  throw new Error(`Unknown device "${value}": expected one of ${DEVICES.join(", ")}`);
}

const CUDA_HINT = "the CUDA execution provider of onnxruntime-node is not installed. " +
  "Its binaries are downloaded by the package's install script: reinstall with scripts allowed, " +
  "e.g. `ONNXRUNTIME_NODE_INSTALL=cuda12 deno install --allow-scripts=npm:onnxruntime-node`, " +
  "or use --device webgpu or --device cpu";

/** True when onnxruntime-node's CUDA provider library is present beside its binding. */
function cudaInstalled(): boolean {
  try {
    const binding = dirname(createRequire(import.meta.url).resolve("onnxruntime-node"));
    const bin = join(binding, "..", "bin", "napi-v6", process.platform, process.arch);
    return existsSync(join(bin, "libonnxruntime_providers_cuda.so")) ||
      existsSync(join(bin, "onnxruntime_providers_cuda.dll"));
  } catch {
    return false;
  }
}

/** Options for {@linkcode Program.compile}. */
export interface CompileOptions {
  /**
   * Where to run.
   * @default "cpu"
   */
  device?: Device;
  /** Outputs to leave in device memory (WebGPU only; ignored on cpu and cuda). */
  keepOnDevice?: string[];
  /** Forwarded to {@linkcode toOnnx}: bytes of weights above which external data is used. */
  externalThreshold?: number;
}

/** A compiled graph: an onnxruntime session plus its declared interface. */
export class Program {
  #readers = new Map<string, Promise<ort.InferenceSession>>();

  private constructor(
    readonly session: ort.InferenceSession,
    readonly device: ResolvedDevice,
    readonly inputs: ValueSpec[],
    readonly outputs: ValueSpec[],
  ) {}

  /**
   * Emits `outputs` as ONNX and opens a session on `options.device`.
   *
   * @param outputs Named result tensors.
   * @param options Device and placement.
   * @returns The runnable program.
   * @example
   * ```ts
   * import { input, Program } from "./mod.ts";
   * const x = input("x", [2]);
   * const p = await Program.compile({ y: x.mul(3) });
   * const { y } = await p.run({ x: { dtype: "float32", shape: [2], data: new Float32Array([1, 2]) } });
   * if (y.data[1] !== 6) throw new Error("unexpected");
   * ```
   */
  static async compile(
    outputs: Record<string, Tensor>,
    options: CompileOptions = {},
  ): Promise<Program> {
    const onnx = toOnnx(outputs, { externalThreshold: options.externalThreshold });
    const wanted = options.device ?? "cpu";
    const candidates: ResolvedDevice[] = wanted === "auto" ? ["cuda", "webgpu", "cpu"] : [wanted];
    const errors: string[] = [];
    for (const device of candidates) {
      try {
        const session = await openSession(onnx, device, options.keepOnDevice ?? []);
        if (wanted === "auto") console.error(`device: auto chose ${device}`);
        return new Program(session, device, onnx.inputs, onnx.outputs);
      } catch (error) {
        if (wanted !== "auto") throw error;
        errors.push(`${device}: ${(error as Error).message}`);
      }
    }
    throw new Error(`No device could run the graph: ${errors.join("; ")}`);
  }

  /**
   * Runs the graph and reads every output back to the host.
   *
   * @param feeds One value per graph input.
   * @returns Host tensors by output name.
   */
  async run(feeds: Record<string, Feed>): Promise<Record<string, HostTensor>> {
    const raw = await this.runRaw(feeds);
    const out: Record<string, HostTensor> = {};
    for (const [name, t] of Object.entries(raw)) out[name] = await this.read(t);
    return out;
  }

  /**
   * Runs the graph and returns onnxruntime tensors, which may live on the device.
   *
   * @param feeds One value per graph input.
   * @returns onnxruntime tensors by output name.
   */
  async runRaw(feeds: Record<string, Feed>): Promise<Record<string, ort.Tensor>> {
    const ortFeeds: Record<string, ort.Tensor> = {};
    const sizes = new Map<string, [number, string]>();
    for (const spec of this.inputs) {
      const feed = feeds[spec.name];
      if (feed === undefined) throw new Error(`Missing feed for input "${spec.name}"`);
      const tensor = feed instanceof ort.Tensor
        ? feed as ort.Tensor
        : toOrt(spec, feed as HostTensor | number);
      checkShape(spec, tensor, sizes);
      ortFeeds[spec.name] = tensor;
    }
    for (const name of Object.keys(feeds)) {
      if (!this.inputs.some((s) => s.name === name)) {
        const names = this.inputs.map((s) => s.name);
        const shown = names.length > 12 ? [...names.slice(0, 12), "…"] : names;
        throw new Error(
          `Unknown feed "${name}": the graph's ${names.length} inputs are ${shown.join(", ")}`,
        );
      }
    }
    return await this.session.run(ortFeeds);
  }

  /**
   * Copies an onnxruntime tensor (on the host or the device) into a host tensor.
   *
   * @param t A tensor returned by {@linkcode runRaw}.
   * @returns Its value on the host.
   */
  async read(t: ort.Tensor): Promise<HostTensor> {
    let host = t;
    if (t.location !== "cpu") {
      const key = `${t.type}:${t.dims.length}`;
      if (!this.#readers.has(key)) this.#readers.set(key, this.#reader(t));
      const reader = await this.#readers.get(key)!;
      host = (await reader.run({ x: t })).y;
    }
    return {
      dtype: host.type as HostTensor["dtype"],
      shape: [...host.dims],
      data: host.data as HostTensor["data"],
    };
  }

  #reader(t: ort.Tensor): Promise<ort.InferenceSession> {
    const dims = t.dims.map((_, i) => `d${i}`);
    const x = input("x", dims, t.type as HostTensor["dtype"]);
    return openSession(toOnnx({ y: x.stopGradient() }), this.device, []);
  }

  /** Frees the session. */
  async release(): Promise<void> {
    for (const reader of this.#readers.values()) await (await reader).release();
    await this.session.release();
  }
}

async function openSession(
  onnx: OnnxModel,
  device: ResolvedDevice,
  keepOnDevice: string[],
): Promise<ort.InferenceSession> {
  if (device === "cuda" && !cudaInstalled()) {
    throw new Error(`Cannot use --device cuda: ${CUDA_HINT}`);
  }
  // onnxruntime's CPU fusions (QuickGelu, ...) exist only for float32: a float64 graph, used for
  // gradient checks, would fail to load with them, so it gets the basic rewrites only.
  const float64 = onnx.inputs.some((s) => s.dtype === "float64");
  const options: ort.InferenceSession.SessionOptions = {
    executionProviders: [device],
    graphOptimizationLevel: float64 ? "basic" : "all",
    logSeverityLevel: 3,
  };
  if (device === "webgpu" && keepOnDevice.length > 0) {
    const location: Record<string, ort.Tensor.DataLocation> = {};
    for (const name of keepOnDevice) location[name] = "gpu-buffer";
    options.preferredOutputLocation = location;
  }
  if (!onnx.externalData) return await ort.InferenceSession.create(onnx.model, options);
  // External data is resolved relative to the model file, so both go to a temporary folder.
  const dir = await Deno.makeTempDir({ prefix: "onnx-" });
  try {
    await Deno.writeFile(join(dir, "model.onnx"), onnx.model);
    const file = await Deno.open(join(dir, onnx.externalData.file), { write: true, create: true });
    for (const chunk of onnx.externalData.chunks) {
      for (let written = 0; written < chunk.length;) {
        written += await file.write(chunk.subarray(written));
      }
    }
    file.close();
    return await ort.InferenceSession.create(join(dir, "model.onnx"), options);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function toOrt(spec: ValueSpec, feed: HostTensor | number): ort.Tensor {
  if (typeof feed === "number") {
    return new ort.Tensor(spec.dtype as "float32", toArray(spec.dtype, [feed]) as Float32Array, []);
  }
  if (feed.dtype !== spec.dtype) {
    throw new Error(`Input "${spec.name}" is ${spec.dtype}, got a ${feed.dtype} feed`);
  }
  return new ort.Tensor(spec.dtype as "float32", feed.data as Float32Array, feed.shape);
}

function checkShape(spec: ValueSpec, t: ort.Tensor, sizes: Map<string, [number, string]>): void {
  const where = `Input "${spec.name}" [${spec.shape}]`;
  if (t.dims.length !== spec.shape.length) {
    throw new Error(`${where}: got rank ${t.dims.length} (shape [${t.dims}])`);
  }
  spec.shape.forEach((d, i) => {
    const got = t.dims[i];
    if (typeof d === "number") {
      if (got !== d) throw new Error(`${where}: axis ${i} has size ${got}, expected ${d}`);
      return;
    }
    const seen = sizes.get(d);
    if (seen && seen[0] !== got) {
      throw new Error(`${where}: size "${d}" is ${got} here but ${seen[0]} in ${seen[1]}`);
    }
    sizes.set(d, [got, `"${spec.name}"`]);
  });
}
