/**
 * The CUDA execution provider of the native backend: its options, and what to do when it cannot
 * load. onnxruntime loads `libonnxruntime_providers_cuda.so` (beside the core library) when a
 * session asks for it; that provider needs CUDA's cuBLAS/cuBLASLt and cuDNN on the library path.
 *
 * @module
 */
import { dirname, join } from "node:path";
import { existsSync } from "node:fs";
import { check, cstr, type Ort, out, pointers } from "./ort.ts";

/** The three ways to get a working CUDA provider, named in every CUDA error. */
export const CUDA_ROUTES = "install the CUDA provider by one of three routes (README, " +
  '"CUDA"): (a) on a machine with internet, `ONNXRUNTIME_NODE_INSTALL=cuda12 deno install ' +
  "--allow-scripts=npm:onnxruntime-node` " +
  "(its install script downloads the provider); (b) ORT_LIB=/path/to/onnxruntime-gpu/lib/" +
  "libonnxruntime.so.1 from onnxruntime's GPU release; (c) the provider files of npm " +
  "com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9 (onnxruntime 1.29, CUDA 13) beside a 1.29 " +
  "core library given by ORT_LIB. CUDA itself (cuBLAS, cuDNN 9) must be on LD_LIBRARY_PATH";

/**
 * CUDA provider options: device 0, onnxruntime's arena, TF32 matmuls for float32 (as PyTorch's
 * `allow_tf32` on Ampere and newer; set `ORT_CUDA_TF32=0` for exact float32).
 *
 * @param lib The library.
 * @returns An `OrtCUDAProviderOptionsV2*` (released by the caller).
 */
export function cudaProviderOptions(lib: Ort): Deno.PointerValue {
  const options = out((p) => check(lib, lib.fn.CreateCUDAProviderOptions(p)));
  const settings: Record<string, string> = {
    device_id: Deno.env.get("CUDA_DEVICE_ID") ?? "0",
    arena_extend_strategy: "kSameAsRequested",
    use_tf32: Deno.env.get("ORT_CUDA_TF32") === "0" ? "0" : "1",
  };
  const keys = Object.keys(settings).map(cstr);
  const values = Object.values(settings).map(cstr);
  try {
    check(
      lib,
      lib.fn.UpdateCUDAProviderOptions(
        options,
        pointers(keys.map((k) => Deno.UnsafePointer.of(k))),
        pointers(values.map((v) => Deno.UnsafePointer.of(v))),
        BigInt(keys.length),
      ),
    );
  } catch (error) {
    lib.fn.ReleaseCUDAProviderOptions(options);
    throw error;
  }
  return options;
}

/**
 * One clear error for a CUDA provider that did not load: which library is missing and the routes
 * that provide it.
 *
 * @param lib The library.
 * @param error onnxruntime's error.
 * @returns The error to throw.
 */
export function explainCudaFailure(lib: Pick<Ort, "path">, error: Error): Error {
  const provider = join(dirname(lib.path), "libonnxruntime_providers_cuda.so");
  // dlopen's message names the file it could not find right before the colon: for a provider
  // that is present, that is the CUDA library it depends on (libcublasLt.so.12, libcudnn.so.9...).
  const missing = error.message.match(/(lib[\w.+-]+\.so(?:\.\d+)*): cannot open shared object/)
    ?.[1];
  const what = !existsSync(provider)
    ? `${provider} does not exist`
    : missing
    ? `${missing} is missing (the CUDA provider needs it)`
    : error.message;
  return new Error(`Cannot use --device cuda: ${what}; ${CUDA_ROUTES}`);
}
