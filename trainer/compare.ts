/**
 * Trains several losses with the same seed and data and draws their curves side by side — the
 * seed's headline reward-accuracy figure, reproducible from one command:
 *
 *   deno task compare --losses dpo,ipo,kto [--config FILE] [--key value ...]
 *
 * Each run writes to `<output_dir>/<loss>`; the figure goes to `<output_dir>/compare.svg`.
 *
 * @module
 */
import { join } from "node:path";
import { train } from "../train.ts";
import { parseFlags } from "./config.ts";
import type { MetricsRow } from "./log.ts";
import { panelsFromRows, renderSvg } from "./plot.ts";

/**
 * Runs the comparison.
 *
 * @param args `--losses a,b,c` plus any train flags.
 * @param options `quiet`: no console output from the runs.
 * @returns The figure's path and each run's rows.
 */
export async function compare(
  args: string[],
  options: { quiet?: boolean } = {},
): Promise<{ figure: string; runs: Record<string, MetricsRow[]> }> {
  const { losses, output_dir: outputDir = "out/compare", ...rest } = parseFlags(args);
  if (!losses) throw new Error("Missing --losses: a comma-separated list such as dpo,ipo,kto");
  const shared = Object.entries(rest).flatMap(([k, v]) => [`--${k}`, v]);
  const runs: Record<string, MetricsRow[]> = {};
  for (const loss of losses.split(",").map((s) => s.trim()).filter(Boolean)) {
    const result = await train(
      [...shared, "--loss", loss, "--output_dir", join(outputDir, loss)],
      options,
    );
    runs[loss] = result.rows;
  }
  const trainRows = Object.fromEntries(
    Object.entries(runs).map(([k, rows]) => [k, rows.filter((r) => "loss" in r)]),
  );
  const evalRows = Object.fromEntries(
    Object.entries(runs).map(([k, rows]) => [k, rows.filter((r) => "eval/loss" in r)]),
  );
  const panels = [
    ...panelsFromRows(trainRows, ["rewards/accuracies", "rewards/margins"]),
    ...panelsFromRows(evalRows, ["eval/rewards/accuracies"]),
  ];
  const figure = join(outputDir, "compare.svg");
  await Deno.writeTextFile(
    figure,
    renderSvg(panels, `Reward accuracy: ${Object.keys(runs).join(" vs ")}`),
  );
  if (!options.quiet) console.log(`Figure: ${figure}`);
  return { figure, runs };
}

if (import.meta.main) await compare(Deno.args);
