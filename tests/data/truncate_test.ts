import { deepStrictEqual, equal, throws } from "node:assert/strict";
import { SkipRow } from "../../data/skips.ts";
import { truncateExample } from "../../data/truncate.ts";
import type { PairedExample } from "../../data/types.ts";

const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);
/** Prompt ids 100.., chosen 200.., rejected 300.. so every kept token can be traced. */
const pair = (p: number, c: number, r: number): PairedExample => ({
  kind: "paired",
  promptIds: range(100, p),
  chosenIds: range(200, c),
  rejectedIds: range(300, r),
  row: 0,
});
const isEmptySkip = (e: unknown) =>
  e instanceof SkipRow && e.reason === "empty_completion_after_truncation";

Deno.test("truncateExample() leaves short examples alone", () => {
  const ex = pair(3, 2, 4);
  deepStrictEqual(truncateExample(ex, { max_length: 7 }), ex);
  deepStrictEqual(truncateExample(ex, {}), ex);
});

Deno.test("truncateExample() keep_end drops prompt tokens from the left for the longest completion", () => {
  const out = truncateExample(pair(10, 3, 5), { max_length: 8 });
  deepStrictEqual(out.promptIds, range(107, 3));
  deepStrictEqual(out.chosenIds, range(200, 3));
  deepStrictEqual(out.rejectedIds, range(300, 5));
});

Deno.test("truncateExample() keep_end handles a prompt alone longer than max_length", () => {
  const out = truncateExample(pair(20, 2, 2), { max_length: 6 });
  deepStrictEqual(out.promptIds, range(116, 4));
  deepStrictEqual(out.chosenIds, range(200, 2));
});

Deno.test("truncateExample() keep_end keeps one prompt token and cuts a completion that is too long", () => {
  const out = truncateExample(pair(5, 9, 2), { max_length: 6 });
  deepStrictEqual(out.promptIds, [104]);
  deepStrictEqual(out.chosenIds, range(200, 5));
  deepStrictEqual(out.rejectedIds, range(300, 2));
  throws(() => truncateExample(pair(5, 9, 2), { max_length: 1 }), isEmptySkip);
});

Deno.test("truncateExample() keep_end keeps a leading BOS", () => {
  const ex = { ...pair(6, 2, 2), promptIds: [1, ...range(100, 5)] };
  deepStrictEqual(truncateExample(ex, { max_length: 5, bos_token_id: 1 }).promptIds, [1, 103, 104]);
  deepStrictEqual(truncateExample(ex, { max_prompt_length: 2, bos_token_id: 1 }).promptIds, [
    1,
    104,
  ]);
  deepStrictEqual(truncateExample(ex, { max_length: 5 }).promptIds, range(102, 3));
});

Deno.test("truncateExample() keep_start keeps the first max_length tokens", () => {
  const out = truncateExample(pair(4, 5, 2), { max_length: 7, truncation_mode: "keep_start" });
  deepStrictEqual(out.promptIds, range(100, 4));
  deepStrictEqual(out.chosenIds, range(200, 3));
  deepStrictEqual(out.rejectedIds, range(300, 2));
});

Deno.test("truncateExample() keep_start skips a prompt alone as long as max_length", () => {
  throws(
    () => truncateExample(pair(7, 2, 2), { max_length: 7, truncation_mode: "keep_start" }),
    isEmptySkip,
  );
  throws(
    () => truncateExample(pair(9, 2, 2), { max_length: 7, truncation_mode: "keep_start" }),
    isEmptySkip,
  );
  equal(
    truncateExample(pair(6, 2, 2), { max_length: 7, truncation_mode: "keep_start" }).chosenIds
      .length,
    1,
  );
});

Deno.test("truncateExample() applies max_prompt_length by mode and max_completion_length from the start", () => {
  const ex = pair(6, 5, 3);
  deepStrictEqual(truncateExample(ex, { max_prompt_length: 2 }).promptIds, [104, 105]);
  deepStrictEqual(
    truncateExample(ex, { max_prompt_length: 2, truncation_mode: "keep_start" }).promptIds,
    [100, 101],
  );
  const out = truncateExample(ex, { max_completion_length: 4 });
  deepStrictEqual(out.chosenIds, range(200, 4));
  deepStrictEqual(out.rejectedIds, range(300, 3));
  deepStrictEqual(out.promptIds, ex.promptIds);
  // Both limits, then max_length on what is left.
  const both = truncateExample(ex, {
    max_prompt_length: 4,
    max_completion_length: 4,
    max_length: 6,
  });
  deepStrictEqual([both.promptIds, both.chosenIds], [[104, 105], range(200, 4)]);
});

Deno.test("truncateExample() truncates unpaired examples the same way", () => {
  const ex = {
    kind: "unpaired" as const,
    promptIds: range(100, 8),
    completionIds: range(200, 3),
    label: false,
    row: 0,
  };
  const out = truncateExample(ex, { max_length: 5 });
  deepStrictEqual([out.promptIds, out.completionIds, out.label], [
    [106, 107],
    range(200, 3),
    false,
  ]);
  deepStrictEqual(ex.promptIds, range(100, 8), "the input is not modified");
});

Deno.test("truncateExample() rejects bad options", () => {
  throws(() => truncateExample(pair(1, 1, 1), { max_length: 0 }), /Invalid max_length 0/);
  throws(
    () => truncateExample(pair(1, 1, 1), { truncation_mode: "middle" as never }),
    /Invalid truncation_mode "middle"/,
  );
});

Deno.test("truncateExample() skips a pair whose completions become identical", () => {
  const same = { ...pair(3, 4, 4), rejectedIds: [200, 201, 202, 999] };
  throws(
    () => truncateExample(same, { max_completion_length: 3 }),
    (e) =>
      e instanceof SkipRow && e.reason === "identical_after_truncation" &&
      /same 3 tokens after truncation \(max_length 512, max_completion_length 3\)/.test(e.message),
  );
  equal(truncateExample(same, { max_completion_length: 4 }).rejectedIds.at(-1), 999);
});
