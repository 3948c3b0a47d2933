/**
 * What a resumed run may change. A checkpoint's config defines its run: the loss and its
 * hyperparameters, the model, the data, the seed, batch and accumulation, lengths and truncation,
 * LoRA, the optimizer and the learning-rate schedule. Changing any of them on `--resume` would
 * mix two runs in one folder (a DPO run continued as IPO, a rate jumping from 5e-6 to 0.01), so
 * it is refused with the list of differences.
 *
 * The learning rate and its schedule are refused too: AdamW's moments were built under the old
 * rate, and HF's Trainer restores its scheduler from the checkpoint, so a changed
 * `learning_rate` there is silently ignored; neither behaviour is worth imitating. A new rate is
 * a new run.
 *
 * What may change ({@link RESUMABLE}): how long (`max_steps`, `num_train_epochs`; the schedule is
 * stretched to the new total), how often it logs, evaluates, samples and saves, where it runs, and
 * judge timeouts. `config.yaml` then holds the new values under a comment naming each change and
 * the step it took effect from, so it still describes the steps before.
 *
 * @module
 */
import { join } from "node:path";
import {
  ALIASES,
  canonicalKey,
  configToYaml,
  type Key,
  lossOfType,
  type TrainConfig,
  type Value,
} from "./config.ts";

/** Keys a resumed run may change, and why each leaves the steps already taken valid. */
export const RESUMABLE: Readonly<Partial<Record<Key, string>>> = {
  max_steps: "extends (or ends) the run",
  num_train_epochs: "extends (or ends) the run",
  logging_steps: "logging cadence",
  eval_strategy: "evaluation cadence",
  eval_steps: "evaluation cadence",
  eval_samples: "evaluation size",
  per_device_eval_batch_size: "evaluation batches",
  save_steps: "checkpoint cadence",
  save_total_limit: "checkpoints kept",
  sample_every: "sample cadence",
  merge_adapter: "output only",
  device: "where it runs",
  use_cpu: "where it runs",
  gradient_checkpointing: "memory only",
  precompute_ref_log_probs: "the same values, cached or not",
  judge_timeout: "judge operation",
  judge_max_retries: "judge operation",
  judge_concurrency: "judge operation",
  output_dir: "set by --resume",
  overwrite_output_dir: "not a setting of the run",
};

/** One changed key. */
export interface Change {
  key: Key;
  from: Value;
  to: Value;
}

/**
 * Refuses command-line changes to keys that define a resumed run, before they are resolved (a
 * changed loss would otherwise fail on the old loss's keys with a less useful message).
 *
 * @param stored The checkpoint's resolved config.
 * @param cli The command line's `--key value` pairs (without `--resume`).
 * @param resumeDir The checkpoint, for the message.
 * @throws Listing every refused difference, e.g. `loss dpo → ipo`.
 * @example
 * ```ts
 * import { throws } from "node:assert/strict";
 * import { refuseDefiningChanges } from "./resume.ts";
 * const stored = { loss: "dpo", beta: 0.1, max_steps: 60 };
 * refuseDefiningChanges(stored, { max_steps: "80", loss_type: "sigmoid" }, "run/checkpoint-60");
 * throws(
 *   () => refuseDefiningChanges(stored, { loss: "ipo", max_steps: "80" }, "run/checkpoint-60"),
 *   /settings that define the run: loss dpo → ipo: /,
 * );
 * ```
 */
export function refuseDefiningChanges(
  stored: Record<string, Value>,
  cli: Record<string, string>,
  resumeDir: string,
): void {
  const refused: string[] = [];
  for (const [given, raw] of Object.entries(cli)) {
    const key = given === "loss_type" ? "loss" : canonicalKey(given);
    if (key === null || Object.hasOwn(RESUMABLE, key)) continue; // unknown keys fail later
    // TRL's loss_type names a loss (sigmoid → dpo); old names may translate their value.
    const value = given === "loss_type" ? lossOfType(raw) : ALIASES[given]?.value?.(raw) ?? raw;
    if (!sameValue(stored[key] ?? null, String(value))) {
      refused.push(`${key} ${show(stored[key] ?? null)} → ${value}`);
    }
  }
  if (refused.length === 0) return;
  throw new Error(
    `Cannot resume ${resumeDir} with changed settings that define the run: ${
      refused.join(", ")
    }: resume without them (only ${Object.keys(RESUMABLE).join(", ")} may change), or start a ` +
      "new run in another folder",
  );
}

/**
 * The resumable keys whose value differs between the checkpoint's config and the resumed one.
 *
 * @param stored The checkpoint's resolved config.
 * @param config The resumed run's resolved config.
 * @returns The changes, in table order (output_dir and overwrite_output_dir left out).
 * @example
 * ```ts
 * import { resolveConfig } from "./config.ts";
 * import { resumedChanges } from "./resume.ts";
 * const stored = resolveConfig({}).config;
 * const { config } = resolveConfig({ yaml: stored, cli: { max_steps: "80" } });
 * const [change] = resumedChanges(stored, config);
 * if (change.key !== "max_steps" || change.to !== 80) throw new Error("unexpected");
 * ```
 */
export function resumedChanges(stored: Record<string, Value>, config: TrainConfig): Change[] {
  const values: Record<string, Value> = config;
  return (Object.keys(RESUMABLE) as Key[])
    .filter((key) => key !== "output_dir" && key !== "overwrite_output_dir")
    .filter((key) => key in stored && stored[key] !== values[key])
    .map((key) => ({ key, from: stored[key], to: values[key] }));
}

/** The header of `config.yaml`'s list of changes made on resume. */
const HEADER = "# Changed on --resume (the values below apply from that step on):";

/**
 * `config.yaml`'s text for a resumed run: the earlier changes still in the run's past (those from
 * a step after `step` belonged to a future this resume replaces), this resume's, then the config.
 *
 * @param yaml The resolved config as YAML.
 * @param options `previous`: the folder's config.yaml text (null if none); `step`: the step
 *   resumed from; `changes`: this resume's.
 * @returns The file's text; plain `yaml` when nothing ever changed.
 * @example
 * ```ts
 * import { configWithChanges } from "./resume.ts";
 * const text = configWithChanges("max_steps: 80\n", {
 *   previous: "max_steps: 60\n",
 *   step: 60,
 *   changes: [{ key: "max_steps", from: 60, to: 80 }],
 * });
 * if (!text.includes("#   from step 61: max_steps 60 → 80\n")) throw new Error(text);
 * ```
 */
export function configWithChanges(
  yaml: string,
  options: { previous: string | null; step: number; changes: Change[] },
): string {
  const earlier = (options.previous ?? "").split("\n").filter((line) => {
    const from = /^# {3}from step (\d+): /.exec(line);
    return from !== null && Number(from[1]) <= options.step;
  });
  const now = options.changes.map(({ key, from, to }) =>
    `#   from step ${options.step + 1}: ${key} ${show(from)} → ${show(to)}`
  );
  const lines = [...earlier, ...now];
  return lines.length === 0 ? yaml : [HEADER, ...lines, yaml].join("\n");
}

function sameValue(stored: Value, raw: string): boolean {
  if (stored === null) return raw === "null";
  if (typeof stored === "number") return Number(raw) === stored;
  return raw === String(stored);
}

function show(value: Value): string {
  return typeof value === "string" ? value : String(value);
}

/**
 * Writes the run's `config.yaml`: the config, and for a resumed run the changes above it (see
 * {@link configWithChanges}).
 *
 * @param dir The run folder.
 * @param config The resolved config.
 * @param resume The step resumed from and this resume's changes; null for a new run.
 * @returns One console line per change.
 * @example
 * ```ts
 * import { resolveConfig } from "./config.ts";
 * import { writeRunConfig } from "./resume.ts";
 * const dir = await Deno.makeTempDir();
 * const { config } = resolveConfig({ cli: { max_steps: "80" } });
 * const changes = [{ key: "max_steps" as const, from: 60, to: 80 }];
 * const [line] = await writeRunConfig(dir, config, { step: 60, changes });
 * if (line !== "max_steps 60 → 80 from step 61") throw new Error(line);
 * ```
 */
export async function writeRunConfig(
  dir: string,
  config: TrainConfig,
  resume: { step: number; changes: Change[] } | null,
): Promise<string[]> {
  const path = join(dir, "config.yaml");
  const yaml = configToYaml(config);
  if (!resume) {
    await Deno.writeTextFile(path, yaml);
    return [];
  }
  const previous = await Deno.readTextFile(path).catch(() => null);
  await Deno.writeTextFile(path, configWithChanges(yaml, { previous, ...resume }));
  return resume.changes.map(({ key, from, to }) =>
    `${key} ${show(from)} → ${show(to)} from step ${resume.step + 1}`
  );
}
