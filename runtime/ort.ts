/**
 * A small binding to onnxruntime's C API through Deno FFI: only the functions this trainer uses.
 *
 * The library is the `libonnxruntime.so.1` that onnxruntime-node installed, or the file named by
 * the `ORT_LIB` environment variable (a user's own build, e.g. the official GPU tarball). Every
 * `OrtStatus*` becomes a JS `Error` carrying onnxruntime's message (the status is released first);
 * every object this module hands out has a `release()` and is never left to the garbage collector.
 *
 * The C API is one struct of function pointers, `OrtApi`, whose field order is the ABI: fields are
 * only ever appended. {@linkcode FN} lists each function's index in that struct, counted in
 * `include/onnxruntime/core/session/onnxruntime_c_api.h` of microsoft/onnxruntime.
 *
 * @module
 */
import { dirname, join } from "node:path";
import { createRequire } from "node:module";
import { existsSync } from "node:fs";

/**
 * The lowest `OrtApi` version that has every function below: 11 added
 * `SessionOptionsAppendExecutionProvider_CUDA_V2` (onnxruntime 1.11), the newest one used here.
 */
export const API_VERSION = 11;

type Sig = Deno.UnsafeCallbackDefinition | Deno.ForeignFunction;
const P = "pointer" as const, B = "buffer" as const;
const status = { result: P } as const;

/** Index in `OrtApi` and signature of each function used. */
const FN = {
  GetErrorMessage: [2, { parameters: [P], result: P }],
  CreateEnv: [3, { parameters: ["i32", B, B], ...status }],
  CreateSession: [7, { parameters: [P, B, P, B], ...status, nonblocking: true }],
  CreateSessionFromArray: [8, { parameters: [P, B, "usize", P, B], ...status, nonblocking: true }],
  CreateSessionOptions: [10, { parameters: [B], ...status }],
  SetOptimizedModelFilePath: [11, { parameters: [P, B], ...status }],
  EnableProfiling: [14, { parameters: [P, B], ...status }],
  DisableMemPattern: [17, { parameters: [P], ...status }],
  SetSessionLogSeverityLevel: [22, { parameters: [P, "i32"], ...status }],
  SetSessionGraphOptimizationLevel: [23, { parameters: [P, "i32"], ...status }],
  SetIntraOpNumThreads: [24, { parameters: [P, "i32"], ...status }],
  CreateTensorAsOrtValue: [48, { parameters: [P, B, "usize", "i32", B], ...status }],
  GetTensorMutableData: [51, { parameters: [P, B], ...status }],
  GetTensorElementType: [60, { parameters: [P, B], ...status }],
  GetDimensionsCount: [61, { parameters: [P, B], ...status }],
  GetDimensions: [62, { parameters: [P, B, "usize"], ...status }],
  GetTensorTypeAndShape: [65, { parameters: [P, B], ...status }],
  CreateMemoryInfo: [68, { parameters: [B, "i32", "i32", "i32", B], ...status }],
  CreateCpuMemoryInfo: [69, { parameters: ["i32", "i32", B], ...status }],
  AllocatorFree: [76, { parameters: [P, P], ...status }],
  GetAllocatorWithDefaultOptions: [78, { parameters: [B], ...status }],
  ReleaseStatus: [93, { parameters: [P], result: "void" }],
  ReleaseMemoryInfo: [94, { parameters: [P], result: "void" }],
  ReleaseSession: [95, { parameters: [P], result: "void" }],
  ReleaseValue: [96, { parameters: [P], result: "void" }],
  ReleaseTensorTypeAndShapeInfo: [99, { parameters: [P], result: "void" }],
  ReleaseSessionOptions: [100, { parameters: [P], result: "void" }],
  AddFreeDimensionOverrideByName: [124, { parameters: [P, B, "i64"], ...status }],
  GetAvailableProviders: [125, { parameters: [B, B], ...status }],
  ReleaseAvailableProviders: [126, { parameters: [P, "i32"], ...status }],
  AddSessionConfigEntry: [130, { parameters: [P, B, B], ...status }],
  RunWithBinding: [133, { parameters: [P, P, P], ...status, nonblocking: true }],
  CreateIoBinding: [134, { parameters: [P, B], ...status }],
  ReleaseIoBinding: [135, { parameters: [P], result: "void" }],
  BindInput: [136, { parameters: [P, B, P], ...status }],
  BindOutput: [137, { parameters: [P, B, P], ...status }],
  BindOutputToDevice: [138, { parameters: [P, B, P], ...status }],
  GetBoundOutputValues: [140, { parameters: [P, P, B, B], ...status }],
  CreateAndRegisterAllocator: [144, { parameters: [P, P, P], ...status }],
  ReleaseArenaCfg: [157, { parameters: [P], result: "void" }],
  CreateArenaCfgV2: [164, { parameters: [B, B, "usize", B], ...status }],
  SynchronizeBoundOutputs: [203, { parameters: [P], ...status }],
  SessionOptionsAppendExecutionProvider_CUDA_V2: [204, { parameters: [P, P], ...status }],
  CreateCUDAProviderOptions: [205, { parameters: [B], ...status }],
  UpdateCUDAProviderOptions: [206, { parameters: [P, B, B, "usize"], ...status }],
  ReleaseCUDAProviderOptions: [208, { parameters: [P], result: "void" }],
} as const satisfies Record<string, readonly [number, Sig]>;

/**
 * The `OrtApi` version that added execution providers as plugin libraries (onnxruntime 1.22):
 * the route to a CUDA provider for a core built without CUDA.
 */
export const PLUGIN_API_VERSION = 22;

/** Index and signature of the plugin-EP functions ({@linkcode PLUGIN_API_VERSION}). */
const PLUGIN_FN = {
  RegisterExecutionProviderLibrary: [301, { parameters: [P, B, B], ...status }],
  GetEpDevices: [303, { parameters: [P, B, B], ...status }],
  SessionOptionsAppendExecutionProvider_V2: [
    304,
    { parameters: [P, P, B, "usize", B, B, "usize"], ...status },
  ],
  EpDevice_EpName: [312, { parameters: [P], result: P }],
} as const satisfies Record<string, readonly [number, Sig]>;

type Bound<T extends Record<string, readonly [number, Sig]>> = {
  [K in keyof T]: Deno.UnsafeFnPointer<T[K][1]>["call"];
};
type Fns = Bound<typeof FN>;
/** The plugin-EP functions, bound. */
export type PluginFns = Bound<typeof PLUGIN_FN>;

/** The loaded library: its version, the functions of {@linkcode FN}, and process-wide handles. */
export interface Ort {
  /** onnxruntime's version string, e.g. "1.30.0". */
  version: string;
  /** Where the library was loaded from. */
  path: string;
  /** The C functions, bound. */
  fn: Fns;
  /** The plugin-EP functions, where the library offers {@linkcode PLUGIN_API_VERSION}. */
  pluginFn?: PluginFns;
  /** The process's `OrtEnv`. */
  env: Deno.PointerValue;
  /** onnxruntime's default CPU allocator (not owned: never released). */
  cpuAllocator: Deno.PointerValue;
  /** Memory info of plain CPU memory. */
  cpuMemory: Deno.PointerValue;
}

/**
 * The library onnxruntime-node installed (`bin/napi-v6/<platform>/<arch>/`), or `ORT_LIB`.
 *
 * @returns Its path.
 */
export function libraryPath(): string {
  const own = Deno.env.get("ORT_LIB");
  if (own) return own;
  const pkg = dirname(createRequire(import.meta.url).resolve("onnxruntime-node"));
  const bin = join(pkg, "..", "bin", "napi-v6", process.platform, process.arch);
  const file = process.platform === "darwin"
    ? "libonnxruntime.1.dylib"
    : process.platform === "win32"
    ? "onnxruntime.dll"
    : "libonnxruntime.so.1";
  return join(bin, file);
}

let loaded: Ort | undefined;

/**
 * Loads onnxruntime once per process and returns it.
 *
 * @returns The bound library.
 * @example
 * ```ts
 * import { ort } from "./ort.ts";
 * if (!/^\d+\.\d+/.test(ort().version)) throw new Error("unexpected");
 * ```
 */
export function ort(): Ort {
  if (loaded) return loaded;
  const path = libraryPath();
  if (!existsSync(path)) {
    throw new Error(
      `Cannot load onnxruntime: no file at ${path}` +
        (Deno.env.get("ORT_LIB")
          ? " (named by ORT_LIB): point ORT_LIB at libonnxruntime.so.1 of an onnxruntime build"
          : ": run `deno install`, or set ORT_LIB to an onnxruntime build's libonnxruntime.so.1"),
    );
  }
  let lib;
  try {
    lib = Deno.dlopen(path, { OrtGetApiBase: { parameters: [], result: P } });
  } catch (error) {
    throw new Error(`Cannot load onnxruntime from ${path}: ${(error as Error).message}`);
  }
  const base = new Deno.UnsafePointerView(lib.symbols.OrtGetApiBase()!);
  const getApi = new Deno.UnsafeFnPointer(base.getPointer(0)!, { parameters: ["u32"], result: P });
  const getVersion = new Deno.UnsafeFnPointer(base.getPointer(8)!, { parameters: [], result: P });
  const version = Deno.UnsafePointerView.getCString(getVersion.call()!);
  const api = getApi.call(API_VERSION);
  if (!api) {
    throw new Error(
      `onnxruntime ${version} at ${path} does not offer C API version ${API_VERSION}: ` +
        "use onnxruntime 1.11 or newer",
    );
  }
  const fn = bind(api, FN);
  const pluginApi = getApi.call(PLUGIN_API_VERSION);
  const pluginFn = pluginApi ? bind(pluginApi, PLUGIN_FN) : undefined;
  const partial = { version, path, fn, pluginFn } as Ort;
  const env = out((p) => check(partial, fn.CreateEnv(3, cstr("direct-alignment-ts"), p)));
  const cpuAllocator = out((p) => check(partial, fn.GetAllocatorWithDefaultOptions(p)));
  // OrtArenaAllocator = 1, OrtMemTypeDefault = 0.
  const cpuMemory = out((p) => check(partial, fn.CreateCpuMemoryInfo(1, 0, p)));
  // One CPU arena for every session of the process, which opt in with `session.use_env_allocators`
  // (native.ts): each session's own arena would keep its own high-water mark (a 135M step at
  // 1 × 512: 339 MiB more at the peak). It grows by doubling, as onnxruntime's default does, but
  // by at most 256 MiB at a time instead of 1 GiB: the last doubling reserves up to twice what the
  // step needs, and every reserved page is touched sooner or later (about 800 MiB off that peak;
  // BENCHMARKS.md, issue 18).
  const key = cstr("max_power_of_two_extend_bytes");
  const arenaCfg = out((p) =>
    check(
      partial,
      fn.CreateArenaCfgV2(
        pointers([Deno.UnsafePointer.of(key)]),
        new BigUint64Array([256n << 20n]),
        1n,
        p,
      ),
    )
  );
  check(partial, fn.CreateAndRegisterAllocator(env, cpuMemory, arenaCfg));
  fn.ReleaseArenaCfg(arenaCfg);
  loaded = { ...partial, env, cpuAllocator, cpuMemory };
  return loaded;
}

/** Binds each function of `table` from the `OrtApi` struct at `api`. */
function bind<T extends Record<string, readonly [number, Sig]>>(
  api: Deno.PointerObject,
  table: T,
): Bound<T> {
  const view = new Deno.UnsafePointerView(api);
  return Object.fromEntries(
    Object.entries(table).map(([name, [index, sig]]) => {
      const f = new Deno.UnsafeFnPointer(view.getPointer(index * 8)!, sig as Sig);
      return [name, f.call.bind(f)];
    }),
  ) as unknown as Bound<T>;
}

/**
 * Throws onnxruntime's message when `status` is not null, releasing the status first.
 *
 * @param lib The library.
 * @param status What a C function returned.
 * @param context What was being done, prefixed to the message.
 */
export function check(lib: Pick<Ort, "fn">, status: Deno.PointerValue, context?: string): void {
  if (status === null) return;
  const message = Deno.UnsafePointerView.getCString(lib.fn.GetErrorMessage(status)!);
  lib.fn.ReleaseStatus(status);
  throw new Error(context ? `${context}: ${message}` : message);
}

/** A null-terminated UTF-8 copy of `s`. */
export function cstr(s: string): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(s + "\0");
}

/** Calls `f` with a one-pointer out-parameter and returns what it wrote. */
export function out(f: (slot: BigUint64Array<ArrayBuffer>) => void): Deno.PointerValue {
  const slot = new BigUint64Array(1);
  f(slot);
  return Deno.UnsafePointer.create(slot[0]);
}

/** Same as {@linkcode out}, for an asynchronous (nonblocking) call. */
export async function outAsync(
  f: (slot: BigUint64Array<ArrayBuffer>) => Promise<void>,
): Promise<Deno.PointerValue> {
  const slot = new BigUint64Array(1);
  await f(slot);
  return Deno.UnsafePointer.create(slot[0]);
}

/** An array of pointers, as C's `T* const*`. */
export function pointers(list: Deno.PointerValue[]): BigUint64Array<ArrayBuffer> {
  return BigUint64Array.from(list, (p) => BigInt(Deno.UnsafePointer.value(p)));
}

/** The execution providers this library was built with (e.g. `CPUExecutionProvider`). */
export function availableProviders(): string[] {
  const lib = ort();
  const count = new Int32Array(1);
  const list = out((p) => check(lib, lib.fn.GetAvailableProviders(p, count)));
  const view = new Deno.UnsafePointerView(list!);
  const names = Array.from(
    { length: count[0] },
    (_, i) => Deno.UnsafePointerView.getCString(view.getPointer(i * 8)!),
  );
  check(lib, lib.fn.ReleaseAvailableProviders(list, count[0]));
  return names;
}
