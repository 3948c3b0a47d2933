/**
 * What HF's Trainer logs about training, kept as the steps go: every `logging_steps` a row with
 * the loss and the loss's metrics as means over the window (TRL's stored metrics are window means
 * too), `grad_norm` of the window's last step (HF logs the step's, not a mean), throughput; at the
 * end HF's closing row (`train_runtime`, `train_loss`, ...) over the whole session. The learning
 * rate, the epoch and the skip counts are the session's to add: they are where the run stands,
 * not sums. Held-out metrics are named as in TRL's log history (`eval_loss`). No file system
 * here: the page logs through it too.
 *
 * @module
 */
import type { MetricsRow } from "./log.ts";

/** Sums since a start. */
interface Sums {
  steps: number;
  values: Record<string, number>;
  tokens: number;
  examples: number;
  start: number;
  /** The last applied step's gradient norm. */
  gradNorm?: number;
}

const fresh = (): Sums => ({
  steps: 0,
  values: {},
  tokens: 0,
  examples: 0,
  start: performance.now(),
});

/** The running log window and the session's totals. */
export class LogWindow {
  #window = fresh();
  #totals = fresh();

  /**
   * Counts a micro-batch's tokens and examples (throughput).
   *
   * @param tokens Non-padding tokens.
   * @param examples Pairs or completions.
   */
  addBatch(tokens: number, examples: number): void {
    for (const sums of [this.#window, this.#totals]) {
      sums.tokens += tokens;
      sums.examples += examples;
    }
  }

  /**
   * Adds an applied step.
   *
   * @param step Its loss, gradient norm and the loss's metrics.
   */
  addStep(step: { loss: number; gradNorm: number; metrics: Record<string, number> }): void {
    const window = this.#window;
    window.steps++;
    window.gradNorm = step.gradNorm;
    for (const [k, v] of Object.entries({ loss: step.loss, ...step.metrics })) {
      window.values[k] = (window.values[k] ?? 0) + v;
    }
    this.#totals.steps++;
    this.#totals.values.loss = (this.#totals.values.loss ?? 0) + step.loss;
  }

  /**
   * The window's part of a log row (a window whose every step was skipped has no loss, no
   * `grad_norm` and no throughput), then a new window.
   *
   * @returns Means, the last `grad_norm`, `tokens_per_s` and `samples_per_s`.
   * @example
   * ```ts
   * import { LogWindow } from "./log_window.ts";
   * const w = new LogWindow();
   * w.addStep({ loss: 1, gradNorm: 5, metrics: {} });
   * w.addStep({ loss: 3, gradNorm: 2, metrics: {} });
   * const row = w.take();
   * if (row.loss !== 2 || row.grad_norm !== 2) throw new Error("unexpected");
   * ```
   */
  take(): Record<string, number> {
    const window = this.#window;
    this.#window = fresh();
    if (window.steps === 0) return {};
    const seconds = (performance.now() - window.start) / 1000;
    const means: Record<string, number> = {};
    for (const [k, v] of Object.entries(window.values)) means[k] = v / window.steps;
    return {
      ...means,
      grad_norm: window.gradNorm!,
      tokens_per_s: window.tokens / seconds,
      samples_per_s: window.examples / seconds,
    };
  }

  /**
   * HF's closing row over every step since the window was made.
   *
   * @returns `train_runtime` (seconds), `train_samples_per_second`, `train_steps_per_second` and
   *   `train_loss` (the mean loss of the applied steps).
   */
  summary(): Omit<MetricsRow, "step"> {
    const totals = this.#totals;
    const seconds = (performance.now() - totals.start) / 1000;
    return {
      train_runtime: seconds,
      train_samples_per_second: totals.examples / seconds,
      train_steps_per_second: totals.steps / seconds,
      ...(totals.steps > 0 ? { train_loss: totals.values.loss / totals.steps } : {}),
    };
  }
}

/** The prefix of held-out metrics, as in TRL's log history (`eval_loss`, `eval_rewards/chosen`). */
const EVAL_PREFIX = "eval_";

/**
 * A held-out metric's name in the log: `eval_` + the metric, as HF's Trainer names it.
 *
 * @param metric The metric, e.g. `loss` or `rewards/accuracies`.
 * @returns The logged name.
 * @example
 * ```ts
 * import { evalKey } from "./log_window.ts";
 * if (evalKey("rewards/margins") !== "eval_rewards/margins") throw new Error("unexpected");
 * ```
 */
export function evalKey(metric: string): string {
  return EVAL_PREFIX + metric;
}

/**
 * The held-out metrics of an evaluation row without their prefix (`eval_loss` → `loss`), or null
 * for a row that is not an evaluation.
 *
 * @param row A logged row.
 * @returns The step and the metrics under their plain names, or null.
 * @example
 * ```ts
 * import { heldOut } from "./log_window.ts";
 * if (heldOut({ step: 3, eval_loss: 0.5 })?.loss !== 0.5) throw new Error("unexpected");
 * if (heldOut({ step: 3, loss: 0.5 }) !== null) throw new Error("unexpected");
 * ```
 */
export function heldOut(row: MetricsRow): MetricsRow | null {
  if (typeof row[evalKey("loss")] !== "number") return null;
  const plain: MetricsRow = { step: row.step };
  for (const [k, v] of Object.entries(row)) {
    if (k.startsWith(EVAL_PREFIX)) plain[k.slice(EVAL_PREFIX.length)] = v;
  }
  return plain;
}
