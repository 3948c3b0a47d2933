/**
 * The one training config: every key a user can set, in {@link KEYS} with its type, default,
 * range, help line, who reads it and TRL 1.13's default. The run keys are declared here; the data
 * keys in `data/config.ts` and the per-loss keys in `algorithms/keys.ts`, beside their readers,
 * and composed here. The TypeScript type, `--help`, validation and YAML/CLI loading all derive
 * from the composed table. Names are TRL's (`DPOConfig`,
 * `KTOConfig`, `CPOConfig`, `ScriptArguments`, `ModelConfig`, `TrainingArguments`) where TRL has
 * the key; our own keys cover features TRL lacks or dropped.
 *
 * Who owns a default: the table, for run keys; the algorithm's `defaults` record, for its
 * hyperparameters (`readBy: "loss"`), and its `learningRate` when it recommends one. A run
 * without `--config` starts from configs/tiny.yaml (the embedded tiny-model run), which `--help`
 * shows as such. Precedence, lowest first: table < algorithm < YAML < CLI.
 *
 * To add a key: one entry in `KEYS` (a `range` from the helpers below, or `oneOf`); its
 * TypeScript type, `--help` line and checks follow. Renamed keys go in `ALIASES`.
 *
 * @module
 */
import { parse as parseYaml, stringify as stringifyYaml } from "@std/yaml";
import { type Algorithm, algorithm as getAlgorithm, ALGORITHMS } from "../algorithms/mod.ts";
import type { Hyperparameters } from "../algorithms/mod.ts";
import { LOSS_KEYS } from "../algorithms/keys.ts";
import { SAMPLING_STRATEGIES } from "../data/batch.ts";
import { DATA_ALIASES, DATA_KEYS } from "../data/config.ts";
import {
  atLeast,
  between,
  checkValue,
  type ConfigOf,
  fromString,
  greaterThan,
  type KeySpec,
  type Readers,
  suggestKey,
  type Value,
} from "../data/key_table.ts";
import { acceptTrlKey } from "./trl_keys.ts";

export type { KeySpec, Value };

const LOSS = "loss" as const;

/** Every config key. The order is `--help`'s. */
export const KEYS = {
  // What to train.
  loss: {
    type: "string",
    default: "dpo",
    help: "algorithm: " + Object.keys(ALGORITHMS).join(", "),
  },
  loss_type: {
    type: "string",
    default: null,
    trl: "sigmoid",
    help: "TRL's loss name, mapped onto --loss (sigmoid→dpo, robust→rdpo, simpo, kto, ...); " +
      "a list sums them (loss_weights): [sigmoid, sft] → dpo+sft",
  },
  model_name_or_path: {
    type: "string",
    default: null,
    trl: null,
    help: "local folder or Hub id of the policy",
  },
  ref_model: {
    type: "string",
    default: null,
    readBy: "reference",
    help: "reference model; unset: a frozen copy of the policy",
  },
  // Data (data/config.ts).
  ...DATA_KEYS,
  // Algorithm hyperparameters (algorithms/keys.ts): each algorithm's `defaults` owns their values.
  ...LOSS_KEYS,
  // Optimisation.
  learning_rate: {
    type: "number",
    default: 5e-6,
    trl: 1e-6,
    range: greaterThan(0),
    help: "peak learning rate (an algorithm may recommend its own)",
    differs: "the book's table: 5e-6 for DPO-family losses on a 1B model",
  },
  lr_scheduler_type: {
    type: "string",
    default: "linear",
    trl: "linear",
    oneOf: ["linear", "cosine", "cosine_with_min_lr", "constant", "constant_with_warmup"],
    help: "decay after warmup",
  },
  min_lr_rate: {
    type: "number",
    default: null,
    range: between(0, 1),
    help: "cosine_with_min_lr: the floor as a fraction of learning_rate " +
      "(HF's lr_scheduler_kwargs: {min_lr_rate: ...})",
  },
  min_lr: {
    type: "number",
    default: null,
    range: atLeast(0),
    help: "cosine_with_min_lr: the floor as a rate (HF's lr_scheduler_kwargs: {min_lr: ...})",
  },
  warmup_steps: {
    type: "number",
    default: 0,
    trl: 0,
    range: atLeast(0),
    help: "warmup steps; a value < 1 is a fraction of all steps",
  },
  num_train_epochs: {
    type: "number",
    default: 1,
    trl: 3,
    range: greaterThan(0),
    help: "passes over the data",
    differs: "one pass, as the book's runs",
  },
  max_steps: {
    type: "integer",
    default: -1,
    trl: -1,
    range: { test: (v) => v === -1 || v >= 1, expected: "-1 (by epochs) or a number >= 1" },
    help: "optimizer steps; -1: from num_train_epochs",
  },
  per_device_train_batch_size: {
    type: "integer",
    default: 8,
    trl: 8,
    range: atLeast(1),
    help: "pairs (or completions) per micro-batch",
  },
  per_device_eval_batch_size: {
    type: "integer",
    default: 8,
    trl: 8,
    range: atLeast(1),
    help: "pairs (or completions) per evaluation batch",
  },
  gradient_accumulation_steps: {
    type: "integer",
    default: 1,
    trl: 1,
    range: atLeast(1),
    help: "micro-batches per optimizer step",
  },
  optim: {
    type: "string",
    default: "adamw_torch_fused",
    trl: "adamw_torch_fused",
    oneOf: ["adamw_torch_fused", "adamw_torch", "sgd"],
    help: "optimizer (both AdamW names: PyTorch's AdamW)",
  },
  adam_beta1: { type: "number", default: 0.9, trl: 0.9, range: between(0, 1), help: "AdamW β₁" },
  adam_beta2: {
    type: "number",
    default: 0.999,
    trl: 0.999,
    range: between(0, 1),
    help: "AdamW β₂",
  },
  adam_epsilon: {
    type: "number",
    default: 1e-8,
    trl: 1e-8,
    range: greaterThan(0),
    help: "AdamW ε",
  },
  weight_decay: {
    type: "number",
    default: 0,
    trl: 0,
    range: atLeast(0),
    help: "decoupled weight decay",
  },
  max_grad_norm: {
    type: "number",
    default: 1,
    trl: 1,
    range: atLeast(0),
    help: "global gradient-norm clip; 0 disables",
  },
  train_sampling_strategy: {
    type: "string",
    default: "random",
    trl: "random",
    oneOf: SAMPLING_STRATEGIES,
    help: "batch order: shuffled, or similar lengths together",
  },
  // LoRA (TRL's ModelConfig) and memory.
  use_peft: {
    type: "boolean",
    default: false,
    trl: false,
    help: "train LoRA adapters on the frozen model (PEFT format); the reference is the base",
  },
  lora_r: {
    type: "integer",
    needs: "use_peft",
    default: 16,
    trl: 16,
    range: atLeast(1),
    help: "LoRA rank r",
  },
  lora_alpha: {
    type: "number",
    needs: "use_peft",
    default: 32,
    trl: 32,
    range: greaterThan(0),
    help: "LoRA scale α: the update is (α/r)·B A",
  },
  lora_dropout: {
    type: "number",
    needs: "use_peft",
    default: 0,
    trl: 0.05,
    range: { test: (v) => v >= 0 && v < 1, expected: "a number in [0, 1)" },
    help: "dropout on the adapters' input (masks fixed by seed and data position)",
    differs: "TRL disables dropout (disable_dropout) for preference training",
  },
  lora_target_modules: {
    type: "string",
    needs: "use_peft",
    default: null,
    trl: null,
    help: "comma-separated linear layers (q_proj,v_proj,...); unset: all seven (all-linear)",
    differs: "PEFT's unset is q/v for Llama and Qwen2, none for OLMo-2; ours adapts all linear",
  },
  merge_adapter: {
    type: "boolean",
    needs: "use_peft",
    default: false,
    help: "with use_peft: also write output_dir/merged, the model with the adapters folded in",
  },
  gradient_checkpointing: {
    type: "boolean",
    default: false,
    trl: true,
    help: "recompute each decoder layer in the backward instead of keeping its activations",
    differs: "about a third more compute: on only when memory needs it",
  },
  save_dtype: {
    type: "string",
    default: "auto",
    oneOf: ["auto", "float32", "bfloat16", "float16"],
    help: "dtype of saved weights; auto: the model's own (bf16 in, bf16 out)",
  },
  // Reference model.
  precompute_ref_log_probs: {
    type: "boolean",
    default: true,
    trl: false,
    readBy: "reference",
    help: "cache reference log-probs on disk, keyed by model, data and settings",
    differs: "computed once and reused by every run on the same data",
  },
  // Where it runs, what it writes.
  device: {
    type: "string",
    default: "cpu",
    oneOf: ["cpu", "cuda", "webgpu", "auto"],
    help: "execution provider",
  },
  bf16: {
    type: "boolean",
    default: false,
    trl: false,
    help: "mixed precision: bf16 matmuls on float32 master weights and AdamW; on a device " +
      "other than cuda emulated (float32 with bf16 rounding, for checking, not speed)",
  },
  use_cpu: { type: "boolean", default: false, trl: false, help: "true: same as --device cpu" },
  output_dir: {
    type: "string",
    default: "out/run",
    trl: null,
    help: "checkpoints and logs",
    differs: "a folder under out/",
  },
  logging_steps: {
    type: "integer",
    default: 10,
    trl: 10,
    range: atLeast(1),
    help: "steps per logged row (the window's mean)",
  },
  eval_strategy: {
    type: "string",
    default: "steps",
    trl: "no",
    oneOf: ["no", "steps", "epoch"],
    help: "steps: evaluate every eval_steps and at the end; epoch: after each epoch and at the end",
    differs: "held-out metrics are the point of a comparison",
  },
  eval_on_start: {
    type: "boolean",
    default: true,
    trl: false,
    help: "evaluate before the first step too (the baseline the curves start from)",
    differs: "a comparison needs the step-0 baseline",
  },
  eval_steps: {
    type: "integer",
    default: 0,
    trl: null,
    range: atLeast(0),
    help: "steps between evaluations; 0: only at the start and the end",
    differs: "TRL's unset means logging_steps",
  },
  eval_samples: {
    type: "integer",
    default: null,
    range: atLeast(1),
    help: "held-out examples per evaluation (the first N); unset: the whole eval split, as TRL",
  },
  save_steps: {
    type: "integer",
    default: 0,
    trl: 500,
    range: atLeast(0),
    help: "steps between checkpoints; 0: only at the end",
    differs: "short runs keep only the final checkpoint",
  },
  save_total_limit: {
    type: "integer",
    default: null,
    trl: null,
    range: atLeast(1),
    help: "checkpoints kept: the newest N (and the one resumed from); the oldest goes once the " +
      "new one is whole, so a save needs room for one more; unset: all",
  },
  overwrite_output_dir: {
    type: "boolean",
    default: false,
    help: "clear a previous run's files from output_dir instead of refusing to start",
  },
  report_to: {
    type: "string",
    default: null,
    trl: "none",
    oneOf: ["none", "wandb"],
    help: "wandb: log to Weights & Biases (project WANDB_PROJECT; key WANDB_API_KEY or " +
      "`wandb login`); none: off",
    differs: "unset: wandb when WANDB_PROJECT is set, as the Quick Start",
  },
  run_name: {
    type: "string",
    default: null,
    trl: null,
    help: "the wandb run's name; unset: output_dir",
  },
  sample_every: {
    type: "integer",
    default: 0,
    range: atLeast(0),
    help: "steps between sample generations; 0: never",
  },
  ddp_timeout: {
    type: "integer",
    default: 1800,
    trl: 1800,
    range: atLeast(1),
    help: "data parallel: seconds ranks may wait on a stalled one before the job is stopped",
  },
} as const satisfies Record<string, KeySpec>;

/** A key of the table. */
export type Key = keyof typeof KEYS;

/** A resolved config: one typed value per key of {@link KEYS}. */
export type TrainConfig = ConfigOf<typeof KEYS>;

/** Old names (and TRL-compatible renames): the new key, and a value translation if needed. */
export const ALIASES: Readonly<Record<string, { to: Key; value?: (v: unknown) => unknown }>> = {
  model: { to: "model_name_or_path" },
  dataset: { to: "dataset_name" },
  ...Object.fromEntries(Object.entries(DATA_ALIASES).map(([name, to]) => [name, { to }])),
  batch_size: { to: "per_device_train_batch_size" },
  num_epochs: { to: "num_train_epochs" },
  log_every: { to: "logging_steps" },
  eval_every: { to: "eval_steps" },
  save_every: { to: "save_steps" },
  warmup_ratio: { to: "warmup_steps" },
  precompute_ref_logps: { to: "precompute_ref_log_probs" },
  lr_scheduler: {
    to: "lr_scheduler_type",
    value: (v) => v === "constant" ? "constant_with_warmup" : v,
  },
  optimizer: { to: "optim", value: (v) => v === "adamw" ? "adamw_torch" : v },
  group_by_length: {
    to: "train_sampling_strategy",
    value: (v) => v === true || v === "true" ? "group_by_length" : "random",
  },
  gamma: { to: "simpo_gamma" },
  sft_weight: { to: "cpo_alpha" },
  lambda: { to: "beta" },
  reward_model: { to: "reward_model_path" },
};

/**
 * The table key a (possibly old) name stands for.
 *
 * @param name A key or an old alias.
 * @returns The key, or null for unknown names.
 * @example
 * ```ts
 * import { canonicalKey } from "./config.ts";
 * if (canonicalKey("batch_size") !== "per_device_train_batch_size") throw new Error("unexpected");
 * ```
 */
export function canonicalKey(name: string): Key | null {
  if (Object.hasOwn(ALIASES, name)) return ALIASES[name].to;
  return Object.hasOwn(KEYS, name) ? name as Key : null;
}

/** Where the values came from, lowest precedence first. */
export interface ConfigSources {
  /** The base layer: a parsed YAML mapping (configs/tiny.yaml for a plain run). */
  yaml?: Record<string, unknown>;
  /** Name of the base layer in messages. @default "YAML" */
  yamlName?: string;
  /** CLI flags as strings (`--beta 0.2` → `{ beta: "0.2" }`). */
  cli?: Record<string, string>;
}

/** A resolved run config. */
export interface Resolved {
  /** Every key's value. */
  config: TrainConfig;
  /** The algorithm `config.loss` names. */
  algorithm: Algorithm;
  /** Where each value that is not the table's default came from. */
  origin: Partial<Record<Key, string>>;
  /** One line per deprecated name or accepted no-op key, for the user. */
  notices: string[];
}

/**
 * Merges the sources and checks every key: unknown keys (with the closest valid one), wrong
 * types, out-of-range values and values the chosen algorithm would not read are errors.
 *
 * @param sources YAML and CLI values.
 * @returns The config, the algorithm, each value's origin and notices.
 * @example
 * ```ts
 * import { resolveConfig } from "./config.ts";
 * const { config } = resolveConfig({ cli: { loss: "simpo", learning_rate: "1e-6" } });
 * if (config.beta !== 2 || config.learning_rate !== 1e-6) throw new Error("unexpected");
 * ```
 */
export function resolveConfig(sources: ConfigSources): Resolved {
  const notices: string[] = [];
  const layers = [
    normalize(sources.yaml ?? {}, sources.yamlName ?? "YAML", notices),
    normalize(sources.cli ?? {}, "CLI", notices),
  ];
  const algorithm = getAlgorithm(String(
    layers[1].values.loss ?? layers[0].values.loss ?? KEYS.loss.default,
  ));
  const values: Record<string, Value> = {};
  const origin: Record<string, string> = {};
  for (const [key, spec] of Object.entries(KEYS) as [Key, KeySpec][]) {
    values[key] = spec.readBy === LOSS ? null : spec.default;
  }
  for (const [key, value] of Object.entries(algorithm.defaults)) {
    values[key] = value;
    origin[key] = `loss ${algorithm.name}`;
  }
  if (algorithm.learningRate) {
    values.learning_rate = algorithm.learningRate;
    origin.learning_rate = `loss ${algorithm.name}`;
  }
  for (const layer of layers) {
    for (const [key, value] of Object.entries(layer.values)) {
      values[key] = value;
      origin[key] = layer.name;
    }
  }
  values.loss_type = null;
  checkReaders(values, origin, algorithm, notices);
  return { config: values as TrainConfig, algorithm, origin, notices };
}

/** One layer's values under their table names, typed and range-checked. */
function normalize(
  raw: Record<string, unknown>,
  name: string,
  notices: string[],
): { name: string; values: Record<string, Value> } {
  const values: Record<string, Value> = {};
  const accepted: string[] = [];
  for (const [given, rawValue] of Object.entries(raw)) {
    let key = given;
    let value = name === "CLI" ? fromString(rawValue as string) : rawValue;
    const alias = ALIASES[given];
    if (alias) {
      key = alias.to;
      value = alias.value ? alias.value(value) : value;
      notices.push(`Deprecated: "${given}" (${name}) is now "${key}"`);
    }
    if (key === "lr_scheduler_kwargs") {
      Object.assign(values, schedulerKwargs(value, name));
      continue;
    }
    if (!Object.hasOwn(KEYS, key)) {
      const note = acceptTrlKey(key, value, name);
      if (note === null) {
        const names = [...Object.keys(KEYS), ...Object.keys(ALIASES)];
        const hint = suggestKey(key, names, (n) => ALIASES[n]?.to ?? n);
        throw new Error(`Unknown config key "${key}" (${name}): ${hint}`);
      }
      accepted.push(note);
      continue;
    }
    try {
      values[key] = checkValue(key, KEYS[key as Key], fromList(key, value));
    } catch (error) {
      // A flag names itself; a bad value in a file needs the file's name.
      if (name === "CLI") throw error;
      throw new Error(`${(error as Error).message} (in ${name})`);
    }
  }
  if (accepted.length > 0) {
    notices.push(`Accepted TRL keys that change nothing here (${name}): ${accepted.join(", ")}`);
  }
  if (values.loss_type !== undefined && values.loss_type !== null) {
    const mapped = String(values.loss_type).split(",").map(lossOfType).join("+");
    if (values.loss !== undefined && values.loss !== mapped) {
      throw new Error(
        `Conflicting loss (${name}): loss "${values.loss}" but loss_type "${values.loss_type}" ` +
          `means "${mapped}": keep one`,
      );
    }
    values.loss = mapped;
  }
  return { name, values };
}

/**
 * HF's `lr_scheduler_kwargs` (a mapping, or its JSON on the command line) as the flat keys that
 * hold its settings here.
 */
function schedulerKwargs(value: unknown, origin: string): Record<string, Value> {
  let kwargs = value ?? {};
  if (typeof kwargs === "string") {
    try {
      kwargs = JSON.parse(kwargs);
    } catch {
      throw new Error(
        `Invalid lr_scheduler_kwargs (${origin}): ${kwargs}: a mapping, e.g. '{"min_lr_rate": 0.1}'`,
      );
    }
  }
  const values: Record<string, Value> = {};
  for (const [key, v] of Object.entries(kwargs as Record<string, unknown>)) {
    if (key !== "min_lr_rate" && key !== "min_lr") {
      throw new Error(
        `Unsupported lr_scheduler_kwargs key "${key}" (${origin}): only min_lr_rate and min_lr ` +
          "(of cosine_with_min_lr) are read here",
      );
    }
    values[key] = checkValue(key, KEYS[key], v);
  }
  return values;
}

const LIST_KEYS = new Set(["loss_type", "loss_weights", "lora_target_modules", "report_to"]);

/**
 * TRL's list-valued keys as this table's comma-separated strings (`loss_type: [sigmoid, sft]`,
 * `loss_weights: [0.8, 0.2]`, `lora_target_modules: [q_proj, v_proj]`, `report_to: [wandb]`; an
 * empty `report_to` list is HF's `none`).
 */
function fromList(key: string, value: unknown): unknown {
  if (!Array.isArray(value) || !LIST_KEYS.has(key)) return value;
  if (key === "report_to" && value.length === 0) return "none";
  return value.join(",");
}

/**
 * The `--loss` name of a TRL `loss_type`.
 *
 * @param type TRL's name, e.g. `sigmoid`, `robust`, `simpo`.
 * @returns Our loss's name.
 * @example
 * ```ts
 * import { lossOfType } from "./config.ts";
 * if (lossOfType("robust") !== "rdpo") throw new Error("unexpected");
 * ```
 */
export function lossOfType(type: string): string {
  const found = Object.values(ALGORITHMS).find((a) => a.trlLossTypes?.includes(type));
  if (!found) {
    const known = Object.values(ALGORITHMS).flatMap((a) => a.trlLossTypes ?? []);
    throw new Error(
      `Unsupported loss_type "${type}": supported here are ${known.join(", ")} ` +
        "(or set loss to one of ours)",
    );
  }
  return found.name;
}

/** Rejects non-default values of keys the algorithm does not read. */
function checkReaders(
  values: Record<string, Value>,
  origin: Record<string, string>,
  algorithm: Algorithm,
  notices: string[],
): void {
  for (const [key, spec] of Object.entries(KEYS) as [Key, KeySpec][]) {
    const reads = readsKey(algorithm, key);
    const value = values[key];
    if (reads || value === (spec.readBy === LOSS ? null : spec.default)) continue;
    if (spec.readBy === LOSS && value === spec.trl) {
      notices.push(
        `Ignored: ${key} ${value} (${
          origin[key]
        }): TRL's default, not read by loss ${algorithm.name}`,
      );
      values[key] = null;
      continue;
    }
    const readers = Object.values(ALGORITHMS).filter((a) => readsKey(a, key)).map((a) => a.name);
    throw new Error(
      `Config key "${key}" (${origin[key]}) is not read by loss "${algorithm.name}": ` +
        `remove it, or use a loss that reads it (${
          readers.join(", ") || "a loss_type list, e.g. [sigmoid, sft]"
        })`,
    );
  }
  checkNeeds(values, origin, notices);
}

/** Rejects non-default values of keys whose switch (`needs`) is off, e.g. LoRA's without PEFT. */
function checkNeeds(
  values: Record<string, Value>,
  origin: Record<string, string>,
  notices: string[],
): void {
  for (const [key, spec] of Object.entries(KEYS) as [Key, KeySpec][]) {
    const value = values[key];
    if (!spec.needs || values[spec.needs] === true || value === spec.default) continue;
    if (value === spec.trl) {
      notices.push(
        `Ignored: ${key} ${value} (${origin[key]}): TRL's default, read only with ${spec.needs}`,
      );
      continue;
    }
    throw new Error(
      `Config key "${key}" (${origin[key]}) is read only with ${spec.needs}: true: ` +
        `set ${spec.needs} (--${spec.needs}), or remove it`,
    );
  }
}

/**
 * Whether `algorithm` reads `key`.
 *
 * @param algorithm The algorithm.
 * @param key A table key.
 * @returns True when the key changes its runs.
 */
export function readsKey(algorithm: Algorithm, key: Key): boolean {
  const readers: Readers = (KEYS[key] as KeySpec).readBy ?? "all";
  if (readers === "reference") return algorithm.needsReference;
  if (readers === LOSS) return Object.hasOwn(algorithm.defaults, key);
  return true;
}

/**
 * The algorithm's hyperparameters out of a resolved config.
 *
 * @param resolved The config and its algorithm.
 * @returns The values of the keys the algorithm's `defaults` list.
 */
export function hyperparameters(resolved: Pick<Resolved, "config" | "algorithm">): Hyperparameters {
  const values: Record<string, Value> = resolved.config;
  const hp: Hyperparameters = {};
  for (const key of Object.keys(resolved.algorithm.defaults)) {
    const value = values[key];
    if (value !== null) hp[key] = value;
  }
  return hp;
}

/**
 * Reads a YAML config file into a mapping.
 *
 * @param path File path.
 * @returns Its top-level mapping.
 */
export async function readYamlConfig(path: string): Promise<Record<string, unknown>> {
  let parsed: unknown;
  try {
    parsed = parseYaml(await Deno.readTextFile(path));
  } catch (e) {
    throw new Error(
      `Invalid config ${path}: ${(e as Error).message.split("\n")[0].replace(/:$/, "")}`,
    );
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new Error(`Config ${path} must be a YAML mapping of key: value`);
  }
  return parsed as Record<string, unknown>;
}

/**
 * The config as YAML (written beside each run's outputs), without unset keys of other losses.
 *
 * @param config A resolved config.
 * @returns YAML text that {@link resolveConfig} reads back to the same config.
 */
export function configToYaml(config: TrainConfig): string {
  const values: Record<string, Value> = config;
  return stringifyYaml(
    Object.fromEntries(
      Object.entries(values).filter(([k, v]) =>
        !(v === null && (KEYS[k as Key] as KeySpec).readBy === LOSS)
      ),
    ),
  );
}

/**
 * `--help` text: every key the chosen algorithm reads, with the value this run would use and
 * where it comes from, and TRL's default where ours differs.
 *
 * @param resolved The run's resolved config.
 * @returns The lines.
 */
export function helpText(resolved: Resolved): string {
  const values: Record<string, Value> = resolved.config;
  const rows: string[] = [];
  for (const [key, spec] of Object.entries(KEYS) as [Key, KeySpec][]) {
    if (key === "loss_type" || !readsKey(resolved.algorithm, key)) continue;
    const from = resolved.origin[key] ? `, from ${resolved.origin[key]}` : "";
    const trl = "trl" in spec && spec.trl !== values[key]
      ? ` [TRL: ${JSON.stringify(spec.trl)}${spec.differs ? `; ours: ${spec.differs}` : ""}]`
      : "";
    const allowed = spec.oneOf ? ` {${spec.oneOf.join("|")}}` : "";
    rows.push(
      `  --${key.padEnd(28)} ${spec.help}${allowed} (${JSON.stringify(values[key])}${from})${trl}`,
    );
  }
  return rows.join("\n");
}

/**
 * The values this run takes from our defaults (the table's or the loss's) that differ from TRL
 * 1.13's, each with TRL's value and why ours differs: what a TRL user's recipe that leaves the key
 * out gets here. Keys the config sets are not listed.
 *
 * @param resolved The run's resolved config.
 * @returns One line per key, e.g. `num_train_epochs 1 (TRL: 3): one pass, as the book's runs`.
 * @example
 * ```ts
 * import { resolveConfig, trlDifferences } from "./config.ts";
 * const lines = trlDifferences(resolveConfig({ cli: { loss: "dpo" } }));
 * if (!lines.some((l) => l.startsWith("num_train_epochs 1 (TRL: 3)"))) throw new Error("unexpected");
 * const set = trlDifferences(resolveConfig({ cli: { loss: "dpo", num_train_epochs: "1" } }));
 * if (set.some((l) => l.startsWith("num_train_epochs"))) throw new Error("unexpected");
 * ```
 */
export function trlDifferences(resolved: Resolved): string[] {
  const values: Record<string, Value> = resolved.config;
  const lines: string[] = [];
  for (const [key, spec] of Object.entries(KEYS) as [Key, KeySpec][]) {
    const from = resolved.origin[key];
    const ours = from === undefined || from.startsWith("loss ");
    if (!ours || !("trl" in spec) || key === "loss_type" || !readsKey(resolved.algorithm, key)) {
      continue;
    }
    if (JSON.stringify(values[key]) === JSON.stringify(spec.trl)) continue;
    lines.push(
      `${key} ${JSON.stringify(values[key])} (TRL: ${JSON.stringify(spec.trl)})` +
        (spec.differs ? `: ${spec.differs}` : from ? `: ${from}'s recommendation` : ""),
    );
  }
  return lines;
}

/**
 * Splits command-line arguments into `--key value` pairs (`--key=value` and a bare `--flag`,
 * meaning true, work too).
 *
 * @param args The arguments.
 * @returns Values by key, as strings.
 * @example
 * ```ts
 * import { parseFlags } from "./config.ts";
 * const f = parseFlags(["--loss", "ipo", "--beta=0.2", "--use_cpu"]);
 * if (f.loss !== "ipo" || f.beta !== "0.2" || f.use_cpu !== "true") throw new Error("unexpected");
 * ```
 */
export function parseFlags(args: string[]): Record<string, string> {
  const flags: Record<string, string> = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (!arg.startsWith("--")) {
      throw new Error(`Unexpected argument "${arg}": options look like --key value`);
    }
    const eq = arg.indexOf("=");
    if (eq > 0) {
      flags[arg.slice(2, eq)] = arg.slice(eq + 1);
    } else if (i + 1 < args.length && !args[i + 1].startsWith("--")) {
      flags[arg.slice(2)] = args[++i];
    } else {
      flags[arg.slice(2)] = "true";
    }
  }
  return flags;
}
