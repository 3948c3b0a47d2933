/**
 * How a config key is declared and checked: its type, default, range or allowed values, help line
 * and TRL's default. The vocabulary of every key table — `data/config.ts` (data keys),
 * `algorithms/keys.ts` (per-loss keys) and `trainer/config.ts`, which composes them with the run
 * keys. It lives in `data/`, the lowest layer that declares keys, so the tables above import it
 * downwards.
 *
 * @module
 */

/** A config value. */
export type Value = string | number | boolean | null;

/** A numeric range: the test and the valid form an error shows. */
export interface Range {
  /** Whether `value` is in range. */
  readonly test: (value: number) => boolean;
  /** The valid form, e.g. "a number > 0". */
  readonly expected: string;
}

/** Values above `n`. */
export const greaterThan = (n: number): Range => ({
  test: (v) => v > n,
  expected: `a number > ${n}`,
});
/** Values from `n` up. */
export const atLeast = (n: number): Range => ({
  test: (v) => v >= n,
  expected: `a number >= ${n}`,
});
/** Values in [lo, hi]. */
export const between = (lo: number, hi: number): Range => ({
  test: (v) => v >= lo && v <= hi,
  expected: `a number in [${lo}, ${hi}]`,
});

/**
 * Who reads a key: every run; runs of algorithms with a reference model; or the algorithms whose
 * `defaults` list it (they own its default).
 */
export type Readers = "all" | "reference" | "loss";

/** One key of a table. */
export interface KeySpec {
  /** Accepted type (`fraction_or_name`: a number in [0, 1) or a string). */
  readonly type: "string" | "number" | "integer" | "boolean" | "fraction_or_name";
  /** Default value (`null`: unset). For `readBy: "loss"` keys the algorithm owns it: `null`. */
  readonly default: Value;
  /** Allowed values, for enumerations. */
  readonly oneOf?: readonly string[];
  /** Allowed numbers. */
  readonly range?: Range;
  /** One line for `--help`. */
  readonly help: string;
  /** Who reads it. @default "all" */
  readonly readBy?: Readers;
  /** A boolean key without which this one is read by nobody (LoRA's keys need `use_peft`). */
  readonly needs?: "use_peft";
  /** TRL 1.13's default, where TRL has this key (absent: a key of our own). */
  readonly trl?: Value;
  /** Why our default differs from TRL's (shown by `--help`). */
  readonly differs?: string;
}

type BaseType<S> = S extends { oneOf: readonly (infer E)[] } ? E
  : S extends { type: "boolean" } ? boolean
  : S extends { type: "number" | "integer" } ? number
  : S extends { type: "fraction_or_name" } ? number | string
  : string;

/** The TypeScript type of a key's values: its base type, and null where unset is allowed. */
export type ValueOf<S> = BaseType<S> | (S extends { default: null } ? null : never);

/** One typed value per key of a table. */
export type ConfigOf<T> = { -readonly [K in keyof T]: ValueOf<T[K]> };

/**
 * A command-line string as the value it spells: booleans, `null`, finite numbers, else the text.
 *
 * @param raw The flag's text.
 * @returns The value.
 * @example
 * ```ts
 * import { fromString } from "./key_table.ts";
 * if (fromString("0.5") !== 0.5 || fromString("true") !== true) throw new Error("unexpected");
 * ```
 */
export function fromString(raw: string): unknown {
  if (raw === "true" || raw === "false") return raw === "true";
  if (raw === "null") return null;
  const n = Number(raw);
  return raw.trim() !== "" && Number.isFinite(n) ? n : raw;
}

/** The largest finite float32. */
const FLOAT32_MAX = 3.4028234663852886e38;

/**
 * `value` checked against `key`'s spec: its type, allowed values and range.
 *
 * @param key The key's name (for the error).
 * @param spec Its spec.
 * @param value A parsed value (see {@linkcode fromString} for flags).
 * @returns The value.
 * @throws Naming the key, the value and what is expected.
 * @example
 * ```ts
 * import { atLeast, checkValue } from "./key_table.ts";
 * const spec = { type: "integer", default: 8, range: atLeast(1), help: "" } as const;
 * if (checkValue("batch", spec, 4) !== 4) throw new Error("unexpected");
 * ```
 */
export function checkValue(key: string, spec: KeySpec, value: unknown): Value {
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
      if (spec.range && !spec.range.test(value)) {
        throw new Error(`Invalid ${key}: ${value}, expected ${spec.range.expected}`);
      }
      // Numbers reach the step graph as float32: a larger one is infinite there, every step NaN.
      if (spec.type === "number" && Math.abs(value) > FLOAT32_MAX) {
        throw new Error(`Invalid ${key}: ${value}, expected at most 3.4e38 (float32's largest)`);
      }
      return value;
    }
  }
}

/**
 * The closest valid names to a misspelt one, compared word by word (`_`-separated; a word with
 * one typo still counts as the same word), so a left-out word (`per_device_batch_size`) finds the
 * keys that add one word, listed in the table's order (the train key before the eval one), not
 * the key with the fewest changed letters.
 *
 * @param given The unknown name.
 * @param names Valid names (keys and old names), in the table's order.
 * @param canonical The key an old name stands for.
 * @returns The hint for the error message.
 * @example
 * ```ts
 * import { suggestKey } from "./key_table.ts";
 * const hint = suggestKey("per_device_batch_size", ["per_device_train_batch_size", "per_device_eval_batch_size"], (n) => n);
 * if (!hint.startsWith('did you mean "per_device_train_batch_size" or')) throw new Error(hint);
 * ```
 */
export function suggestKey(
  given: string,
  names: string[],
  canonical: (name: string) => string,
): string {
  const scored = names.map((n, order) => ({
    key: canonical(n),
    order,
    words: wordDistance(given.split("_"), n.split("_")),
    letters: editDistance(given, n),
  }));
  const fewestWords = scored.reduce((m, s) => Math.min(m, s.words), Infinity);
  // One word off means something only in a name of several words.
  const wordsMatch = fewestWords === 0 || (fewestWords === 1 && given.split("_").length >= 3);
  let best = wordsMatch
    ? scored.filter((s) => s.words === fewestWords).sort((a, b) => a.order - b.order)
    : [];
  if (best.length === 0) {
    const closest = scored.reduce((a, b) => (b.letters < a.letters ? b : a));
    if (closest.letters <= Math.max(2, given.length / 3)) best = [closest];
  }
  const keys = [...new Set(best.map((s) => s.key))].slice(0, 2);
  return keys.length > 0
    ? `did you mean ${keys.map((k) => `"${k}"`).join(" or ")}? (--help lists every key)`
    : "--help lists every key";
}

/** Edit distance over words; two words are the same when one typo apart (3+ letters). */
function wordDistance(a: string[], b: string[]): number {
  return editDistance(
    a,
    b,
    (x, y) => x === y || (Math.min(x.length, y.length) >= 3 && editDistance(x, y) <= 1),
  );
}

/** Levenshtein distance between two sequences (letters of a string, or words). */
function editDistance<T>(
  a: ArrayLike<T>,
  b: ArrayLike<T>,
  same: (x: T, y: T) => boolean = (x, y) => x === y,
): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(
        previous[j] + 1,
        row[j - 1] + 1,
        previous[j - 1] + (same(a[i - 1], b[j - 1]) ? 0 : 1),
      );
    }
    previous = row;
  }
  return previous[b.length];
}
