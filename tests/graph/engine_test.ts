/** Autodiff semantics and build-time errors. */
import assert from "node:assert/strict";
import * as g from "../../graph/mod.ts";
import { grad, input } from "../../graph/mod.ts";
import { Program } from "../../runtime/mod.ts";
import { gradcheck } from "./_gradcheck.ts";

const f64 = (shape: number[], values: number[]): g.HostTensor => ({
  dtype: "float64",
  shape,
  data: Float64Array.from(values),
});

Deno.test("grad() lets no gradient through stopGradient", async () => {
  const x = input("x", [3], "float64");
  const [dx] = grad(x.stopGradient().mul(x).sum(), [x]);
  const out = await (await Program.compile({ dx })).run({ x: f64([3], [1, 2, 3]) });
  assert.deepEqual(Array.from(out.dx.data as Float64Array), [1, 2, 3]); // not 2x
});

Deno.test("grad() lets no gradient through comparisons and integer casts", async () => {
  const x = input("x", [3], "float64");
  const mask = x.gt(0).cast("float64");
  const rounded = x.cast("int64").cast("float64");
  const [dx] = grad(mask.add(rounded).mul(x).sum(), [x]);
  const out = await (await Program.compile({ dx })).run({ x: f64([3], [-1.5, 0.5, 2.5]) });
  // d/dx [(mask + rounded) · x] with mask and rounded constant = mask + rounded
  assert.deepEqual(Array.from(out.dx.data as Float64Array), [-1, 1, 3]);
});

Deno.test("grad() gives broadcast operands gradients of their own shapes", () => {
  const a = input("a", [3, 1]);
  const b = input("b", [1, "T"]);
  const c = input("c", []);
  const [da, db, dc] = grad(a.add(b).mul(c).sum(), [a, b, c]);
  assert.deepEqual([da.shape, db.shape, dc.shape], [[3, 1], [1, "T"], []]);
});

Deno.test("grad() returns zeros for a parameter the loss does not use", async () => {
  const x = input("x", [2]);
  const unused = input("unused", [2, 2]);
  const [du] = grad(x.sum(), [unused]);
  const out = await (await Program.compile({ du })).run({});
  assert.deepEqual(Array.from(out.du.data as Float32Array), [0, 0, 0, 0]);
});

Deno.test("grad() throws naming an op that has no VJP", () => {
  const x = input("x", [2]);
  const padded = g.apply("Pad", [x, g.constant([1, 1], [2], "int64")], {}, [4]);
  assert.throws(() => grad(padded.sum(), [x]), /No VJP for op "Pad"/);
});

Deno.test("gradcheck() catches a wrong gradient", async () => {
  // The value is x² but the graph's gradient is x: finite differences see 2x.
  await assert.rejects(
    gradcheck((x) => x.stopGradient().mul(x), [{ shape: [3] }]),
    /Gradient mismatch/,
  );
});

Deno.test("ops throw at build time naming the op and the shapes", () => {
  const a = input("a", [2, 3]);
  assert.throws(
    () => a.add(input("b", [4])),
    /^Error: Add: sizes 3 and 4 do not broadcast \(operands float32\[2,3\], float32\[4\]\)$/,
  );
  assert.throws(() => a.matmul(input("w", [4, 5])), /MatMul: inner sizes differ/);
  assert.throws(() => a.add(input("c", ["B", 3])), /Add: sizes 2 and B do not broadcast/);
  assert.throws(() => a.reshape([4, 2]), /Reshape: cannot reshape float32\[2,3\] into \[4,2\]/);
  assert.throws(() => a.squeeze(0), /Squeeze: axis 0 has size 2, not 1/);
  assert.throws(() => a.sum(2), /axis 2 is out of range for rank 2/);
  assert.throws(() => a.add(input("d", [3], "float64")), /Add: dtypes differ/);
});

Deno.test("logSigmoid() and softplus() stay finite at extreme inputs", async () => {
  const x = input("x", [4]);
  const [dx] = grad(x.logSigmoid().sum(), [x]);
  const p = await Program.compile({ y: x.logSigmoid(), s: x.softplus(), dx });
  const out = await p.run({
    x: { dtype: "float32", shape: [4], data: new Float32Array([-200, -30, 30, 200]) },
  });
  const [y, s, d] = [out.y.data, out.s.data, out.dx.data] as Float32Array[];
  assert.deepEqual(Array.from(y, (v) => v + 0), [
    -200,
    -30,
    Math.fround(-Math.log1p(Math.exp(-30))),
    0,
  ]);
  assert.deepEqual(Array.from(s), [0, Math.fround(Math.log1p(Math.exp(-30))), 30, 200]);
  assert.ok(d.every(Number.isFinite) && Math.abs(d[0] - 1) < 1e-6 && d[3] === 0);
  await p.release();
});
