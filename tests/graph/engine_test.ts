/** Autodiff semantics, build-time errors, feeds, devices and external data. */
import assert from "node:assert/strict";
import * as g from "../../graph/mod.ts";
import { grad, input, Program } from "../../graph/mod.ts";
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

Deno.test("Program.run() checks feeds against declared shapes", async () => {
  const x = input("x", ["B", 2]);
  const y = input("y", ["B"]);
  const p = await Program.compile({ z: x.sum(1).add(y) });
  const x3 = { dtype: "float32" as const, shape: [3, 2], data: new Float32Array(6) };
  await assert.rejects(
    p.run({ x: x3, y: { dtype: "float32", shape: [4], data: new Float32Array(4) } }),
    /Input "y" \[B\]: size "B" is 4 here but 3 in "x"/,
  );
  await assert.rejects(
    p.run({ x: { dtype: "float32", shape: [3, 5], data: new Float32Array(15) }, y: x3 }),
    /Input "x" \[B,2\]: axis 1 has size 5, expected 2/,
  );
  await assert.rejects(p.run({ x: x3 }), /Missing feed for input "y"/);
  const y3 = { dtype: "float32" as const, shape: [3], data: new Float32Array(3) };
  await assert.rejects(p.run({ x: x3, y: y3, w: y3 }), /Unknown feed "w"/);
  await p.release();
});

Deno.test("parseDevice() names the valid devices", () => {
  assert.equal(g.parseDevice("webgpu"), "webgpu");
  assert.throws(
    () => g.parseDevice("tpu"),
    /Unknown device "tpu": expected one of cpu, cuda, webgpu, auto/,
  );
});

Deno.test("Program.compile() on cuda without its provider explains how to install it", async () => {
  const x = input("x", [1]);
  try {
    const p = await Program.compile({ y: x.neg() }, { device: "cuda" });
    await p.release(); // this machine has the CUDA provider: nothing to check
  } catch (error) {
    assert.match(
      (error as Error).message,
      /Cannot use --device cuda: .*not installed.*allow-scripts/,
    );
  }
});

Deno.test("Program.compile() on auto falls back to a device that works", async () => {
  const x = input("x", [2]);
  const p = await Program.compile({ y: x.mul(2) }, { device: "auto" });
  const out = await p.run({ x: { dtype: "float32", shape: [2], data: new Float32Array([1, 2]) } });
  assert.deepEqual(Array.from(out.y.data as Float32Array), [2, 4]);
  await p.release();
});

Deno.test("Program.compile() stores large constants as external data", async () => {
  const n = 1024;
  const weights = Float32Array.from({ length: n }, (_, i) => i / n);
  const w = g.constant(weights, [n]);
  const x = input("x", [n]);
  const model = g.toOnnx({ y: x.mul(w).sum() }, { externalThreshold: 0 });
  assert.equal(model.externalData?.chunks.length, 1);
  assert.ok(model.model.length < n, "the weights are not inside the protobuf");
  const p = await Program.compile({ y: x.mul(w).sum() }, { externalThreshold: 0 });
  const ones = new Float32Array(n).fill(1);
  const out = await p.run({ x: { dtype: "float32", shape: [n], data: ones } });
  const expected = weights.reduce((a, b) => a + b, 0);
  assert.ok(Math.abs((out.y.data[0] as number) - expected) < 1e-3);
  await p.release();
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
