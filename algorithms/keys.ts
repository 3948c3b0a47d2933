/**
 * The per-loss keys: each hyperparameter's type, range, help line and TRL name, beside the
 * algorithms whose `defaults` give their values (which algorithm reads a key is which `defaults`
 * list it). {@link resolveHyperparameters} checks them for `deno task loss`, and
 * `trainer/config.ts` adds them to the run's table, so both commands apply one rule.
 *
 * @module
 */
import { atLeast, checkValue, fromString, greaterThan, type KeySpec } from "../data/key_table.ts";
import type { Algorithm, Hyperparameters } from "./types.ts";

/** Every per-loss key (`default` null: each algorithm's `defaults` owns the value). */
export const LOSS_KEYS = {
  beta: {
    type: "number",
    default: null,
    trl: 0.1,
    readBy: "loss",
    range: greaterThan(0),
    help: "β: KL strength (ORPO: weight of the odds-ratio term)",
  },
  label_smoothing: {
    type: "number",
    default: null,
    trl: 0,
    readBy: "loss",
    range: { test: (v) => v >= 0 && v < 0.5, expected: "a number in [0, 0.5)" },
    help: "ε: probability that a preference label is flipped",
  },
  simpo_gamma: {
    type: "number",
    default: null,
    trl: 0.5,
    readBy: "loss",
    range: atLeast(0),
    help: "γ: SimPO's target reward margin (absolute)",
  },
  cpo_alpha: {
    type: "number",
    default: null,
    trl: 1,
    readBy: "loss",
    range: atLeast(0),
    help: "weight of the chosen answer's NLL next to the SimPO loss",
  },
  ipo_average: {
    type: "boolean",
    default: null,
    readBy: "loss",
    help: "IPO on mean token log-probs (TRL's form) rather than sums",
  },
  desirable_weight: {
    type: "number",
    default: null,
    trl: 1,
    readBy: "loss",
    range: greaterThan(0),
    help: "KTO: weight of desirable examples",
  },
  undesirable_weight: {
    type: "number",
    default: null,
    trl: 1,
    readBy: "loss",
    range: greaterThan(0),
    help: "KTO: weight of undesirable examples",
  },
  discopop_tau: {
    type: "number",
    default: null,
    trl: 0.05,
    readBy: "loss",
    range: greaterThan(0),
    help: "DiscoPOP: temperature τ of the sigmoid mixing its two losses",
  },
  loss_weights: {
    type: "string",
    default: null,
    trl: null,
    readBy: "loss",
    help: "with a loss_type list: one weight per type, comma-separated or a YAML list " +
      "(unset: all 1)",
  },
  kl_estimate: {
    type: "string",
    default: null,
    oneOf: ["mismatched", "batch"],
    readBy: "loss",
    help: "KTO's reference point: mismatched pairs or the batch",
  },
  odpo_alpha: {
    type: "number",
    default: null,
    readBy: "loss",
    range: atLeast(0),
    help: "ODPO: scale of the score offset",
  },
  rpo_alpha: {
    type: "number",
    default: null,
    readBy: "loss",
    range: atLeast(0),
    help: "RPO: weight of the chosen NLL (ours: TRL 1.13 dropped it)",
  },
  online_loss: {
    type: "string",
    default: null,
    oneOf: ["dpo", "ipo"],
    readBy: "loss",
    help: "Online DPO: loss on the generated pairs",
  },
  temperature: {
    type: "number",
    default: null,
    trl: 0.9,
    readBy: "loss",
    range: greaterThan(0),
    help: "sampling temperature",
  },
  top_p: {
    type: "number",
    default: null,
    trl: 1,
    readBy: "loss",
    range: { test: (v) => v > 0 && v <= 1, expected: "a number in (0, 1]" },
    help: "nucleus sampling mass",
  },
  max_new_tokens: {
    type: "integer",
    default: null,
    trl: 64,
    readBy: "loss",
    range: atLeast(1),
    help: "longest generated completion",
  },
  judge: { type: "string", default: null, readBy: "loss", help: "judge module path" },
  judge_url: { type: "string", default: null, readBy: "loss", help: "judge HTTP endpoint" },
  judge_model: { type: "string", default: null, readBy: "loss", help: "judge model name" },
  judge_api_key_env: {
    type: "string",
    default: null,
    readBy: "loss",
    help: "environment variable holding the judge's API key",
  },
  reward_model_path: {
    type: "string",
    default: null,
    trl: null,
    readBy: "loss",
    help: "reward model folder (the reward_model judge)",
  },
  judge_timeout: {
    type: "number",
    default: null,
    readBy: "loss",
    range: greaterThan(0),
    help: "seconds one verdict may take",
  },
  judge_max_retries: {
    type: "integer",
    default: null,
    readBy: "loss",
    range: atLeast(0),
    help: "retries of a failed HTTP judge request",
  },
  judge_concurrency: {
    type: "integer",
    default: null,
    readBy: "loss",
    range: atLeast(1),
    help: "pairs judged at the same time",
  },
} as const satisfies Record<string, KeySpec>;

/**
 * An algorithm's defaults overridden by `overrides`, checked against {@link LOSS_KEYS}: unknown
 * keys, wrong types and out-of-range values are errors. Strings are parsed for numeric and boolean
 * keys (so CLI values can be passed as is).
 *
 * @param algorithm The algorithm.
 * @param overrides Values from a config file or the command line.
 * @returns The complete hyperparameters.
 * @example
 * ```ts
 * import { resolveHyperparameters } from "./keys.ts";
 * import { dpo } from "./dpo.ts";
 * const hp = resolveHyperparameters(dpo, { beta: "0.5" });
 * if (hp.beta !== 0.5) throw new Error("unexpected");
 * ```
 */
export function resolveHyperparameters(
  algorithm: Algorithm,
  overrides: Record<string, unknown>,
): Hyperparameters {
  const hp: Hyperparameters = { ...algorithm.defaults };
  for (const [key, raw] of Object.entries(overrides)) {
    if (!Object.hasOwn(algorithm.defaults, key)) {
      throw new Error(
        `Unknown hyperparameter "${key}" for loss "${algorithm.name}": expected one of ${
          Object.keys(algorithm.defaults).join(", ")
        }`,
      );
    }
    const spec: KeySpec = LOSS_KEYS[key as keyof typeof LOSS_KEYS];
    const value = typeof raw === "string" && spec.type !== "string" ? fromString(raw) : raw;
    const checked = checkValue(key, spec, value);
    if (checked === null) throw new Error(`Invalid ${key}: null, expected a ${spec.type}`);
    hp[key] = checked;
  }
  return hp;
}
