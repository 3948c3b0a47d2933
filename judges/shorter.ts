/**
 * The built-in example rule judge: prefers the shorter answer (by characters, ignoring surrounding
 * whitespace), and calls equal lengths a tie. Use it as `--judge judges/shorter.ts`; write your
 * own module with the same export to judge by keywords or by checking a verifiable answer.
 *
 * @module
 */
import type { Verdict } from "./judge.ts";

/**
 * Prefers the shorter completion.
 *
 * @param _prompt Unused.
 * @param a First completion.
 * @param b Second completion.
 * @returns "a", "b" or "tie".
 * @example
 * ```ts
 * import { judge } from "./shorter.ts";
 * if (judge("q", "short", "much longer") !== "a") throw new Error("unexpected");
 * ```
 */
export function judge(_prompt: string, a: string, b: string): Verdict {
  const [la, lb] = [a.trim().length, b.trim().length];
  return la < lb ? "a" : lb < la ? "b" : "tie";
}
