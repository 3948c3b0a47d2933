/**
 * Sizes known only at run time, as int64 graph values: the size of an axis, a whole shape, and
 * the small arithmetic on them that reshapes, slices and their gradients need.
 *
 * @module
 */
import { apply, normAxis } from "./primitives.ts";
import { constant, type Shape, Tensor } from "./tensor.ts";

/** An int64 1-D constant. */
export function ints(values: number[]): Tensor {
  return constant(values, [values.length], "int64");
}

/** Size of `axis` of `t`: a number when static, else an int64 [1] tensor read at run time. */
export function sizeOf(t: Tensor, axis: number): Tensor | number {
  const a = normAxis(axis, t.rank);
  const d = t.shape[a];
  return typeof d === "number" ? d : apply("Shape", [t], { start: a, end: a + 1 });
}

/** The full runtime shape of `t` as an int64 vector. */
export function shapeOf(t: Tensor): Tensor {
  return t.shape.every((d) => typeof d === "number")
    ? ints(t.shape as number[])
    : apply("Shape", [t]);
}

/** `a + b` for sizes, static when both are. */
export function addSizes(a: Tensor | number, b: Tensor | number): Tensor | number {
  if (typeof a === "number" && typeof b === "number") return a + b;
  return apply("Add", [asSize(a), asSize(b)]);
}

/** `-a` for a size. */
export function negSize(a: Tensor | number): Tensor | number {
  return typeof a === "number" ? -a : apply("Neg", [a]);
}

const asSize = (v: Tensor | number): Tensor => typeof v === "number" ? ints([v]) : v;

/** An int64 vector from static and runtime pieces. */
export function shapeVector(dims: (Tensor | number)[]): Tensor {
  if (dims.every((d) => typeof d === "number")) return ints(dims as number[]);
  return apply("Concat", dims.map(asSize), { axis: 0 });
}

/** Python-style index normalisation and clamping, with a runtime size if need be. */
export function clampIndex(i: number, size: Tensor | number): Tensor | number {
  if (typeof size === "number") return Math.min(Math.max(i < 0 ? i + size : i, 0), size);
  if (i >= 0) return apply("Min", [ints([i]), size]);
  return apply("Max", [apply("Add", [size, ints([i])]), ints([0])]);
}

/**
 * The runtime shape for a target that may name dynamic sizes. Names are looked up in the shapes of
 * `anchor` and its ancestors; at most one unresolved size becomes -1 (inferred by ONNX Reshape).
 */
export function targetShape(anchor: Tensor, target: Shape, allowInfer: boolean): Tensor {
  let inferred = false;
  const dims = target.map((d): Tensor | number => {
    if (typeof d === "number") {
      if (d === -1) {
        if (!allowInfer || inferred) throw new Error(`Shape [${target}] has more than one -1`);
        inferred = true;
      }
      return d;
    }
    const found = findDim(anchor, d);
    if (found) return found;
    if (!allowInfer || inferred) {
      throw new Error(`Size "${d}" of [${target}] is not a size of ${anchor} or its inputs`);
    }
    inferred = true;
    return -1;
  });
  return shapeVector(dims);
}

function findDim(anchor: Tensor, name: string): Tensor | null {
  const seen = new Set<number>();
  const stack = [anchor];
  while (stack.length) {
    const t = stack.pop()!;
    if (seen.has(t.id)) continue;
    seen.add(t.id);
    const axis = t.shape.indexOf(name);
    if (axis >= 0) return sizeOf(t, axis) as Tensor;
    stack.push(...t.inputs);
  }
  return null;
}

/** Reshapes `g` to the runtime shape of `like`. */
export function reshapeLike(g: Tensor, like: Tensor): Tensor {
  return apply("Reshape", [g, shapeOf(like)], {}, like.shape);
}

/** `x[start:end]` on `axis` with static or run-time bounds, and the resulting `shape`. */
export function sliceRange(
  x: Tensor,
  axis: number,
  start: Tensor | number,
  end: Tensor | number,
  shape: Shape,
): Tensor {
  return apply("Slice", [x, asSize(start), asSize(end), ints([axis])], {}, shape);
}
