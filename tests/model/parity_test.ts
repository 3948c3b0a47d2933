/**
 * HF parity: log-probs and the gradient of Σ_n w_n·logp_sum_n with respect to every weight, for
 * tiny random Llama (GQA, untied; llama3 rope scaling, tied, head_dim ≠ hidden/heads), Qwen2 and
 * OLMo-2 models, against an independent float64 PyTorch implementation
 * (tools/make_parity_fixtures.py, which wrote tests/fixtures/parity). Tolerance 1e-4 relative:
 * per tensor, max |ours − reference| / max |reference|.
 */
import { ok as assert } from "node:assert/strict";
import { grad, input, type Tensor } from "../../graph/mod.ts";
import { Program } from "../../runtime/mod.ts";
import {
  batchInputs,
  buildCausalLM,
  completionIndexFeed,
  loadConfig,
  loadWeights,
  readSafetensors,
  sequenceLogps,
} from "../../model/mod.ts";
import { relativeDiff } from "../_relative_diff.ts";

const ROOT = "tests/fixtures/parity";
const TOL = 1e-4;

async function check(name: string): Promise<void> {
  const dir = `${ROOT}/${name}`;
  const config = await loadConfig(dir);
  const weights = await loadWeights(dir, config);
  // The sharded copy holds llama_gqa's weights, so it shares llama_gqa's expectations.
  const expectedDir = name.endsWith("_sharded") ? `${ROOT}/${name.replace(/_sharded$/, "")}` : dir;
  const { tensors: expected } = await readSafetensors(`${expectedDir}/expected.safetensors`);
  const model = buildCausalLM(config);
  const seqWeights = input("seq_weights", ["N"]);
  const out = sequenceLogps(model, batchInputs("int64"));
  const loss = out.sum.mul(seqWeights).sum();
  const grads = grad(loss, model.params);
  const outputs: Record<string, Tensor> = {
    logp_sum: out.sum,
    logp_count: out.count,
    logp_mean: out.mean,
    token_logps: out.tokenLogps,
  };
  model.params.forEach((p, i) => outputs[`grad.${p.name}`] = grads[i]);
  const program = await Program.compile(outputs);
  const result = await program.run({
    ...weights,
    input_ids: expected.input_ids,
    attention_mask: expected.attention_mask,
    completion_mask: expected.completion_mask,
    completion_index: completionIndexFeed(
      expected.completion_mask.shape,
      expected.completion_mask.data as Float32Array,
    ),
    seq_weights: { dtype: "float32", shape: [3], data: new Float32Array([1, -0.5, 2]) },
  });
  await program.release();
  let worst = 0, worstName = "";
  for (const key of Object.keys(outputs)) {
    const d = relativeDiff(result[key], expected[key]);
    if (d > worst) [worst, worstName] = [d, key];
  }
  console.log(`${name}: max relative diff ${worst.toExponential(2)} (${worstName})`);
  assert(worst <= TOL, `${name}: ${worstName} differs by ${worst} > ${TOL} relative`);
}

for (
  const name of [
    "llama_gqa",
    "llama3_tied",
    "qwen2",
    "olmo2",
    "llama_gqa_bf16",
    "llama_gqa_sharded",
  ]
) {
  Deno.test(`sequenceLogps() and its gradients match PyTorch: ${name}`, async () => {
    await check(name);
  });
}
