/**
 * The end of a run: the training curves (`curves.svg`, training and held-out side by side in
 * each panel) and the summary printed on the console.
 *
 * @module
 */
import { join } from "node:path";
import type { MetricsRow } from "./log.ts";
import { panelsFromRows, renderSvg } from "./plot.ts";

/**
 * Writes `curves.svg` and returns the summary lines.
 *
 * @param outDir The run's folder.
 * @param rows Every logged row.
 * @param info Title pieces, where the final checkpoint is ("" for none) and the steps skipped by
 *   reason.
 * @returns Lines for the console.
 */
export async function finishReport(
  outDir: string,
  rows: MetricsRow[],
  info: { title: string; headline: string; checkpoint: string; skipped?: Record<string, number> },
): Promise<string[]> {
  // A skipped step's row has no loss, or a non-finite one (written as null).
  const trainRows = rows.filter((r) => typeof r.loss === "number");
  const evalRows = rows.filter((r) => typeof r["eval/loss"] === "number");
  const heldOut = evalRows.map((r) =>
    Object.fromEntries(Object.entries(r).map(([k, v]) => [k.replace(/^eval\//, ""), v]))
  ) as MetricsRow[];
  const curves = panelsFromRows({ train: trainRows, eval: heldOut }, [
    "loss",
    "rewards/accuracies",
    "rewards/margins",
  ]);
  const figure = join(outDir, "curves.svg");
  await Deno.writeTextFile(figure, renderSvg(curves, info.title));
  const lines = [`\n${info.headline}`];
  const skipped = Object.entries(info.skipped ?? {}).filter(([, n]) => n > 0);
  if (skipped.length) {
    lines.push(`  skipped steps: ${skipped.map(([reason, n]) => `${reason} ${n}`).join(", ")}`);
  }
  const last = trainRows.at(-1);
  const held = heldOut.at(-1);
  const accuracy = (r: MetricsRow) => r["rewards/accuracies"]?.toFixed(3);
  if (last) lines.push(`  train loss ${last.loss.toFixed(4)}, accuracy ${accuracy(last)}`);
  if (held) lines.push(`  eval loss ${held.loss.toFixed(4)}, accuracy ${accuracy(held)}`);
  if (info.checkpoint) lines.push(`  checkpoint ${info.checkpoint}`);
  lines.push(`  curves ${figure}`);
  lines.push(`  metrics ${join(outDir, "metrics.jsonl")}`);
  return lines;
}
