/** The native backend's binding: values, dtypes the JS API lacks, and its errors. */
import assert from "node:assert/strict";
import { input } from "../../graph/mod.ts";
import { explainCudaFailure } from "../../runtime/cuda.ts";
import { NativeValue, openNative } from "../../runtime/native.ts";
import { inPlaceSafe, Program, TrainStep } from "../../runtime/mod.ts";

const f32 = (shape: number[], values: number[]) => ({
  dtype: "float32" as const,
  shape,
  data: Float32Array.from(values),
});

Deno.test("NativeValue holds bfloat16 and float16 bits and a graph casts them", async () => {
  // 1.5, -2 and 0.25 in bfloat16 (the top 16 bits of their float32 patterns) and in IEEE half.
  const bf16 = {
    dtype: "bfloat16" as const,
    shape: [3],
    data: new Uint16Array([0x3fc0, 0xc000, 0x3e80]),
  };
  const f16 = {
    dtype: "float16" as const,
    shape: [3],
    data: new Uint16Array([0x3e00, 0xc000, 0x3400]),
  };
  const a = input("a", [3], "bfloat16");
  const b = input("b", [3], "float16");
  const p = await Program.compile({ y: a.cast("float32").add(b.cast("float32")) });
  using va = NativeValue.fromHost(bf16);
  using vb = NativeValue.fromHost(f16);
  assert.deepEqual(Array.from(va.toHost().data as Uint16Array), [0x3fc0, 0xc000, 0x3e80]);
  const { y } = await p.run({ a: va, b: vb });
  assert.deepEqual(Array.from(y.data as Float32Array), [3, -4, 0.5]);
  await p.release();
});

Deno.test("NativeValue refuses use after release", () => {
  const v = NativeValue.fromHost(f32([1], [1]));
  v.release();
  v.release(); // idempotent
  assert.throws(() => v.toHost(), /already released/);
});

Deno.test("openNative() reports onnxruntime's message for a model it cannot load", async () => {
  const broken = { model: new Uint8Array([8, 1, 0x3a, 0xff]), inputs: [], outputs: [] };
  await assert.rejects(
    openNative(broken, "cpu"),
    /^Error: onnxruntime could not open the graph: .+/,
  );
});

Deno.test("NativeProgram.runRaw() turns a failing run into onnxruntime's message", async () => {
  const x = input("x", [2, 3]);
  const index = input("index", [2, 1], "int64");
  const p = await Program.compile({ z: x.takeAlongAxis(index, -1) });
  const bad = { dtype: "int64" as const, shape: [2, 1], data: new BigInt64Array([0n, 7n]) };
  await assert.rejects(
    p.run({ x: f32([2, 3], [1, 2, 3, 4, 5, 6]), index: bad }),
    /^Error: onnxruntime run failed: .*(out of|bounds|range)/i,
  );
  await p.release();
});

Deno.test("ort() names the missing library and the fix", async () => {
  const script = 'import { ort } from "./runtime/ort.ts"; ort();';
  for (
    const [lib, expected] of [
      [
        "/nonexistent/libonnxruntime.so.1",
        /Cannot load onnxruntime: no file at \/nonexistent.*ORT_LIB/,
      ],
      [
        new URL("../../deno.json", import.meta.url).pathname,
        /Cannot load onnxruntime from .*deno\.json/,
      ],
    ] as const
  ) {
    const { code, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["eval", script],
      env: { ORT_LIB: lib },
      cwd: new URL("../..", import.meta.url).pathname,
    }).output();
    assert.notEqual(code, 0);
    assert.match(new TextDecoder().decode(stderr), expected);
  }
});

Deno.test("inPlaceSafe() allows the optimizer's own update and refuses a later reader", () => {
  const w = input("w", [2]);
  const m = input("m", [2]);
  const g = input("g", [2]);
  const mNext = m.mul(0.9).add(g.mul(0.1));
  const wNext = w.sub(mNext.mul(0.01));
  assert.ok(inPlaceSafe({ wNext, mNext }, "w", wNext));
  assert.ok(inPlaceSafe({ wNext, mNext }, "m", mNext));
  // A reader of w whose result does not feed wNext may run after the write.
  assert.ok(!inPlaceSafe({ wNext, norm: w.mul(w).sum() }, "w", wNext));
  // ... also through a view (Reshape) of w.
  assert.ok(!inPlaceSafe({ wNext, r: w.reshape([1, 2]).mul(2) }, "w", wNext));
  // An output that is only a renamed input cannot be written in place.
  assert.ok(!inPlaceSafe({ same: w.reshape([2]) }, "w", w.reshape([2])));
});

Deno.test("TrainStep holds frozen bfloat16 inputs and trains only its parameters", async () => {
  const w = input("w", [3]);
  const base = input("base", [3], "bfloat16");
  const loss = w.mul(base.cast("float32")).sum();
  const step = await TrainStep.create({
    loss,
    params: [w],
    frozen: [base],
    optimizer: { name: "sgd" },
  });
  assert.deepEqual(step.dataInputs, []);
  step.setParams({ w: f32([3], [1, 1, 1]) });
  assert.throws(
    () => step.setFrozen({ other: f32([3], [0, 0, 0]) }),
    /"other" is not a frozen input/,
  );
  assert.throws(
    () => step.setFrozen({ base: f32([3], [0, 0, 0]) }),
    /Frozen input "base" is .*got float32/,
  );
  step.setFrozen({
    base: { dtype: "bfloat16", shape: [3], data: new Uint16Array([0x3fc0, 0xc000, 0x3e80]) },
  });
  const { loss: l } = await step.step({}, { lr: 1 });
  assert.equal(l, 1.5 - 2 + 0.25);
  // SGD: w − lr · ∂loss/∂w = w − base.
  const state = await step.readState();
  assert.deepEqual(Array.from(state.params.w.data as Float32Array), [-0.5, 3, 0.75]);
  assert.deepEqual(Object.keys(state.params), ["w"]);
  assert.deepEqual(Object.keys(step.paramFeeds()).sort(), ["base", "w"]);
  await step.release();
});

Deno.test("openNative() caches the optimized graph and reopens it with the same results", async () => {
  const dir = await Deno.makeTempDir();
  const x = input("x", ["B", 3]);
  const w = input("w", [3, 2]);
  const graph = { y: x.matmul(w).tanh().sum(1).softplus() };
  const feeds = {
    x: f32([2, 3], [0.1, -0.2, 0.3, 0.4, 0.5, -0.6]),
    w: f32([3, 2], [1, 2, -3, 0.5, 0.25, -1]),
  };
  const first = await Program.compile(graph, { cacheDir: dir });
  const files = [...Deno.readDirSync(dir)].map((e) => e.name);
  assert.equal(files.length, 1);
  assert.match(files[0], /^[0-9a-f]{32}-cpu-ort[\d.]+\.onnx$/);
  // The same graph built again (new tensor ids) hits the same file.
  const rebuilt = () => {
    const x = input("x", ["B", 3]);
    const w = input("w", [3, 2]);
    return { y: x.matmul(w).tanh().sum(1).softplus() };
  };
  const again = await Program.compile(rebuilt(), { cacheDir: dir });
  const [a, b] = [await first.run(feeds), await again.run(feeds)];
  assert.deepEqual(a.y.data, b.y.data);
  assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), files);
  await first.release();
  await again.release();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("explainCudaFailure() names the missing CUDA library and the install routes", async () => {
  const dir = await Deno.makeTempDir();
  const lib = { path: `${dir}/libonnxruntime.so.1` };
  const routes = /allow-scripts=npm:onnxruntime-node.*ORT_LIB.*asus4/;
  const absent = explainCudaFailure(lib, new Error("Failed to load library")).message;
  assert.match(
    absent,
    /^Cannot use --device cuda: .*libonnxruntime_providers_cuda\.so does not exist/,
  );
  assert.match(absent, routes);
  await Deno.writeFile(`${dir}/libonnxruntime_providers_cuda.so`, new Uint8Array());
  for (const missing of ["libcublasLt.so.12", "libcudnn.so.9", "libcudart.so.13"]) {
    const ort = new Error(
      `Failed to load library ${dir}/libonnxruntime_providers_cuda.so with error: ` +
        `${missing}: cannot open shared object file: No such file or directory`,
    );
    const message = explainCudaFailure(lib, ort).message;
    assert.match(message, new RegExp(`: ${missing.replaceAll(".", "\\.")} is missing`));
    assert.match(message, routes);
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("staticDims fold a step's shape arithmetic away (nothing left for a CPU on a device)", async () => {
  const dir = await Deno.makeTempDir();
  const opsRun = async (staticDims?: Record<string, number>) => {
    const w = input("w", [4, 3]);
    const x = input("x", ["N", 4]);
    const h = x.matmul(w).tanh();
    const profile = `${dir}/${staticDims ? "static" : "symbolic"}`;
    const step = await TrainStep.create({
      loss: h.mul(h).mean(),
      params: [w],
      profile,
      staticDims,
    });
    step.setParams({ w: f32([4, 3], Array.from({ length: 12 }, (_, i) => i / 10)) });
    const { loss } = await step.step({ x: f32([2, 4], [1, 2, 3, 4, 5, 6, 7, 8]) }, { lr: 0.1 });
    if (staticDims) {
      await assert.rejects(() => step.step({ x: f32([3, 4], new Array(12).fill(1)) }, { lr: 0.1 }));
    }
    await step.release();
    const ops = new Set<string>();
    for (const entry of Deno.readDirSync(dir)) {
      if (!entry.name.startsWith(profile.split("/").pop()!)) continue;
      const events = JSON.parse(Deno.readTextFileSync(`${dir}/${entry.name}`));
      for (const e of events) if (e.cat === "Node") ops.add(e.args.op_name);
    }
    return { loss, ops };
  };
  const symbolic = await opsRun();
  const fixed = await opsRun({ N: 2 });
  assert.ok(
    symbolic.ops.has("Shape"),
    `the symbolic step computes N at run time: ${[...symbolic.ops]}`,
  );
  assert.ok(!fixed.ops.has("Shape"), `ops left with N fixed: ${[...fixed.ops]}`);
  assert.ok(Math.abs(fixed.loss - symbolic.loss) < 1e-6);
  await Deno.remove(dir, { recursive: true });
});
