/**
 * The JS backend: onnxruntime-node's session. It stays for WebGPU, where outputs named in
 * `keepOnDevice` remain in GPU buffers (`preferredOutputLocation`) and are fed straight back; on
 * cpu it is the reference the native backend is tested against.
 *
 * onnxruntime-node copies every output into a fresh JS buffer and cannot write into an existing
 * one, so `into` outputs are swapped into their values after the run. GPU tensors are read through
 * a tiny Identity session whose output lives on the CPU, because `getData()` on a GPU tensor aborts
 * the process in onnxruntime-node.
 *
 * @module
 */
import * as ort from "onnxruntime-node";
import { dirname, join } from "node:path";
import { createRequire } from "node:module";
import { existsSync } from "node:fs";
import { type OnnxModel, toOnnx } from "../graph/onnx.ts";
import { arrayFor, type DType, type HostTensor, input } from "../graph/tensor.ts";
import {
  type Feed,
  hostFeed,
  isValue,
  Program,
  type ResolvedDevice,
  type RunOptions,
  sessionConfig,
  type Value,
} from "./program.ts";
import { withModelFile } from "./_model_file.ts";

/** An onnxruntime-node tensor (on the host or in a GPU buffer) as a runtime value. */
export class JsValue implements Value {
  readonly backend = "js" as const;

  /** @param tensor The tensor, now owned. */
  constructor(public tensor: ort.Tensor) {}

  get dtype(): DType {
    return this.tensor.type as DType;
  }

  get shape(): readonly number[] {
    return this.tensor.dims;
  }

  /** Holds `tensor` from now on, freeing the previous one. */
  replace(tensor: ort.Tensor): void {
    this.release();
    this.tensor = tensor;
  }

  release(): void {
    if (this.tensor.location === "gpu-buffer") this.tensor.dispose();
  }
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

/**
 * Opens an onnxruntime-node session for an emitted model.
 *
 * @param onnx The model.
 * @param device Where to run.
 * @param keepOnDevice Outputs to leave in GPU buffers (WebGPU).
 * @returns The program.
 */
export async function openJs(
  onnx: OnnxModel,
  device: ResolvedDevice,
  keepOnDevice: string[],
): Promise<JsProgram> {
  return new JsProgram(await openSession(onnx, device, keepOnDevice), device, onnx);
}

/** A graph in an onnxruntime-node session. */
export class JsProgram extends Program {
  readonly backend = "js" as const;
  #readers = new Map<string, Promise<ort.InferenceSession>>();

  /**
   * @param session The session, now owned.
   * @param device Where it runs.
   * @param onnx The model's interface.
   */
  constructor(readonly session: ort.InferenceSession, device: ResolvedDevice, onnx: OnnxModel) {
    super(device, onnx.inputs, onnx.outputs);
  }

  async runRaw(
    feeds: Record<string, Feed>,
    options: RunOptions = {},
  ): Promise<Record<string, Value>> {
    this.checkFeeds(feeds);
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const spec of this.inputs) {
      const feed = feeds[spec.name];
      if (isValue(feed)) ortFeeds[spec.name] = (feed as JsValue).tensor;
      else {
        const t = hostFeed(spec, feed as HostTensor | number);
        ortFeeds[spec.name] = new ort.Tensor(t.dtype as "float32", t.data as Float32Array, t.shape);
      }
    }
    const raw = await this.session.run(ortFeeds);
    const result: Record<string, Value> = {};
    for (const [name, tensor] of Object.entries(raw)) {
      const target = options.into?.[name] as JsValue | undefined;
      if (target) target.replace(tensor);
      else result[name] = new JsValue(tensor);
    }
    return result;
  }

  async read(value: Value): Promise<HostTensor> {
    let host = (value as JsValue).tensor;
    if (host.location !== "cpu") {
      const key = `${host.type}:${host.dims.length}`;
      if (!this.#readers.has(key)) this.#readers.set(key, this.#reader(host));
      const reader = await this.#readers.get(key)!;
      host = (await reader.run({ x: host })).y;
    }
    return {
      dtype: host.type as DType,
      shape: [...host.dims],
      data: host.data as HostTensor["data"],
    };
  }

  upload(tensor: HostTensor): Promise<Value> {
    const t = new ort.Tensor(tensor.dtype as "float32", tensor.data.slice() as Float32Array, [
      ...tensor.shape,
    ]);
    return Promise.resolve(new JsValue(t));
  }

  zeros(dtype: DType, shape: readonly number[]): Promise<Value> {
    const data = arrayFor(dtype, shape.reduce((a, b) => a * b, 1));
    return Promise.resolve(
      new JsValue(new ort.Tensor(dtype as "float32", data as Float32Array, [...shape])),
    );
  }

  #reader(t: ort.Tensor): Promise<ort.InferenceSession> {
    const dims = t.dims.map((_, i) => `d${i}`);
    const x = input("x", dims, t.type as DType);
    return openSession(toOnnx({ y: x.stopGradient() }), this.device, []);
  }

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
  const extra = sessionConfig(onnx);
  if (Object.keys(extra).length) {
    // onnxruntime-node flattens `extra` into session config entries ("a.b" keys).
    const nested: Record<string, Record<string, string>> = {};
    for (const [key, value] of Object.entries(extra)) {
      const [head, ...rest] = key.split(".");
      (nested[head] ??= {})[rest.join(".")] = value;
    }
    options.extra = nested;
  }
  if (!onnx.externalData && !onnx.linkedFiles) {
    return await ort.InferenceSession.create(onnx.model, options);
  }
  return await withModelFile(onnx, (path) => ort.InferenceSession.create(path, options));
}
