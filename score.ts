/**
 * `deno task score`: completion log-probs of a dataset under a model, one JSON line per example,
 * for checking implicit rewards (β·(log π − log π_ref) from two runs) and for parity checks
 * against another implementation.
 *
 *     deno task score --model model/tiny --data data/samples/hh_sample.jsonl
 *     deno task score --model HuggingFaceTB/SmolLM2-135M-Instruct --data pairs.jsonl --device cuda
 *
 * Each line: `{"row": 3, "chosen": {"logp_sum": -12.3, "logp_mean": -1.02, "tokens": 12},
 * "rejected": {...}}` (unpaired data: `"label"` and `"completion"`). `--data` takes any format the
 * data pipeline reads (JSONL / JSON / Parquet / Hub dataset, pre-tokenized rows included); rows
 * the pipeline skips are summarised on stderr. Options: `--model` (default model/tiny; a LoRA
 * adapter folder scores base + adapter, the base from `--base` or its adapter_config.json),
 * `--data` (required), `--batch_size` (default 8), `--device` (default cpu), and every data key
 * of `data/config.ts` (`--max_length`, `--truncation_mode`, ...) with the defaults `deno task
 * train` uses, except that every row is scored (`--eval_split` 0).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { type Device, parseDevice, Program } from "./runtime/mod.ts";
import { collate } from "./data/batch.ts";
import { DATA_FLAGS, dataConfigOf } from "./data/config.ts";
import { prepareData } from "./data/dataset.ts";
import type { TokenizedExample } from "./data/types.ts";
import { buildCausalLM } from "./model/decoder.ts";
import { type LoadedModel, loadModel } from "./model/load.ts";
import { batchFeedsOf, batchLogps } from "./model/logprobs.ts";
import { loadTokenizer } from "./model/tokenizer.ts";

const USAGE = "Usage: deno task score --data PATH_OR_ID [--model M] [--batch_size 8] " +
  "[--device cpu] [--max_length N] ...";

/** Log-prob summary of one completion. */
export interface CompletionScore {
  /** Σ of the completion tokens' log-probs. */
  logp_sum: number;
  /** `logp_sum / tokens`. */
  logp_mean: number;
  /** Completion tokens. */
  tokens: number;
}

/** One output line. */
export type ScoreLine =
  | { row: number; chosen: CompletionScore; rejected: CompletionScore }
  | { row: number; label: boolean; completion: CompletionScore };

/**
 * Scores tokenized examples: completion log-probs of each, in batches.
 *
 * @param model Loaded config and weights.
 * @param examples Tokenized examples (one kind).
 * @param options Pad id, batch size and device.
 * @returns One line per example, in order.
 * @example
 * ```ts
 * import { loadModel } from "./model/load.ts";
 * import { scoreExamples } from "./score.ts";
 * const model = await loadModel("model/tiny");
 * const [line] = await scoreExamples(model, [
 *   { kind: "paired", promptIds: [509, 20], chosenIds: [30, 510], rejectedIds: [40], row: 0 },
 * ], { padTokenId: 511 });
 * if (!("chosen" in line) || line.chosen.tokens !== 2) throw new Error("unexpected");
 * ```
 */
export async function scoreExamples(
  model: Pick<LoadedModel, "config" | "weights" | "adapter">,
  examples: TokenizedExample[],
  options: { padTokenId: number; batchSize?: number; device?: Device },
): Promise<ScoreLine[]> {
  // A LoRA adapter stays unmerged: the base frozen, the adapters fed as the only inputs.
  const { adapter } = model;
  const lm = adapter
    ? buildCausalLM(model.config, { frozen: model.weights, lora: adapter.lora })
    : buildCausalLM(model.config);
  const out = batchLogps(lm);
  const program = await Program.compile(
    { sum: out.sum, count: out.count, mean: out.mean },
    { device: options.device },
  );
  const lines: ScoreLine[] = [];
  const size = options.batchSize ?? 8;
  try {
    for (let start = 0; start < examples.length; start += size) {
      const part = examples.slice(start, start + size);
      const batch = collate(part, { padTokenId: options.padTokenId });
      const r = await program.run({
        ...(adapter ? adapter.weights : model.weights),
        ...batchFeedsOf(batch),
      });
      const at = (i: number): CompletionScore => ({
        logp_sum: r.sum.data[i] as number,
        logp_mean: r.mean.data[i] as number,
        tokens: r.count.data[i] as number,
      });
      part.forEach((e, i) => {
        if (e.kind === "paired") {
          lines.push({ row: e.row, chosen: at(i), rejected: at(i + part.length) });
        } else {
          lines.push({ row: e.row, label: e.label, completion: at(i) });
        }
      });
    }
  } finally {
    await program.release();
  }
  return lines;
}

function positiveInt(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) {
    throw new Error(`Invalid --${name} ${value}: expected a positive integer`);
  }
  return n;
}

/**
 * Runs `deno task score` on command-line arguments.
 *
 * @param args Arguments, e.g. `["--data", "data/samples/hh_sample.jsonl"]`.
 * @returns The JSON lines, and the skip summary of the data pipeline.
 * @example
 * ```ts
 * import { score } from "./score.ts";
 * const { lines } = await score(["--data", "data/samples/hh_sample.jsonl", "--max_samples", "2"]);
 * if (lines.length !== 2) throw new Error("unexpected");
 * ```
 */
export async function score(args: string[]): Promise<{ lines: string[]; skipped: string }> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      model: { type: "string", default: "model/tiny" },
      base: { type: "string" },
      data: { type: "string" },
      batch_size: { type: "string" },
      device: { type: "string", default: "cpu" },
      ...DATA_FLAGS,
    },
  });
  if (!values.data) throw new Error(`Missing --data: ${USAGE}`);
  const model = await loadModel(values.model, { base: values.base });
  const tokenizer = await loadTokenizer(model.dir);
  // Every row is scored: no held-out split unless asked for.
  const config = dataConfigOf({ eval_split: "0", ...values, dataset_name: values.data });
  const data = await prepareData(config, tokenizer);
  const lines = await scoreExamples(model, data.train, {
    padTokenId: tokenizer.padTokenId,
    batchSize: positiveInt("batch_size", values.batch_size),
    device: parseDevice(values.device),
  });
  return {
    lines: lines.map((l) => JSON.stringify(l)),
    skipped: data.skips.summary(data.train.length),
  };
}

if (import.meta.main) {
  try {
    if (Deno.args.includes("--help") || Deno.args.includes("-h")) {
      console.log(USAGE);
      Deno.exit(0);
    }
    const { lines, skipped } = await score(Deno.args);
    for (const line of lines) console.log(line);
    console.error(skipped);
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
