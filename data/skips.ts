/**
 * Skip accounting: every row the pipeline drops is counted under a reason, kept with a few
 * examples of where it happened, and printed in the run summary. Nothing is dropped silently.
 *
 * @module
 */

/** Why a row was skipped. */
export type SkipReason =
  | "null_field"
  | "empty_field"
  | "non_string_content"
  | "identical_chosen_rejected"
  | "bad_label"
  | "bad_token_ids"
  | "no_assistant_turn"
  | "last_turn_not_assistant"
  | "template_mismatch"
  | "empty_completion_after_truncation"
  | "identical_after_truncation";

/** A row that cannot be used, with the reason and a detail for the summary. */
export class SkipRow extends Error {
  /**
   * @param reason The counter to increment.
   * @param detail What was wrong, e.g. `field "chosen" is null`.
   */
  constructor(readonly reason: SkipReason, detail: string) {
    super(detail);
    this.name = "SkipRow";
  }
}

/**
 * Counts skipped rows by reason and remembers the first few row numbers of each.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * const skips = new SkipCounter();
 * skips.add("null_field", 3, 'field "chosen" is null');
 * deepStrictEqual(skips.metrics(), { "skipped/null_field": 1 });
 * ```
 */
export class SkipCounter {
  /** Rows skipped per reason. */
  readonly counts: Partial<Record<SkipReason, number>> = {};
  /** Up to three `row N: detail` samples per reason. */
  readonly samples: Partial<Record<SkipReason, string[]>> = {};

  /**
   * Records one skipped row.
   *
   * @param reason Why it was skipped.
   * @param row Its row index in the source.
   * @param detail What was wrong.
   */
  add(reason: SkipReason, row: number, detail: string): void {
    this.counts[reason] = (this.counts[reason] ?? 0) + 1;
    const samples = this.samples[reason] ??= [];
    if (samples.length < 3) samples.push(`row ${row}: ${detail}`);
  }

  /** Total rows skipped. */
  get total(): number {
    return Object.values(this.counts).reduce((a, b) => a + (b ?? 0), 0);
  }

  /**
   * The counts as metrics named `skipped/<reason>`.
   *
   * @returns One entry per reason that occurred.
   */
  metrics(): Record<string, number> {
    return Object.fromEntries(
      Object.entries(this.counts).map(([reason, n]) => [`skipped/${reason}`, n as number]),
    );
  }

  /**
   * A human-readable summary, e.g. for the start of a run.
   *
   * @param kept How many examples were kept.
   * @returns One line per reason with sample rows, or a line saying nothing was skipped.
   */
  summary(kept: number): string {
    const lines = [`Kept ${kept} examples, skipped ${this.total}`];
    for (const [reason, n] of Object.entries(this.counts)) {
      const samples = this.samples[reason as SkipReason] ?? [];
      lines.push(`  skipped/${reason}: ${n} (${samples.join("; ")})`);
    }
    return lines.join("\n");
  }
}
