import { deepStrictEqual, equal, notDeepStrictEqual, ok, throws } from "node:assert/strict";
import { batchIndices, collate, exampleLength, klExamples, toUnpaired } from "../../data/batch.ts";
import type { PairedExample, UnpairedExample } from "../../data/types.ts";

const pair = (
  p: number[],
  c: number[],
  r: number[],
  extras?: PairedExample["extras"],
): PairedExample => ({
  kind: "paired",
  promptIds: p,
  chosenIds: c,
  rejectedIds: r,
  ...(extras ? { extras } : {}),
  row: 0,
});
const one = (p: number[], c: number[], label: boolean): UnpairedExample => ({
  kind: "unpaired",
  promptIds: p,
  completionIds: c,
  label,
  row: 0,
});

Deno.test("collate() stacks chosen rows then rejected rows, padded to the longest", () => {
  const b = collate([pair([1, 2], [3], [4, 5, 6]), pair([7], [8, 9], [10])], { padTokenId: 0 });
  if (b.kind !== "paired") throw new Error("Expected a paired batch");
  equal(b.pairs, 2);
  deepStrictEqual(b.shape, [4, 5]);
  deepStrictEqual([...b.inputIds], [
    1,
    2,
    3,
    0,
    0, // chosen 0
    7,
    8,
    9,
    0,
    0, // chosen 1
    1,
    2,
    4,
    5,
    6, // rejected 0
    7,
    10,
    0,
    0,
    0, // rejected 1
  ]);
  deepStrictEqual([...b.completionMask], [
    0,
    0,
    1,
    0,
    0,
    0,
    1,
    1,
    0,
    0,
    0,
    0,
    1,
    1,
    1,
    0,
    1,
    0,
    0,
    0,
  ]);
  deepStrictEqual([...b.attentionMask], [
    1,
    1,
    1,
    0,
    0,
    1,
    1,
    1,
    0,
    0,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    0,
    0,
    0,
  ]);
  deepStrictEqual([...b.promptLengths], [2, 1, 2, 1]);
  deepStrictEqual([...b.completionLengths], [1, 2, 3, 1]);
  deepStrictEqual(b.indices, [0, 1]);
  deepStrictEqual(b.extras, {});
});

Deno.test("collate() carries scores only when every pair has them", () => {
  const a = pair([1], [2], [3], { score_chosen: 5, score_rejected: 1.5 });
  const b = pair([1], [2], [3], { score_chosen: 4 });
  const full = collate([a, a], { padTokenId: 0 });
  deepStrictEqual(full.kind === "paired" && full.extras, {
    score_chosen: new Float32Array([5, 5]),
    score_rejected: new Float32Array([1.5, 1.5]),
  });
  const partial = collate([a, b], { padTokenId: 0 });
  deepStrictEqual(partial.kind === "paired" && partial.extras, {
    score_chosen: new Float32Array([5, 4]),
  });
});

Deno.test("collate() builds unpaired batches with labels, int32 ids and a padding multiple", () => {
  const b = collate([one([1], [2, 3], true), one([4, 5], [6], false)], {
    padTokenId: 9,
    padToMultipleOf: 4,
    indices: [7, 3],
  });
  if (b.kind !== "unpaired") throw new Error("Expected an unpaired batch");
  deepStrictEqual(b.shape, [2, 4]);
  ok(b.inputIds instanceof Int32Array);
  deepStrictEqual([...b.inputIds], [1, 2, 3, 9, 4, 5, 6, 9]);
  deepStrictEqual([...b.completionMask], [0, 1, 1, 0, 0, 0, 1, 0]);
  deepStrictEqual([...b.labels], [1, 0]);
  deepStrictEqual(b.indices, [7, 3]);
  throws(() => collate([], { padTokenId: 0 }), /empty batch/);
  throws(
    () => collate([one([1], [2], true), pair([1], [2], [3])], { padTokenId: 0 }),
    /paired and unpaired/,
  );
});

Deno.test("batchIndices() shuffles with the seed, differently each epoch, covering every example", () => {
  const lengths = Array(50).fill(1);
  const a = batchIndices(lengths, { batch_size: 8, seed: 1 });
  deepStrictEqual(a, batchIndices(lengths, { batch_size: 8, seed: 1 }));
  notDeepStrictEqual(a, batchIndices(lengths, { batch_size: 8, seed: 1, epoch: 1 }));
  notDeepStrictEqual(a, batchIndices(lengths, { batch_size: 8, seed: 2 }));
  deepStrictEqual(a.flat().sort((x, y) => x - y), lengths.map((_, i) => i));
  deepStrictEqual(a.map((b) => b.length), [8, 8, 8, 8, 8, 8, 2]);
  equal(batchIndices(lengths, { batch_size: 8, drop_last: true }).length, 6);
  throws(() => batchIndices(lengths, { batch_size: 0 }), /Invalid batch_size 0/);
});

Deno.test("batchIndices() with group_by_length sampling reduces padding", () => {
  const lengths = Array.from({ length: 400 }, (_, i) => 1 + ((i * 37) % 97));
  const padding = (batches: number[][]) =>
    batches.reduce(
      (sum, b) =>
        sum + b.reduce((s, i) => s + Math.max(...b.map((j) => lengths[j])) - lengths[i], 0),
      0,
    );
  const plain = batchIndices(lengths, { batch_size: 8, seed: 3 });
  const grouped = batchIndices(lengths, {
    batch_size: 8,
    seed: 3,
    train_sampling_strategy: "group_by_length",
  });
  deepStrictEqual(grouped.flat().sort((x, y) => x - y), lengths.map((_, i) => i));
  ok(padding(grouped) < padding(plain) / 4, `${padding(grouped)} vs ${padding(plain)}`);
});

Deno.test("exampleLength() counts the prompt and the longer completion", () => {
  equal(exampleLength(pair([1, 2], [3], [4, 5, 6])), 5);
  equal(exampleLength(one([1], [2, 3], true)), 3);
});

Deno.test("toUnpaired() and klExamples() build KTO's rows", () => {
  const out = toUnpaired([pair([1], [2], [3]), pair([4], [5], [6])]);
  deepStrictEqual(out.map((e) => [e.promptIds[0], e.completionIds[0], e.label]), [
    [1, 2, true],
    [1, 3, false],
    [4, 5, true],
    [4, 6, false],
  ]);
  const kl = klExamples([one([1], [10], true), one([2], [20], false), one([3], [30], true)]);
  deepStrictEqual(kl.map((e) => [e.promptIds[0], e.completionIds[0]]), [[1, 30], [2, 10], [3, 20]]);
});
