/**
 * The runtime on a device, one stage per process, so a stage that crashes (a segfault ends the
 * process without a word) is named by the last line printed:
 *
 *   for s in 1 2 3 4 5; do deno run -A bench/cuda_smoke.ts $s cuda; done
 *
 * 1 a graph with a device output read back; 2 a scalar output; 3 upload, zeros, write, read;
 * 4 a train step (MLP, AdamW, in place) for 3 steps, its state read back, released; 5 the same
 * with gradient accumulation and fixed buffers (on cuda: CUDA graphs); 6 NCCL's all-reduce of a
 * device buffer in a one-rank communicator (a single GPU holds one NCCL rank): the sum over one
 * rank must leave it unchanged, once NCCL's stream is synchronized. bench/gpu_check.sh runs them
 * first, then the decoder's step at growing sizes.
 *
 * @module
 */
import { input } from "../graph/mod.ts";
import { parseDevice, Program, TrainStep } from "../runtime/mod.ts";
import { NativeValue } from "../runtime/native.ts";
import { Nccl } from "../runtime/nccl.ts";

const [stage, device] = [Number(Deno.args[0]), parseDevice(Deno.args[1] ?? "cuda")];
const say = (what: string) => console.log(JSON.stringify({ smoke: stage, device, what }));
const f32 = (shape: number[], values: number[]) => ({
  dtype: "float32" as const,
  shape,
  data: Float32Array.from(values),
});

say("start");
if (stage === 1 || stage === 2) {
  const x = input("x", [3]);
  const p = await Program.compile(stage === 1 ? { y: x.mul(2) } : { y: x.mul(2).sum() }, {
    device,
  });
  say("compiled");
  const raw = await p.runRaw({ x: f32([3], [1, 2, 3]) });
  say("ran");
  const y = await p.read(raw.y);
  say(`read ${Array.from(y.data as Float32Array)}`);
  raw.y.release();
  await p.release();
  say("released");
} else if (stage === 3) {
  const p = await Program.compile({ y: input("x", [2]).add(1) }, { device });
  const v = await p.upload(f32([2], [5, 6]));
  say(`uploaded, read ${Array.from((await p.read(v)).data as Float32Array)}`);
  const z = await p.zeros("float32", [2]);
  say(`zeros ${Array.from((await p.read(z)).data as Float32Array)}`);
  await p.write(z, f32([2], [7, 8]));
  say(`written ${Array.from((await p.read(z)).data as Float32Array)}`);
  const { y } = await p.run({ x: z });
  say(`ran on it ${Array.from(y.data as Float32Array)}`);
  v.release();
  z.release();
  await p.release();
  say("released");
} else if (stage === 6) {
  const p = await Program.compile({ y: input("x", [4]).add(1) }, { device });
  const values = [0.5, -1.25, 3, 1e-7];
  const v = await p.upload(f32([4], values));
  if (!(v instanceof NativeValue) || !v.onDevice) say("skipped: the value is not in device memory");
  else {
    const nccl = Nccl.init({ rank: 0, size: 1, broadcast() {} }, 0);
    say("communicator made");
    nccl.sumFloat32(v.dataPointer, values.length);
    nccl.synchronize();
    const after = Array.from((await p.read(v)).data as Float32Array);
    const same = after.every((x, i) => x === Math.fround(values[i]));
    say(`all-reduced ${after}: ${same ? "unchanged" : "CHANGED"}`);
    nccl.destroy();
  }
  v.release();
  await p.release();
  say("released");
} else {
  const w = input("w", [4, 3]);
  const x = input("x", ["N", 4]);
  const h = x.matmul(w).tanh();
  const loss = h.mul(h).mean();
  const step = await TrainStep.create({
    loss,
    params: [w],
    maxGradNorm: 1,
    device,
    fixedBuffers: stage === 5,
  });
  say("compiled");
  step.setParams({ w: f32([4, 3], Array.from({ length: 12 }, (_, i) => (i - 6) / 10)) });
  const batch = (k: number) => ({ x: f32([2, 4], Array.from({ length: 8 }, (_, i) => i * k)) });
  for (let i = 0; i < 3; i++) {
    const r = await step.step(stage === 5 ? [batch(0.1), batch(0.2)] : batch(0.1), { lr: 0.01 });
    say(`step ${i} loss ${r.loss} grad_norm ${r.gradNorm}`);
  }
  const state = await step.readState();
  say(`state w[0] ${state.params.w.data[0]} m[0] ${state.slots.m.w.data[0]}`);
  await step.release();
  say("released");
}
