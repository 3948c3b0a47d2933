/**
 * TRL keys that the table does not hold: TRL 1.13's names and defaults (written by
 * tools/dump_trl_configs.py), which of them change nothing here and why, and what to use instead
 * of the others. A recipe's key outside the table is accepted at TRL's default or when it changes
 * nothing here, and otherwise refused naming the equivalent.
 *
 * @module
 */
import trl from "./trl_defaults.json" with { type: "json" };

/** Each TRL 1.13 key's defaults (in any of its config classes), from tools/dump_trl_configs.py. */
const TRL_DEFAULTS: ReadonlyMap<string, unknown[]> = (() => {
  const map = new Map<string, unknown[]>();
  for (const fields of Object.values(trl.classes)) {
    for (const [key, value] of Object.entries(fields)) map.set(key, [...map.get(key) ?? [], value]);
  }
  return map;
})();

/** What a TRL key means here when set to other values than TRL's default: the equivalent. */
const INSTEAD: Readonly<Record<string, string>> = {
  fp16: "use bf16: true (float16 would need dynamic loss scaling, which is not done here)",
  dtype: "weights load as stored and train in float32 master copies: use bf16: true for " +
    "bf16 compute and save_dtype for the saved weights (auto and float32 are accepted)",
  save_strategy: "use save_steps (0: only at the end)",
  logging_strategy: "use logging_steps",
  push_to_hub: "upload the checkpoint folder with `huggingface-cli upload`",
};

/** `dtype` values that mean what a run here does anyway (float32 masters, stored weights). */
const SAME_DTYPES = new Set(["auto", "float32"]);

/** TRL keys that change nothing here at any value, and why. */
const NO_EFFECT: Readonly<Record<string, string>> = {
  disable_dropout: "the models here have no dropout",
  gradient_checkpointing_kwargs: "how PyTorch recomputes (use_reentrant...); here the " +
    "recomputation is compiled into the step",
  dataset_num_proc: "tokenization runs in one process",
  dataloader_num_workers: "batches are made in one process",
  logging_first_step: "logging follows logging_steps",
  use_liger_kernel: "no such kernels here",
  attn_implementation: "attention is compiled into the step here",
};

/**
 * A TRL key outside the table: accepted at TRL's default or when it changes nothing here (the
 * returned text says which); an error naming the equivalent otherwise.
 *
 * @param key The key.
 * @param value Its value.
 * @param origin Where it was set (a file, or CLI).
 * @returns The note for the user, or null when TRL has no such key.
 * @example
 * ```ts
 * import { acceptTrlKey } from "./trl_keys.ts";
 * if (!acceptTrlKey("gradient_checkpointing_kwargs", { use_reentrant: false }, "CLI")) {
 *   throw new Error("unexpected");
 * }
 * if (acceptTrlKey("no_such_key", 1, "CLI") !== null) throw new Error("unexpected");
 * ```
 */
export function acceptTrlKey(key: string, value: unknown, origin: string): string | null {
  const defaults = TRL_DEFAULTS.get(key);
  if (!defaults) return null;
  const same = (d: unknown) => JSON.stringify(d) === JSON.stringify(value);
  if (NO_EFFECT[key]) return `${key} (${NO_EFFECT[key]})`;
  if (key === "model_init_kwargs" && value !== null) {
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      const sub = k === "torch_dtype" ? "dtype" : k;
      if (acceptTrlKey(sub, v, `${origin}, model_init_kwargs`) === null) {
        throw new Error(
          `Unsupported model_init_kwargs key "${k}" (${origin}): not a setting of loading here`,
        );
      }
    }
    return `model_init_kwargs ${JSON.stringify(value)} (as a run here loads the model)`;
  }
  if (key === "dtype" && SAME_DTYPES.has(String(value))) {
    return `dtype ${value} (weights as stored, float32 masters)`;
  }
  if (defaults.some(same)) return `${key} ${JSON.stringify(value)} (TRL's default)`;
  const shown = [...new Set(defaults.map((d) => JSON.stringify(d)))].join(" or ");
  throw new Error(
    `Unsupported ${key}: ${JSON.stringify(value)} (${origin}): ` +
      (INSTEAD[key] ??
        `TRL's key for something not done here; only TRL's default (${shown}) is accepted, ` +
          "or remove it"),
  );
}
