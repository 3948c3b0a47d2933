/**
 * Symbolic tensors: the nodes of a train-step graph.
 *
 * A `Tensor` is an immutable record of the primitive that produced it, its inputs, its ONNX
 * attributes, its dtype and its shape. Shapes hold static sizes (numbers) and named dynamic
 * dimensions (strings such as `"B"` or `"T"`), checked at build time by each primitive's shape
 * rule. Methods are sugar over the functions of `ops.ts`, so expressions read like the math:
 * `logits.logSoftmax().takeAlongAxis(labels, -1).neg().mean()`.
 *
 * @module
 */
import * as ops from "./ops.ts";
import { f32ToBf16 } from "./_bf16.ts";

/** Element types the engine knows, named as onnxruntime names them. */
export type DType =
  | "float32"
  | "float64"
  | "float16"
  | "bfloat16"
  | "int64"
  | "int32"
  | "bool"
  | "uint8";

/** One dimension: a static size, or the name of a dynamic size (e.g. `"B"`). */
export type Dim = number | string;
/** A tensor shape. */
export type Shape = readonly Dim[];

/** ONNX TensorProto.DataType codes. */
export const ONNX_DTYPE: Readonly<Record<DType, number>> = {
  float32: 1,
  uint8: 2,
  int32: 6,
  int64: 7,
  bool: 9,
  float16: 10,
  float64: 11,
  bfloat16: 16,
};

/** Bytes per element of each dtype (host arrays, files, device buffers alike). */
export const DTYPE_BYTES: Readonly<Record<DType, number>> = {
  float32: 4,
  uint8: 1,
  int32: 4,
  int64: 8,
  bool: 1,
  float16: 2,
  float64: 8,
  bfloat16: 2,
};

/** The dtype of an ONNX TensorProto.DataType code. */
export function dtypeOfCode(code: number): DType {
  const found = Object.entries(ONNX_DTYPE).find(([, c]) => c === code);
  if (!found) throw new Error(`Unsupported ONNX data type code: ${code}`);
  return found[0] as DType;
}

/** Host data for one tensor (what is fed to, or read back from, a session). */
export type HostArray =
  | Float32Array
  | Float64Array
  | Uint16Array
  | BigInt64Array
  | Int32Array
  | Uint8Array;

/** A tensor's value on the host: flat data plus its concrete shape. */
export interface HostTensor {
  /** Element type. */
  dtype: DType;
  /** Concrete sizes. */
  shape: number[];
  /** Row-major data. */
  data: HostArray;
}

/**
 * A tensor's bytes in a file (e.g. a weight inside `model.safetensors`): raw little-endian data of
 * `length` bytes at `offset`. A constant made of it never enters JavaScript memory: the emitted
 * model points at the file as ONNX external data, and onnxruntime maps it.
 */
export interface StoredTensor {
  /** Element type. */
  dtype: DType;
  /** Concrete sizes. */
  shape: number[];
  /** Absolute path of the file. */
  file: string;
  /** Byte offset of the data in the file. */
  offset: number;
  /** Byte length of the data. */
  length: number;
}

/** An ONNX attribute value: integers, floats (tagged), strings, int lists or a tensor. */
export type AttrValue =
  | number
  | string
  | number[]
  | { float: number }
  | { floats: number[] }
  | { tensor: HostTensor };

/** Attributes of a node, by ONNX attribute name. */
export type Attrs = Readonly<Record<string, AttrValue>>;

let nextId = 0;

/** A node of the symbolic graph. Build them with `input`, `constant` and the ops. */
export class Tensor {
  /** Unique, increasing: a topological order of creation. */
  readonly id: number = nextId++;

  /**
   * @param op Primitive name (a key of the primitive table, or "Input" / "Const").
   * @param inputs Operand tensors, in ONNX input order.
   * @param attrs ONNX attributes.
   * @param dtype Element type of the result.
   * @param shape Shape of the result.
   * @param name Graph input name (inputs only).
   * @param value Data (constants only).
   * @param stored Where the data of a file-backed constant lies (instead of `value`).
   */
  constructor(
    readonly op: string,
    readonly inputs: readonly Tensor[],
    readonly attrs: Attrs,
    readonly dtype: DType,
    readonly shape: Shape,
    readonly name?: string,
    readonly value?: HostTensor,
    readonly stored?: StoredTensor,
  ) {}

  /** Number of dimensions. */
  get rank(): number {
    return this.shape.length;
  }

  /** True for floating-point tensors (the ones gradients flow through). */
  get isFloat(): boolean {
    return isFloat(this.dtype);
  }

  /** Readable description for error messages, e.g. `float32[B,T,64]`. */
  toString(): string {
    return `${this.dtype}[${this.shape.join(",")}]`;
  }

  /** Elementwise `this + other` with broadcasting. */
  add(other: Tensor | number): Tensor {
    return ops.add(this, other);
  }
  /** Elementwise `this - other` with broadcasting. */
  sub(other: Tensor | number): Tensor {
    return ops.sub(this, other);
  }
  /** Elementwise `this * other` with broadcasting. */
  mul(other: Tensor | number): Tensor {
    return ops.mul(this, other);
  }
  /** Elementwise `this / other` with broadcasting. */
  div(other: Tensor | number): Tensor {
    return ops.div(this, other);
  }
  /** Elementwise `this ** exponent`. */
  pow(exponent: Tensor | number): Tensor {
    return ops.pow(this, exponent);
  }
  /** Elementwise maximum. */
  maximum(other: Tensor | number): Tensor {
    return ops.maximum(this, other);
  }
  /** Elementwise minimum. */
  minimum(other: Tensor | number): Tensor {
    return ops.minimum(this, other);
  }
  /** `-this`. */
  neg(): Tensor {
    return ops.neg(this);
  }
  /** `e^this`. */
  exp(): Tensor {
    return ops.exp(this);
  }
  /** Natural logarithm. */
  log(): Tensor {
    return ops.log(this);
  }
  /** Square root. */
  sqrt(): Tensor {
    return ops.sqrt(this);
  }
  /** `1 / sqrt(this)`. */
  rsqrt(): Tensor {
    return ops.rsqrt(this);
  }
  /** Absolute value. */
  abs(): Tensor {
    return ops.abs(this);
  }
  /** Hyperbolic tangent. */
  tanh(): Tensor {
    return ops.tanh(this);
  }
  /** Logistic sigmoid. */
  sigmoid(): Tensor {
    return ops.sigmoid(this);
  }
  /** `log σ(this)`, stable for large |x|. */
  logSigmoid(): Tensor {
    return ops.logSigmoid(this);
  }
  /** `log(1 + e^this)`, stable for large |x|. */
  softplus(): Tensor {
    return ops.softplus(this);
  }
  /** `max(this, 0)`. */
  relu(): Tensor {
    return ops.relu(this);
  }
  /** `this · σ(this)`. */
  silu(): Tensor {
    return ops.silu(this);
  }
  /** Clamps into `[min, max]`. */
  clamp(min: number, max: number): Tensor {
    return ops.clamp(this, min, max);
  }
  /** Batched matrix product (numpy `matmul` semantics, both operands at least 2-D). */
  matmul(other: Tensor): Tensor {
    return ops.matmul(this, other);
  }
  /** Permutes axes; without `perm`, swaps the last two. */
  transpose(perm?: number[]): Tensor {
    return ops.transpose(this, perm);
  }
  /** Reshapes; dims may name dynamic sizes, and one may be -1. */
  reshape(shape: Shape): Tensor {
    return ops.reshape(this, shape);
  }
  /** Broadcasts to `shape`. */
  expand(shape: Shape): Tensor {
    return ops.expand(this, shape);
  }
  /** Inserts size-1 axes. */
  unsqueeze(axes: number | number[]): Tensor {
    return ops.unsqueeze(this, axes);
  }
  /** Removes size-1 axes. */
  squeeze(axes: number | number[]): Tensor {
    return ops.squeeze(this, axes);
  }
  /** `this[start:end]` along `axis` (end may be omitted for "to the end"). */
  slice(axis: number, start: number, end?: number): Tensor {
    return ops.slice(this, axis, start, end);
  }
  /** Rows of `this` (axis 0 by default) picked by integer `indices` (an embedding lookup). */
  gather(indices: Tensor, axis = 0): Tensor {
    return ops.gather(this, indices, axis);
  }
  /** numpy `take_along_axis`: picks one element per position along `axis`. */
  takeAlongAxis(indices: Tensor, axis: number): Tensor {
    return ops.takeAlongAxis(this, indices, axis);
  }
  /** Sum over `axes` (all axes when omitted). */
  sum(axes?: number | number[], keepDims = false): Tensor {
    return ops.sum(this, axes, keepDims);
  }
  /** Mean over `axes` (all axes when omitted). */
  mean(axes?: number | number[], keepDims = false): Tensor {
    return ops.mean(this, axes, keepDims);
  }
  /** Maximum over `axes` (all axes when omitted). */
  max(axes?: number | number[], keepDims = false): Tensor {
    return ops.max(this, axes, keepDims);
  }
  /** Softmax along `axis`. */
  softmax(axis = -1): Tensor {
    return ops.softmax(this, axis);
  }
  /** Log-softmax along `axis` (log-sum-exp stable). */
  logSoftmax(axis = -1): Tensor {
    return ops.logSoftmax(this, axis);
  }
  /** Cumulative sum along `axis`. */
  cumsum(axis: number, options?: { exclusive?: boolean; reverse?: boolean }): Tensor {
    return ops.cumsum(this, axis, options);
  }
  /** Converts the element type. */
  cast(dtype: DType): Tensor {
    return ops.cast(this, dtype);
  }
  /** Elementwise `this == other` (bool). */
  eq(other: Tensor | number): Tensor {
    return ops.compare("Equal", this, other);
  }
  /** Elementwise `this < other` (bool). */
  lt(other: Tensor | number): Tensor {
    return ops.compare("Less", this, other);
  }
  /** Elementwise `this <= other` (bool). */
  le(other: Tensor | number): Tensor {
    return ops.compare("LessOrEqual", this, other);
  }
  /** Elementwise `this > other` (bool). */
  gt(other: Tensor | number): Tensor {
    return ops.compare("Greater", this, other);
  }
  /** Elementwise `this >= other` (bool). */
  ge(other: Tensor | number): Tensor {
    return ops.compare("GreaterOrEqual", this, other);
  }
  /** The same values, with no gradient flowing back. */
  stopGradient(): Tensor {
    return ops.stopGradient(this);
  }
}

/** True for floating-point dtypes. */
export function isFloat(dtype: DType): boolean {
  return dtype === "float32" || dtype === "float64" || dtype === "float16" ||
    dtype === "bfloat16";
}

/**
 * Declares a graph input (data, or a trainable parameter fed each step).
 *
 * @param name Input name in the ONNX graph.
 * @param shape Static sizes and named dynamic sizes.
 * @param dtype Element type.
 * @returns The input tensor.
 * @example
 * ```ts
 * import { input } from "./tensor.ts";
 * const x = input("x", ["B", 4]);
 * if (x.toString() !== "float32[B,4]") throw new Error("unexpected");
 * ```
 */
export function input(name: string, shape: Shape, dtype: DType = "float32"): Tensor {
  return new Tensor("Input", [], {}, dtype, shape, name);
}

/** Typed-array constructor per dtype. */
export function arrayFor(dtype: DType, length: number): HostArray {
  switch (dtype) {
    case "float32":
      return new Float32Array(length);
    case "float64":
      return new Float64Array(length);
    case "float16":
    case "bfloat16":
      return new Uint16Array(length);
    case "int64":
      return new BigInt64Array(length);
    case "int32":
      return new Int32Array(length);
    case "bool":
    case "uint8":
      return new Uint8Array(length);
  }
}

/** Converts numbers (or a typed array) to the typed array of `dtype`. */
export function toArray(dtype: DType, values: ArrayLike<number | bigint> | HostArray): HostArray {
  const out = arrayFor(dtype, values.length);
  if (out instanceof BigInt64Array) {
    for (let i = 0; i < values.length; i++) out[i] = BigInt(values[i]);
  } else if (dtype === "bfloat16") {
    // Scalars of mixed-precision graphs (a scale, a mask value, zeros), rounded to nearest even.
    out.set(f32ToBf16(Float32Array.from(values as ArrayLike<number>, Number)));
  } else if (dtype === "float16") {
    throw new Error(`Cannot convert numbers to ${dtype}: feed float32 and cast inside the graph`);
  } else {
    for (let i = 0; i < values.length; i++) out[i] = Number(values[i]);
  }
  return out;
}

/**
 * A constant tensor (an ONNX initializer): frozen weights, tables, scalars.
 *
 * @param values Flat data (or a single number for a scalar).
 * @param shape Concrete shape; `[]` for a scalar.
 * @param dtype Element type.
 * @returns The constant tensor.
 * @example
 * ```ts
 * import { constant } from "./tensor.ts";
 * const c = constant([1, 2, 3, 4], [2, 2]);
 * if (c.toString() !== "float32[2,2]") throw new Error("unexpected");
 * ```
 */
export function constant(
  values: number | ArrayLike<number | bigint> | HostArray,
  shape: number[] = [],
  dtype: DType = "float32",
): Tensor {
  const flat = typeof values === "number" ? [values] : values;
  const size = shape.reduce((a, b) => a * b, 1);
  if (flat.length !== size) {
    throw new Error(
      `Constant has ${flat.length} values for shape [${shape}]: expected ${size}`,
    );
  }
  const data = ArrayBuffer.isView(flat) && arrayFor(dtype, 0).constructor === flat.constructor
    ? flat as HostArray
    : toArray(dtype, flat);
  return new Tensor("Const", [], {}, dtype, shape, undefined, { dtype, shape, data });
}

/**
 * A constant whose data stays in a file (see {@linkcode StoredTensor}): frozen weights that
 * onnxruntime maps from the checkpoint itself, in the checkpoint's dtype.
 *
 * @param stored The file region, dtype and shape.
 * @returns The constant tensor.
 * @example
 * ```ts
 * import { storedConstant } from "./tensor.ts";
 * const w = storedConstant({ dtype: "bfloat16", shape: [2, 2], file: "/m.safetensors", offset: 8, length: 8 });
 * if (w.toString() !== "bfloat16[2,2]") throw new Error("unexpected");
 * ```
 */
export function storedConstant(stored: StoredTensor): Tensor {
  return new Tensor("Const", [], {}, stored.dtype, stored.shape, undefined, undefined, stored);
}
