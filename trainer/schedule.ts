/**
 * Learning-rate schedules with linear warmup, as `transformers.get_scheduler`: the rate rises
 * linearly from 0 over the warmup steps, then stays (constant), falls linearly to 0 (linear), or
 * follows a half cosine to 0 (cosine) or to a floor (HF's cosine_with_min_lr: the cosine factor
 * scaled into [floor, 1]).
 *
 * @module
 */

/** Schedule settings. */
export interface Schedule {
  /** Peak learning rate. */
  peak: number;
  /** Total optimizer steps. */
  total: number;
  /** Warmup steps. */
  warmup: number;
  /** Shape after warmup. */
  kind: "linear" | "cosine" | "constant";
  /** Cosine only: the rate it ends at, as a fraction of the peak. @default 0 */
  floor?: number;
}

/**
 * The learning rate for optimizer step `step` (0-based, as HF schedulers count).
 *
 * @param s The schedule.
 * @param step Steps already taken.
 * @returns The rate to use for this step.
 * @example
 * ```ts
 * import { learningRate } from "./schedule.ts";
 * const s = { peak: 1, total: 10, warmup: 2, kind: "linear" as const };
 * if (learningRate(s, 1) !== 0.5 || learningRate(s, 6) !== 0.5) throw new Error("unexpected");
 * ```
 */
export function learningRate(s: Schedule, step: number): number {
  if (step < s.warmup) return (s.peak * step) / Math.max(1, s.warmup);
  if (s.kind === "constant") return s.peak;
  const progress = (step - s.warmup) / Math.max(1, s.total - s.warmup);
  if (s.kind === "linear") return s.peak * Math.max(0, 1 - progress);
  const floor = s.floor ?? 0;
  const cosine = 0.5 * (1 + Math.cos(Math.PI * Math.min(1, progress)));
  return s.peak * (floor + (1 - floor) * cosine);
}
