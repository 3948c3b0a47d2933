/**
 * sequenceLogps(): padding on either side changes nothing, frozen (constant) weights give the
 * same numbers as weight inputs, and the token log-probs line up with the input tokens.
 */
import { deepStrictEqual, equal, ok } from "node:assert/strict";
import { grad, type HostTensor } from "../../graph/mod.ts";
import { Program } from "../../runtime/mod.ts";
import {
  batchInputs,
  buildCausalLM,
  type CausalLMOptions,
  completionIndexFeed,
  loadConfig,
  loadWeights,
  sequenceLogps,
} from "../../model/mod.ts";

const DIR = "tests/fixtures/parity/llama_gqa";

function batch(rows: { ids: number[]; mask: number[]; completion: number[] }[]) {
  const shape = [rows.length, rows[0].ids.length];
  return {
    input_ids: {
      dtype: "int64" as const,
      shape,
      data: BigInt64Array.from(rows.flatMap((r) => r.ids), BigInt),
    },
    attention_mask: {
      dtype: "float32" as const,
      shape,
      data: Float32Array.from(rows.flatMap((r) => r.mask)),
    },
    completion_mask: {
      dtype: "float32" as const,
      shape,
      data: Float32Array.from(rows.flatMap((r) => r.completion)),
    },
    completion_index: completionIndexFeed(shape, rows.flatMap((r) => r.completion)),
  };
}

/** The per-sequence sums and counts, and the gradient of their total w.r.t. the embedding. */
async function withEmbedGradient(ids: "int32" | "int64") {
  const model = buildCausalLM(await loadConfig(DIR));
  const out = sequenceLogps(model, batchInputs(ids));
  const [dEmbed] = grad(out.sum.sum(), [model.params[0]]);
  return await Program.compile({ sum: out.sum, count: out.count, dEmbed });
}

async function run(
  feeds: Record<string, HostTensor>,
  options: CausalLMOptions = {},
  weights?: Record<string, HostTensor>,
) {
  const config = await loadConfig(DIR);
  const model = buildCausalLM(config, options);
  const out = sequenceLogps(model, batchInputs("int64"));
  const program = await Program.compile({
    sum: out.sum,
    count: out.count,
    mean: out.mean,
    tokenLogps: out.tokenLogps,
    tokenNll: out.tokenNll,
  });
  const result = await program.run({ ...feeds, ...(weights ?? {}) });
  await program.release();
  return { result, params: model.params };
}

Deno.test("sequenceLogps() is the same with no, right and left padding", async () => {
  const weights = await loadWeights(DIR);
  const seq = [1, 7, 8, 9, 20, 21, 2];
  const comp = [0, 0, 0, 0, 1, 1, 1];
  const { result } = await run(
    batch([
      { ids: [...seq, 0, 0], mask: [...seq.map(() => 1), 0, 0], completion: [...comp, 0, 0] },
      { ids: [0, 0, ...seq], mask: [0, 0, ...seq.map(() => 1)], completion: [0, 0, ...comp] },
    ]),
    {},
    weights,
  );
  const { result: alone } = await run(
    batch([{ ids: seq, mask: seq.map(() => 1), completion: comp }]),
    {},
    weights,
  );
  const sums = [...result.sum.data as Float32Array, alone.sum.data[0] as number];
  ok(Math.max(...sums) - Math.min(...sums) < 1e-5 * Math.abs(sums[0]), `sums ${sums}`);
  deepStrictEqual([...result.count.data], [3, 3]);
  // A float32 division is the correctly rounded quotient.
  equal(result.mean.data[0], Math.fround((result.sum.data[0] as number) / 3));
  // Token log-probs sit on the completion tokens of the input, and NLL is their negation.
  const T = 9;
  const right = [...(result.tokenLogps.data as Float32Array).subarray(0, T)];
  deepStrictEqual(right.map((v) => v !== 0), [...comp, 0, 0].map(Boolean));
  ok(Math.abs(right.reduce((a, b) => a + b, 0) - (result.sum.data[0] as number)) < 1e-5);
  equal(result.tokenNll.data[4], -(result.tokenLogps.data[4] as number));
});

Deno.test("buildCausalLM() with frozen weights matches weight inputs, and prefixes input names", async () => {
  const weights = await loadWeights(DIR);
  const feeds = batch([{ ids: [1, 5, 6, 2], mask: [1, 1, 1, 1], completion: [0, 0, 1, 1] }]);
  const { result: asInputs } = await run(feeds, {}, weights);
  const { result: frozen, params } = await run(feeds, { frozen: weights });
  equal(params.length, 0);
  const close = (a: HostTensor, b: HostTensor) =>
    ok(Math.abs((a.data[0] as number) / (b.data[0] as number) - 1) < 1e-6, `${a.data} ${b.data}`);
  close(frozen.sum, asInputs.sum);
  const prefixed = Object.fromEntries(Object.entries(weights).map(([k, v]) => [`ref.${k}`, v]));
  const { result: withPrefix, params: named } = await run(feeds, { prefix: "ref." }, prefixed);
  equal(named[0].name, "ref.model.embed_tokens.weight");
  close(withPrefix.sum, asInputs.sum);
});

Deno.test("sequenceLogps() takes int32 ids (the data pipeline's default) with gradients", async () => {
  const weights = await loadWeights(DIR);
  const program = await withEmbedGradient("int32");
  const feeds = batch([{ ids: [1, 5, 6, 2], mask: [1, 1, 1, 1], completion: [0, 0, 1, 1] }]);
  const result = await program.run({
    ...weights,
    ...feeds,
    input_ids: { dtype: "int32", shape: [1, 4], data: new Int32Array([1, 5, 6, 2]) },
  });
  await program.release();
  const { result: int64 } = await run(feeds, {}, weights);
  ok(Math.abs((result.sum.data[0] as number) - (int64.sum.data[0] as number)) < 1e-6);
  ok((result.dEmbed.data as Float32Array).some((v) => v !== 0));
});

Deno.test("sequenceLogps() of rows without completion tokens is 0, with a zero gradient", async () => {
  // No hidden state reaches the LM head (C = 0): the chunked head and its recomputation must
  // still run, as in a batch of prompts whose completions were cut off.
  const weights = await loadWeights(DIR);
  const program = await withEmbedGradient("int64");
  const feeds = batch([
    { ids: [1, 5, 6, 2], mask: [1, 1, 1, 1], completion: [1, 0, 0, 0] },
    { ids: [1, 7, 2, 0], mask: [1, 1, 1, 0], completion: [0, 0, 0, 0] },
  ]);
  equal(feeds.completion_index.shape[0], 0);
  const result = await program.run({ ...weights, ...feeds });
  await program.release();
  deepStrictEqual(Array.from(result.sum.data as Float32Array), [0, 0]);
  deepStrictEqual(Array.from(result.count.data as Float32Array), [0, 0]);
  ok((result.dEmbed.data as Float32Array).every((v) => v === 0));
});
