import { deepEqual, equal, match, notDeepEqual, ok } from "node:assert/strict";
import {
  DATA_KEYS,
  dataCacheKey,
  dataConfigOf,
  type DataKey,
  type KeySpec,
  prepareData,
  type Value,
} from "../../data/mod.ts";
import { dataReport } from "../../data/cli.ts";
import { loadTokenizer } from "../../model/tokenizer.ts";
import { score } from "../../score.ts";
import { resolveConfig } from "../../trainer/config.ts";

const SAMPLE = "data/samples/ultrafeedback_sample.jsonl";

Deno.test("dataConfigOf() gives train, score and data one max_length default and one truncation for the same flags", async () => {
  const train = (cli: Record<string, string>) => dataConfigOf(resolveConfig({ cli }).config);
  equal(train({}).max_length, DATA_KEYS.max_length.default);
  match(await dataReport(["--dataset", SAMPLE, "--limit", "1"]), /max_length 1024,/);
  const flags = { max_length: "24", max_completion_length: "6", truncation_mode: "keep_start" };
  const args = Object.entries(flags).flatMap(([k, v]) => [`--${k}`, v]);
  match(
    await dataReport(["--dataset", SAMPLE, "--limit", "1", ...args]),
    /max_length 24, .*keep_start/,
  );
  // score: every row; train: the same rows with the same flags, no held-out split.
  const { lines } = await score(["--data", SAMPLE, "--max_samples", "8", ...args]);
  const config = train({ ...flags, dataset_name: SAMPLE, max_samples: "8", eval_split: "0" });
  const data = await prepareData(config, await loadTokenizer("model/tiny"));
  const completions = data.train.map((e) =>
    e.kind === "paired" ? [e.chosenIds.length, e.rejectedIds.length] : []
  );
  deepEqual(
    lines.map((l) => JSON.parse(l)).map((l) => [l.chosen.tokens, l.rejected.tokens]),
    completions,
  );
  ok(completions.flat().every((n) => n <= 6), "max_completion_length 6 applied");
});

Deno.test("dataCacheKey() changes with every data key but the dataset's name (its files are checksummed)", () => {
  const base = dataConfigOf({});
  const other = (spec: KeySpec): Value => {
    if (spec.oneOf) return spec.oneOf.find((v) => v !== spec.default)!;
    if (spec.type === "fraction_or_name") return 0.25;
    if (spec.type === "string") return "other";
    return typeof spec.default === "number" ? spec.default + 1 : 7;
  };
  for (const [key, spec] of Object.entries(DATA_KEYS) as [DataKey, KeySpec][]) {
    if (key === "dataset_name") continue;
    const changed = dataConfigOf({ ...base, [key]: other(spec) });
    notDeepEqual(dataCacheKey(changed), dataCacheKey(base), `changing ${key}`);
  }
  deepEqual(dataCacheKey(dataConfigOf({ dataset_name: "a.jsonl" })), dataCacheKey(base));
});
