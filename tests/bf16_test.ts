/**
 * `bf16: true` end to end on the CPU, where it is emulated (float32 with bf16 rounding): the
 * mixed-precision step learns what the float32 step learns, and the SmolLM2-135M architecture's
 * per-token log-probs stay within bf16 precision of float32's.
 */
import assert from "node:assert/strict";
import { grad, type HostTensor, input } from "../graph/mod.ts";
import { loadConfig, parseConfig } from "../model/config.ts";
import { buildCausalLM } from "../model/decoder.ts";
import { batchInputs, completionIndexFeed, sequenceLogps } from "../model/logprobs.ts";
import { loadWeights, weightShapes } from "../model/weights.ts";
import { Program } from "../runtime/mod.ts";
import { train } from "../train.ts";
import { PRESETS } from "../bench/presets.ts";

const cacheDir = await Deno.makeTempDir({ prefix: "da-cache-" });
Deno.env.set("DA_CACHE_DIR", cacheDir);

async function run(args: string[]) {
  const out = await Deno.makeTempDir({ prefix: "da-run-" });
  const { rows } = await train(["--output_dir", out, "--loss", "dpo", ...args], { quiet: true });
  await Deno.remove(out, { recursive: true });
  return rows;
}

const relative = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);

Deno.test("train() with --bf16 true learns the held-out preference as float32 does", async () => {
  const plain = await run([]);
  const mixed = await run(["--bf16", "true"]);
  const first = (rows: typeof plain) => rows.find((r) => r.step === 1 && "loss" in r)!;
  // Step 1's loss is log 2 in both (policy = reference); its log-probs carry the rounding.
  for (const key of ["loss", "logps/chosen", "logps/rejected"]) {
    const d = relative(first(mixed)[key], first(plain)[key]);
    assert.ok(d < 1e-2, `${key}: ${first(mixed)[key]} vs ${first(plain)[key]} (${d})`);
  }
  const accuracy = (rows: typeof plain) =>
    rows.filter((r) => "eval_pairwise_accuracy" in r).at(-1)!["eval_pairwise_accuracy"];
  const [a, b] = [accuracy(mixed), accuracy(plain)];
  assert.ok(Math.abs(a - b) <= 0.05, `held-out accuracy bf16 ${a} vs float32 ${b}`);
  assert.ok(a >= 0.75, `bf16 held-out accuracy ${a}`);
});

Deno.test("SmolLM2-135M's per-token log-probs in bf16 are within 2e-2 relative of float32's", async () => {
  const config = parseConfig(PRESETS["smollm2-135m"]);
  let seed = 7;
  const uniform = () => (seed = (seed * 48271) % 2147483647) / 2147483647;
  // HF's initialization scale (std 0.02), norm scales 1.
  const weights: Record<string, HostTensor> = {};
  for (const [name, shape] of Object.entries(weightShapes(config))) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = name.endsWith("norm.weight")
      ? new Float32Array(n).fill(1)
      : Float32Array.from({ length: n }, () => (uniform() - 0.5) * 0.07);
    weights[name] = { dtype: "float32", shape, data };
  }
  const [N, T] = [2, 24];
  const feeds: Record<string, HostTensor> = {
    ...weights,
    input_ids: {
      dtype: "int32",
      shape: [N, T],
      data: Int32Array.from({ length: N * T }, () => Math.floor(uniform() * config.vocab_size)),
    },
    attention_mask: { dtype: "float32", shape: [N, T], data: new Float32Array(N * T).fill(1) },
    completion_index: completionIndexFeed([N, T], new Float32Array(N * T).fill(1)),
  };
  const tokenLogps = async (precision: "float32" | "bfloat16") => {
    const model = buildCausalLM(config, { precision });
    const { tokenLogps } = sequenceLogps(model, batchInputs());
    const program = await Program.compile({ tokenLogps });
    const out = await program.run(feeds);
    await program.release();
    return out.tokenLogps.data as Float32Array;
  };
  const plain = await tokenLogps("float32");
  const mixed = await tokenLogps("bfloat16");
  let worst = 0;
  for (let i = 0; i < plain.length; i++) {
    if (i % T !== 0) worst = Math.max(worst, relative(mixed[i], plain[i]));
  }
  assert.ok(worst < 2e-2, `worst per-token relative difference ${worst}`);
  assert.ok(worst > 0, "bf16 rounding left no trace");
});

Deno.test("bf16 RMSNorm recomputed in the backward gives the gradients of the kept one", async () => {
  // In bf16 each RMSNorm is a checkpoint (model/decoder.ts); under gradient checkpointing the
  // layer is, and its norms are plain: the same gradients, norm weights included.
  const config = await loadConfig("model/tiny");
  const weights = await loadWeights("model/tiny", config);
  const gradients = async (gradientCheckpointing: boolean) => {
    const model = buildCausalLM(config, { precision: "bfloat16", gradientCheckpointing });
    const hidden = model.hidden(
      input("input_ids", ["N", "T"], "int32"),
      input("attention_mask", ["N", "T"]),
    );
    const loss = hidden.mul(hidden).mean();
    const grads = grad(loss, model.params);
    const outputs = Object.fromEntries(model.params.map((p, i) => [`grad.${p.name}`, grads[i]!]));
    const program = await Program.compile(outputs);
    const out = await program.run({
      ...weights,
      input_ids: {
        dtype: "int32",
        shape: [2, 5],
        data: Int32Array.from([3, 50, 9, 100, 7, 1, 2, 480, 33, 12]),
      },
      attention_mask: { dtype: "float32", shape: [2, 5], data: new Float32Array(10).fill(1) },
    });
    await program.release();
    return out;
  };
  const [recomputed, layered] = [await gradients(false), await gradients(true)];
  const norms = Object.keys(recomputed).filter((k) => k.includes("layernorm"));
  assert.ok(norms.length >= 2 * config.num_hidden_layers, `norm weights: ${norms}`);
  for (const [name, value] of Object.entries(recomputed)) {
    const [a, b] = [value.data as Float32Array, layered[name].data as Float32Array];
    const scale = Math.max(...b.map(Math.abs), 1e-12);
    const worst = Math.max(...a.map((v, i) => Math.abs(v - b[i])));
    assert.ok(worst <= 1e-2 * scale, `${name}: differs by ${worst} (scale ${scale})`);
    assert.ok(a.some((v) => v !== 0), `${name}: no gradient`);
  }
});
