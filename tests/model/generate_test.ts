/**
 * Generation: the KV-cache path against full recomputation, against PyTorch's greedy tokens
 * (tools/make_parity_fixtures.py), and the sampler's settings.
 */
import { deepStrictEqual, equal, ok } from "node:assert/strict";
import { Generator, loadConfig, loadWeights, pickToken } from "../../model/mod.ts";

Deno.test("Generator.generate() gives the same greedy tokens with and without the KV cache", async () => {
  const config = await loadConfig("model/tiny");
  const weights = await loadWeights("model/tiny", config);
  const gen = await Generator.create(config);
  // Different prompt lengths: the shorter one is left-padded.
  const prompts = [[509, 374, 30, 40, 50, 510, 509], [509, 100, 200]];
  const options = { max_new_tokens: 12, eos_token_id: -1 };
  const cached = await gen.generate(weights, prompts, options);
  const full = await gen.generate(weights, prompts, { ...options, use_cache: false });
  await gen.release();
  deepStrictEqual(cached, full);
  equal(cached[0].length, 12);
});

Deno.test("Generator.generate() matches PyTorch greedy decoding", async () => {
  const dir = "tests/fixtures/parity/llama_gqa";
  const config = await loadConfig(dir);
  const weights = await loadWeights(dir, config);
  const { prompts, tokens } = JSON.parse(await Deno.readTextFile(`${dir}/greedy.json`));
  const gen = await Generator.create(config);
  const out = await gen.generate(weights, prompts, { max_new_tokens: 6, eos_token_id: -1 });
  await gen.release();
  deepStrictEqual(out, tokens);
});

Deno.test("Generator.generate() stops a row at EOS and keeps the EOS", async () => {
  const dir = "tests/fixtures/parity/llama_gqa";
  const config = await loadConfig(dir);
  const weights = await loadWeights(dir, config);
  const { prompts, tokens } = JSON.parse(await Deno.readTextFile(`${dir}/greedy.json`));
  const gen = await Generator.create(config);
  const eos = tokens[0][2];
  const out = await gen.generate(weights, prompts, { max_new_tokens: 6, eos_token_id: eos });
  await gen.release();
  deepStrictEqual(out[0], tokens[0].slice(0, 3));
});

Deno.test("pickToken() samples with temperature and top-p", () => {
  const logits = new Float32Array([0, 2, 1, -1]);
  let seed = 1;
  const rand = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
  equal(pickToken(logits, {}, rand), 1);
  // A nucleus of 0.5 holds only the most likely token.
  for (let i = 0; i < 20; i++) equal(pickToken(logits, { do_sample: true, top_p: 0.5 }, rand), 1);
  const counts = [0, 0, 0, 0];
  for (let i = 0; i < 2000; i++) counts[pickToken(logits, { do_sample: true }, rand)]++;
  // p = softmax([0, 2, 1, -1]) ≈ [0.087, 0.644, 0.237, 0.032].
  ok(Math.abs(counts[1] / 2000 - 0.644) < 0.05, `counts ${counts}`);
  const hot = [0, 0, 0, 0];
  for (let i = 0; i < 2000; i++) {
    hot[pickToken(logits, { do_sample: true, temperature: 100 }, rand)]++;
  }
  ok(hot.every((c) => c > 350), `counts ${hot}`);
});
