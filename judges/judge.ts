/**
 * The judge contract: a verdict on two completions of one prompt.
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
