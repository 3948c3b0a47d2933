/**
 * What the two JavaScript bindings of onnxruntime have in common. onnxruntime-node's and
 * onnxruntime-web's sessions implement one API (onnxruntime-common's): both return fresh tensors
 * and cannot write into existing ones, so `into` outputs are swapped into their values after the
 * run. The JS backend (`js.ts`) and the web backend (`web.ts`) differ only in how a session opens
 * and how a GPU tensor is read back; this module holds the rest, and imports neither binding so
 * the browser bundle never sees onnxruntime-node.
 *
 * @module
 */
import { arrayFor, type DType, type HostTensor } from "../graph/tensor.ts";
import type { OnnxModel } from "../graph/onnx.ts";
import {
  type Feed,
  hostFeed,
  isValue,
  Program,
  type ResolvedDevice,
  type RunOptions,
  type Value,
} from "./program.ts";

/** The part of an onnxruntime-common tensor this module uses. */
export interface OrtTensor {
  readonly type: string;
  readonly dims: readonly number[];
  readonly data: unknown;
  readonly location: string;
  dispose(): void;
}

/** The part of an onnxruntime-common session this module uses. */
export interface OrtSession {
  run(feeds: Record<string, never>): Promise<Record<string, unknown>>;
  release(): Promise<void>;
}

/** A binding's tensor constructor, the one thing of the binding itself that running needs. */
export type MakeTensor = (dtype: DType, data: HostTensor["data"], dims: number[]) => OrtTensor;

/** An onnxruntime-node or onnxruntime-web tensor (host memory or a GPU buffer) as a value. */
export class OrtJsValue implements Value {
  /**
   * @param backend The backend whose program made it.
   * @param tensor The tensor, now owned.
   */
  constructor(readonly backend: "js" | "web", public tensor: OrtTensor) {}

  get dtype(): DType {
    return this.tensor.type as DType;
  }

  get shape(): readonly number[] {
    return this.tensor.dims;
  }

  /** Holds `tensor` from now on, freeing the previous one. */
  replace(tensor: OrtTensor): void {
    this.release();
    this.tensor = tensor;
  }

  release(): void {
    if (this.tensor.location === "gpu-buffer") this.tensor.dispose();
  }
}

/** A graph in a session of one of onnxruntime's JavaScript bindings. */
export abstract class OrtJsProgram extends Program {
  abstract override readonly backend: "js" | "web";

  /**
   * @param session The session, now owned.
   * @param makeTensor The binding's tensor constructor.
   * @param device Where it runs.
   * @param onnx The model's interface.
   */
  constructor(
    readonly session: OrtSession,
    readonly makeTensor: MakeTensor,
    device: ResolvedDevice,
    onnx: OnnxModel,
  ) {
    super(device, onnx.inputs, onnx.outputs);
  }

  async runRaw(
    feeds: Record<string, Feed>,
    options: RunOptions = {},
  ): Promise<Record<string, Value>> {
    this.checkFeeds(feeds);
    const ortFeeds: Record<string, OrtTensor> = {};
    for (const spec of this.inputs) {
      const feed = feeds[spec.name];
      if (isValue(feed)) ortFeeds[spec.name] = (feed as OrtJsValue).tensor;
      else {
        const t = hostFeed(spec, feed as HostTensor | number);
        ortFeeds[spec.name] = this.makeTensor(t.dtype, t.data, [...t.shape]);
      }
    }
    const raw = await this.session.run(ortFeeds as Record<string, never>);
    const result: Record<string, Value> = {};
    for (const [name, tensor] of Object.entries(raw as Record<string, OrtTensor>)) {
      const target = options.into?.[name] as OrtJsValue | undefined;
      if (target) target.replace(tensor);
      else result[name] = new OrtJsValue(this.backend, tensor);
    }
    return result;
  }

  upload(tensor: HostTensor): Promise<Value> {
    const t = this.makeTensor(tensor.dtype, tensor.data.slice(), [...tensor.shape]);
    return Promise.resolve(new OrtJsValue(this.backend, t));
  }

  zeros(dtype: DType, shape: readonly number[]): Promise<Value> {
    const data = arrayFor(dtype, shape.reduce((a, b) => a * b, 1));
    return Promise.resolve(new OrtJsValue(this.backend, this.makeTensor(dtype, data, [...shape])));
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
