/** config.json parsing: defaults, per-architecture layouts, rope scaling and errors. */
import { deepStrictEqual, equal, throws } from "node:assert/strict";
import { parseConfig, ropeInvFreq, weightShapes } from "../../model/mod.ts";

const base = {
  vocab_size: 32,
  hidden_size: 16,
  intermediate_size: 24,
  num_hidden_layers: 1,
  num_attention_heads: 4,
};

Deno.test("parseConfig() names the supported model types for an unsupported one", () => {
  throws(
    () => parseConfig({ ...base, model_type: "gpt2" }, "x/config.json"),
    /Unsupported model_type "gpt2" in x\/config.json: supported are llama, qwen2, olmo2/,
  );
});

Deno.test("parseConfig() fills HF defaults", () => {
  const c = parseConfig({ ...base, model_type: "llama" });
  equal(c.num_key_value_heads, 4);
  equal(c.head_dim, 4);
  equal(c.rope_theta, 10000);
  equal(c.rms_norm_eps, 1e-6);
  equal(c.tie_word_embeddings, false);
  deepStrictEqual(c.rope_scaling, { rope_type: "default" });
  equal(parseConfig({ ...base, model_type: "olmo2" }).rms_norm_eps, 1e-5);
});

Deno.test("parseConfig() sets each architecture's layout", () => {
  const shapes = (raw: Record<string, unknown>) =>
    Object.keys(weightShapes(parseConfig({ ...base, num_key_value_heads: 2, ...raw })));
  const llama = shapes({ model_type: "llama" });
  equal(llama.includes("model.layers.0.input_layernorm.weight"), true);
  equal(llama.includes("lm_head.weight"), true);
  equal(llama.some((n) => n.endsWith(".bias")), false);
  const qwen = shapes({ model_type: "qwen2", tie_word_embeddings: true });
  deepStrictEqual(qwen.filter((n) => n.endsWith(".bias")), [
    "model.layers.0.self_attn.q_proj.bias",
    "model.layers.0.self_attn.k_proj.bias",
    "model.layers.0.self_attn.v_proj.bias",
  ]);
  equal(qwen.includes("lm_head.weight"), false);
  const olmo = shapes({ model_type: "olmo2" });
  equal(olmo.includes("model.layers.0.input_layernorm.weight"), false);
  equal(olmo.includes("model.layers.0.post_feedforward_layernorm.weight"), true);
  equal(olmo.includes("model.layers.0.self_attn.k_norm.weight"), true);
  equal(
    shapes({ model_type: "llama", attention_bias: true, mlp_bias: true })
      .filter((n) => n.endsWith(".bias")).length,
    7,
  );
});

Deno.test("parseConfig() reads llama3 rope scaling from rope_scaling or rope_parameters", () => {
  const scaling = {
    rope_type: "llama3",
    factor: 8,
    low_freq_factor: 1,
    high_freq_factor: 4,
    original_max_position_embeddings: 8192,
  };
  const a = parseConfig({ ...base, model_type: "llama", rope_scaling: scaling, rope_theta: 5e5 });
  const b = parseConfig({
    ...base,
    model_type: "llama",
    rope_parameters: { ...scaling, rope_theta: 5e5 },
  });
  deepStrictEqual(a.rope_scaling, b.rope_scaling);
  equal(b.rope_theta, 5e5);
  // head_dim 4: inv_freq [1, 5e5^-1/2]. Wavelength 2π stays (short); 2π·√5e5 ≈ 4443 lies in
  // the band (2048, 8192), so it is interpolated with smooth = (8192 / 4443 − 1) / 3.
  const plain = ropeInvFreq(parseConfig({ ...base, model_type: "llama", rope_theta: 5e5 }));
  const scaled = ropeInvFreq(a);
  equal(scaled[0], plain[0]);
  const smooth = (8192 * plain[1] / (2 * Math.PI) - 1) / 3;
  const expected = (1 - smooth) * plain[1] / 8 + smooth * plain[1];
  equal(Math.abs(scaled[1] / expected - 1) < 1e-6, true, `${scaled[1]} vs ${expected}`);
  throws(
    () => parseConfig({ ...base, model_type: "llama", rope_scaling: { rope_type: "yarn" } }),
    /Unsupported rope scaling "yarn"/,
  );
});

Deno.test("parseConfig() rejects what the decoder cannot run", () => {
  throws(
    () => parseConfig({ ...base, model_type: "llama", num_key_value_heads: 3 }),
    /num_attention_heads 4 is not a multiple of num_key_value_heads 3/,
  );
  throws(
    () => parseConfig({ ...base, model_type: "llama", hidden_act: "gelu" }),
    /Unsupported hidden_act "gelu"/,
  );
  throws(
    () => parseConfig({ ...base, model_type: "qwen2", use_sliding_window: true }),
    /use_sliding_window/,
  );
  throws(
    () => parseConfig({ ...base, model_type: "llama", hidden_size: "16" }),
    /Invalid "hidden_size" in config.json: expected a positive integer, got 16/,
  );
});
