/**
 * What HF's Trainer logs about training, kept as the steps go: every `logging_steps` a row with
 * the loss and the loss's metrics as means over the window (TRL's stored metrics are window means
 * too), `grad_norm` of the window's last step (HF logs the step's, not a mean), throughput; at the
 * end HF's closing row (`train_runtime`, `train_loss`, ...) over the whole session. The learning
 * rate, the epoch and the skip counts are the session's to add: they are where the run stands,
 * not sums.
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
