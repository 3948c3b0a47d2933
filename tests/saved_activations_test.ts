/** bench/saved_activations.ts: what a step keeps for its backward, counted by hand on small graphs. */
import assert from "node:assert/strict";
import { input } from "../graph/mod.ts";
import { buildCausalLM, loadConfig } from "../model/mod.ts";
import { bytesOf, savedForBackward } from "../bench/saved_activations.ts";

Deno.test("savedForBackward() keeps what each VJP reads: tanh's output, exp's output, not inputs", () => {
  const [x, w] = [input("x", ["N", 4]), input("w", [4, 3])];
  const h = x.matmul(w); // matmul's VJP for w reads x: an input, not counted
  const t = h.tanh(); // tanh's VJP reads its output
  const e = t.exp(); // exp's VJP reads its output; t is read again by nothing else
  const kept = savedForBackward(e.sum(), [w]);
  assert.deepEqual(kept.map((k) => k.op).sort(), ["Exp", "Tanh"]);
  assert.equal(bytesOf(kept[0], { N: 5 }), 5 * 3 * 4);
});

Deno.test("savedForBackward() of the tiny decoder: recomputation keeps only layer inputs", async () => {
  const config = await loadConfig("model/tiny");
  const kept = (gradientCheckpointing: boolean) => {
    const model = buildCausalLM(config, { gradientCheckpointing });
    const ids = input("input_ids", ["N", "T"], "int64");
    const hidden = model.hidden(ids, input("attention_mask", ["N", "T"]));
    return savedForBackward(hidden.sum(), model.params);
  };
  const plain = kept(false), recomputed = kept(true);
  // Without recomputation every layer keeps its attention probabilities (T² per head).
  assert.equal(
    plain.filter((t) => t.op === "Softmax").length,
    config.num_hidden_layers,
  );
  assert.equal(recomputed.filter((t) => t.op === "Softmax").length, 0);
  assert.equal(recomputed.filter((t) => t.op === "Checkpoint").length, config.num_hidden_layers);
  const sizes = { N: 2, T: 16, "N*T": 32 };
  const total = (ts: typeof plain) => ts.reduce((s, t) => s + bytesOf(t, sizes), 0);
  assert.ok(total(recomputed) * 4 < total(plain), `${total(recomputed)} vs ${total(plain)}`);
});

Deno.test("savedForBackward() in bf16: the norms keep no float32 copy of a hidden state", async () => {
  // RMSNorm runs in float32 on bf16 activations; recomputed in the backward (model/decoder.ts),
  // it keeps only its input, not the float32 casts and products a plain backward would read.
  const config = await loadConfig("model/tiny");
  const model = buildCausalLM(config, { precision: "bfloat16" });
  const hidden = model.hidden(
    input("input_ids", ["N", "T"], "int64"),
    input("attention_mask", ["N", "T"]),
  );
  const kept = savedForBackward(hidden.mul(hidden).mean(), model.params);
  const hiddenSized = `N*T,${config.hidden_size}`;
  const float32Copies = kept.filter((t) =>
    t.dtype === "float32" && ["Cast", "Mul"].includes(t.op) && t.shape.join() === hiddenSized
  );
  assert.deepEqual(float32Copies.map(String), []);
  assert.ok(kept.some((t) => t.op === "Checkpoint"), "the norms are checkpoints");
});
