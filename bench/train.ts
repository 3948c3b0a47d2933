/**
 * Full train-step benchmark: the policy's forward and backward through the real decoder, a
 * direct-alignment loss, clipping and AdamW — reference log-probs fed as from the cache — on
 * random tokens, and prints step time, tokens/s, achieved TFLOP/s and peak host memory.
 *
 *   deno task bench [--model smollm2-135m|tiny|DIR] [--batch_size 1] [--max_length 128]
 *                   [--device cpu|cuda|webgpu|auto] [--loss dpo] [--steps 5] [--warmup 1]
 *
 * `smollm2-135m` is SmolLM2-135M's architecture (from its config.json) with random weights, so
 * the benchmark needs no download. FLOPs: 6 · parameters · tokens (forward + backward matmuls)
 * plus attention's 12 · layers · T · hidden per token. `batch_size` counts pairs: 2× sequences.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { algorithm } from "../algorithms/mod.ts";
import { type HostTensor } from "../graph/mod.ts";
import { parseDevice, TrainStep } from "../runtime/mod.ts";
import { loadConfig, parseConfig } from "../model/config.ts";
import { loadWeights, weightShapes } from "../model/weights.ts";
import { batchFeeds, pickFeeds } from "../trainer/batches.ts";
import { buildStepGraph } from "../trainer/step_graph.ts";
import type { PairedBatch } from "../data/types.ts";

const SMOLLM2_135M = {
  model_type: "llama",
  hidden_size: 576,
  intermediate_size: 1536,
  num_hidden_layers: 30,
  num_attention_heads: 9,
  num_key_value_heads: 3,
  vocab_size: 49152,
  max_position_embeddings: 8192,
  rope_theta: 100000,
  rms_norm_eps: 1e-5,
  tie_word_embeddings: true,
};

const { values } = parseArgs({
  options: {
    model: { type: "string", default: "smollm2-135m" },
    batch_size: { type: "string", default: "1" },
    max_length: { type: "string", default: "128" },
    device: { type: "string", default: "cpu" },
    loss: { type: "string", default: "dpo" },
    steps: { type: "string", default: "5" },
    warmup: { type: "string", default: "1" },
  },
});
const device = parseDevice(values.device!);
const [B, T, steps, warmup] = [values.batch_size, values.max_length, values.steps, values.warmup]
  .map(Number);
const presets: Record<string, string> = { tiny: "model/tiny" };
const config = values.model === "smollm2-135m"
  ? parseConfig(SMOLLM2_135M, "SmolLM2-135M preset")
  : await loadConfig(presets[values.model!] ?? values.model!);

let seed = 12345;
const uniform = () => (seed = (seed * 48271) % 2147483647) / 2147483647;
const weights: Record<string, HostTensor> = values.model === "smollm2-135m"
  ? Object.fromEntries(
    Object.entries(weightShapes(config)).map(([name, shape]) => {
      const n = shape.reduce((a, b) => a * b, 1);
      const data = name.endsWith("norm.weight")
        ? new Float32Array(n).fill(1)
        : Float32Array.from({ length: n }, () => (uniform() - 0.5) * 0.07);
      return [name, { dtype: "float32" as const, shape, data }];
    }),
  )
  : await loadWeights(presets[values.model!] ?? values.model!, config);

const algo = algorithm(values.loss!);
if (algo.data !== "paired") {
  throw new Error(`The benchmark feeds paired data: "${algo.name}" is not`);
}
const graph = buildStepGraph(config, { algorithm: algo, hp: algo.defaults, kind: "paired" });
const buildStart = performance.now();
const step = await TrainStep.create({
  loss: graph.loss,
  params: graph.model.params,
  metrics: graph.metrics,
  maxGradNorm: 1,
  device,
});
const compileMs = performance.now() - buildStart;
step.setParams(weights);

// 2B sequences of T tokens: the first half prompt, the second half completion.
const N = 2 * B;
const batch: PairedBatch = {
  kind: "paired",
  shape: [N, T],
  inputIds: Int32Array.from({ length: N * T }, () => Math.floor(uniform() * config.vocab_size)),
  attentionMask: new Float32Array(N * T).fill(1),
  completionMask: Float32Array.from({ length: N * T }, (_, i) => (i % T) >= T / 2 ? 1 : 0),
  promptLengths: new Int32Array(N).fill(T / 2),
  completionLengths: new Int32Array(N).fill(T / 2),
  pairs: B,
  indices: [...Array(B).keys()],
  extras: {},
};
const reference = Float32Array.from({ length: N }, () => -uniform() * T);
const feeds = pickFeeds(step.dataInputs, batchFeeds(batch, { groups: 2, reference }));

const times: number[] = [];
let peakRss = Deno.memoryUsage().rss;
for (let i = 0; i < warmup + steps; i++) {
  const t0 = performance.now();
  await step.step(feeds, { lr: 1e-5 });
  if (i >= warmup) times.push(performance.now() - t0);
  peakRss = Math.max(peakRss, Deno.memoryUsage().rss);
}
const params = Object.values(weights).reduce((n, w) => n + w.data.length, 0);
const tokens = N * T;
const flops = 6 * params * tokens + 12 * config.num_hidden_layers * T * config.hidden_size * tokens;
const median = times.sort((a, b) => a - b)[Math.floor(times.length / 2)];
console.log(JSON.stringify({
  device: step.device,
  model: values.model,
  params,
  loss: algo.name,
  batch_pairs: B,
  sequences: N,
  max_length: T,
  compile_ms: Math.round(compileMs),
  step_ms_median: +median.toFixed(1),
  tokens_per_s: Math.round(tokens / (median / 1000)),
  tflops: +(flops / (median / 1000) / 1e12).toFixed(4),
  peak_host_rss_mib: Math.round(peakRss / 2 ** 20),
}));
await step.release();
