/**
 * `deno task data`: shows exactly what the loss sees for the first examples of a dataset: how
 * each is templated, tokenized, truncated and masked, then the skip summary of the whole split.
 *
 *     deno task data --dataset data/samples/ultrafeedback_sample.jsonl --limit 3
 *     deno task data --dataset Anthropic/hh-rlhf --model Qwen/Qwen2.5-0.5B-Instruct --max_length 256
 *
 * Options: `--dataset` (required), `--model` (tokenizer folder or Hub id; default `model/tiny`;
 * `--dataset_name` and `--model_name_or_path`, train's names, work too),
 * `--limit` (examples to show; default 3), `--kind unpaired` (show pairs as KTO sees them), and
 * every data key of `data/config.ts` (`--dataset_train_split`, `--dataset_config`, `--format`,
 * `--max_samples`, `--max_length`, `--max_prompt_length`, `--max_completion_length`,
 * `--truncation_mode`, ...), with the defaults `deno task train` uses.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { loadTokenizer, type Tokenizer } from "../model/tokenizer.ts";
import { collate } from "./batch.ts";
import { DATA_FLAGS, dataConfigOf } from "./config.ts";
import { processRows } from "./dataset.ts";
import { detectFormat, parseRow } from "./formats.ts";
import { SkipCounter, SkipRow } from "./skips.ts";
import { readRows } from "./sources.ts";
import { renderTexts, tokenizeExample } from "./template.ts";
import type { ParsedExample, TokenizedExample } from "./types.ts";

const USAGE =
  "Usage: deno task data --dataset PATH_OR_ID [--model M] [--limit 3] [--max_length N] ...";

/** The text of each token, quoted, so spaces, newlines and special tokens are visible. */
function showTokens(tokenizer: Tokenizer, ids: number[]): string {
  return ids.map((id) => JSON.stringify(tokenizer.tokenText(id))).join(" ");
}

function describe(
  tokenizer: Tokenizer,
  parsed: ParsedExample,
  before: TokenizedExample,
  after: TokenizedExample,
): string {
  const lines: string[] = [];
  if (!("promptIds" in parsed)) {
    const completions = parsed.kind === "paired"
      ? [parsed.chosen, parsed.rejected]
      : [parsed.completion];
    const texts = renderTexts(tokenizer, parsed.prompt, completions);
    lines.push(`  templated prompt: ${JSON.stringify(texts.prompt)}`);
    const names = parsed.kind === "paired" ? ["chosen", "rejected"] : ["completion"];
    texts.completions.forEach((t, i) =>
      lines.push(`  templated ${names[i]}: ${JSON.stringify(t)}`)
    );
  } else lines.push("  pre-tokenized: ids used as given (no template, no added tokens)");
  const parts: [string, number[], number[]][] = [["prompt", before.promptIds, after.promptIds]];
  if (before.kind === "paired" && after.kind === "paired") {
    parts.push(["chosen", before.chosenIds, after.chosenIds], [
      "rejected",
      before.rejectedIds,
      after.rejectedIds,
    ]);
  } else if (before.kind === "unpaired" && after.kind === "unpaired") {
    parts.push([
      `completion (label ${after.label ? "desirable" : "undesirable"})`,
      before.completionIds,
      after.completionIds,
    ]);
  }
  for (const [name, was, now] of parts) {
    const mask = name === "prompt" ? 0 : 1;
    const cut = was.length === now.length ? "" : ` (truncated from ${was.length})`;
    lines.push(`  ${name}: ${now.length} tokens${cut}, completion mask ${mask}`);
    lines.push(`    ids:    ${JSON.stringify(now)}`);
    lines.push(`    tokens: ${showTokens(tokenizer, now)}`);
  }
  const batch = collate([after], { padTokenId: tokenizer.padTokenId });
  const [n, t] = batch.shape;
  for (let row = 0; row < n; row++) {
    const mask = Array.from(batch.completionMask.subarray(row * t, row * t + t)).join("");
    const label = batch.kind === "paired"
      ? (row < batch.pairs ? "chosen  " : "rejected")
      : "row     ";
    lines.push(`  ${label} mask ${mask}  (loss on ${batch.completionLengths[row]} of ${t} tokens)`);
  }
  if (after.kind === "paired" && after.extras) {
    lines.push(`  extras: ${JSON.stringify(after.extras)}`);
  }
  return lines.join("\n");
}

/** The value of `--short` or of train's `--long` name for the same thing (both: the same). */
function trainName(
  values: Record<string, unknown>,
  short: string,
  long: string,
): string | undefined {
  const [a, b] = [values[short], values[long]] as (string | undefined)[];
  if (a !== undefined && b !== undefined && a !== b) {
    throw new Error(`Conflicting --${short} ${a} and --${long} ${b}: keep one`);
  }
  return a ?? b;
}

/**
 * Builds the report `deno task data` prints.
 *
 * @param args Command-line arguments, e.g. `["--dataset", "data/samples/hh_sample.jsonl"]`.
 * @returns The report text.
 * @throws On bad arguments or an unusable dataset.
 *
 * @example
 * ```ts
 * import { match } from "node:assert/strict";
 * match(await dataReport(["--dataset", "data/samples/hh_sample.jsonl", "--limit", "1"]), /format: hh_rlhf/);
 * ```
 */
export async function dataReport(args: string[]): Promise<string> {
  const out: string[] = [];
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      dataset: { type: "string" },
      dataset_name: { type: "string" },
      model: { type: "string" },
      model_name_or_path: { type: "string" },
      limit: { type: "string", default: "3" },
      kind: { type: "string" },
      ...DATA_FLAGS,
      help: { type: "boolean" },
    },
  });
  if (values.help) return USAGE;
  const dataset = trainName(values, "dataset", "dataset_name");
  const model = trainName(values, "model", "model_name_or_path") ?? "model/tiny";
  if (!dataset) throw new Error(`Missing --dataset: ${USAGE}`);
  if (values.kind && values.kind !== "paired" && values.kind !== "unpaired") {
    throw new Error(`Invalid --kind ${values.kind}: expected "paired" or "unpaired"`);
  }
  const config = dataConfigOf({ ...values, dataset_name: dataset });

  const limit = Number(values.limit);
  if (!Number.isInteger(limit) || limit < 1) {
    throw new Error(`Invalid --limit ${values.limit}: expected a positive integer`);
  }
  const kind = values.kind as "paired" | "unpaired" | undefined;
  const tokenizer = await loadTokenizer(model);
  const split = config.dataset_train_split;
  const source = await readRows(dataset, {
    split,
    config: config.dataset_config ?? undefined,
    limit: config.max_samples ?? undefined,
  });
  const format = detectFormat(source.columns, {
    rows: source.rows,
    format: config.format ?? undefined,
    origin: source.files.join(", "),
  });
  const special = (
    id: number | null,
  ) => (id === null ? "none" : `${id} ${JSON.stringify(tokenizer.tokenText(id))}`);
  out.push(
    `Dataset ${dataset} (split ${split}): ${source.rows.length} rows from ${
      source.files.join(", ")
    }`,
  );
  out.push(
    `Columns: ${source.columns.join(", ")}; format: ${format}${
      config.format ? " (given)" : " (detected)"
    }`,
  );
  out.push(
    `Tokenizer ${model}: vocab ${tokenizer.vocabSize}, BOS ${special(tokenizer.bosTokenId)}, ` +
      `EOS ${special(tokenizer.eosTokenId)}, pad ${special(tokenizer.padTokenId)}, ` +
      `chat template: ${tokenizer.chatTemplateSource}; ` +
      `completions end with ${tokenizer.stopTokenIds.map(special).join(" or ")}`,
  );
  if (tokenizer.templateWarning) out.push(tokenizer.templateWarning);
  out.push(
    `Truncation: max_length ${config.max_length}, max_prompt_length ${
      config.max_prompt_length ?? "-"
    }, ` +
      `max_completion_length ${config.max_completion_length ?? "-"}, ${config.truncation_mode}`,
  );
  let shown = 0;
  for (let index = 0; index < source.rows.length && shown < limit; index++) {
    const skips = new SkipCounter();
    const [after] = processRows([source.rows[index]], {
      format,
      tokenizer,
      config,
      skips,
      kind,
      offset: index,
    });
    out.push(`\n── Example ${shown + 1} (row ${index}) ──`);
    shown++;
    if (!after) {
      out.push(
        `  skipped: ${Object.keys(skips.counts)[0]}: ${Object.values(skips.samples)[0]?.[0] ?? ""}`,
      );
      continue;
    }
    const parsed = parseRow(source.rows[index], { format, index });
    let before: TokenizedExample;
    try {
      before = tokenizeExample(parsed, tokenizer);
    } catch (e) {
      if (!(e instanceof SkipRow)) throw e;
      continue;
    }
    // For --kind unpaired a pair is shown as its desirable half, like the first row KTO gets.
    if (after.kind === "unpaired" && before.kind === "paired") {
      before = {
        kind: "unpaired",
        promptIds: before.promptIds,
        completionIds: before.chosenIds,
        label: true,
        row: index,
      };
    }
    out.push(describe(tokenizer, parsed, before, after));
  }
  const skips = new SkipCounter();
  const all = processRows(source.rows, { format, tokenizer, config, skips, kind });
  out.push(`\n${skips.summary(all.length)}`);
  return out.join("\n");
}

if (import.meta.main) {
  try {
    console.log(await dataReport(Deno.args));
  } catch (e) {
    console.error(`Error: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
