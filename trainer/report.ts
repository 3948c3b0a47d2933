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
 * @param info Title pieces and where the final checkpoint is.
 * @returns Lines for the console.
 */
export async function finishReport(
  outDir: string,
  rows: MetricsRow[],
  info: { title: string; headline: string; checkpoint: string },
): Promise<string[]> {
  const trainRows = rows.filter((r) => "loss" in r);
  const evalRows = rows.filter((r) => "eval/loss" in r);
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
  const lines = [`\nDone: ${info.headline}`];
  const last = trainRows.at(-1);
  const held = heldOut.at(-1);
  const accuracy = (r: MetricsRow) => r["rewards/accuracies"]?.toFixed(3);
  if (last) lines.push(`  train loss ${last.loss.toFixed(4)}, accuracy ${accuracy(last)}`);
  if (held) lines.push(`  eval loss ${held.loss.toFixed(4)}, accuracy ${accuracy(held)}`);
  lines.push(`  checkpoint ${info.checkpoint}`, `  curves ${figure}`);
  lines.push(`  metrics ${join(outDir, "metrics.jsonl")}`);
  return lines;
}
