/**
 * The CUDA execution provider of the native backend: how a session gets it, its options, and
 * what to say when it cannot load.
 *
 * Two routes, chosen by what the core library offers:
 * - a core built with CUDA (onnxruntime's GPU release, or onnxruntime-node after its CUDA install
 *   script) lists `CUDAExecutionProvider` among its providers and takes it through
 *   `SessionOptionsAppendExecutionProvider_CUDA_V2`, loading `libonnxruntime_providers_cuda.so`
 *   from beside itself;
 * - a core built without it (a CPU build, onnxruntime 1.22 or newer) takes the provider as a
 *   plugin library: `RegisterExecutionProviderLibrary` once per process, then `GetEpDevices`, and
 *   `SessionOptionsAppendExecutionProvider_V2` with the CUDA device. The provider is the file
 *   named by `ORT_CUDA_PROVIDER`, or the one beside the core. It must come from the core's own
 *   onnxruntime version: the bridge between them is a C++ interface.
 *
 * Either way the provider needs CUDA's cuBLAS/cuBLASLt, cudart and cuDNN on the library path.
 *
 * @module
 */
import { dirname, join } from "node:path";
import { existsSync } from "node:fs";
import { availableProviders, check, cstr, type Ort, out, pointers } from "./ort.ts";

/** The three ways to get a working CUDA provider, named in every CUDA error. */
export const CUDA_ROUTES = "install the CUDA provider by one of three routes (README, " +
  '"CUDA"): (a) on a machine with internet, `ONNXRUNTIME_NODE_INSTALL=cuda12 deno install ' +
  "--allow-scripts=npm:onnxruntime-node` " +
  "(its install script downloads the provider); (b) ORT_LIB=/path/to/onnxruntime-gpu/lib/" +
  "libonnxruntime.so.1 from onnxruntime's GPU release; (c) the provider files of npm " +
  "com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9 (onnxruntime 1.29, CUDA 13) beside a 1.29 " +
  "core library given by ORT_LIB (or named by ORT_CUDA_PROVIDER). CUDA itself (cuBLAS, cuDNN 9) " +
  "must be on LD_LIBRARY_PATH";

/** The provider's name in onnxruntime's lists and in its plugin EP devices. */
const CUDA_EP = "CUDAExecutionProvider";

/**
 * The CUDA provider's options: onnxruntime's arena growing by what is asked (no doubling), and
 * TF32 matmuls for float32 (as PyTorch's `allow_tf32` on Ampere and newer; `ORT_CUDA_TF32=0` for
 * exact float32).
 *
 * @returns Option names and values, as onnxruntime's provider options spell them.
 * @example
 * ```ts
 * import { cudaOptions } from "./cuda.ts";
 * if (cudaOptions().arena_extend_strategy !== "kSameAsRequested") throw new Error("unexpected");
 * ```
 */
export function cudaOptions(): Record<string, string> {
  return {
    arena_extend_strategy: "kSameAsRequested",
    use_tf32: Deno.env.get("ORT_CUDA_TF32") === "0" ? "0" : "1",
  };
}

/** Which GPU: `CUDA_DEVICE_ID`, else the first. */
function deviceIndex(): number {
  const id = Number(Deno.env.get("CUDA_DEVICE_ID") ?? "0");
  if (!Number.isInteger(id) || id < 0) {
    throw new Error(
      `Invalid CUDA_DEVICE_ID "${Deno.env.get("CUDA_DEVICE_ID")}": expected 0, 1, ...`,
    );
  }
  return id;
}

/**
 * The provider library the plugin route registers: `ORT_CUDA_PROVIDER`, or the file beside the
 * core library.
 *
 * @param lib The core library.
 * @returns Its path.
 */
export function cudaProviderPath(lib: Pick<Ort, "path">): string {
  return Deno.env.get("ORT_CUDA_PROVIDER") ??
    join(dirname(lib.path), "libonnxruntime_providers_cuda.so");
}

/**
 * Adds the CUDA provider to session options by whichever route the core offers, explaining any
 * failure in one line (see {@linkcode explainCudaFailure}).
 *
 * @param lib The core library.
 * @param options The `OrtSessionOptions*`.
 * @param extra Provider options beside {@linkcode cudaOptions} (e.g. `enable_cuda_graph`).
 */
export function appendCuda(
  lib: Ort,
  options: Deno.PointerValue,
  extra: Record<string, string> = {},
): void {
  try {
    if (availableProviders().includes(CUDA_EP)) appendBuiltIn(lib, options, extra);
    else appendCudaPlugin(lib, options, extra);
  } catch (error) {
    throw explainCudaFailure(lib, error as Error);
  }
}

/** The route of a core built with CUDA: `SessionOptionsAppendExecutionProvider_CUDA_V2`. */
function appendBuiltIn(lib: Ort, options: Deno.PointerValue, extra: Record<string, string>): void {
  const cuda = out((p) => check(lib, lib.fn.CreateCUDAProviderOptions(p)));
  try {
    const settings = { device_id: String(deviceIndex()), ...cudaOptions(), ...extra };
    withCStrings(
      settings,
      (keys, values, count) =>
        check(lib, lib.fn.UpdateCUDAProviderOptions(cuda, keys, values, count)),
    );
    check(lib, lib.fn.SessionOptionsAppendExecutionProvider_CUDA_V2(options, cuda));
  } finally {
    lib.fn.ReleaseCUDAProviderOptions(cuda);
  }
}

/** Cores (by path) that have registered the CUDA provider library: once per process each. */
const registered = new Set<string>();

/**
 * The plugin route: registers the provider library ({@linkcode cudaProviderPath}) once, then
 * appends the chosen CUDA device. {@linkcode appendCuda} takes it for cores built without CUDA.
 *
 * @param lib The core library (onnxruntime 1.22 or newer).
 * @param options The `OrtSessionOptions*`.
 * @param extra Provider options beside {@linkcode cudaOptions}.
 */
export function appendCudaPlugin(
  lib: Ort,
  options: Deno.PointerValue,
  extra: Record<string, string> = {},
): void {
  const fn = lib.pluginFn;
  if (!fn) {
    throw new Error(
      `onnxruntime ${lib.version} at ${lib.path} was built without CUDA and is too old (before ` +
        "1.22) to load the CUDA provider as a plugin library",
    );
  }
  const provider = cudaProviderPath(lib);
  if (!registered.has(lib.path)) {
    if (!existsSync(provider)) throw new Error(`Failed to load library ${provider}: absent`);
    check(lib, fn.RegisterExecutionProviderLibrary(lib.env, cstr("CUDA"), cstr(provider)));
    registered.add(lib.path);
  }
  const devices = epDevices(lib).filter((d) => d.name === CUDA_EP);
  const index = deviceIndex();
  if (devices.length <= index) {
    throw new Error(
      `the CUDA provider (${provider}) loaded but offers ${devices.length} device(s), so there ` +
        `is no GPU ${index}: is an NVIDIA GPU visible (nvidia-smi) and its driver loaded?`,
    );
  }
  appendEpDevice(lib, options, devices[index], { ...cudaOptions(), ...extra });
}

/**
 * Appends one provider device to session options, with the provider's options.
 *
 * @param lib The library (onnxruntime 1.22 or newer).
 * @param options The `OrtSessionOptions*`.
 * @param device A device of {@linkcode epDevices}.
 * @param settings The provider's options.
 */
export function appendEpDevice(
  lib: Ort,
  options: Deno.PointerValue,
  device: EpDevice,
  settings: Record<string, string>,
): void {
  const chosen = pointers([device.device]);
  withCStrings(settings, (keys, values, count) =>
    check(
      lib,
      lib.pluginFn!.SessionOptionsAppendExecutionProvider_V2(
        options,
        lib.env,
        chosen,
        1n,
        keys,
        values,
        count,
      ),
    ));
}

/** One execution-provider device of the process's environment. */
export interface EpDevice {
  /** The provider's name, e.g. `CPUExecutionProvider`. */
  name: string;
  /** The `OrtEpDevice*` (owned by onnxruntime). */
  device: Deno.PointerValue;
}

/**
 * The devices the environment's providers offer (onnxruntime 1.22+): the CPU's always, and one
 * per GPU for each registered plugin library.
 *
 * @param lib The library.
 * @returns The devices, in onnxruntime's order.
 * @example
 * ```ts
 * import { ort } from "./ort.ts";
 * import { epDevices } from "./cuda.ts";
 * if (!epDevices(ort()).some((d) => d.name === "CPUExecutionProvider")) throw new Error("none");
 * ```
 */
export function epDevices(lib: Ort): EpDevice[] {
  const fn = lib.pluginFn;
  if (!fn) return [];
  const count = new BigUint64Array(1);
  const list = out((p) => check(lib, fn.GetEpDevices(lib.env, p, count)));
  const view = new Deno.UnsafePointerView(list!);
  return Array.from({ length: Number(count[0]) }, (_, i) => {
    const device = view.getPointer(i * 8);
    return { name: Deno.UnsafePointerView.getCString(fn.EpDevice_EpName(device)!), device };
  });
}

/**
 * Keys and values as two `const char* const*` arrays, for a call made inside `use`: the strings
 * stay reachable (so not collected) until it returns.
 */
function withCStrings<T>(
  settings: Record<string, string>,
  use: (keys: BigUint64Array, values: BigUint64Array, count: bigint) => T,
): T {
  const strings = [Object.keys(settings).map(cstr), Object.values(settings).map(cstr)];
  const [keys, values] = strings.map((list) => pointers(list.map((s) => Deno.UnsafePointer.of(s))));
  const result = use(keys, values, BigInt(strings[0].length));
  strings.length = 0;
  return result;
}

/**
 * One clear error for a CUDA provider that did not load: which library is missing and the routes
 * that provide it.
 *
 * @param lib The core library.
 * @param error onnxruntime's error.
 * @returns The error to throw.
 */
export function explainCudaFailure(lib: Pick<Ort, "path">, error: Error): Error {
  const provider = cudaProviderPath(lib);
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
