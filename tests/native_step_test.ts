/**
 * The tiny model's DPO train step on the native backend against the JS backend (same graphs, the
 * other binding), and in-place against out-of-place updates, over 20 steps with one forced
 * non-finite step (a NaN reference log-prob).
 */
import assert from "node:assert/strict";
import { algorithm } from "../algorithms/mod.ts";
import type { PairedBatch } from "../data/types.ts";
import { loadConfig } from "../model/config.ts";
import { TINY_MODEL_DIR } from "../model/load.ts";
import { loadWeights } from "../model/weights.ts";
import { type Backend, type StepResult, type TrainState, TrainStep } from "../runtime/mod.ts";
import { batchFeeds, pickFeeds } from "../trainer/batches.ts";
import { buildStepGraph } from "../trainer/step_graph.ts";
import { rng } from "./graph/_gradcheck.ts";

const STEPS = 20, BAD_STEP = 7, PAIRS = 2, T = 12;

async function run(backend: Backend, inPlace: boolean) {
  const config = await loadConfig(TINY_MODEL_DIR);
  const algo = algorithm("dpo");
  const graph = buildStepGraph(config, { algorithm: algo, hp: algo.defaults, kind: "paired" });
  const step = await TrainStep.create({
    loss: graph.loss,
    params: graph.model.params,
    metrics: graph.metrics,
    maxGradNorm: 1,
    optimizer: { name: "adamw", weightDecay: 0.01 },
    backend,
    inPlace,
  });
  step.setParams(await loadWeights(TINY_MODEL_DIR, config));
  const r = rng(5);
  const N = 2 * PAIRS;
  const results: StepResult[] = [];
  for (let i = 0; i < STEPS; i++) {
    const batch: PairedBatch = {
      kind: "paired",
      shape: [N, T],
      inputIds: Int32Array.from({ length: N * T }, () => Math.floor(r() * config.vocab_size)),
      attentionMask: new Float32Array(N * T).fill(1),
      completionMask: Float32Array.from({ length: N * T }, (_, j) => (j % T) >= T / 2 ? 1 : 0),
      promptLengths: new Int32Array(N).fill(T / 2),
      completionLengths: new Int32Array(N).fill(T / 2),
      pairs: PAIRS,
      indices: [...Array(PAIRS).keys()],
      extras: {},
    };
    const reference = Float32Array.from({ length: N }, () => i === BAD_STEP ? NaN : -r() * T);
    const feeds = pickFeeds(step.dataInputs, batchFeeds(batch, { groups: 2, reference }));
    results.push(await step.step(feeds, { lr: 1e-2 }));
  }
  const state = await step.readState();
  await step.release();
  return { results, state };
}

function bits(state: TrainState): Map<string, Uint32Array> {
  const out = new Map<string, Uint32Array>();
  for (const [name, t] of Object.entries(state.params)) {
    out.set(name, new Uint32Array(t.data.buffer.slice(0)));
  }
  for (const [s, tensors] of Object.entries(state.slots)) {
    for (const [name, t] of Object.entries(tensors)) {
      out.set(`${name}::${s}`, new Uint32Array(t.data.buffer.slice(0)));
    }
  }
  return out;
}

Deno.test("TrainStep in place and out of place agree bit for bit over 20 steps", async () => {
  const a = await run("native", true);
  const b = await run("native", false);
  assert.equal(a.results[BAD_STEP].skipped, true, "the NaN step is skipped");
  assert.equal(a.state.step, STEPS - 1);
  assert.deepEqual(a.results, b.results);
  const [x, y] = [bits(a.state), bits(b.state)];
  for (const [name, v] of x) assert.deepEqual(v, y.get(name), `${name} differs`);
});

Deno.test("TrainStep on the native backend matches the JS backend over 20 steps", async () => {
  const native = await run("native", true);
  const js = await run("js", true);
  let worst = 0;
  native.results.forEach((n, i) => {
    const j = js.results[i];
    assert.equal(n.skipped, j.skipped, `step ${i}: skip flags differ`);
    if (n.skipped) return;
    const pairs: [number, number][] = [[n.loss, j.loss], [n.gradNorm, j.gradNorm]];
    for (const k of Object.keys(j.metrics)) pairs.push([n.metrics[k], j.metrics[k]]);
    for (const [u, v] of pairs) worst = Math.max(worst, Math.abs(u - v));
  });
  assert.ok(worst <= 1e-6, `metrics differ by up to ${worst}`);
});
