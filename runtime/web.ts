/**
 * The web backend: onnxruntime-web in a browser tab, on its WASM provider (device "cpu") or on
 * WebGPU (device "webgpu"). Values are onnxruntime-web tensors: host memory for WASM, GPU buffers
 * for the outputs named in `keepOnDevice` on WebGPU, fed straight back like the JS backend's.
 *
 * onnxruntime-web, like onnxruntime-node, returns fresh tensors and cannot write into existing
 * ones, so `into` outputs are swapped into their values after the run (the update graph still
 * never round-trips parameters through JS on WebGPU). WASM threads need a cross-origin isolated
 * page (COOP/COEP headers); {@linkcode webThreads} says how many a session got.
 *
 * @module
 */
import * as ort from "onnxruntime-web";
import type { OnnxModel } from "../graph/onnx.ts";
import { arrayFor, type DType, type HostTensor } from "../graph/tensor.ts";
import {
  type Feed,
  hostFeed,
  isValue,
  Program,
  type ResolvedDevice,
  type RunOptions,
  type Value,
} from "./program.ts";

/** An onnxruntime-web tensor (host memory or a GPU buffer) as a runtime value. */
export class WebValue implements Value {
  readonly backend = "web" as const;

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

/**
 * WASM threads a session uses: every core when the page is cross-origin isolated (threads need
 * `SharedArrayBuffer`), else 1. Fixed before the first session opens; onnxruntime-web's own
 * default would take only half the cores.
 *
 * @returns The thread count.
 */
export function webThreads(): number {
  const isolated = (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated;
  ort.env.wasm.numThreads ??= isolated ? Math.max(1, navigator.hardwareConcurrency ?? 1) : 1;
  return ort.env.wasm.numThreads;
}

/**
 * Opens an onnxruntime-web session for an emitted model.
 *
 * @param onnx The model (external data is handed to onnxruntime-web as one buffer).
 * @param device "cpu" (WASM) or "webgpu".
 * @param keepOnDevice Outputs to leave in GPU buffers (WebGPU).
 * @returns The program.
 */
export async function openWeb(
  onnx: OnnxModel,
  device: ResolvedDevice,
  keepOnDevice: string[],
): Promise<WebProgram> {
  if (device === "cuda") throw new Error("A browser has no CUDA: use device webgpu or cpu");
  webThreads();
  const options: ort.InferenceSession.SessionOptions = {
    executionProviders: [device === "webgpu" ? "webgpu" : "wasm"],
    graphOptimizationLevel: "all",
    logSeverityLevel: 3,
  };
  if (device === "webgpu" && keepOnDevice.length > 0) {
    options.preferredOutputLocation = Object.fromEntries(
      keepOnDevice.map((name) => [name, "gpu-buffer" as const]),
    );
  }
  if (onnx.externalData) {
    const { file, chunks } = onnx.externalData;
    const data = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
    let at = 0;
    for (const c of chunks) {
      data.set(c, at);
      at += c.length;
    }
    options.externalData = [{ path: file, data }];
  }
  const session = await ort.InferenceSession.create(onnx.model, options);
  return new WebProgram(session, device, onnx);
}

/** A graph in an onnxruntime-web session. */
export class WebProgram extends Program {
  readonly backend = "web" as const;

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
      if (isValue(feed)) ortFeeds[spec.name] = (feed as WebValue).tensor;
      else {
        const t = hostFeed(spec, feed as HostTensor | number);
        ortFeeds[spec.name] = new ort.Tensor(t.dtype as "float32", t.data as Float32Array, [
          ...t.shape,
        ]);
      }
    }
    const raw = await this.session.run(ortFeeds);
    const result: Record<string, Value> = {};
    for (const [name, tensor] of Object.entries(raw)) {
      const target = options.into?.[name] as WebValue | undefined;
      if (target) target.replace(tensor);
      else result[name] = new WebValue(tensor);
    }
    return result;
  }

  async read(value: Value): Promise<HostTensor> {
    const t = (value as WebValue).tensor;
    // getData() downloads a GPU buffer; a host tensor's data is returned as is.
    const data = await t.getData();
    return { dtype: t.type as DType, shape: [...t.dims], data: data as HostTensor["data"] };
  }

  upload(tensor: HostTensor): Promise<Value> {
    const t = new ort.Tensor(tensor.dtype as "float32", tensor.data.slice() as Float32Array, [
      ...tensor.shape,
    ]);
    return Promise.resolve(new WebValue(t));
  }

  zeros(dtype: DType, shape: readonly number[]): Promise<Value> {
    const data = arrayFor(dtype, shape.reduce((a, b) => a * b, 1));
    return Promise.resolve(
      new WebValue(new ort.Tensor(dtype as "float32", data as Float32Array, [...shape])),
    );
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
