/**
 * The one training config: every key a user can set, with the same snake_case name in YAML, on
 * the CLI and in TypeScript (TRL's names where TRL has one).
 *
 * Precedence: these defaults < the algorithm's defaults < YAML `--config` < CLI flags. Unknown
 * keys, wrong types and out-of-range values are errors naming the key and the valid form.
 *
 * @module
 */
import { parse as parseYaml, stringify as stringifyYaml } from "@std/yaml";

/** A config value. */
export type Value = string | number | boolean | null;

/** One key's type and check. */
interface KeySpec {
  /** Default value (`null`: unset). */
  default: Value;
  /** Accepted type. */
  type: "string" | "number" | "integer" | "boolean" | "fraction_or_name";
  /** Allowed values, for enumerations. */
  oneOf?: readonly string[];
  /** Range check: returns the valid form when `value` is out of range. */
  range?: (value: number) => string | null;
  /** One line for `--help`. */
  doc: string;
}

const positive = (v: number) => v > 0 ? null : "a number > 0";
const atLeast = (n: number) => (v: number) => v >= n ? null : `a number >= ${n}`;
const unit = (v: number) => v >= 0 && v <= 1 ? null : "a number in [0, 1]";

/** The shared keys (the algorithm adds its own). */
export const KEYS: Readonly<Record<string, KeySpec>> = {
  loss: { default: "dpo", type: "string", doc: "algorithm, e.g. dpo, ipo, simpo, kto" },
  model: { default: "model/tiny", type: "string", doc: "local folder or Hub id of the policy" },
  ref_model: {
    default: null,
    type: "string",
    doc: "reference model; null: a frozen copy of the policy",
  },
  dataset: {
    default: "data/samples/ultrafeedback_sample.jsonl",
    type: "string",
    doc: "local .jsonl/.json/.parquet or Hub dataset id",
  },
  dataset_split: { default: "train", type: "string", doc: "split of a Hub dataset" },
  dataset_config: { default: null, type: "string", doc: "config of a Hub dataset" },
  format: { default: null, type: "string", doc: "override the detected data format" },
  max_samples: { default: null, type: "integer", range: positive, doc: "use at most N rows" },
  eval_split: {
    default: 0.1,
    type: "fraction_or_name",
    doc: "held-out fraction (0-1) or the name of an evaluation split",
  },
  beta: { default: 0.1, type: "number", range: positive, doc: "KL strength β" },
  learning_rate: { default: 5e-6, type: "number", range: positive, doc: "peak learning rate" },
  lr_scheduler: {
    default: "linear",
    type: "string",
    oneOf: ["linear", "cosine", "constant"],
    doc: "decay after warmup",
  },
  warmup_ratio: { default: 0.1, type: "number", range: unit, doc: "fraction of steps warming up" },
  num_epochs: { default: 1, type: "number", range: positive, doc: "passes over the data" },
  max_steps: {
    default: null,
    type: "integer",
    range: positive,
    doc: "optimizer steps (overrides num_epochs)",
  },
  batch_size: { default: 8, type: "integer", range: atLeast(1), doc: "pairs per micro-batch" },
  gradient_accumulation_steps: {
    default: 1,
    type: "integer",
    range: atLeast(1),
    doc: "micro-batches per optimizer step",
  },
  optimizer: { default: "adamw", type: "string", oneOf: ["adamw", "sgd"], doc: "optimizer" },
  max_grad_norm: { default: 1.0, type: "number", range: atLeast(0), doc: "0 disables clipping" },
  weight_decay: { default: 0, type: "number", range: atLeast(0), doc: "AdamW decoupled decay" },
  max_length: { default: 512, type: "integer", range: atLeast(2), doc: "prompt + completion" },
  max_prompt_length: { default: null, type: "integer", range: atLeast(1), doc: "prompt tokens" },
  max_completion_length: {
    default: null,
    type: "integer",
    range: atLeast(1),
    doc: "completion tokens",
  },
  truncation_mode: {
    default: "keep_end",
    type: "string",
    oneOf: ["keep_end", "keep_start"],
    doc: "which prompt tokens survive truncation",
  },
  group_by_length: { default: false, type: "boolean", doc: "batch similar lengths together" },
  seed: { default: 42, type: "integer", doc: "shuffling and sampling seed" },
  device: {
    default: "cpu",
    type: "string",
    oneOf: ["cpu", "cuda", "webgpu", "auto"],
    doc: "execution provider",
  },
  output_dir: { default: "out/run", type: "string", doc: "where checkpoints and logs go" },
  log_every: { default: 1, type: "integer", range: atLeast(1), doc: "steps between log lines" },
  eval_every: { default: 0, type: "integer", range: atLeast(0), doc: "0: only at the end" },
  eval_samples: { default: 64, type: "integer", range: atLeast(1), doc: "pairs per evaluation" },
  save_every: { default: 0, type: "integer", range: atLeast(0), doc: "0: only at the end" },
  sample_every: { default: 0, type: "integer", range: atLeast(0), doc: "0: never" },
  precompute_ref_logps: {
    default: true,
    type: "boolean",
    doc: "cache reference log-probs on disk",
  },
};

/** A resolved config: shared keys plus the algorithm's own. */
export type TrainConfig = Record<string, Value>;

/** Where the values came from, lowest precedence first. */
export interface ConfigSources {
  /** The algorithm's defaults, by key (they may also override shared defaults such as beta). */
  algorithm?: Record<string, Value>;
  /** Parsed YAML mapping. */
  yaml?: Record<string, unknown>;
  /** CLI flags as strings (`--beta 0.2` → `{ beta: "0.2" }`). */
  cli?: Record<string, string>;
}

/**
 * Merges the sources and checks every key.
 *
 * @param sources Algorithm defaults, YAML and CLI values.
 * @returns The resolved config.
 * @example
 * ```ts
 * import { resolveConfig } from "./config.ts";
 * const c = resolveConfig({ algorithm: { beta: 2 }, cli: { learning_rate: "1e-6" } });
 * if (c.beta !== 2 || c.learning_rate !== 1e-6) throw new Error("unexpected");
 * ```
 */
export function resolveConfig(sources: ConfigSources): TrainConfig {
  const specs: Record<string, KeySpec> = { ...KEYS };
  for (const [key, value] of Object.entries(sources.algorithm ?? {})) {
    specs[key] = specs[key]
      ? { ...specs[key], default: value }
      : { default: value, type: typeOf(value), doc: "algorithm hyperparameter" };
  }
  const config: TrainConfig = {};
  for (const [key, spec] of Object.entries(specs)) config[key] = spec.default;
  for (const [origin, values] of [["YAML", sources.yaml], ["CLI", sources.cli]] as const) {
    for (const [key, raw] of Object.entries(values ?? {})) {
      const spec = specs[key];
      if (!spec) {
        throw new Error(
          `Unknown config key "${key}" (${origin}): valid keys are ${
            Object.keys(specs).join(", ")
          }`,
        );
      }
      config[key] = check(key, spec, origin === "CLI" ? fromString(raw as string) : raw);
    }
  }
  return config;
}

function typeOf(value: Value): KeySpec["type"] {
  if (typeof value === "boolean") return "boolean";
  if (typeof value === "number") return "number";
  return "string";
}

function fromString(raw: string): unknown {
  if (raw === "true" || raw === "false") return raw === "true";
  if (raw === "null") return null;
  const n = Number(raw);
  return raw.trim() !== "" && Number.isFinite(n) ? n : raw;
}

function check(key: string, spec: KeySpec, value: unknown): Value {
  if (value === null) return null;
  const expected = spec.oneOf ? `one of ${spec.oneOf.join(", ")}` : `a ${spec.type}`;
  // String(): JSON.stringify would print YAML's .inf and .nan as null.
  const shown = typeof value === "number" ? String(value) : JSON.stringify(value);
  const bad = () => new Error(`Invalid ${key}: ${shown}, expected ${expected}`);
  switch (spec.type) {
    case "boolean":
      if (typeof value !== "boolean") throw bad();
      return value;
    case "string": {
      const s = typeof value === "number" ? String(value) : value;
      if (typeof s !== "string" || (spec.oneOf && !spec.oneOf.includes(s))) throw bad();
      return s;
    }
    case "fraction_or_name":
      if (typeof value === "string" && value !== "") return value;
      if (typeof value !== "number" || !(value >= 0 && value < 1)) {
        throw new Error(
          `Invalid ${key}: ${JSON.stringify(value)}, expected a fraction in [0, 1) or a split name`,
        );
      }
      return value;
    case "number":
    case "integer": {
      if (typeof value === "number" && !Number.isFinite(value)) {
        throw new Error(`Invalid ${key}: ${value}, expected a finite number`);
      }
      if (typeof value !== "number") throw bad();
      if (spec.type === "integer" && !Number.isInteger(value)) throw bad();
      const problem = spec.range?.(value);
      if (problem) throw new Error(`Invalid ${key}: ${value}, expected ${problem}`);
      return value;
    }
  }
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

/** The config as YAML (written beside each run's outputs). */
export function configToYaml(config: TrainConfig): string {
  return stringifyYaml(config);
}

/** `--help` text listing every key with its default. */
export function helpText(algorithm: Record<string, Value> = {}): string {
  const rows = Object.entries(KEYS).map(([k, s]) =>
    `  --${k.padEnd(28)} ${s.doc} (default: ${JSON.stringify(algorithm[k] ?? s.default)})`
  );
  const own = Object.entries(algorithm).filter(([k]) => !KEYS[k]).map(([k, v]) =>
    `  --${k.padEnd(28)} algorithm hyperparameter (default: ${JSON.stringify(v)})`
  );
  return [...rows, ...own].join("\n");
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
 * const f = parseFlags(["--loss", "ipo", "--beta=0.2", "--group_by_length"]);
 * if (f.loss !== "ipo" || f.beta !== "0.2" || f.group_by_length !== "true") throw new Error("unexpected");
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
