/**
 * What a resolved config means for the loop's parts: the optimizer and the learning-rate
 * schedule. Shared by `train.ts` and the browser page
 * (`web/run.ts`), so both read a config the same way; no file system.
 *
 * @module
 */
import type { OptimizerConfig } from "../graph/optim.ts";
import type { TrainConfig } from "./config.ts";
import type { Schedule } from "./schedule.ts";

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
 * Total steps and the learning-rate schedule (TRL: `warmup_steps` < 1 is a ratio;
 * `cosine_with_min_lr` is a cosine with a floor).
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
  const type = config.lr_scheduler_type;
  const schedule = { peak: config.learning_rate, total, warmup };
  if (type === "constant_with_warmup" || type === "constant") {
    return { ...schedule, kind: "constant" };
  }
  if (type !== "cosine_with_min_lr") return { ...schedule, kind: type as "linear" | "cosine" };
  // HF's get_cosine_with_min_lr_schedule_with_warmup takes exactly one of the two.
  const { min_lr_rate: rate, min_lr: minLr } = config;
  if ((rate === null) === (minLr === null)) {
    throw new Error(
      "Invalid lr_scheduler_type cosine_with_min_lr: set one of min_lr_rate and min_lr " +
        '(HF\'s lr_scheduler_kwargs: {"min_lr_rate": 0.1})',
    );
  }
  return { ...schedule, kind: "cosine", floor: rate ?? minLr! / config.learning_rate };
}

/**
 * Refuses batch settings the training split cannot fill: a micro-batch larger than the split, or
 * more micro-batches per step than an epoch holds (a step would pass over the same examples again
 * and again: `gradient_accumulation_steps 100000` on 432 rows is 111,000 passes per step).
 *
 * @param config The resolved config.
 * @param examples Examples in the training split.
 * @throws Naming the key, the split's size and the largest value that works.
 * @example
 * ```ts
 * import { throws } from "node:assert/strict";
 * import { resolveConfig } from "./config.ts";
 * import { checkBatchSettings } from "./run_config.ts";
 * const { config } = resolveConfig({ cli: { gradient_accumulation_steps: "100" } });
 * throws(() => checkBatchSettings(config, 432), /gradient_accumulation_steps: 100.*at most 54$/);
 * ```
 */
export function checkBatchSettings(config: TrainConfig, examples: number): void {
  const { per_device_train_batch_size: size, gradient_accumulation_steps: steps } = config;
  if (size > examples) {
    throw new Error(
      `Invalid per_device_train_batch_size: ${size}, larger than the training split ` +
        `(${examples} examples): at most ${examples}`,
    );
  }
  const perEpoch = Math.ceil(examples / size);
  if (steps > perEpoch) {
    throw new Error(
      `Invalid gradient_accumulation_steps: ${steps}: one optimizer step would pass over the ` +
        `${examples} training examples ${Math.floor(steps / perEpoch)} times ` +
        `(${perEpoch} micro-batches of ${size} per epoch): at most ${perEpoch}`,
    );
  }
}
