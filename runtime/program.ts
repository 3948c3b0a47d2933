/**
 * One interface over the three ways this trainer runs an emitted graph: the native backend (the C
 * API through Deno FFI: values stay in onnxruntime memory, outputs can be written in place),
 * onnxruntime-node's JS session (kept for WebGPU, whose `gpu-buffer` tensors it manages), and
 * onnxruntime-web in a browser tab (WASM, or WebGPU where the browser offers an adapter).
 *
 * Nothing above the runtime knows which backend runs a program: feeds are host tensors, numbers or
 * {@linkcode Value}s that a program of the same backend returned or uploaded.
 *
 * @module
 */
import { emulateBf16 } from "../graph/emulate_bf16.ts";
import { type OnnxModel, toOnnx, type ValueSpec } from "../graph/onnx.ts";
import { type DType, type HostTensor, type Tensor, toArray } from "../graph/tensor.ts";

/** Devices a user may ask for. */
export const DEVICES = ["cpu", "cuda", "webgpu", "auto"] as const;
/** A device a user may ask for (`auto` tries cuda, then webgpu, then cpu). */
export type Device = typeof DEVICES[number];
/** A device a session actually runs on. */
export type ResolvedDevice = Exclude<Device, "auto">;
/** Which binding runs a program. */
export type Backend = "native" | "js" | "web";

/**
 * A tensor held by the runtime (host memory owned by onnxruntime, or device memory). Whoever
 * receives one from {@linkcode Program.runRaw} or {@linkcode Program.upload} releases it.
 */
export interface Value {
  /** The backend that owns it. */
  readonly backend: Backend;
  /** Element type. */
  readonly dtype: DType;
  /** Concrete sizes. */
  readonly shape: readonly number[];
  /** Frees its memory now; the value must not be used afterwards. */
  release(): void;
}

/** What a feed may be: a host tensor, a scalar, or a runtime value of the same backend. */
export type Feed = HostTensor | number | Value;

/** Options for {@linkcode Program.compile}. */
export interface CompileOptions {
  /**
   * Where to run.
   * @default "cpu"
   */
  device?: Device;
  /**
   * Which binding runs it.
   * @default "web" outside Deno (a browser); on Deno "js" on webgpu, "native" elsewhere
   */
  backend?: Backend;
  /** Outputs to leave in device memory (the JS backend on WebGPU; native values always stay). */
  keepOnDevice?: string[];
  /** Forwarded to `toOnnx`: bytes of weights above which external data is used. */
  externalThreshold?: number;
  /**
   * Native backend: write onnxruntime's profile of every run (per-kernel times, as JSON) to a
   * file starting with this prefix when the program is released.
   */
  profile?: string;
  /**
   * Native backend: a folder where onnxruntime's optimized form of the graph is kept, so the next
   * process opening the same graph skips optimization (seconds for a 30-layer train step).
   */
  cacheDir?: string;
  /**
   * CUDA only: onnxruntime captures the graph's kernels once as a CUDA graph and replays it
   * (`enable_cuda_graph`), sparing a launch per kernel. Every run must then bind the same device
   * buffers, inputs and outputs alike ({@linkcode Program.write} refreshes an input in place),
   * and onnxruntime refuses the session when a node would run on the CPU.
   */
  cudaGraph?: boolean;
  /**
   * Native backend: sizes for symbolic dimensions (onnxruntime's free-dimension overrides), so
   * the shape arithmetic of a graph written for any size folds away when it is compiled — on cuda
   * nothing is then left for the CPU, which a CUDA graph needs. Feeds must have these sizes.
   */
  staticDims?: Record<string, number>;
}

/** Options of one {@linkcode Program.runRaw} call. */
export interface RunOptions {
  /**
   * Outputs written into existing values (same dtype and shape) instead of fresh ones. The native
   * backend writes them in place, so a value may also be an input of the same run only when the
   * graph reads that input before the output's producer (see `inPlaceSafe`); the JS backend swaps
   * the new tensor into the value after the run.
   */
  into?: Record<string, Value>;
}

/**
 * Checks a user's device string.
 *
 * @param value What the user typed.
 * @returns The device.
 * @example
 * ```ts
 * import { parseDevice } from "./program.ts";
 * if (parseDevice("cpu") !== "cpu") throw new Error("unexpected");
 * ```
 */
export function parseDevice(value: string): Device {
  if ((DEVICES as readonly string[]).includes(value)) return value as Device;
  throw new Error(`Unknown device "${value}": expected one of ${DEVICES.join(", ")}`);
}

/** A compiled graph on one device: its declared interface, and runs. */
export abstract class Program {
  /** The backend that runs it. */
  abstract readonly backend: Backend;

  protected constructor(
    /** Where it runs. */
    readonly device: ResolvedDevice,
    /** Graph inputs, in order. */
    readonly inputs: ValueSpec[],
    /** Graph outputs, in order. */
    readonly outputs: ValueSpec[],
  ) {}

  /**
   * Emits `outputs` as ONNX and opens a session on `options.device`. A graph computing in
   * bfloat16 runs as is on cuda and emulated elsewhere (float32 with bfloat16 rounding; see
   * graph/emulate_bf16.ts).
   *
   * @param outputs Named result tensors.
   * @param options Device, backend and placement.
   * @returns The runnable program.
   * @example
   * ```ts
   * import { input } from "../graph/mod.ts";
   * import { Program } from "./mod.ts";
   * const x = input("x", [2]);
   * const p = await Program.compile({ y: x.mul(3) });
   * const { y } = await p.run({ x: { dtype: "float32", shape: [2], data: new Float32Array([1, 2]) } });
   * if (y.data[1] !== 6) throw new Error("unexpected");
   * await p.release();
   * ```
   */
  static async compile(
    outputs: Record<string, Tensor>,
    options: CompileOptions = {},
  ): Promise<Program> {
    // Only CUDA has bfloat16 arithmetic; elsewhere a mixed-precision graph runs emulated.
    let exact: OnnxModel | undefined, emulated: OnnxModel | undefined;
    const emit = (device: ResolvedDevice) =>
      device === "cuda"
        ? exact ??= toOnnx(outputs, { externalThreshold: options.externalThreshold })
        : emulated ??= toOnnx(emulateBf16(outputs), {
          externalThreshold: options.externalThreshold,
        });
    const wanted = options.device ?? "cpu";
    const inBrowser = !("Deno" in globalThis);
    const candidates: ResolvedDevice[] = wanted !== "auto"
      ? [wanted]
      : inBrowser
      ? ["webgpu", "cpu"]
      : ["cuda", "webgpu", "cpu"];
    const errors: string[] = [];
    for (const device of candidates) {
      const backend = options.backend ??
        (inBrowser ? "web" : device === "webgpu" ? "js" : "native");
      const keep = options.keepOnDevice ?? [];
      try {
        const onnx = emit(device);
        // Imported here: each backend's module extends this class, and a browser bundle (split
        // at these imports) never loads the two that need Deno.
        const program = backend === "native"
          ? await (await import("./native.ts")).openNative(onnx, device, options)
          : backend === "js"
          ? await (await import("./js.ts")).openJs(onnx, device, keep)
          : await (await import("./web.ts")).openWeb(onnx, device, keep);
        if (wanted === "auto") console.error(`device: auto chose ${device}`);
        return program;
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
    try {
      for (const [name, v] of Object.entries(raw)) out[name] = await this.read(v);
    } finally {
      for (const v of Object.values(raw)) v.release();
    }
    return out;
  }

  /**
   * Runs the graph and returns its outputs as runtime values (released by the caller).
   *
   * @param feeds One value per graph input.
   * @param options Outputs to write into existing values.
   * @returns Values of the outputs not written `into` existing ones, by name.
   */
  abstract runRaw(
    feeds: Record<string, Feed>,
    options?: RunOptions,
  ): Promise<Record<string, Value>>;

  /**
   * Copies a runtime value to the host.
   *
   * @param value A value of this program's backend.
   * @returns Its contents.
   */
  abstract read(value: Value): Promise<HostTensor>;

  /**
   * Copies a host tensor into a new runtime value on this program's device.
   *
   * @param tensor The contents.
   * @returns The value (released by the caller).
   */
  abstract upload(tensor: HostTensor): Promise<Value>;

  /**
   * Overwrites a runtime value of this program's backend with a host tensor of the same dtype and
   * shape, in its own buffer (so a captured CUDA graph that reads the buffer sees the new data).
   *
   * @param value The value to overwrite.
   * @param tensor The new contents.
   */
  write(_value: Value, _tensor: HostTensor): Promise<void> {
    return Promise.reject(new Error(`The ${this.backend} backend cannot overwrite a value`));
  }

  /**
   * A new zero-filled runtime value on this program's device (no host array of its size).
   *
   * @param dtype Element type.
   * @param shape Sizes.
   * @returns The value (released by the caller).
   */
  abstract zeros(dtype: DType, shape: readonly number[]): Promise<Value>;

  /** Frees the session. */
  abstract release(): Promise<void>;

  /** Checks every feed against the declared inputs; names unknown and missing feeds. */
  protected checkFeeds(feeds: Record<string, Feed>): void {
    const sizes = new Map<string, [number, string]>();
    for (const spec of this.inputs) {
      const feed = feeds[spec.name];
      if (feed === undefined) throw new Error(`Missing feed for input "${spec.name}"`);
      if (typeof feed === "number") continue;
      if (feed.dtype !== spec.dtype) {
        throw new Error(`Input "${spec.name}" is ${spec.dtype}, got a ${feed.dtype} feed`);
      }
      if ("backend" in feed && feed.backend !== this.backend) {
        throw new Error(
          `Input "${spec.name}": the value belongs to the ${feed.backend} backend, ` +
            `this program runs on the ${this.backend} one`,
        );
      }
      checkShape(spec, feed.shape, sizes);
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
  }
}

/**
 * A host tensor for a feed that is a host tensor or a number.
 *
 * @param spec The input it feeds.
 * @param feed The feed.
 * @returns The host tensor.
 */
export function hostFeed(spec: ValueSpec, feed: HostTensor | number): HostTensor {
  if (typeof feed !== "number") return feed;
  return { dtype: spec.dtype, shape: [], data: toArray(spec.dtype, [feed]) };
}

/** True for a runtime value (as opposed to a host tensor or a number). */
export function isValue(feed: Feed): feed is Value {
  return typeof feed !== "number" && "backend" in feed;
}

function checkShape(
  spec: ValueSpec,
  dims: readonly number[],
  sizes: Map<string, [number, string]>,
): void {
  const where = `Input "${spec.name}" [${spec.shape}]`;
  if (dims.length !== spec.shape.length) {
    throw new Error(`${where}: got rank ${dims.length} (shape [${dims}])`);
  }
  spec.shape.forEach((d, i) => {
    const got = dims[i];
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

/**
 * Session config entries a model needs: with file-backed constants, no constant folding — it
 * would turn each bfloat16 weight and its Cast into a float32 copy in memory; the weights are
 * cast on the fly instead and stay mapped from their file.
 *
 * @param onnx The model.
 * @returns onnxruntime session config entries (key → value).
 * @example
 * ```ts
 * import { input, toOnnx } from "../graph/mod.ts";
 * import { sessionConfig } from "./program.ts";
 * if (Object.keys(sessionConfig(toOnnx({ y: input("x", [1]).mul(2) }))).length !== 0) throw new Error("unexpected");
 * ```
 */
export function sessionConfig(onnx: OnnxModel): Record<string, string> {
  return onnx.linkedFiles ? { "optimization.disable_specified_optimizers": "ConstantFolding" } : {};
}

/**
 * The default folder for optimized models: `$XDG_CACHE_HOME/direct-alignment-ts/onnxruntime`, else
 * `~/.cache/direct-alignment-ts/onnxruntime` (safe to delete).
 *
 * @returns The folder.
 */
export function defaultCacheDir(): string {
  // Joined with "/" rather than node:path, which the browser bundle of this module cannot load.
  const root = Deno.env.get("XDG_CACHE_HOME") ?? `${Deno.env.get("HOME") ?? "."}/.cache`;
  return `${root}/direct-alignment-ts/onnxruntime`;
}
