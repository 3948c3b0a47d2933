/**
 * LoRA, checkpoint dtypes and activation recomputation through the whole loop on the embedded
 * tiny (bfloat16) model: DPO with adapters learns the held-out preference, its checkpoint is a
 * PEFT adapter whose merge scores like base + adapter, resumes are exact (dropout included), a
 * full fine-tune exports bfloat16 beside float32 masters, and `gradient_checkpointing` changes no
 * number.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { mergeAdapterFolder } from "../merge.ts";
import { readSafetensors, readSafetensorsLayout } from "../model/safetensors.ts";
import { score } from "../score.ts";
import { train } from "../train.ts";

const cacheDir = await Deno.makeTempDir({ prefix: "da-cache-" });
Deno.env.set("DA_CACHE_DIR", cacheDir);

async function run(args: string[]) {
  const out = await Deno.makeTempDir({ prefix: "da-lora-" });
  const result = await train(["--output_dir", out, ...args], { quiet: true });
  return { ...result, out };
}

/** Training rows without the timing columns, for exact comparisons. */
const trainRows = (rows: Record<string, number>[], after = 0) =>
  rows.filter((r) => "loss" in r && r.step > after).map((
    { tokens_per_s: _t, samples_per_s: _s, ...r },
  ) => r);

Deno.test("train() --use_peft learns DPO's held-out preference and saves a PEFT adapter", async () => {
  const { rows, checkpoint, out } = await run([
    "--loss",
    "dpo",
    "--use_peft",
    "true",
    "--max_steps",
    "30",
    "--eval_steps",
    "0",
  ]);
  const [before, after] = rows.filter((r) => "eval_rewards/accuracies" in r);
  const gain = after["eval_rewards/accuracies"] - before["eval_rewards/accuracies"];
  assert.ok(
    gain >= 0.15,
    `held-out reward accuracy ${before["eval_rewards/accuracies"]} → ${
      after["eval_rewards/accuracies"]
    }`,
  );

  const files = [...Deno.readDirSync(checkpoint)].map((e) => e.name);
  assert.ok(files.includes("adapter_config.json") && files.includes("adapter_model.safetensors"));
  assert.ok(!files.includes("model.safetensors"), "a LoRA checkpoint holds no copy of the base");
  const config = JSON.parse(await Deno.readTextFile(join(checkpoint, "adapter_config.json")));
  assert.equal(config.peft_type, "LORA");
  assert.equal(config.task_type, "CAUSAL_LM");
  assert.deepEqual([config.r, config.lora_alpha], [16, 32]);
  assert.deepEqual(config.target_modules, [
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
  ]);
  const adapter = await readSafetensorsLayout(join(checkpoint, "adapter_model.safetensors"));
  assert.deepEqual(
    adapter["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"].shape,
    [16, 128],
  );
  // AdamW state exists for the adapters only.
  const { tensors: optimizer } = await readSafetensors(join(checkpoint, "optimizer.safetensors"));
  const names = Object.keys(optimizer);
  assert.equal(names.length, 2 * Object.keys(adapter).length);
  assert.ok(names.every((n) => /\.lora_[AB]\.weight$/.test(n)), names[0]);

  // Base + adapter (unmerged) and the float32 merge score the same log-probs.
  const data = ["--data", "data/samples/ultrafeedback_sample.jsonl", "--max_samples", "6"];
  const merged = await mergeAdapterFolder(checkpoint, join(out, "merged"), { dtype: "float32" });
  const unmergedLines = (await score(["--model", checkpoint, ...data])).lines.map((l) =>
    JSON.parse(l)
  );
  const mergedLines = (await score(["--model", merged, ...data])).lines.map((l) => JSON.parse(l));
  let worst = 0;
  unmergedLines.forEach((line, i) => {
    for (const side of ["chosen", "rejected"]) {
      const [a, b] = [line[side].logp_sum, mergedLines[i][side].logp_sum];
      worst = Math.max(worst, Math.abs(a - b) / Math.abs(b));
    }
  });
  assert.ok(worst < 1e-5, `merged vs base + adapter: relative difference ${worst}`);
  // And the adapter changed the model: the base scores differently.
  const baseLines = (await score(["--model", "model/tiny", ...data])).lines.map((l) =>
    JSON.parse(l)
  );
  assert.notEqual(baseLines[0].chosen.logp_sum, unmergedLines[0].chosen.logp_sum);
  await Deno.remove(out, { recursive: true });
});

Deno.test("train() --use_peft with dropout resumed from a checkpoint logs what an uninterrupted run logs", async () => {
  const args = [
    "--loss",
    "dpo",
    "--use_peft",
    "true",
    "--lora_dropout",
    "0.1",
    "--lora_r",
    "4",
    "--max_steps",
    "6",
    "--save_steps",
    "3",
    "--eval_steps",
    "0",
  ];
  const full = await run(args);
  // --resume writes to the folder it resumes: resume a copy, from its step-3 checkpoint.
  const copy = `${full.out}-copy`;
  await new Deno.Command("cp", { args: ["-r", full.out, copy] }).output();
  // Going back to step 3 replaces the later checkpoint: resume refuses until it is deleted.
  await Deno.remove(join(copy, "checkpoint-6"), { recursive: true });
  const resumed = await train(["--resume", join(copy, "checkpoint-3")], { quiet: true });
  assert.deepEqual(trainRows(resumed.rows, 3), trainRows(full.rows, 3));
  // Dropout is live: the same run without it differs.
  const plain = await run(args.map((a) => a === "0.1" ? "0" : a));
  assert.notDeepEqual(trainRows(plain.rows), trainRows(full.rows));
  for (const dir of [full.out, copy, plain.out]) {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("train() exports a bfloat16 model as bfloat16 and keeps float32 masters for resuming", async () => {
  const { checkpoint, out } = await run([
    "--loss",
    "simpo",
    "--max_steps",
    "2",
    "--eval_steps",
    "0",
  ]);
  const config = JSON.parse(await Deno.readTextFile(join(checkpoint, "config.json")));
  assert.equal(config.dtype ?? config.torch_dtype, "bfloat16");
  const layout = await readSafetensorsLayout(join(checkpoint, "model.safetensors"));
  assert.ok(Object.values(layout).every((t) => t.dtype === "bfloat16"));
  const masters = await readSafetensorsLayout(join(checkpoint, "master_weights.safetensors"));
  assert.ok(Object.values(masters).every((t) => t.dtype === "float32"));
  const f32 = await run([
    "--loss",
    "simpo",
    "--max_steps",
    "1",
    "--eval_steps",
    "0",
    "--save_dtype",
    "float32",
  ]);
  const f32Layout = await readSafetensorsLayout(join(f32.checkpoint, "model.safetensors"));
  assert.ok(Object.values(f32Layout).every((t) => t.dtype === "float32"));
  await Deno.remove(out, { recursive: true });
  await Deno.remove(f32.out, { recursive: true });
});

Deno.test("train() with gradient_checkpointing logs the same losses and gradient norms", async () => {
  const args = ["--loss", "dpo", "--max_steps", "3", "--eval_steps", "0"];
  for (const extra of [[], ["--use_peft", "true"]]) {
    const plain = await run([...args, ...extra]);
    const recomputed = await run([...args, ...extra, "--gradient_checkpointing", "true"]);
    const [a, b] = [trainRows(plain.rows), trainRows(recomputed.rows)];
    assert.equal(a.length, 3);
    a.forEach((row, i) => {
      for (const key of ["loss", "grad_norm"]) {
        assert.ok(
          Math.abs(row[key] - b[i][key]) <= 1e-6 * Math.abs(row[key]),
          `${extra.join(" ")} step ${row.step} ${key}: ${row[key]} vs ${b[i][key]}`,
        );
      }
    });
    await Deno.remove(plain.out, { recursive: true });
    await Deno.remove(recomputed.out, { recursive: true });
  }
});
