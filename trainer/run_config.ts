/**
 * What a resolved config means for the loop's parts: the data settings `data/` reads, the
 * optimizer, and the learning-rate schedule. Shared by `train.ts` and the browser page
 * (`web/run.ts`), so both read a config the same way; no file system.
 *
 * @module
 */
import type { DataConfig } from "../data/dataset.ts";
import type { OptimizerConfig } from "../graph/optim.ts";
import type { TrainConfig } from "./config.ts";
import type { Schedule } from "./schedule.ts";

/**
 * The data keys of the config, as `data/` names them.
 *
 * @param config The resolved config.
 * @param dataset The dataset's path or id (or a name, for rows already read).
 * @returns The data config.
 * @example
 * ```ts
 * import { resolveConfig } from "./config.ts";
 * import { dataConfigOf } from "./run_config.ts";
 * const { config } = resolveConfig({ cli: { eval_split: "0.1" } });
 * if (dataConfigOf(config, "rows.jsonl").eval_split !== 0.1) throw new Error("unexpected");
 * ```
 */
export function dataConfigOf(config: TrainConfig, dataset: string): DataConfig {
  return {
    dataset,
    dataset_split: config.dataset_train_split,
    dataset_config: config.dataset_config ?? undefined,
    format: config.format ?? undefined,
    max_samples: config.max_samples ?? undefined,
    max_length: config.max_length,
    max_prompt_length: config.max_prompt_length ?? undefined,
    max_completion_length: config.max_completion_length ?? undefined,
    truncation_mode: config.truncation_mode,
    seed: config.seed,
    eval_split: config.eval_split === 0 ? undefined : config.eval_split,
  };
}

/**
 * The optimizer the config names, with its hyperparameters.
 *
 * @param config The resolved config.
 * @returns The optimizer settings of `TrainStep`.
 * @example
 * ```ts
 * import { resolveConfig } from "./config.ts";
 * import { optimizerOf } from "./run_config.ts";
 * if (optimizerOf(resolveConfig({}).config).name !== "adamw") throw new Error("unexpected");
 * ```
 */
export function optimizerOf(config: TrainConfig): OptimizerConfig {
  return config.optim === "sgd" ? { name: "sgd" as const, weightDecay: config.weight_decay } : {
    name: "adamw" as const,
    beta1: config.adam_beta1,
    beta2: config.adam_beta2,
    eps: config.adam_epsilon,
    weightDecay: config.weight_decay,
  };
}

/**
 * Total steps and the learning-rate schedule (TRL: `warmup_steps` < 1 is a ratio).
 *
 * @param config The resolved config.
 * @param perEpoch Micro-batches per epoch (for `num_train_epochs` when `max_steps` is unset).
 * @returns The schedule.
 * @example
 * ```ts
 * import { resolveConfig } from "./config.ts";
 * import { scheduleOf } from "./run_config.ts";
 * const { config } = resolveConfig({ cli: { max_steps: "40", warmup_steps: "0.1" } });
 * if (scheduleOf(config, 10).warmup !== 4) throw new Error("unexpected");
 * ```
 */
export function scheduleOf(config: TrainConfig, perEpoch: number): Schedule {
  const total = config.max_steps > 0 ? config.max_steps : Math.max(
    1,
    Math.floor((config.num_train_epochs * perEpoch) / config.gradient_accumulation_steps),
  );
  const warmup = config.lr_scheduler_type === "constant"
    ? 0
    : config.warmup_steps < 1
    ? Math.round(config.warmup_steps * total)
    : config.warmup_steps;
  const kind = config.lr_scheduler_type === "constant_with_warmup"
    ? "constant"
    : config.lr_scheduler_type;
  return { peak: config.learning_rate, total, warmup, kind };
}
