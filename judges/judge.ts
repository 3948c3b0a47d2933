/**
 * The judge contract: a verdict on two completions of one prompt, and the deadline every judge
 * runs under.
 *
 * @module
 */

/** Which completion won. */
export type Verdict = "a" | "b" | "tie";

/** Ranks two completions of one prompt. */
export interface Judge {
  /** Name for logs. */
  readonly name: string;
  /**
   * Compares `a` and `b` as answers to `prompt`.
   *
   * @param prompt The prompt text.
   * @param a First completion.
   * @param b Second completion.
   * @returns The verdict.
   */
  judge(prompt: string, a: string, b: string): Promise<Verdict>;
}

/** A judgement that could not be made (after any retries); the pair is skipped and counted. */
export class JudgeFailure extends Error {
  /**
   * @param message What failed.
   * @param reason Short reason for the skip counter, e.g. "timeout", "http_500", "unparseable".
   */
  constructor(message: string, readonly reason: string) {
    super(message);
    this.name = "JudgeFailure";
  }
}

/**
 * `judge` with a deadline per verdict: a call that has not settled after `timeoutMs` fails with
 * reason "timeout" (a module whose promise never settles would otherwise hang the run), and an
 * exception is reported as a failure with reason "exception" and its message.
 *
 * @param judge The judge.
 * @param timeoutMs The deadline in milliseconds.
 * @returns The judge under a deadline.
 * @example
 * ```ts
 * import { withDeadline } from "./judge.ts";
 * const hung = withDeadline({ name: "hung", judge: () => new Promise(() => {}) }, 10);
 * const error = await hung.judge("p", "a", "b").catch((e) => e);
 * if (error.reason !== "timeout") throw new Error("unexpected");
 * ```
 */
export function withDeadline(judge: Judge, timeoutMs: number): Judge {
  return {
    name: judge.name,
    async judge(prompt, a, b) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new JudgeFailure(
                `Judge ${judge.name} gave no verdict within ${timeoutMs / 1000} s (judge_timeout)`,
                "timeout",
              ),
            ),
          timeoutMs,
        );
      });
      try {
        return await Promise.race([judge.judge(prompt, a, b), deadline]);
      } catch (error) {
        if (error instanceof JudgeFailure) throw error;
        throw new JudgeFailure(
          `Judge ${judge.name} threw: ${(error as Error)?.message ?? String(error)}`,
          "exception",
        );
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
