/**
 * Seeded randomness for the data pipeline: the same seed gives the same order on every machine.
 *
 * @module
 */

/**
 * A deterministic pseudo-random generator (mulberry32) returning floats in [0, 1).
 *
 * @param seed Any integer; only its low 32 bits are used.
 * @returns A function that yields the next number of the stream on each call.
 *
 * @example
 * ```ts
 * import { deepStrictEqual as assertEquals } from "node:assert/strict";
 * const a = seededRandom(7), b = seededRandom(7);
 * assertEquals([a(), a()], [b(), b()]);
 * ```
 */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Returns a shuffled copy of `items` (Fisher–Yates), leaving the input untouched.
 *
 * @param items The values to shuffle.
 * @param seed The seed; the same seed always gives the same order.
 * @returns A new array with the same values in a seeded random order.
 *
 * @example
 * ```ts
 * import { deepStrictEqual as assertEquals } from "node:assert/strict";
 * assertEquals(shuffle([1, 2, 3, 4], 1).toSorted(), [1, 2, 3, 4]);
 * ```
 */
export function shuffle<T>(items: readonly T[], seed: number): T[] {
  const out = items.slice();
  const random = seededRandom(seed);
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}
