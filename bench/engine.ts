/**
 * Engine benchmark: times full train steps (forward, backward, clipping, AdamW) of a stack of
 * pre-norm transformer blocks (RMSNorm, causal multi-head attention, SwiGLU MLP) and prints step
 * time, achieved TFLOP/s and host memory.
 *
 *   deno task bench:engine [--device cpu|cuda|webgpu|auto] [--batch 4] [--seq 128] [--dim 256]
 *                          [--heads 4] [--layers 2] [--steps 10] [--warmup 2]
 *
 * FLOPs count the matmuls only, as 3× the forward pass (backward ≈ 2× forward).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { input, type Tensor, where } from "../graph/mod.ts";
import { parseDevice, TrainStep } from "../runtime/mod.ts";
import { arange } from "../graph/ops.ts";

const { values } = parseArgs({
  options: {
    device: { type: "string", default: "cpu" },
    batch: { type: "string", default: "4" },
    seq: { type: "string", default: "128" },
    dim: { type: "string", default: "256" },
    heads: { type: "string", default: "4" },
    layers: { type: "string", default: "2" },
    steps: { type: "string", default: "10" },
    warmup: { type: "string", default: "2" },
  },
});
const device = parseDevice(values.device!);
const [B, T, D, H, L, steps, warmup] = [
  values.batch,
  values.seq,
  values.dim,
  values.heads,
  values.layers,
  values.steps,
  values.warmup,
].map(Number);
const F = Math.round((8 * D) / 3 / 64) * 64; // SwiGLU hidden size, as Llama
const Dh = D / H;

const params: Tensor[] = [];
const param = (name: string, shape: number[]) => {
  const p = input(name, shape);
  params.push(p);
  return p;
};

function rmsNorm(x: Tensor, weight: Tensor): Tensor {
  return x.mul(x.mul(x).mean(-1, true).add(1e-6).rsqrt()).mul(weight);
}

function block(x: Tensor, i: number, causal: Tensor): Tensor {
  const heads = (t: Tensor) => t.reshape(["B", "T", H, Dh]).transpose([0, 2, 1, 3]);
  const h = rmsNorm(x, param(`l${i}.norm1`, [D]));
  const qkv = h.matmul(param(`l${i}.qkv`, [D, 3 * D]));
  const [q, k, v] = [0, 1, 2].map((j) => heads(qkv.slice(-1, j * D, (j + 1) * D)));
  const scores = where(causal, q.matmul(k.transpose()).mul(1 / Math.sqrt(Dh)), -1e9);
  const attn = scores.softmax(-1).matmul(v).transpose([0, 2, 1, 3]).reshape(["B", "T", D]);
  x = x.add(attn.matmul(param(`l${i}.out`, [D, D])));
  const m = rmsNorm(x, param(`l${i}.norm2`, [D]));
  const gateUp = m.matmul(param(`l${i}.gate_up`, [D, 2 * F]));
  const mlp = gateUp.slice(-1, 0, F).silu().mul(gateUp.slice(-1, F));
  return x.add(mlp.matmul(param(`l${i}.down`, [F, D])));
}

const x = input("x", ["B", "T", D]);
const target = input("target", ["B", "T", D]);
const pos = arange(x, 1);
const causal = pos.unsqueeze(1).le(pos.unsqueeze(0)).unsqueeze(0).unsqueeze(0);
let h = x;
for (let i = 0; i < L; i++) h = block(h, i, causal);
const loss = h.sub(target).pow(2).mean();

const buildStart = performance.now();
const step = await TrainStep.create({ loss, params, maxGradNorm: 1, device });
const buildMs = performance.now() - buildStart;

let seed = 1;
const random = (n: number, scale: number) =>
  Float32Array.from({ length: n }, () => {
    seed = (seed * 16807) % 2147483647;
    return (seed / 2147483647 - 0.5) * 2 * scale;
  });
const size = (s: readonly (number | string)[]) => (s as number[]).reduce((a, b) => a * b, 1);
step.setParams(Object.fromEntries(params.map((p) => [p.name!, {
  dtype: "float32" as const,
  shape: p.shape as number[],
  data: p.rank === 1 ? new Float32Array(size(p.shape)).fill(1) : random(size(p.shape), 0.05),
}])));
const feeds = {
  x: { dtype: "float32" as const, shape: [B, T, D], data: random(B * T * D, 1) },
  target: { dtype: "float32" as const, shape: [B, T, D], data: random(B * T * D, 1) },
};

const rssStart = Deno.memoryUsage().rss;
const times: number[] = [];
let last = 0;
for (let i = 0; i < warmup + steps; i++) {
  const t0 = performance.now();
  last = (await step.step(feeds, { lr: 1e-4 })).loss;
  if (i >= warmup) times.push(performance.now() - t0);
}
const rssEnd = Deno.memoryUsage().rss;

const perTokenForward = 2 * L * (D * 3 * D + D * D + 3 * D * F) + 2 * L * 2 * T * D;
const flops = 3 * perTokenForward * B * T;
const median = times.sort((a, b) => a - b)[Math.floor(times.length / 2)];
const mib = (b: number) => (b / 2 ** 20).toFixed(0);
console.log(JSON.stringify({
  device: step.device,
  shape: { batch: B, seq: T, dim: D, heads: H, layers: L, ffn: F },
  params: params.reduce((n, p) => n + size(p.shape), 0),
  build_ms: Math.round(buildMs),
  step_ms_median: +median.toFixed(1),
  step_ms_min: +times[0].toFixed(1),
  tokens_per_s: Math.round((B * T) / (median / 1000)),
  tflops: +(flops / (median / 1000) / 1e12).toFixed(3),
  host_rss_mib: { start: mib(rssStart), end: mib(rssEnd) },
  final_loss: last,
}));
await step.release();
