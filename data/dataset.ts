/**
 * The whole pipeline behind one call: read rows → detect the format → parse → template and
 * tokenize → (unpair for KTO) → truncate → split off evaluation data, counting every skipped row;
 * then {@link epochBatches} turns the examples into model batches.
 *
 * @module
 */

import type { Tokenizer } from "../model/tokenizer.ts";
import { batchIndices, collate, exampleLength, toUnpaired } from "./batch.ts";
import type { BatchOptions, CollateOptions } from "./batch.ts";
import { detectFormat, type Format, parseRow } from "./formats.ts";
import type { HubOptions } from "../model/hub.ts";
import { shuffle } from "./shuffle.ts";
import { SkipCounter, SkipRow } from "./skips.ts";
import { readRows, type RowSource } from "./sources.ts";
import { tokenizeExample } from "./template.ts";
import { truncateExample } from "./truncate.ts";
import type { Batch, Row, TokenizedExample } from "./types.ts";
import { type DataConfig, dataConfigOf } from "./config.ts";

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
    config: DataConfig;
    skips: SkipCounter;
    kind?: "paired" | "unpaired";
    /** Row number of `rows[0]` in the source. @default 0 */
    offset?: number;
  },
): TokenizedExample[] {
  const { format, tokenizer, config, skips } = options;
  const truncation = {
    max_length: config.max_length,
    max_prompt_length: config.max_prompt_length ?? undefined,
    max_completion_length: config.max_completion_length ?? undefined,
    truncation_mode: config.truncation_mode,
    bos_token_id: tokenizer.bosTokenId,
  };
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
 * @param settings The data keys (`dataset_name` at least); the table's defaults fill the rest.
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
 * const data = await prepareData({ dataset_name: "data/samples/hh_sample.jsonl" }, tok);
 * ok(data.train.length > 0);
 * ```
 */
export async function prepareData(
  settings: Partial<DataConfig>,
  tokenizer: Tokenizer,
  options: PrepareOptions = {},
): Promise<PreparedData> {
  const config = dataConfigOf(settings);
  const dataset = requireDataset(config);
  const read = (s: string) =>
    readRows(dataset, {
      ...options,
      split: s,
      config: config.dataset_config ?? undefined,
      limit: config.max_samples ?? undefined,
    });
  return await prepareRows(await read(config.dataset_train_split), config, {
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
 * @param settings The data keys (`dataset_name` names the source in messages); the table's
 *   defaults fill the rest.
 * @param options Wanted kind, and `readSplit` for an eval split given by name.
 * @returns Train and eval examples with skip counts.
 * @throws When no example survives, on unusable columns, or on a named eval split without
 *   `readSplit`.
 */
export async function prepareRows(
  source: RowSource,
  settings: Partial<DataConfig>,
  options: {
    tokenizer: Tokenizer;
    kind?: "paired" | "unpaired";
    readSplit?: (split: string) => Promise<RowSource>;
  },
): Promise<PreparedData> {
  const { tokenizer } = options;
  const config = dataConfigOf(settings);
  const format = detectFormat(source.columns, {
    rows: source.rows,
    format: config.format ?? undefined,
    origin: source.files.join(", "),
  });
  const skips = new SkipCounter();
  const evalSkips = new SkipCounter();
  let train = processRows(source.rows, { format, tokenizer, config, skips, kind: options.kind });
  let evalExamples: TokenizedExample[] = [];
  const evalSplit = config.dataset_test_split ?? config.eval_split;
  if (typeof evalSplit === "number" && evalSplit > 0) {
    // Hold out source rows, not examples: both halves of an unpaired pair stay on one side, so
    // held-out pairs can be scored pairwise for every loss.
    const rows = [...new Set(train.map((e) => e.row))];
    const order = shuffle(rows.map((_, i) => i), config.seed);
    const n = Math.min(rows.length - 1, Math.max(1, Math.round(rows.length * evalSplit)));
    const held = new Set(order.slice(0, n).map((i) => rows[i]));
    evalExamples = train.filter((e) => held.has(e.row));
    train = train.filter((e) => !held.has(e.row));
  } else if (typeof evalSplit === "string") {
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
      `No usable examples in ${config.dataset_name} (split ${config.dataset_train_split}):\n${
        skips.summary(0)
      }`,
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
  options:
    & Pick<BatchOptions, "batch_size" | "seed" | "train_sampling_strategy">
    & CollateOptions
    & {
      epoch?: number;
      shuffle?: boolean;
      drop_last?: boolean;
    },
): Generator<Batch> {
  for (const indices of batchIndices(examples.map(exampleLength), options)) {
    yield collate(indices.map((i) => examples[i]), { ...options, indices });
  }
}

/** The dataset a config names, or an error saying how to name one. */
function requireDataset(config: DataConfig): string {
  if (config.dataset_name === null) {
    throw new Error("Missing dataset_name: set it in the YAML or pass --dataset_name");
  }
  return config.dataset_name;
}
