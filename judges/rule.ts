/**
 * Rule judges: any TypeScript module exporting `judge(prompt, a, b)`.
 *
 * @module
 */
import { type Judge, JudgeFailure, type Verdict } from "./judge.ts";

/** The module shape a rule judge file must export. */
export interface RuleModule {
  /** Returns the verdict (or a number: negative prefers `a`, positive `b`, 0 a tie). */
  judge(prompt: string, a: string, b: string): Verdict | number | Promise<Verdict | number>;
}

/**
 * Loads a rule judge from a TypeScript module path.
 *
 * @param path Module path (relative to the working directory) or URL.
 * @returns The judge.
 */
export async function loadRuleJudge(path: string): Promise<Judge> {
  const url = /^[a-z]+:/.test(path) ? path : new URL(path, `file://${Deno.cwd()}/`).href;
  let module: Partial<RuleModule>;
  try {
    module = await import(url);
  } catch (error) {
    throw new Error(`Cannot load judge module ${path}: ${(error as Error).message}`);
  }
  if (typeof module.judge !== "function") {
    throw new Error(`Judge module ${path} must export a function judge(prompt, a, b)`);
  }
  const rule = module.judge;
  return {
    name: `rule:${path}`,
    async judge(prompt, a, b) {
      const v = await rule(prompt, a, b);
      if (v === "a" || v === "b" || v === "tie") return v;
      if (typeof v === "number" && Number.isFinite(v)) return v < 0 ? "a" : v > 0 ? "b" : "tie";
      throw new JudgeFailure(`Judge ${path} returned ${JSON.stringify(v)}`, "invalid_verdict");
    },
  };
}
