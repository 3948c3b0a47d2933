/**
 * The data keys: how rows become examples (which dataset and split, the format, truncation, the
 * held-out split), declared once with their defaults, ranges and help. `deno task train`, `score`
 * and `data` resolve the same {@link DataConfig} from the same flags through
 * {@link dataConfigOf}; `trainer/config.ts` adds these keys to the run's table, and the reference
 * log-prob cache is keyed by {@link dataCacheKey}, which reads every key of the table (a new data
 * key changes the cache key by construction).
 *
 * @module
 */
import { FORMATS } from "./formats.ts";
import {
  atLeast,
  checkValue,
  type ConfigOf,
  fromString,
  type KeySpec,
  type Value,
} from "./key_table.ts";

/** Every data key. The order is `--help`'s. */
export const DATA_KEYS = {
  dataset_name: {
    type: "string",
    default: null,
    trl: null,
    help: "local .jsonl/.json/.parquet or Hub dataset id",
  },
  dataset_config: { type: "string", default: null, trl: null, help: "config of a Hub dataset" },
  dataset_train_split: {
    type: "string",
    default: "train",
    trl: "train",
    help: "split of a Hub dataset",
  },
  dataset_test_split: {
    type: "string",
    default: null,
    trl: "test",
    help: "held-out split of a Hub dataset, by name; unset: eval_split",
    differs: "a file has no test split: unset, eval_split holds out a fraction of the rows",
  },
  format: {
    type: "string",
    default: null,
    oneOf: FORMATS,
    help: "override the detected data format",
  },
  max_samples: { type: "integer", default: null, range: atLeast(1), help: "use at most N rows" },
  eval_split: {
    type: "fraction_or_name",
    default: 0.1,
    help: "held-out fraction (0-1; 0: none) or the name of an evaluation split",
  },
  max_length: {
    type: "integer",
    default: 1024,
    trl: 1024,
    range: atLeast(2),
    // The RLHF Book's table says 512; its configs (configs/*.yaml) set their own length anyway,
    // so the default only decides unconfigured runs, and TRL's keeps them comparable with TRL.
    help: "prompt + completion tokens (TRL 1.13's default; the RLHF Book's table: 512)",
  },
  max_prompt_length: {
    type: "integer",
    default: null,
    range: atLeast(1),
    help: "prompt tokens (ours: TRL 1.13 dropped it from DPOConfig)",
  },
  max_completion_length: {
    type: "integer",
    default: null,
    trl: null,
    range: atLeast(1),
    help: "completion tokens",
  },
  truncation_mode: {
    type: "string",
    default: "keep_end",
    trl: "keep_start",
    oneOf: ["keep_end", "keep_start"],
    help: "which prompt tokens survive truncation",
    differs: "keep_end keeps the prompt's last turn next to the answer",
  },
  seed: { type: "integer", default: 42, trl: 42, help: "seed of shuffling, splits and sampling" },
} as const satisfies Record<string, KeySpec>;

/** A data key. */
export type DataKey = keyof typeof DATA_KEYS;

/** A resolved data config: one typed value per key of {@link DATA_KEYS}. */
export type DataConfig = ConfigOf<typeof DATA_KEYS>;

/** Old names of data keys. */
export const DATA_ALIASES: Readonly<Record<string, DataKey>> = {
  dataset_split: "dataset_train_split",
};

/**
 * The data keys a command line may set besides the dataset (which `score` and `data` name with a
 * flag of their own), and their old names: `node:util` parseArgs options (all strings).
 */
export const DATA_FLAGS = Object.fromEntries(
  [...Object.keys(DATA_KEYS), ...Object.keys(DATA_ALIASES)]
    .filter((key) => key !== "dataset_name")
    .map((key) => [key, { type: "string" as const }]),
) as Record<Exclude<DataKey, "dataset_name">, { type: "string" }>;

/**
 * The data config of `values`: the data keys among them (flags as strings, or a resolved
 * config's typed values), checked, with the table's default for each key absent or undefined.
 *
 * @param values Settings by key or old name (other keys are ignored).
 * @returns The data config.
 * @example
 * ```ts
 * import { dataConfigOf } from "./config.ts";
 * const c = dataConfigOf({ dataset_name: "rows.jsonl", max_length: "256", beta: 0.1 });
 * if (c.max_length !== 256 || c.truncation_mode !== "keep_end") throw new Error("unexpected");
 * ```
 */
export function dataConfigOf(values: Readonly<Record<string, unknown>>): DataConfig {
  const config: Record<string, Value> = {};
  for (const [key, spec] of Object.entries(DATA_KEYS) as [DataKey, KeySpec][]) {
    const old = Object.keys(DATA_ALIASES).find((name) => DATA_ALIASES[name] === key);
    const raw = values[key] ?? (old === undefined ? undefined : values[old]);
    const value = typeof raw === "string" && spec.type !== "string" ? fromString(raw) : raw;
    config[key] = value === undefined ? spec.default : checkValue(key, spec, value);
  }
  return config as DataConfig;
}

/**
 * What of a data config decides which examples a run gets and how they are tokenized, for the
 * reference log-prob cache's key: every key of {@link DATA_KEYS} but the dataset's name (whose
 * files' contents are checksummed instead).
 *
 * @param config The data config.
 * @returns Key-value pairs, in the table's order.
 * @example
 * ```ts
 * import { dataCacheKey, dataConfigOf } from "./config.ts";
 * const key = dataCacheKey(dataConfigOf({ max_length: 64 }));
 * if (!key.some(([k, v]) => k === "max_length" && v === 64)) throw new Error("unexpected");
 * ```
 */
export function dataCacheKey(config: DataConfig): [string, Value][] {
  const values: Record<string, Value> = config;
  return Object.keys(DATA_KEYS).filter((k) => k !== "dataset_name").map((k) => [k, values[k]]);
}
