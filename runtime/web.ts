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
// Types only, of the version web/serve.ts serves (see ORT_WEB below for why not in deno.json).
// deno-lint-ignore no-import-prefix
import type * as Ort from "npm:onnxruntime-web@1.30.0";
import type { OnnxModel } from "../graph/onnx.ts";
import type { DType, HostTensor } from "../graph/tensor.ts";
import type { ResolvedDevice, Value } from "./program.ts";
import { type MakeTensor, OrtJsProgram, type OrtJsValue } from "./_ort_js.ts";

/**
 * onnxruntime-web, loaded by a specifier Deno does not follow ahead of time: only the page uses it,
 * and a `deno task train` should not install it (139 MB). In the browser the page's import map
 * resolves the name; `web/serve.ts` installs and serves the package (types: the pinned version).
 */
const ORT_WEB = "onnxruntime-web";
const ort: typeof Ort = await import(ORT_WEB);

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
  const options: Ort.InferenceSession.SessionOptions = {
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

const makeTensor: MakeTensor = (dtype, data, dims) =>
  new ort.Tensor(dtype as "float32", data as Float32Array, dims);

/** A graph in an onnxruntime-web session. */
export class WebProgram extends OrtJsProgram {
  readonly backend = "web" as const;

  /**
   * @param session The session, now owned.
   * @param device Where it runs.
   * @param onnx The model's interface.
   */
  constructor(session: Ort.InferenceSession, device: ResolvedDevice, onnx: OnnxModel) {
    super(session, makeTensor, device, onnx);
  }

  async read(value: Value): Promise<HostTensor> {
    const t = (value as OrtJsValue).tensor as Ort.Tensor;
    // getData() downloads a GPU buffer; a host tensor's data is returned as is.
    const data = await t.getData();
    return { dtype: t.type as DType, shape: [...t.dims], data: data as HostTensor["data"] };
  }
}
