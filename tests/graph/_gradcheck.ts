/**
 * Gradient checking against central finite differences, in float64 on the CPU EP.
 *
 * For a builder `f(x0, x1, …)`, the checked scalar is `L = Σ f(x)·r` with a fixed random `r`, so
 * every output element contributes with a different weight. Analytic gradients come from `grad`;
 * numeric ones from `(L(x + h e_i) − L(x − h e_i)) / 2h` evaluated by the same forward graph.
 *
 * @module
 */
import { seededRandom } from "../../data/shuffle.ts";
import { grad, type HostTensor, input, type Shape, type Tensor } from "../../graph/mod.ts";
import { Program } from "../../runtime/mod.ts";

/** One input of a checked function. */
export interface CheckInput {
  /** Concrete shape fed at run time. */
  shape: number[];
  /** Declared shape (may name dynamic sizes); defaults to `shape`. */
  declared?: Shape;
  /** Values; default: seeded uniform in [-1.5, 1.5] kept away from 0 by `awayFromZero`. */
  data?: number[];
  /** Not differentiated (e.g. integer indices, bool masks). */
  constant?: { dtype: "int64" | "bool" | "float64"; data: number[] };
}

/** A seeded uniform generator, so failures are reproducible. */
export const rng = seededRandom;

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/**
 * Asserts that `grad` of `f` matches central differences within `tol` (max abs difference,
 * relative to max(1, |g|)).
 */
export async function gradcheck(
  f: (...x: Tensor[]) => Tensor,
  inputs: CheckInput[],
  options: { tol?: number; h?: number; seed?: number; awayFromZero?: number } = {},
): Promise<number> {
  const { tol = 1e-6, h = 1e-6, seed = 1, awayFromZero = 0.1 } = options;
  const random = rng(seed);
  const feeds: Record<string, HostTensor> = {};
  const xs = inputs.map((spec, i) => {
    const name = `x${i}`;
    if (spec.constant) {
      const { dtype, data } = spec.constant;
      const array = dtype === "int64"
        ? BigInt64Array.from(data, BigInt)
        : dtype === "bool"
        ? Uint8Array.from(data)
        : Float64Array.from(data);
      feeds[name] = { dtype, shape: spec.shape, data: array };
      return input(name, spec.declared ?? spec.shape, dtype);
    }
    const data = spec.data ?? Array.from({ length: size(spec.shape) }, () => {
      const v = random() * 3 - 1.5;
      return Math.abs(v) < awayFromZero ? v + Math.sign(v || 1) * awayFromZero : v;
    });
    feeds[name] = { dtype: "float64", shape: spec.shape, data: Float64Array.from(data) };
    return input(name, spec.declared ?? spec.shape, "float64");
  });
  const y = f(...xs);
  const probe = await Program.compile({ y });
  const yShape = (await probe.run(feeds)).y.shape;
  const r = input("r", y.shape, "float64");
  feeds.r = {
    dtype: "float64",
    shape: yShape,
    data: Float64Array.from({ length: size(yShape) }, () => random() * 2 - 1),
  };
  const loss = y.mul(r).sum();
  const wrt = xs.filter((_, i) => !inputs[i].constant);
  const grads = grad(loss, wrt);
  const outputs: Record<string, Tensor> = { loss };
  grads.forEach((g, i) => outputs[`g${i}`] = g);
  const program = await Program.compile(outputs);
  const analytic = await program.run(feeds);

  let worst = 0;
  for (const [k, x] of wrt.entries()) {
    const g = analytic[`g${k}`];
    const feed = feeds[x.name!];
    if (g.shape.join() !== feed.shape.join()) {
      throw new Error(`Gradient of ${x.name} has shape [${g.shape}], input has [${feed.shape}]`);
    }
    const data = feed.data as Float64Array;
    for (let i = 0; i < data.length; i++) {
      const saved = data[i];
      data[i] = saved + h;
      const plus = (await program.run(feeds)).loss.data[0] as number;
      data[i] = saved - h;
      const minus = (await program.run(feeds)).loss.data[0] as number;
      data[i] = saved;
      const numeric = (plus - minus) / (2 * h);
      const got = g.data[i] as number;
      const err = Math.abs(got - numeric) / Math.max(1, Math.abs(numeric));
      worst = Math.max(worst, err);
      if (!(err <= tol)) {
        throw new Error(
          `Gradient mismatch for ${x.name}[${i}]: autodiff ${got}, finite differences ${numeric}, ` +
            `difference ${err} > ${tol}`,
        );
      }
    }
  }
  await probe.release();
  await program.release();
  return worst;
}
