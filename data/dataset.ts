/**
 * The whole pipeline behind one call: read rows → detect the format → parse → template and
 * tokenize → (unpair for KTO) → truncate → split off evaluation data, counting every skipped row;
 * then {@link epochBatches} turns the examples into model batches.
 *
 * @module
 */

import type { Tokenizer } from "../model/tokenizer.ts";
import { batchIndices, collate, exampleLength, toUnpaired } from "./batch.ts";
import type { CollateOptions } from "./batch.ts";
import { detectFormat, type Format, parseRow } from "./formats.ts";
import type { HubOptions } from "../model/hub.ts";
import { shuffle } from "./shuffle.ts";
import { SkipCounter, SkipRow } from "./skips.ts";
import { readRows, type RowSource } from "./sources.ts";
import { tokenizeExample } from "./template.ts";
import { truncateExample } from "./truncate.ts";
import type { Batch, Row, TokenizedExample } from "./types.ts";

/** The data config keys (TRL names; shared by YAML, the CLI and this type). */
export interface DataConfig {
  /** A `.jsonl` / `.json` / `.parquet` path or a Hub dataset id. */
  dataset: string;
  /** Split of a Hub dataset. @default "train" */
  dataset_split?: string;
  /** Config (subset) of a Hub dataset. @default undefined ("default") */
  dataset_config?: string;
  /** Format override; detected from the columns when unset. @default undefined */
  format?: Format;
  /** Use only the first this many rows of the split. @default undefined (all) */
  max_samples?: number;
  /** Longest prompt + completion, in tokens. @default 512 */
  max_length?: number;
  /** Longest prompt, in tokens. @default undefined */
  max_prompt_length?: number;
  /** Longest completion, in tokens. @default undefined */
  max_completion_length?: number;
  /** `keep_end` drops prompt tokens from the left; `keep_start` cuts the end. @default "keep_end" */
  truncation_mode?: "keep_end" | "keep_start";
  /** Seed of shuffling and of the eval split. @default 42 */
  seed?: number;
  /** Fraction of examples held out (0–1), or the name of an evaluation split. @default undefined (none) */
  eval_split?: number | string;
  /** Pairs (or unpaired rows) per batch. @default 8 */
  batch_size?: number;
  /** Put examples of similar length in the same batch. @default false */
  group_by_length?: boolean;
}

/** Defaults of the optional {@link DataConfig} keys. */
export const DATA_DEFAULTS = {
  dataset_split: "train",
  max_length: 512,
  truncation_mode: "keep_end",
  seed: 42,
  batch_size: 8,
  group_by_length: false,
} as const;

/** The data keys a command line may set, as `node:util` parseArgs options (all strings). */
export const DATA_FLAGS = {
  dataset_split: { type: "string" },
  dataset_config: { type: "string" },
  format: { type: "string" },
  max_samples: { type: "string" },
  max_length: { type: "string" },
  max_prompt_length: { type: "string" },
  max_completion_length: { type: "string" },
  truncation_mode: { type: "string" },
} as const;

const COUNTS = ["max_samples", "max_length", "max_prompt_length", "max_completion_length"] as const;

/**
 * The data config of `dataset` from other settings: command-line strings or already-typed values
 * (a trainer's resolved config); absent and null mean "unset". Token counts must be positive
 * integers.
 *
 * @param dataset File or Hub id.
 * @param values Settings by key (extra keys are ignored).
 * @returns The data config.
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * const c = dataConfigFrom("rows.jsonl", { max_length: "256", dataset_config: null });
 * equal(c.max_length, 256);
 * equal(c.dataset_config, undefined);
 * ```
 */
export function dataConfigFrom(dataset: string, values: Record<string, unknown>): DataConfig {
  const get = (key: string) => values[key] ?? undefined;
  const count = (key: string) => {
    const raw = get(key);
    if (raw === undefined) return undefined;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1) {
      throw new Error(`Invalid ${key} ${raw}: expected a positive integer`);
    }
    return n;
  };
  const split = get("eval_split");
  const config: DataConfig = {
    dataset,
    dataset_split: get("dataset_split") as string | undefined,
    dataset_config: get("dataset_config") as string | undefined,
    format: get("format") as Format | undefined,
    truncation_mode:
      (get("truncation_mode") ?? DATA_DEFAULTS.truncation_mode) as DataConfig["truncation_mode"],
    seed: get("seed") === undefined ? undefined : Number(get("seed")),
    eval_split: split === undefined || split === 0 || split === ""
      ? undefined
      : isNaN(Number(split))
      ? String(split)
      : Number(split),
  };
  for (const key of COUNTS) config[key] = count(key);
  config.max_length ??= DATA_DEFAULTS.max_length;
  return config;
}

/** Examples ready for training, with what was skipped. */
export interface PreparedData {
  /** "paired" or "unpaired" (after unpairing for KTO). */
  kind: "paired" | "unpaired";
  /** The detected (or given) format. */
  format: Format;
  train: TokenizedExample[];
  eval: TokenizedExample[];
  /** Skipped rows of the training split (and of a ratio eval split). */
  skips: SkipCounter;
  /** Skipped rows of a named eval split. */
  evalSkips: SkipCounter;
  /** Files the rows came from. */
  files: string[];
}

/** Options of {@link prepareData}. */
export interface PrepareOptions extends HubOptions {
  /** The kind the algorithm needs: "unpaired" turns pairs into desirable/undesirable rows. @default the dataset's kind */
  kind?: "paired" | "unpaired";
}

/**
 * Turns rows into tokenized, truncated examples, counting every skipped row.
 *
 * @param rows The rows.
 * @param options Format, tokenizer, config, skip counter and wanted kind.
 * @returns The examples.
 */
export function processRows(
  rows: Row[],
  options: {
    format: Format;
    tokenizer: Tokenizer;
    config: Omit<DataConfig, "dataset">;
    skips: SkipCounter;
    kind?: "paired" | "unpaired";
    /** Row number of `rows[0]` in the source. @default 0 */
    offset?: number;
  },
): TokenizedExample[] {
  const { format, tokenizer, config, skips } = options;
  const truncation = { ...config, bos_token_id: tokenizer.bosTokenId };
  const out: TokenizedExample[] = [];
  rows.forEach((row, i) => {
    const index = i + (options.offset ?? 0);
    try {
      const tokenized = tokenizeExample(parseRow(row, { format, index }), tokenizer);
      if (options.kind === "paired" && tokenized.kind === "unpaired") {
        throw new Error(
          `Dataset is unpaired (prompt/completion/label) but the algorithm needs chosen/rejected pairs: ` +
            `use a paired dataset or an algorithm for unpaired data (KTO, BCO)`,
        );
      }
      const examples = options.kind === "unpaired" && tokenized.kind === "paired"
        ? toUnpaired([tokenized])
        : [tokenized];
      for (const e of examples) {
        try {
          out.push(truncateExample(e, truncation));
        } catch (err) {
          if (!(err instanceof SkipRow)) throw err;
          skips.add(err.reason, index, err.message);
        }
      }
    } catch (err) {
      if (!(err instanceof SkipRow)) throw err;
      skips.add(err.reason, index, err.message);
    }
  });
  return out;
}

/**
 * Loads, tokenizes, truncates and splits a dataset per the config.
 *
 * @param config The data config.
 * @param tokenizer The model's tokenizer.
 * @param options Wanted kind and Hub options.
 * @returns Train and eval examples with skip counts.
 * @throws When no example survives, or on unusable columns.
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import { loadTokenizer } from "../model/tokenizer.ts";
 * const tok = await loadTokenizer("model/tiny");
 * const data = await prepareData({ dataset: "data/samples/hh_sample.jsonl" }, tok);
 * ok(data.train.length > 0);
 * ```
 */
export async function prepareData(
  config: DataConfig,
  tokenizer: Tokenizer,
  options: PrepareOptions = {},
): Promise<PreparedData> {
  const split = config.dataset_split ?? DATA_DEFAULTS.dataset_split;
  const read = (s: string) =>
    readRows(config.dataset, {
      ...options,
      split: s,
      config: config.dataset_config,
      limit: config.max_samples,
    });
  return await prepareRows(await read(split), config, {
    tokenizer,
    kind: options.kind,
    readSplit: read,
  });
}

/**
 * {@linkcode prepareData} on rows already read (an upload in the browser): the same format
 * detection, tokenization, truncation, skip accounting and eval split.
 *
 * @param source The training split's rows.
 * @param config The data config (`dataset` names the source in messages).
 * @param options Wanted kind, and `readSplit` for an eval split given by name.
 * @returns Train and eval examples with skip counts.
 * @throws When no example survives, on unusable columns, or on a named eval split without
 *   `readSplit`.
 */
export async function prepareRows(
  source: RowSource,
  config: DataConfig,
  options: {
    tokenizer: Tokenizer;
    kind?: "paired" | "unpaired";
    readSplit?: (split: string) => Promise<RowSource>;
  },
): Promise<PreparedData> {
  const { tokenizer } = options;
  const split = config.dataset_split ?? DATA_DEFAULTS.dataset_split;
  const format = detectFormat(source.columns, {
    rows: source.rows,
    format: config.format,
    origin: source.files.join(", "),
  });
  const skips = new SkipCounter();
  const evalSkips = new SkipCounter();
  let train = processRows(source.rows, { format, tokenizer, config, skips, kind: options.kind });
  let evalExamples: TokenizedExample[] = [];
  const evalSplit = config.eval_split;
  if (typeof evalSplit === "number") {
    if (!(evalSplit > 0 && evalSplit < 1)) {
      throw new Error(
        `Invalid eval_split ${evalSplit}: expected a fraction between 0 and 1 or a split name`,
      );
    }
    // Hold out source rows, not examples: both halves of an unpaired pair stay on one side, so
    // held-out pairs can be scored pairwise for every loss.
    const rows = [...new Set(train.map((e) => e.row))];
    const order = shuffle(rows.map((_, i) => i), config.seed ?? DATA_DEFAULTS.seed);
    const n = Math.min(rows.length - 1, Math.max(1, Math.round(rows.length * evalSplit)));
    const held = new Set(order.slice(0, n).map((i) => rows[i]));
    evalExamples = train.filter((e) => held.has(e.row));
    train = train.filter((e) => !held.has(e.row));
  } else if (typeof evalSplit === "string" && evalSplit) {
    if (!options.readSplit) {
      throw new Error(
        `eval_split "${evalSplit}" names a split, which rows already read do not have: ` +
          "give a fraction such as 0.1",
      );
    }
    const evalSource = await options.readSplit(evalSplit);
    evalExamples = processRows(evalSource.rows, {
      format,
      tokenizer,
      config,
      skips: evalSkips,
      kind: options.kind,
    });
  }
  if (train.length === 0) {
    throw new Error(
      `No usable examples in ${config.dataset} (split ${split}):\n${skips.summary(0)}`,
    );
  }
  return {
    kind: train[0].kind,
    format,
    train,
    eval: evalExamples,
    skips,
    evalSkips,
    files: source.files,
  };
}

/**
 * The batches of one epoch, collated for the model.
 *
 * @param examples Prepared examples (one kind).
 * @param options Batch options from the config, the epoch, and collation options.
 * @returns A generator of batches; `indices` index into `examples`.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * const ex = { kind: "unpaired" as const, promptIds: [1], completionIds: [2], label: true, row: 0 };
 * equal([...epochBatches([ex, ex, ex], { batch_size: 2, padTokenId: 0 })].length, 2);
 * ```
 */
export function* epochBatches(
  examples: TokenizedExample[],
  options: Pick<DataConfig, "batch_size" | "seed" | "group_by_length"> & CollateOptions & {
    epoch?: number;
    shuffle?: boolean;
    drop_last?: boolean;
  },
): Generator<Batch> {
  for (const indices of batchIndices(examples.map(exampleLength), options)) {
    yield collate(indices.map((i) => examples[i]), { ...options, indices });
  }
}
