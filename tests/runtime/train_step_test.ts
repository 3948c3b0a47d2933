/**
 * The compiled train step against an independent plain-TypeScript reference: a 2-layer MLP
 * (tanh hidden layer, softmax cross-entropy) with hand-written backprop, global-norm clipping and
 * AdamW written from the paper / PyTorch's documented update.
 */
import assert from "node:assert/strict";
import { type HostTensor, input, type OptimizerConfig, type Tensor } from "../../graph/mod.ts";
import { TrainStep } from "../../runtime/mod.ts";
import { rng } from "../graph/_gradcheck.ts";

const [N, D, H, C] = [6, 4, 5, 3];

interface Mlp {
  W1: Float64Array; // (D,H)
  b1: Float64Array; // (H)
  W2: Float64Array; // (H,C)
}

function initMlp(seed: number): Mlp {
  const r = rng(seed);
  const f = (n: number) => Float64Array.from({ length: n }, () => (r() - 0.5) * 1.2);
  return { W1: f(D * H), b1: f(H), W2: f(H * C) };
}

function dataset(seed: number, n: number) {
  const r = rng(seed);
  return {
    x: Float64Array.from({ length: n * D }, () => r() * 2 - 1),
    y: Array.from({ length: n }, () => Math.floor(r() * C)),
  };
}

/** Mean cross-entropy and its gradients, by hand. */
function referenceGrads(m: Mlp, x: Float64Array, y: number[]) {
  const n = y.length;
  const g = { W1: new Float64Array(D * H), b1: new Float64Array(H), W2: new Float64Array(H * C) };
  let loss = 0;
  for (let i = 0; i < n; i++) {
    const h = new Float64Array(H);
    for (let j = 0; j < H; j++) {
      let s = m.b1[j];
      for (let k = 0; k < D; k++) s += x[i * D + k] * m.W1[k * H + j];
      h[j] = Math.tanh(s);
    }
    const z = new Float64Array(C);
    for (let c = 0; c < C; c++) for (let j = 0; j < H; j++) z[c] += h[j] * m.W2[j * C + c];
    const zmax = Math.max(...z);
    const lse = zmax + Math.log(z.reduce((a, v) => a + Math.exp(v - zmax), 0));
    loss += (lse - z[y[i]]) / n;
    const dz = z.map((v, c) => (Math.exp(v - lse) - (c === y[i] ? 1 : 0)) / n);
    const dh = new Float64Array(H);
    for (let j = 0; j < H; j++) {
      for (let c = 0; c < C; c++) {
        g.W2[j * C + c] += h[j] * dz[c];
        dh[j] += m.W2[j * C + c] * dz[c];
      }
    }
    for (let j = 0; j < H; j++) {
      const ds = dh[j] * (1 - h[j] * h[j]);
      g.b1[j] += ds;
      for (let k = 0; k < D; k++) g.W1[k * H + j] += x[i * D + k] * ds;
    }
  }
  return { loss, g };
}

/** AdamW as documented by PyTorch (decoupled decay, bias corrections, eps after the rescale). */
function referenceAdamW(
  m: Mlp,
  steps: { x: Float64Array; y: number[] }[],
  hp: { lr: number[]; wd: number; maxNorm: number },
) {
  const [b1, b2, eps] = [0.9, 0.999, 1e-8];
  const keys = ["W1", "b1", "W2"] as const;
  const mom = Object.fromEntries(keys.map((k) => [k, new Float64Array(m[k].length)]));
  const vel = Object.fromEntries(keys.map((k) => [k, new Float64Array(m[k].length)]));
  const losses: number[] = [];
  steps.forEach(({ x, y }, t) => {
    const { loss, g } = referenceGrads(m, x, y);
    losses.push(loss);
    const norm = Math.sqrt(keys.reduce((s, k) => s + g[k].reduce((a, v) => a + v * v, 0), 0));
    const clip = Math.min(1, hp.maxNorm / (norm + 1e-6));
    const lr = hp.lr[t];
    for (const k of keys) {
      const decay = k === "b1" ? 0 : hp.wd; // biases are not decayed
      for (let i = 0; i < m[k].length; i++) {
        const gi = g[k][i] * clip;
        m[k][i] *= 1 - lr * decay;
        mom[k][i] = b1 * mom[k][i] + (1 - b1) * gi;
        vel[k][i] = b2 * vel[k][i] + (1 - b2) * gi * gi;
        const denom = Math.sqrt(vel[k][i]) / Math.sqrt(1 - b2 ** (t + 1)) + eps;
        m[k][i] -= (lr / (1 - b1 ** (t + 1))) * mom[k][i] / denom;
      }
    }
  });
  return losses;
}

function mlpGraph(dtype: "float32" | "float64") {
  const x = input("x", ["N", D], dtype);
  const y = input("y", ["N"], "int64");
  const W1 = input("W1", [D, H], dtype);
  const b1 = input("b1", [H], dtype);
  const W2 = input("W2", [H, C], dtype);
  const logits = x.matmul(W1).add(b1).tanh().matmul(W2);
  const loss = logits.logSoftmax().takeAlongAxis(y.unsqueeze(-1), -1).neg().mean();
  return { loss, params: [W1, b1, W2] as Tensor[] };
}

const host = (dtype: "float32" | "float64", shape: number[], v: Float64Array): HostTensor => ({
  dtype,
  shape,
  data: dtype === "float64" ? Float64Array.from(v) : Float32Array.from(v),
});

function feeds(dtype: "float32" | "float64", batch: { x: Float64Array; y: number[] }) {
  return {
    x: host(dtype, [batch.y.length, D], batch.x),
    y: {
      dtype: "int64" as const,
      shape: [batch.y.length],
      data: BigInt64Array.from(batch.y, BigInt),
    },
  };
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

async function trainBoth(
  dtype: "float32" | "float64",
  options: { accumulate?: number; fixedBuffers?: boolean } = {},
) {
  const batches = [1, 2, 3, 4, 5].map((s) => dataset(100 + s, N));
  const lr = [1e-2, 2e-2, 3e-2, 2e-2, 1e-2];
  const hp = { lr, wd: 0.1, maxNorm: 0.5 };
  const ref = initMlp(7);
  const init = initMlp(7);
  const refLosses = referenceAdamW(ref, batches, hp);

  const { loss, params } = mlpGraph(dtype);
  const optimizer: OptimizerConfig = { name: "adamw", weightDecay: hp.wd };
  const step = await TrainStep.create({
    loss,
    params,
    optimizer,
    maxGradNorm: hp.maxNorm,
    fixedBuffers: options.fixedBuffers,
  });
  step.setParams({
    W1: host(dtype, [D, H], init.W1),
    b1: host(dtype, [H], init.b1),
    W2: host(dtype, [H, C], init.W2),
  });
  const losses: number[] = [];
  for (const [t, batch] of batches.entries()) {
    const k = options.accumulate ?? 1;
    const micro = Array.from({ length: k }, (_, i) => {
      const rows = N / k;
      return feeds(dtype, {
        x: batch.x.slice(i * rows * D, (i + 1) * rows * D),
        y: batch.y.slice(i * rows, (i + 1) * rows),
      });
    });
    const result = await step.step(k === 1 ? micro[0] : micro, { lr: lr[t] });
    assert.equal(result.skipped, false);
    losses.push(result.loss);
  }
  const state = await step.readState();
  await step.release();
  return { ref, refLosses, losses, state };
}

Deno.test("TrainStep.step() matches a hand-written MLP + AdamW reference in float64", async () => {
  const { ref, refLosses, losses, state } = await trainBoth("float64");
  assert.equal(state.step, 5);
  for (const k of ["W1", "b1", "W2"] as const) {
    const diff = maxDiff(state.params[k].data as Float64Array, ref[k]);
    assert.ok(diff < 1e-9, `${k}: max difference ${diff}`);
  }
  const lossDiff = maxDiff(losses, refLosses);
  assert.ok(lossDiff < 1e-9, `loss: max difference ${lossDiff}`);
});

Deno.test("TrainStep.step() matches the reference to 1e-6 in float32", async () => {
  const { ref, state } = await trainBoth("float32");
  for (const k of ["W1", "b1", "W2"] as const) {
    const diff = maxDiff(state.params[k].data as Float32Array, ref[k]);
    assert.ok(diff < 1e-6, `${k}: max difference ${diff}`);
  }
});

Deno.test("TrainStep.step() with accumulated micro-batches equals the full batch", async () => {
  const full = await trainBoth("float64");
  const split = await trainBoth("float64", { accumulate: 3 });
  for (const k of ["W1", "b1", "W2"] as const) {
    const diff = maxDiff(split.state.params[k].data as Float64Array, full.ref[k]);
    assert.ok(diff < 1e-9, `${k}: max difference ${diff}`);
    const m = maxDiff(
      split.state.slots.m[k].data as Float64Array,
      full.state.slots.m[k].data as Float64Array,
    );
    assert.ok(m < 1e-12, `${k}: first moments differ by ${m}`);
  }
  assert.ok(maxDiff(split.losses, full.losses) < 1e-12);
});

Deno.test("TrainStep with fixedBuffers (every feed copied into a kept buffer) still matches the reference", async () => {
  // Each step feeds another batch and learning rate: a kept buffer not refreshed in place would
  // train on stale data and drift from the reference.
  for (const accumulate of [1, 3]) {
    const { ref, refLosses, losses, state } = await trainBoth("float64", {
      accumulate,
      fixedBuffers: true,
    });
    for (const k of ["W1", "b1", "W2"] as const) {
      const diff = maxDiff(state.params[k].data as Float64Array, ref[k]);
      assert.ok(diff < 1e-9, `${k} (accumulate ${accumulate}): max difference ${diff}`);
    }
    assert.ok(maxDiff(losses, refLosses) < 1e-9);
  }
});

Deno.test("TrainStep.step() skips an update whose loss is not finite", async () => {
  const w = input("w", [2]);
  const scale = input("scale", []);
  const step = await TrainStep.create({ loss: w.mul(scale).sum().log(), params: [w] });
  step.setParams({ w: { dtype: "float32", shape: [2], data: new Float32Array([1, 2]) } });
  const bad = await step.step({ scale: -1 }, { lr: 0.1 }); // log of a negative: NaN
  assert.equal(bad.skipped, true);
  assert.equal(step.stepCount, 0);
  assert.deepEqual(Array.from((await step.readState()).params.w.data as Float32Array), [1, 2]);
  const good = await step.step({ scale: 1 }, { lr: 0.1 });
  assert.equal(good.skipped, false);
  assert.equal(step.stepCount, 1);
  assert.notDeepEqual(Array.from((await step.readState()).params.w.data as Float32Array), [1, 2]);
  await step.release();
});

Deno.test("TrainStep.upload() copies the host values: their arrays may be freed after it", async () => {
  const w = input("w", [3]);
  const target = input("target", [3]);
  const loss = w.sub(target).pow(2).sum().mul(0.5);
  const step = await TrainStep.create({ loss, params: [w], optimizer: { name: "sgd" } });
  const data = new Float32Array([1, 2, 3]);
  step.setParams({ w: { dtype: "float32", shape: [3], data } });
  await step.upload();
  data.buffer.transfer(0); // what Session does with the parameters handed to it
  const t = { dtype: "float32" as const, shape: [3], data: new Float32Array([0, 0, 1]) };
  await step.step({ target: t }, { lr: 0.5 });
  assert.deepEqual(Array.from((await step.readState()).params.w.data as Float32Array), [0.5, 1, 2]);
  await step.release();
});

Deno.test("TrainStep.step() with SGD takes plain gradient steps", async () => {
  const w = input("w", [3]);
  const target = input("target", [3]);
  const loss = w.sub(target).pow(2).sum().mul(0.5);
  const step = await TrainStep.create({ loss, params: [w], optimizer: { name: "sgd" } });
  step.setParams({ w: { dtype: "float32", shape: [3], data: new Float32Array([1, 2, 3]) } });
  const t = { dtype: "float32" as const, shape: [3], data: new Float32Array([0, 0, 1]) };
  await step.step({ target: t }, { lr: 0.5 });
  // w - 0.5 (w - target) = [0.5, 1, 2]
  assert.deepEqual(Array.from((await step.readState()).params.w.data as Float32Array), [0.5, 1, 2]);
  await step.release();
});

Deno.test("TrainStep.loadState() resumes exactly where readState() left off", async () => {
  const { loss, params } = mlpGraph("float64");
  const batches = [1, 2, 3, 4].map((s) => feeds("float64", dataset(200 + s, N)));
  const init = initMlp(3);
  const initial = {
    W1: host("float64", [D, H], init.W1),
    b1: host("float64", [H], init.b1),
    W2: host("float64", [H, C], init.W2),
  };
  const a = await TrainStep.create({ loss, params });
  a.setParams(initial);
  for (const b of batches) await a.step(b, { lr: 0.05 });
  const b = await TrainStep.create({ loss, params });
  b.setParams(initial);
  for (const batch of batches.slice(0, 2)) await b.step(batch, { lr: 0.05 });
  const saved = await b.readState();
  const c = await TrainStep.create({ loss, params });
  c.loadState(saved);
  for (const batch of batches.slice(2)) await c.step(batch, { lr: 0.05 });
  const [sa, sc] = [await a.readState(), await c.readState()];
  assert.equal(sc.step, 4);
  for (const k of ["W1", "b1", "W2"]) {
    assert.deepEqual(
      Array.from(sc.params[k].data as Float64Array),
      Array.from(sa.params[k].data as Float64Array),
    );
  }
  await Promise.all([a.release(), b.release(), c.release()]);
});
