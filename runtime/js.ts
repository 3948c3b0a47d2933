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
import { type DType, type HostTensor, input } from "../graph/tensor.ts";
import { type ResolvedDevice, sessionConfig, type Value } from "./program.ts";
import { type MakeTensor, OrtJsProgram, type OrtJsValue, type OrtTensor } from "./_ort_js.ts";
import { withModelFile } from "./_model_file.ts";

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

const makeTensor: MakeTensor = (dtype, data, dims) =>
  new ort.Tensor(dtype as "float32", data as Float32Array, dims);

/** A graph in an onnxruntime-node session. */
export class JsProgram extends OrtJsProgram {
  readonly backend = "js" as const;
  #readers = new Map<string, Promise<ort.InferenceSession>>();

  /**
   * @param session The session, now owned.
   * @param device Where it runs.
   * @param onnx The model's interface.
   */
  constructor(session: ort.InferenceSession, device: ResolvedDevice, onnx: OnnxModel) {
    super(session, makeTensor, device, onnx);
  }

  async read(value: Value): Promise<HostTensor> {
    let host = (value as OrtJsValue).tensor as ort.Tensor;
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

  #reader(t: OrtTensor): Promise<ort.InferenceSession> {
    const dims = t.dims.map((_, i) => `d${i}`);
    const x = input("x", dims, t.type as DType);
    return openSession(toOnnx({ y: x.stopGradient() }), this.device, []);
  }

  override async release(): Promise<void> {
    for (const reader of this.#readers.values()) await (await reader).release();
    await super.release();
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
