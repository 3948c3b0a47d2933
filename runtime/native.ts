/**
 * The native backend: sessions, values and IO bindings of onnxruntime's C API (see `ort.ts`).
 *
 * Values are `OrtValue`s in onnxruntime memory (the CPU allocator, or the CUDA device's): a run
 * binds them without copying, and an output bound to an existing value is written there, in place.
 * Host tensors fed to a run are copied into temporary values that the run releases.
 *
 * @module
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { OnnxModel, ValueSpec } from "../graph/onnx.ts";
import { toOnnx } from "../graph/onnx.ts";
import {
  arrayFor,
  type DType,
  DTYPE_BYTES,
  type HostTensor,
  input,
  ONNX_DTYPE,
} from "../graph/tensor.ts";
import { appendCuda } from "./cuda.ts";
import { check, cstr, type Ort, ort, out, outAsync } from "./ort.ts";
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

// The C API's ONNXTensorElementDataType uses the codes of ONNX's TensorProto.DataType.
const DTYPE_OF_CODE = new Map(Object.entries(ONNX_DTYPE).map(([d, c]) => [c, d as DType]));

/** An `OrtValue` holding a tensor, released by {@linkcode release} (or `using`). */
export class NativeValue implements Value {
  readonly backend = "native" as const;
  #pointer: Deno.PointerValue;

  /**
   * Wraps an `OrtValue*` this object now owns.
   *
   * @param pointer The `OrtValue*`.
   * @param dtype Element type.
   * @param shape Sizes.
   * @param onDevice True when the data is in device (CUDA) memory.
   */
  constructor(
    pointer: Deno.PointerValue,
    readonly dtype: DType,
    readonly shape: readonly number[],
    readonly onDevice = false,
  ) {
    this.#pointer = pointer;
  }

  /**
   * A new value in onnxruntime's CPU memory holding a copy of `t`.
   *
   * @param t Host contents (16-bit floats as their bit patterns in a `Uint16Array`).
   * @returns The value.
   * @example
   * ```ts
   * import { NativeValue } from "./native.ts";
   * using v = NativeValue.fromHost({ dtype: "float32", shape: [2], data: new Float32Array([1, 2]) });
   * if (v.toHost().data[1] !== 2) throw new Error("unexpected");
   * ```
   */
  static fromHost(t: HostTensor): NativeValue {
    const value = NativeValue.alloc(t.dtype, t.shape);
    const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    if (bytes.length > 0) value.#bytes().set(bytes);
    return value;
  }

  /**
   * A new zero-filled value in onnxruntime's CPU memory.
   *
   * @param dtype Element type.
   * @param shape Sizes.
   * @returns The value.
   */
  static zeros(dtype: DType, shape: readonly number[]): NativeValue {
    const value = NativeValue.alloc(dtype, shape);
    if (shape.every((d) => d > 0)) value.#bytes().fill(0);
    return value;
  }

  /** A new value in onnxruntime's CPU memory, contents undefined. */
  private static alloc(dtype: DType, shape: readonly number[]): NativeValue {
    const lib = ort();
    const dims = BigInt64Array.from(shape, BigInt);
    const pointer = out((p) =>
      check(
        lib,
        lib.fn.CreateTensorAsOrtValue(
          lib.cpuAllocator,
          dims,
          BigInt(shape.length),
          ONNX_DTYPE[dtype],
          p,
        ),
        `Cannot allocate a ${dtype}[${shape}] tensor`,
      )
    );
    return new NativeValue(pointer, dtype, [...shape]);
  }

  /** The `OrtValue*`; throws after release. */
  get pointer(): Deno.PointerValue {
    if (this.#pointer === null) throw new Error("This onnxruntime value was already released");
    return this.#pointer;
  }

  /**
   * Where the tensor's elements are: host memory, or device memory when {@linkcode onDevice}
   * (what a collective such as an MPI or NCCL all-reduce reads and writes in place).
   */
  get dataPointer(): Deno.PointerValue {
    const lib = ort();
    return out((p) => check(lib, lib.fn.GetTensorMutableData(this.pointer, p)));
  }

  /** True once released. */
  get released(): boolean {
    return this.#pointer === null;
  }

  /**
   * Copies the contents to a new host tensor (CPU values only).
   *
   * @returns The contents.
   */
  toHost(): HostTensor {
    if (this.onDevice) throw new Error("A device value is read through its program's read()");
    const n = this.shape.reduce((a, b) => a * b, 1);
    const data = arrayFor(this.dtype, n);
    if (n > 0) new Uint8Array(data.buffer).set(this.#bytes());
    return { dtype: this.dtype, shape: [...this.shape], data };
  }

  /**
   * Overwrites the contents with `t` (same dtype and shape; CPU values only).
   *
   * @param t New contents.
   */
  write(t: HostTensor): void {
    if (this.onDevice) throw new Error("A device value is written through its program");
    if (t.dtype !== this.dtype || t.shape.join() !== this.shape.join()) {
      throw new Error(`Cannot write ${t.dtype}[${t.shape}] into ${this.dtype}[${this.shape}]`);
    }
    this.#bytes().set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  }

  /** Releases the `OrtValue` (its memory, unless another value shares it). */
  release(): void {
    if (this.#pointer === null) return;
    ort().fn.ReleaseValue(this.#pointer);
    this.#pointer = null;
  }

  [Symbol.dispose](): void {
    this.release();
  }

  /** The data as bytes in onnxruntime's memory: valid only until release. */
  #bytes(): Uint8Array {
    const n = this.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[this.dtype];
    return new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(this.dataPointer!, n));
  }
}

/** Intra-op threads of the sessions this process opens; 0: onnxruntime's own choice. */
let intraOpThreads = 0;

/**
 * Sets how many threads each session opened from now on computes with: a process-wide choice, as
 * for the ranks of a data-parallel job sharing one machine's cores.
 *
 * @param threads Threads per session (0: onnxruntime's default, one per physical core).
 * @example
 * ```ts
 * import { setIntraOpThreads } from "./native.ts";
 * setIntraOpThreads(0);
 * ```
 */
export function setIntraOpThreads(threads: number): void {
  if (!Number.isInteger(threads) || threads < 0) {
    throw new Error(`Invalid thread count ${threads}: expected an integer ≥ 0`);
  }
  intraOpThreads = threads;
}

/**
 * Wraps an `OrtValue*` that onnxruntime created, reading its type and shape.
 *
 * @param lib The library.
 * @param pointer The value.
 * @param onDevice Whether it was bound to device memory.
 * @returns The owning wrapper.
 */
function adopt(lib: Ort, pointer: Deno.PointerValue, onDevice: boolean): NativeValue {
  const info = out((p) => check(lib, lib.fn.GetTensorTypeAndShape(pointer, p)));
  try {
    const type = new Int32Array(1);
    check(lib, lib.fn.GetTensorElementType(info, type));
    const rank = new BigUint64Array(1);
    check(lib, lib.fn.GetDimensionsCount(info, rank));
    const dims = new BigInt64Array(Number(rank[0]));
    check(lib, lib.fn.GetDimensions(info, dims, BigInt(dims.length)));
    const dtype = DTYPE_OF_CODE.get(type[0]);
    if (!dtype) {
      lib.fn.ReleaseValue(pointer);
      throw new Error(`onnxruntime returned a tensor of unsupported element type ${type[0]}`);
    }
    return new NativeValue(pointer, dtype, Array.from(dims, Number), onDevice);
  } finally {
    lib.fn.ReleaseTensorTypeAndShapeInfo(info);
  }
}

/**
 * Opens a native session for an emitted model.
 *
 * @param onnx The model.
 * @param device `cpu` or `cuda`.
 * @param options Profiling and the optimized-model cache (see `CompileOptions`).
 * @returns The program.
 */
export async function openNative(
  onnx: OnnxModel,
  device: ResolvedDevice,
  options: {
    profile?: string;
    cacheDir?: string;
    cudaGraph?: boolean;
    staticDims?: Record<string, number>;
  } = {},
): Promise<NativeProgram> {
  if (device !== "cpu" && device !== "cuda") {
    throw new Error(`The native backend runs on cpu and cuda, not ${device}: use the js backend`);
  }
  if (options.cudaGraph && device !== "cuda") {
    throw new Error(`CUDA graphs need --device cuda, not ${device}`);
  }
  const lib = ort();
  // CPU graphs only, for now: on the H200 (onnxruntime 1.29, the CUDA provider as a plugin
  // library) every process that opened a decoder's step graph, all through this cache, ended in
  // a segfault without a message, while a small step opened without it trained correctly
  // (BENCHMARKS.md, "CUDA"). The cache is the first suspect until a device run clears it.
  const cached = options.cacheDir && device === "cpu" && !onnx.externalData && !onnx.linkedFiles
    ? await cachePath(onnx, device, options.cacheDir, options.staticDims ?? {})
    : undefined;
  const hit = cached !== undefined && existsSync(cached);
  const opts = out((p) => check(lib, lib.fn.CreateSessionOptions(p)));
  let session: Deno.PointerValue;
  try {
    check(lib, lib.fn.SetSessionLogSeverityLevel(opts, 3));
    // onnxruntime's CPU fusions (QuickGelu, ...) exist only for float32: a float64 graph, used for
    // gradient checks, would fail to load with them, so it gets the basic rewrites only. A cached
    // model is already optimized.
    const float64 = onnx.inputs.some((s) => s.dtype === "float64");
    check(lib, lib.fn.SetSessionGraphOptimizationLevel(opts, hit ? 0 : float64 ? 1 : 99));
    // A train step's shapes repeat, but the memory pattern's first planned run allocates one more
    // arena-sized block (a multi-second stall and GBs of peak at 135M parameters).
    check(lib, lib.fn.DisableMemPattern(opts));
    if (intraOpThreads > 0) check(lib, lib.fn.SetIntraOpNumThreads(opts, intraOpThreads));
    for (const [name, size] of Object.entries(options.staticDims ?? {})) {
      check(lib, lib.fn.AddFreeDimensionOverrideByName(opts, cstr(name), BigInt(size)));
    }
    // The process's shared CPU arena (runtime/ort.ts), not one per session.
    check(lib, lib.fn.AddSessionConfigEntry(opts, cstr("session.use_env_allocators"), cstr("1")));
    for (const [key, value] of Object.entries(sessionConfig(onnx))) {
      check(lib, lib.fn.AddSessionConfigEntry(opts, cstr(key), cstr(value)));
    }
    if (options.profile) check(lib, lib.fn.EnableProfiling(opts, cstr(options.profile)));
    if (device === "cuda") {
      appendCuda(lib, opts, options.cudaGraph ? { enable_cuda_graph: "1" } : {});
    }
    if (hit) session = await createSessionFromFile(lib, cached, opts);
    else {
      const fresh = cached && `${cached}.${Deno.pid}.tmp`;
      if (fresh) check(lib, lib.fn.SetOptimizedModelFilePath(opts, cstr(fresh)));
      session = await createSession(lib, onnx, opts);
      if (fresh) await Deno.rename(fresh, cached); // atomic: readers never see a partial file
    }
  } finally {
    lib.fn.ReleaseSessionOptions(opts);
  }
  return new NativeProgram(session, device, onnx);
}

/**
 * Where onnxruntime's optimized form of `onnx` is cached: named by the SHA-256 of the model and
 * its fixed dimensions, the device and onnxruntime's version (optimized graphs hold device- and
 * version-specific nodes, and shapes folded for those dimensions).
 */
async function cachePath(
  onnx: OnnxModel,
  device: ResolvedDevice,
  dir: string,
  staticDims: Record<string, number>,
): Promise<string> {
  const dims = Object.keys(staticDims).length === 0
    ? new Uint8Array()
    : new TextEncoder().encode(JSON.stringify(Object.entries(staticDims).sort()));
  const bytes = new Uint8Array(onnx.model.length + dims.length);
  bytes.set(onnx.model);
  bytes.set(dims, onnx.model.length);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  const hex = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
  await Deno.mkdir(dir, { recursive: true });
  return join(dir, `${hex.slice(0, 32)}-${device}-ort${ort().version}.onnx`);
}

async function createSession(
  lib: Ort,
  onnx: OnnxModel,
  opts: Deno.PointerValue,
): Promise<Deno.PointerValue> {
  const fail = (error: Error) =>
    new Error(`onnxruntime could not open the graph: ${error.message}`);
  if (!onnx.externalData && !onnx.linkedFiles) {
    const model = onnx.model;
    return await outAsync(async (p) => {
      const status = await lib.fn.CreateSessionFromArray(
        lib.env,
        model,
        BigInt(model.length),
        opts,
        p,
      );
      try {
        check(lib, status);
      } catch (error) {
        throw fail(error as Error);
      }
    });
  }
  return await withModelFile(onnx, (file) => createSessionFromFile(lib, file, opts));
}

async function createSessionFromFile(
  lib: Ort,
  file: string,
  opts: Deno.PointerValue,
): Promise<Deno.PointerValue> {
  const path = cstr(file);
  return await outAsync(async (p) => {
    const status = await lib.fn.CreateSession(lib.env, path, opts, p);
    try {
      check(lib, status);
    } catch (error) {
      throw new Error(`onnxruntime could not open the graph: ${(error as Error).message}`);
    }
  });
}

/** A graph in a native onnxruntime session. */
export class NativeProgram extends Program {
  readonly backend = "native" as const;
  #session: Deno.PointerValue;
  #names = new Map<string, Uint8Array<ArrayBuffer>>();
  #deviceMemory: Deno.PointerValue = null;
  /**
   * Where outputs not written into existing values go: `auto` (see {@linkcode #onHost}), or all
   * to the host or all to the device (the copiers that read and write device values).
   */
  #placement: "auto" | "host" | "device" = "auto";
  #copiers = new Map<string, Promise<NativeProgram>>();

  /**
   * Wraps an open session (see {@linkcode openNative}).
   *
   * @param session The `OrtSession*`, now owned.
   * @param device Where it runs.
   * @param onnx The model's interface.
   */
  constructor(session: Deno.PointerValue, device: ResolvedDevice, onnx: OnnxModel) {
    super(device, onnx.inputs, onnx.outputs);
    this.#session = session;
    for (const spec of [...onnx.inputs, ...onnx.outputs]) {
      this.#names.set(spec.name, cstr(spec.name));
    }
  }

  async runRaw(
    feeds: Record<string, Feed>,
    options: RunOptions = {},
  ): Promise<Record<string, Value>> {
    this.checkFeeds(feeds);
    const into = options.into ?? {};
    for (const [name, value] of Object.entries(into)) {
      const spec = this.outputs.find((s) => s.name === name);
      if (!spec) throw new Error(`Cannot write into "${name}": the graph has no such output`);
      if (value.backend !== "native" || (value as NativeValue).released) {
        throw new Error(`Cannot write output "${name}" into a released or non-native value`);
      }
    }
    const lib = ort();
    const session = this.#open();
    const temps: NativeValue[] = [];
    const binding = out((p) => check(lib, lib.fn.CreateIoBinding(session, p)));
    try {
      for (const spec of this.inputs) {
        const feed = feeds[spec.name];
        let value: NativeValue;
        if (isValue(feed)) value = feed as NativeValue;
        else {
          value = NativeValue.fromHost(hostFeed(spec, feed as HostTensor | number));
          temps.push(value);
        }
        check(lib, lib.fn.BindInput(binding, this.#names.get(spec.name)!, value.pointer));
      }
      for (const spec of this.outputs) {
        const target = into[spec.name] as NativeValue | undefined;
        const name = this.#names.get(spec.name)!;
        if (target) check(lib, lib.fn.BindOutput(binding, name, target.pointer));
        else check(lib, lib.fn.BindOutputToDevice(binding, name, this.#outputMemory(lib, spec)));
      }
      check(lib, await lib.fn.RunWithBinding(session, null, binding), "onnxruntime run failed");
      if (this.device === "cuda") check(lib, lib.fn.SynchronizeBoundOutputs(binding));
      const count = new BigUint64Array(1);
      const list = out((p) =>
        check(lib, lib.fn.GetBoundOutputValues(binding, lib.cpuAllocator, p, count))
      );
      const view = new Deno.UnsafePointerView(list!);
      const result: Record<string, Value> = {};
      this.outputs.forEach((spec, i) => {
        const pointer = view.getPointer(i * 8);
        // A value written into an existing one comes back as a second reference: drop it.
        if (spec.name in into) lib.fn.ReleaseValue(pointer);
        else result[spec.name] = adopt(lib, pointer, !this.#onHost(spec));
      });
      check(lib, lib.fn.AllocatorFree(lib.cpuAllocator, list));
      return result;
    } finally {
      lib.fn.ReleaseIoBinding(binding);
      for (const t of temps) t.release();
    }
  }

  async read(value: Value): Promise<HostTensor> {
    const v = value as NativeValue;
    if (!v.onDevice) return v.toHost();
    const copier = await this.#copier(v, "host");
    const { y } = await copier.runRaw({ x: v });
    try {
      return (y as NativeValue).toHost();
    } finally {
      y.release();
    }
  }

  async upload(tensor: HostTensor): Promise<Value> {
    const host = NativeValue.fromHost(tensor);
    if (this.device === "cpu") return host;
    try {
      const copier = await this.#copier(host, "device");
      return (await copier.runRaw({ x: host })).y;
    } finally {
      host.release();
    }
  }

  override async write(value: Value, tensor: HostTensor): Promise<void> {
    const v = value as NativeValue;
    if (!v.onDevice) return v.write(tensor);
    if (tensor.dtype !== v.dtype || tensor.shape.join() !== v.shape.join()) {
      throw new Error(`Cannot write ${tensor.dtype}[${tensor.shape}] into ${v.dtype}[${v.shape}]`);
    }
    using host = NativeValue.fromHost(tensor);
    const copier = await this.#copier(host, "device");
    await copier.runRaw({ x: host }, { into: { y: v } });
  }

  async zeros(dtype: DType, shape: readonly number[]): Promise<Value> {
    if (this.device === "cpu") return NativeValue.zeros(dtype, shape);
    const host = arrayFor(dtype, shape.reduce((a, b) => a * b, 1));
    return await this.upload({ dtype, shape: [...shape], data: host });
  }

  release(): Promise<void> {
    const lib = ort();
    if (this.#session !== null) lib.fn.ReleaseSession(this.#session);
    this.#session = null;
    if (this.#deviceMemory !== null) lib.fn.ReleaseMemoryInfo(this.#deviceMemory);
    this.#deviceMemory = null;
    return Promise.all([...this.#copiers.values()].map(async (c) => await (await c).release()))
      .then(() => {});
  }

  #open(): Deno.PointerValue {
    if (this.#session === null) throw new Error("This program was already released");
    return this.#session;
  }

  /**
   * Whether an output not written into an existing value goes to host memory: always on the CPU;
   * on a device for the copier that reads values, and for scalars (losses, norms, metrics), which
   * the host reads right away: onnxruntime copies them at the end of the run, sparing a second
   * run per scalar.
   */
  #onHost(spec: ValueSpec): boolean {
    if (this.device === "cpu" || this.#placement === "host") return true;
    return this.#placement === "auto" && spec.shape.length === 0;
  }

  /** Where an output not written into an existing value goes: host memory, or the device's. */
  #outputMemory(lib: Ort, spec: ValueSpec): Deno.PointerValue {
    if (this.#onHost(spec)) return lib.cpuMemory;
    // OrtDeviceAllocator = 0, device 0, OrtMemTypeDefault = 0.
    this.#deviceMemory ??= out((p) =>
      check(lib, lib.fn.CreateMemoryInfo(cstr("Cuda"), 0, 0, 0, p))
    );
    return this.#deviceMemory;
  }

  /** An Identity session that moves values of `like`'s dtype and rank to the host or the device. */
  #copier(like: NativeValue, to: "host" | "device"): Promise<NativeProgram> {
    const key = `${like.dtype}:${like.shape.length}:${to}`;
    if (!this.#copiers.has(key)) {
      const x = input("x", like.shape.map((_, i) => `d${i}`), like.dtype);
      const onnx = toOnnx({ y: x.stopGradient() });
      this.#copiers.set(
        key,
        openNative(onnx, this.device).then((p) => {
          p.#placement = to;
          return p;
        }),
      );
    }
    return this.#copiers.get(key)!;
  }
}
