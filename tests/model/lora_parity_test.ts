/**
 * LoRA parity with PEFT: log-probs and the gradients of Σ_n w_n·logp_sum_n with respect to every
 * lora_A / lora_B, for tiny Llama, Qwen2 and OLMo-2 models with non-zero B, against PEFT 0.21 over
 * transformers 5.17 in float64 (tools/make_lora_fixtures.py wrote tests/fixtures/lora). Tolerance
 * 1e-4 relative: per tensor, max |ours − PEFT| / max |PEFT|. The fixtures' adapters are PEFT's own
 * `save_pretrained` output, so this also checks that PEFT's files load here.
 */
import { ok as assert } from "node:assert/strict";
import { grad, input, type Tensor } from "../../graph/mod.ts";
import { Program } from "../../runtime/mod.ts";
import {
  batchInputs,
  buildCausalLM,
  completionIndexFeed,
  initLora,
  loadAdapter,
  loadConfig,
  readSafetensors,
  sequenceLogps,
  storedWeights,
} from "../../model/mod.ts";
import { relativeDiff } from "../_relative_diff.ts";

const ROOT = "tests/fixtures/lora";
const TOL = 1e-4;

for (const name of ["llama", "qwen2", "olmo2"]) {
  Deno.test(`buildCausalLM() with LoRA matches PEFT: ${name}`, async () => {
    const dir = `${ROOT}/${name}`;
    const config = await loadConfig(dir);
    const adapter = await loadAdapter(dir, config);
    assert(adapter.lora.targetModules.length === 7, "the fixture adapts all seven linear layers");
    const model = buildCausalLM(config, {
      frozen: await storedWeights(dir, config),
      lora: adapter.lora,
    });
    const out = sequenceLogps(model, batchInputs("int64"));
    const loss = out.sum.mul(input("seq_weights", ["N"])).sum();
    const grads = grad(loss, model.params);
    const outputs: Record<string, Tensor> = { logp_sum: out.sum };
    model.params.forEach((p, i) => outputs[`grad.${p.name}`] = grads[i]);
    const { tensors: expected } = await readSafetensors(`${dir}/expected.safetensors`);
    const program = await Program.compile(outputs);
    const result = await program.run({
      ...adapter.weights,
      input_ids: expected.input_ids,
      attention_mask: expected.attention_mask,
      completion_index: completionIndexFeed(
        expected.completion_mask.shape,
        expected.completion_mask.data as Float32Array,
      ),
      seq_weights: { dtype: "float32", shape: [3], data: new Float32Array([1, -0.5, 2]) },
    });
    await program.release();
    assert(model.params.length === 2 * 7 * config.num_hidden_layers, "only A and B are params");
    let worst = 0, worstName = "";
    for (const key of Object.keys(outputs)) {
      assert(expected[key], `fixture lacks ${key}`);
      const d = relativeDiff(result[key], expected[key]);
      if (d > worst) [worst, worstName] = [d, key];
    }
    console.log(`${name}: max relative diff ${worst.toExponential(2)} (${worstName})`);
    assert(worst <= TOL, `${name}: ${worstName} differs by ${worst} > ${TOL} relative`);
  });
}

Deno.test("buildCausalLM() with B = 0 adapters gives exactly the base model's log-probs", async () => {
  const config = await loadConfig("model/tiny");
  const frozen = await storedWeights("model/tiny", config);
  const lora = { r: 4, alpha: 8, dropout: 0, targetModules: ["q_proj", "v_proj", "down_proj"] };
  const run = async (withLora: boolean) => {
    const model = buildCausalLM(config, { frozen, lora: withLora ? lora : undefined });
    const program = await Program.compile({
      logps: sequenceLogps(model, batchInputs("int64")).sum,
    });
    const shape = [2, 5];
    const result = await program.run({
      ...(withLora ? initLora(config, { ...lora, seed: 7 }) : {}),
      input_ids: {
        dtype: "int64",
        shape,
        data: BigInt64Array.from([3, 50, 9, 100, 7, 1, 2, 480, 33, 12].map(BigInt)),
      },
      attention_mask: { dtype: "float32", shape, data: new Float32Array(10).fill(1) },
      completion_index: completionIndexFeed(shape, [0, 0, 1, 1, 1, 0, 1, 1, 1, 1]),
    });
    await program.release();
    return Array.from(result.logps.data as Float32Array);
  };
  const [base, adapted] = [await run(false), await run(true)];
  assert(base.every(Number.isFinite));
  assert(base.join() === adapted.join(), `policy ${adapted} vs reference ${base}`);
});
