/** The Program interface over both backends: feeds, devices, external data, errors. */
import assert from "node:assert/strict";
import * as g from "../../graph/mod.ts";
import { input } from "../../graph/mod.ts";
import { parseDevice, Program } from "../../runtime/mod.ts";

for (const backend of ["native", "js"] as const) {
  Deno.test(`Program.run() on the ${backend} backend checks feeds against declared shapes`, async () => {
    const x = input("x", ["B", 2]);
    const y = input("y", ["B"]);
    const p = await Program.compile({ z: x.sum(1).add(y) }, { backend });
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
    await assert.rejects(
      p.run({ x: x3, y: { dtype: "float64", shape: [3], data: new Float64Array(3) } }),
      /Input "y" is float32, got a float64 feed/,
    );
    await p.release();
  });
}

Deno.test("parseDevice() names the valid devices", () => {
  assert.equal(parseDevice("webgpu"), "webgpu");
  assert.throws(
    () => parseDevice("tpu"),
    /Unknown device "tpu": expected one of cpu, cuda, webgpu, auto/,
  );
});

Deno.test("Program.compile() on cuda without its provider explains how to install it", async () => {
  const x = input("x", [1]);
  try {
    const p = await Program.compile({ y: x.neg() }, { device: "cuda" });
    await p.release(); // this machine has the CUDA provider: nothing to check
  } catch (error) {
    // One line naming what is missing and the three install routes.
    const message = (error as Error).message;
    assert.match(message, /^Cannot use --device cuda: .*(missing|does not exist)/);
    assert.match(message, /allow-scripts=npm:onnxruntime-node.*ORT_LIB.*asus4/);
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
