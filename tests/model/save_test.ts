/**
 * saveModel(): HF-layout checkpoints that load back to identical weights and log-probs, in
 * float32, bfloat16 and shards, replacing an existing folder atomically.
 */
import { deepStrictEqual, equal, ok } from "node:assert/strict";
import { loadConfig, loadWeights, saveModel } from "../../model/mod.ts";
import { scoreExamples } from "../../score.ts";
import type { PairedExample } from "../../data/types.ts";

const DIR = "tests/fixtures/parity/llama_gqa";
const EXAMPLES: PairedExample[] = [
  { kind: "paired", promptIds: [1, 5, 9], chosenIds: [14, 3, 2], rejectedIds: [22, 2], row: 0 },
  { kind: "paired", promptIds: [1, 30], chosenIds: [31, 4, 11, 2], rejectedIds: [7], row: 1 },
];

async function listing(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}

Deno.test("saveModel() round-trips weights and log-probs exactly", async () => {
  const config = await loadConfig(DIR);
  const weights = await loadWeights(DIR, config);
  const tmp = await Deno.makeTempDir();
  await saveModel(`${tmp}/ckpt`, { config, weights });
  deepStrictEqual(await listing(tmp), ["ckpt"]);
  deepStrictEqual(await listing(`${tmp}/ckpt`), ["config.json", "model.safetensors"]);
  const saved = JSON.parse(await Deno.readTextFile(`${tmp}/ckpt/config.json`));
  deepStrictEqual(saved.architectures, ["LlamaForCausalLM"]);
  equal(saved.dtype, "float32");
  equal("torch_dtype" in saved, false);
  const back = await loadWeights(`${tmp}/ckpt`, await loadConfig(`${tmp}/ckpt`));
  deepStrictEqual(back, weights);
  const before = await scoreExamples({ config, weights }, EXAMPLES, { padTokenId: 0 });
  const after = await scoreExamples({ config, weights: back }, EXAMPLES, { padTokenId: 0 });
  deepStrictEqual(after, before);
  await Deno.remove(tmp, { recursive: true });
});

Deno.test("saveModel() writes bfloat16 as PyTorch rounds it", async () => {
  const config = await loadConfig(DIR);
  const tmp = await Deno.makeTempDir();
  await saveModel(`${tmp}/bf16`, { config, weights: await loadWeights(DIR, config) }, {
    dtype: "bfloat16",
  });
  const torchRounded = await loadWeights(`${DIR}_bf16`, config);
  deepStrictEqual(await loadWeights(`${tmp}/bf16`, config), torchRounded);
  const saved = JSON.parse(await Deno.readTextFile(`${tmp}/bf16/config.json`));
  equal(saved.dtype, "bfloat16");
  equal("torch_dtype" in saved, false);
  await Deno.remove(tmp, { recursive: true });
});

Deno.test("saveModel() shards large checkpoints with an index and replaces an old folder", async () => {
  const config = await loadConfig(DIR);
  const weights = await loadWeights(DIR, config);
  const tmp = await Deno.makeTempDir();
  await saveModel(`${tmp}/ckpt`, { config, weights });
  await saveModel(`${tmp}/ckpt`, { config, weights }, { maxShardBytes: 20_000 });
  deepStrictEqual(await listing(tmp), ["ckpt"]);
  const files = await listing(`${tmp}/ckpt`);
  ok(!files.includes("model.safetensors"), `${files}`);
  const shards = files.filter((f) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f));
  ok(shards.length > 2, `${files}`);
  const index = JSON.parse(await Deno.readTextFile(`${tmp}/ckpt/model.safetensors.index.json`));
  equal(Object.keys(index.weight_map).length, Object.keys(weights).length);
  deepStrictEqual(await loadWeights(`${tmp}/ckpt`, config), weights);
  await Deno.remove(tmp, { recursive: true });
});

Deno.test("saveModel() copies the tokenizer files", async () => {
  const config = await loadConfig("model/tiny");
  const weights = await loadWeights("model/tiny", config);
  const tmp = await Deno.makeTempDir();
  await saveModel(`${tmp}/ckpt`, { config, weights }, { tokenizerDir: "model/tiny" });
  const files = await listing(`${tmp}/ckpt`);
  for (const f of ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]) {
    ok(files.includes(f), `${f} missing: ${files}`);
  }
  await Deno.remove(tmp, { recursive: true });
});

Deno.test("saveModel() writes one dtype key even when the source config has both, disagreeing", async () => {
  const config = await loadConfig(DIR);
  const weights = await loadWeights(DIR, config);
  const tmp = await Deno.makeTempDir();
  const raw = { ...config.raw, torch_dtype: "bfloat16", dtype: "bfloat16" };
  await saveModel(`${tmp}/ckpt`, { config: { ...config, raw }, weights });
  const saved = JSON.parse(await Deno.readTextFile(`${tmp}/ckpt/config.json`));
  equal(saved.dtype, "float32");
  equal("torch_dtype" in saved, false);
  await Deno.remove(tmp, { recursive: true });
});

Deno.test("saveModel() copies chat_template.jinja and named templates", async () => {
  const config = await loadConfig("model/tiny");
  const weights = await loadWeights("model/tiny", config);
  const tmp = await Deno.makeTempDir();
  const source = `${tmp}/source`;
  await Deno.mkdir(`${source}/additional_chat_templates`, { recursive: true });
  await Deno.writeTextFile(`${source}/chat_template.jinja`, "{{ messages[0].content }}");
  await Deno.writeTextFile(`${source}/additional_chat_templates/tool_use.jinja`, "tools");
  await saveModel(`${tmp}/ckpt`, { config, weights }, { tokenizerDir: source });
  equal(await Deno.readTextFile(`${tmp}/ckpt/chat_template.jinja`), "{{ messages[0].content }}");
  equal(await Deno.readTextFile(`${tmp}/ckpt/additional_chat_templates/tool_use.jinja`), "tools");
  await Deno.remove(tmp, { recursive: true });
});
