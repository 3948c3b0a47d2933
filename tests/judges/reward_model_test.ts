import assert from "node:assert/strict";
import { input } from "../../graph/mod.ts";
import { Program } from "../../runtime/mod.ts";
import { RewardModel, rewardModelJudge } from "../../judges/mod.ts";
import { buildCausalLM, loadModel, serializeSafetensors } from "../../model/mod.ts";
import { rng } from "../graph/_gradcheck.ts";

/** A tiny random LlamaForSequenceClassification checkpoint: the tiny model's body plus a random head. */
async function tinyRewardModel() {
  const dir = await Deno.makeTempDir({ prefix: "rm-" });
  const { config, weights } = await loadModel("model/tiny");
  const random = rng(3);
  const D = config.hidden_size;
  const head = Float32Array.from({ length: D }, () => random() - 0.5);
  await Deno.writeFile(
    `${dir}/model.safetensors`,
    serializeSafetensors({
      ...weights,
      "score.weight": { dtype: "float32", shape: [1, D], data: head },
    }),
  );
  const raw = { ...config.raw, architectures: ["LlamaForSequenceClassification"], num_labels: 1 };
  await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(raw));
  for (const f of ["tokenizer.json", "tokenizer_config.json"]) {
    await Deno.copyFile(`model/tiny/${f}`, `${dir}/${f}`);
  }
  return { dir, config, weights, head };
}

Deno.test("RewardModel.score() matches the head applied to each sequence's last hidden state", async () => {
  const { dir, config, weights, head } = await tinyRewardModel();
  const rm = await RewardModel.load(dir);
  const sequences = [[509, 267, 10, 300, 301, 510], [509, 266, 10, 42]];
  const scores = await rm.score(sequences); // batched, right-padded

  // Direct: each sequence alone (no padding), its last hidden state dotted with the head in JS.
  const model = buildCausalLM(config);
  const ids = input("input_ids", [1, "T"], "int64");
  const hidden = model.hidden(ids, input("attention_mask", [1, "T"]));
  const program = await Program.compile({ hidden });
  for (const [n, s] of sequences.entries()) {
    const out = await program.run({
      ...weights,
      input_ids: { dtype: "int64", shape: [1, s.length], data: BigInt64Array.from(s, BigInt) },
      attention_mask: {
        dtype: "float32",
        shape: [1, s.length],
        data: new Float32Array(s.length).fill(1),
      },
    });
    const h = (out.hidden.data as Float32Array).subarray((s.length - 1) * config.hidden_size);
    const expected = head.reduce((acc, w, i) => acc + w * h[i], 0);
    assert.ok(Math.abs(scores[n] - expected) < 1e-4, `sequence ${n}: ${scores[n]} vs ${expected}`);
  }
  const verdict = await rewardModelJudge(rm).judge("Q: ", "yes", "no");
  assert.ok(["a", "b", "tie"].includes(verdict));
  await Promise.all([program.release(), rm.program.release()]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("RewardModel.load() rejects a checkpoint without a score head", async () => {
  await assert.rejects(RewardModel.load("model/tiny"), /has no "score.weight"/);
});
