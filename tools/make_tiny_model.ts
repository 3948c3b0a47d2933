/**
 * Makes the embedded default model, model/tiny/{config.json, model.safetensors}: a 4-layer
 * Llama-architecture causal LM (hidden 128, 4 query / 2 key-value heads, SwiGLU 352, tied
 * embeddings; about 0.8M parameters, stored as bfloat16, about 1.6 MB) over the tiny tokenizer's
 * 512-token vocabulary, so `deno task train` runs offline on a fresh machine.
 *
 * How it is made (deterministic up to floating-point summation order):
 * 1. Random init as `transformers` does: N(0, 0.02) for embeddings and projections (seeded), 1
 *    for norm scales.
 * 2. A short pretraining with this project's own TrainStep: next-token cross-entropy on every
 *    token of the sample data (chosen and rejected completions of the paired files, completions
 *    of the unpaired file, each after its chat-templated prompt), AdamW, 300 steps of 16
 *    sequences, lr 3e-3 with 20 warmup steps and cosine decay to 10%. Training on chosen and
 *    rejected alike teaches the templates and the vocabulary without a preference, so a DPO run
 *    starts near 50% reward accuracy and has something to learn. About 15 s on 2 CPU cores.
 *
 * Regenerate with `deno task make:tiny-model` (the tokenizer files are left untouched).
 *
 * @module
 */
import { TrainStep } from "../runtime/mod.ts";
import { prepareData } from "../data/dataset.ts";
import { shuffle } from "../data/shuffle.ts";
import {
  batchInputs,
  buildCausalLM,
  completionIndexFeed,
  parseConfig,
  saveModel,
  sequenceLogps,
  weightShapes,
} from "../model/mod.ts";
import { loadTokenizer } from "../model/tokenizer.ts";

const TINY = new URL("../model/tiny", import.meta.url).pathname;
const SAMPLES = new URL("../data/samples", import.meta.url).pathname;
const SEED = 0;
const STEPS = 300;
const BATCH = 16;
const LR = 3e-3;
const WARMUP = 20;

const tokenizer = await loadTokenizer(TINY);
const config = parseConfig({
  architectures: ["LlamaForCausalLM"],
  model_type: "llama",
  vocab_size: tokenizer.vocabSize,
  hidden_size: 128,
  intermediate_size: 352,
  num_hidden_layers: 4,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  head_dim: 32,
  hidden_act: "silu",
  max_position_embeddings: 1024,
  rms_norm_eps: 1e-6,
  rope_theta: 10000.0,
  rope_scaling: null,
  attention_bias: false,
  mlp_bias: false,
  tie_word_embeddings: true,
  initializer_range: 0.02,
  bos_token_id: tokenizer.bosTokenId,
  eos_token_id: tokenizer.eosTokenId,
  pad_token_id: tokenizer.padTokenId,
});

// ---------------------------------------------------------------- sequences
const sequences: number[][] = [];
for (const file of ["ultrafeedback_sample.jsonl", "hh_sample.jsonl", "unpaired_sample.jsonl"]) {
  const data = await prepareData(
    { dataset_name: `${SAMPLES}/${file}`, max_length: 256 },
    tokenizer,
  );
  for (const e of data.train) {
    if (e.kind === "paired") {
      sequences.push([...e.promptIds, ...e.chosenIds], [...e.promptIds, ...e.rejectedIds]);
    } else {
      sequences.push([...e.promptIds, ...e.completionIds]);
    }
  }
}
console.log(`${sequences.length} sequences, ${sequences.flat().length} tokens`);

function batch(rows: number[][]) {
  const T = rows.reduce((t, r) => Math.max(t, r.length), 0);
  const ids = new BigInt64Array(rows.length * T).fill(BigInt(tokenizer.padTokenId));
  const mask = new Float32Array(rows.length * T);
  rows.forEach((r, n) => {
    r.forEach((id, t) => ids[n * T + t] = BigInt(id));
    mask.fill(1, n * T, n * T + r.length);
  });
  const shape = [rows.length, T];
  return {
    input_ids: { dtype: "int64" as const, shape, data: ids },
    attention_mask: { dtype: "float32" as const, shape, data: mask },
    completion_index: completionIndexFeed(shape, mask),
  };
}

// ---------------------------------------------------------------- init (seeded, as HF)
let state = SEED + 0x9e3779b9;
const uniform = () => {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
};
const normal = () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
const init = Object.fromEntries(
  Object.entries(weightShapes(config)).map(([name, shape]) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = name.endsWith("norm.weight")
      ? new Float32Array(n).fill(1)
      : Float32Array.from({ length: n }, () => 0.02 * normal());
    return [name, { dtype: "float32" as const, shape, data }];
  }),
);

// ---------------------------------------------------------------- pretraining
const model = buildCausalLM(config);
const inputs = batchInputs("int64");
// Every token after the first is a target: the completion mask is the attention mask.
const { sum, count } = sequenceLogps(model, { ...inputs, completionMask: inputs.attentionMask });
const loss = sum.sum().neg().div(count.sum());
const step = await TrainStep.create({
  loss,
  params: model.params,
  optimizer: { name: "adamw", weightDecay: 0.01 },
  maxGradNorm: 1,
});
step.setParams(init);
const started = performance.now();
let order: number[] = [];
for (let s = 0; s < STEPS; s++) {
  if (order.length < BATCH) order = [...order, ...shuffle(sequences.map((_, i) => i), SEED + s)];
  const rows = order.splice(0, BATCH).map((i) => sequences[i]);
  const progress = Math.max(0, s - WARMUP) / (STEPS - WARMUP);
  const lr = s < WARMUP
    ? LR * (s + 1) / WARMUP
    : LR * (0.1 + 0.9 * 0.5 * (1 + Math.cos(Math.PI * progress)));
  const result = await step.step(batch(rows), { lr });
  if (s % 25 === 0 || s === STEPS - 1) {
    console.log(`step ${s} loss ${result.loss.toFixed(4)} lr ${lr.toExponential(2)}`);
  }
}
console.log(`pretraining took ${((performance.now() - started) / 1000).toFixed(1)} s`);

// ---------------------------------------------------------------- save
const { params } = await step.readState();
await step.release();
const tmp = await Deno.makeTempDir();
await saveModel(`${tmp}/tiny`, { config, weights: params }, { dtype: "bfloat16" });
for (const file of ["config.json", "model.safetensors"]) {
  await Deno.copyFile(`${tmp}/tiny/${file}`, `${TINY}/${file}`);
}
await Deno.remove(tmp, { recursive: true });
const bytes = (await Deno.stat(`${TINY}/model.safetensors`)).size;
const n = Object.values(params).reduce((a, t) => a + t.data.length, 0);
console.log(`wrote ${TINY}: ${n} parameters, ${(bytes / 1e6).toFixed(2)} MB`);
