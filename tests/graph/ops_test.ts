/**
 * Every differentiable primitive (and the composites users reach for) checked against central
 * finite differences in float64 on the CPU EP. Tolerance 1e-6 relative: with h = 1e-6 the
 * truncation error is O(h²) ≈ 1e-12 and the rounding error O(ε/h) ≈ 1e-10 times the values' scale.
 */
import * as g from "../../graph/mod.ts";
import type { Tensor } from "../../graph/mod.ts";
import { type CheckInput, gradcheck } from "./_gradcheck.ts";

const x = (...shape: number[]): CheckInput => ({ shape });
const named = (declared: g.Shape, ...shape: number[]): CheckInput => ({ shape, declared });

const cases: [string, (...t: Tensor[]) => Tensor, CheckInput[], { awayFromZero?: number }?][] = [
  ["add broadcasts both ways", (a, b) => a.add(b), [x(2, 1, 3), x(4, 1)]],
  ["sub broadcasts a scalar", (a, b) => a.sub(b), [x(3, 2), x()]],
  ["mul broadcasts leading axes", (a, b) => a.mul(b), [x(2, 3), x(4, 2, 3)]],
  ["div", (a, b) => a.div(b), [x(2, 3), x(3)], { awayFromZero: 0.5 }],
  ["pow with tensor exponent", (a, b) => a.abs().add(0.5).pow(b), [x(3), x(3)]],
  ["pow with constant exponent", (a) => a.pow(3), [x(2, 2)]],
  ["maximum", (a, b) => a.maximum(b), [x(5), x(5)]],
  ["minimum", (a, b) => a.minimum(b), [x(5), x(5)]],
  ["neg", (a) => a.neg(), [x(3)]],
  ["exp", (a) => a.exp(), [x(3)]],
  ["log", (a) => a.abs().log(), [x(4)]],
  ["sqrt", (a) => a.abs().sqrt(), [x(4)], { awayFromZero: 0.3 }],
  ["rsqrt", (a) => a.abs().rsqrt(), [x(4)], { awayFromZero: 0.3 }],
  ["abs", (a) => a.abs(), [x(4)]],
  ["tanh", (a) => a.tanh(), [x(4)]],
  ["sigmoid", (a) => a.sigmoid(), [x(4)]],
  ["softplus", (a) => a.softplus(), [x(4)]],
  ["logSigmoid", (a) => a.logSigmoid(), [x(4)]],
  ["relu", (a) => a.relu(), [x(6)]],
  ["silu", (a) => a.silu(), [x(4)]],
  ["gelu (tanh)", (a) => g.gelu(a, "tanh"), [x(4)]],
  ["sin and cos", (a) => g.sin(a).mul(g.cos(a)), [x(4)]],
  ["clamp", (a) => a.clamp(-0.5, 0.7), [x(8)]],
  ["matmul", (a, b) => a.matmul(b), [x(3, 4), x(4, 2)]],
  ["matmul batched with broadcast", (a, b) => a.matmul(b), [x(2, 1, 3, 4), x(5, 4, 2)]],
  ["transpose", (a) => a.transpose([2, 0, 1]), [x(2, 3, 4)]],
  ["reshape with -1", (a) => a.reshape([-1, 6]).mul(a.reshape([-1, 6])), [x(2, 3, 2)]],
  [
    "reshape with dynamic sizes",
    (a) => a.reshape([-1, 4]).exp().reshape(["B", "T", 4]),
    [named(["B", "T", 4], 2, 3, 4)],
  ],
  ["expand", (a) => a.expand([3, 2, 4]), [x(2, 1)]],
  ["expandLike to a dynamic size", (a, b) => g.expandLike(a, b).mul(b), [
    x(1, 3),
    named(["B", 3], 4, 3),
  ]],
  ["squeeze and unsqueeze", (a) => a.squeeze(1).unsqueeze(0).exp(), [x(3, 1, 2)]],
  ["concat", (a, b) => g.concat([a, b], 1), [x(2, 3), x(2, 1)]],
  ["concat on a dynamic axis", (a, b) => g.concat([a, b.exp()], 0), [
    named(["B", 2], 3, 2),
    named(["C", 2], 2, 2),
  ]],
  ["slice", (a) => a.slice(1, 1, 3), [x(2, 4)]],
  ["slice negative from the end", (a) => a.slice(-1, 0, -1), [x(2, 4)]],
  ["slice a dynamic axis", (a) => a.slice(1, 1).mul(a.slice(1, 0, -1)), [
    named(["B", "T"], 2, 5),
  ]],
  [
    "gather (embedding lookup with repeats)",
    (w, ids) => w.gather(ids),
    [x(5, 3), {
      shape: [2, 3],
      declared: ["B", "T"],
      constant: { dtype: "int64", data: [0, 4, 4, 1, 0, 2] },
    }],
  ],
  [
    "scatterInto (replaced places take no gradient from data)",
    (data, at, updates) => g.scatterInto(data, at, updates),
    [x(5), { shape: [2], constant: { dtype: "int64", data: [3, 0] } }, x(2)],
  ],
  [
    "ScatterND adding with repeats (what gather's gradient makes)",
    (data, at, updates) =>
      g.apply("ScatterND", [data, at.unsqueeze(1), updates], { reduction: "add" }, data.shape),
    [x(4), { shape: [3], constant: { dtype: "int64", data: [2, 0, 2] } }, x(3)],
  ],
  [
    "takeAlongAxis",
    (a, idx) => a.takeAlongAxis(idx, -1),
    [x(2, 3, 5), { shape: [2, 3, 1], constant: { dtype: "int64", data: [0, 4, 2, 2, 1, 3] } }],
  ],
  [
    "where",
    (c, a, b) => g.where(c, a, b),
    [{ shape: [2, 3], constant: { dtype: "bool", data: [1, 0, 0, 1, 1, 0] } }, x(2, 3), x(3)],
  ],
  ["sum over axes", (a) => a.sum([0, 2]), [x(2, 3, 4)]],
  ["sum keepDims", (a) => a.sum(1, true), [x(2, 3)]],
  ["sumSquares over an axis", (a) => g.sumSquares(a, 1), [x(2, 3)]],
  ["mean over a dynamic axis", (a) => a.mean(0), [named(["B", 3], 4, 3)]],
  ["max", (a) => a.max(-1), [x(3, 4)]],
  ["logSoftmax", (a) => a.logSoftmax(), [x(3, 5)]],
  ["softmax", (a) => a.softmax(0), [x(3, 4)]],
  ["logSumExp", (a) => g.logSumExp(a, -1), [x(2, 6)]],
  ["cumsum", (a) => a.cumsum(1), [x(2, 4)]],
  ["cumsum exclusive reverse", (a) => a.cumsum(0, { exclusive: true, reverse: true }), [x(4, 2)]],
];

for (const [name, f, inputs, options] of cases) {
  Deno.test(`grad() matches finite differences: ${name}`, async () => {
    await gradcheck(f, inputs, options);
  });
}

Deno.test("grad() matches finite differences: a max with ties splits the gradient", async () => {
  await gradcheck((a) => a.max(-1), [{ shape: [1, 4], data: [0.5, 0.9, 0.9, -0.2] }]);
});

// onnxruntime's CPU EP has no float64 Erf, and a float32 round trip hides small perturbations:
// these run the differences with h = 1e-3, where float32 rounding (≈1e-7/h) and truncation (≈h²)
// errors are both near 1e-4, so 2e-3 is a tolerance that still catches a wrong rule (errors ≥ 1e-1).
Deno.test("grad() matches finite differences: gelu (erf) in float32", async () => {
  await gradcheck((a) => g.gelu(a.cast("float32")).cast("float64"), [x(6)], { h: 1e-3, tol: 2e-3 });
});

Deno.test("grad() matches finite differences: cast between floats", async () => {
  await gradcheck((a) => a.cast("float32").exp().cast("float64"), [x(3)], { h: 1e-3, tol: 2e-3 });
});
