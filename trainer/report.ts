/**
 * The end of a run: the training curves (`curves.svg`: loss, held-out pairwise accuracy, reward
 * accuracy and margins with training and held-out values in one panel each, the log-probs of
 * chosen and rejected answers, the learning rate) and the summary printed on the console.
 *
 * @module
 */
import { join } from "node:path";
import type { TrainConfig } from "./config.ts";
import type { MetricsRow } from "./log.ts";
import { heldOut } from "./log_window.ts";
import { type Panel, panelsFromRows, renderSvg } from "./plot.ts";

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
  const evaluations = rows.map(heldOut).filter((r) => r !== null);
  const curves = runPanels(trainRows, evaluations);
  const figure = join(outDir, "curves.svg");
  await Deno.writeTextFile(figure, renderSvg(curves, info.title));
  const lines = [`\n${info.headline}`];
  const skipped = Object.entries(info.skipped ?? {}).filter(([, n]) => n > 0);
  if (skipped.length) {
    lines.push(`  skipped steps: ${skipped.map(([reason, n]) => `${reason} ${n}`).join(", ")}`);
  }
  // The last tenth of the logged rows: one row is one window, too noisy to stand for the end.
  const tail = trainRows.slice(-Math.max(1, Math.round(trainRows.length / 10)));
  const mean = (k: string) => tail.reduce((a, r) => a + (r[k] ?? NaN), 0) / tail.length;
  const held = evaluations.at(-1);
  if (tail.length > 0) {
    lines.push(
      `  train loss ${mean("loss").toFixed(4)}, reward accuracy ${
        mean("rewards/accuracies").toFixed(3)
      } (mean of the rows logged at steps ${tail[0].step}-${tail.at(-1)!.step})`,
    );
  }
  if (held) {
    const pairwise = held.pairwise_accuracy;
    lines.push(
      `  eval loss ${held.loss.toFixed(4)}` +
        (pairwise === undefined ? "" : `, pairwise accuracy ${pairwise.toFixed(3)}`) +
        ` (step ${held.step})`,
    );
  }
  if (info.checkpoint) lines.push(`  checkpoint ${info.checkpoint}`);
  lines.push(`  curves ${figure}`);
  lines.push(`  metrics ${join(outDir, "metrics.jsonl")}`);
  return lines;
}

/**
 * A run's title for its figure: the loss, the model, β (for losses that read it), the learning
 * rate, LoRA's rank and scale when on, and the data.
 *
 * @param config The run's config.
 * @returns One line.
 * @example
 * ```ts
 * import { runTitle } from "./report.ts";
 * import { resolveConfig } from "./config.ts";
 * const { config } = resolveConfig({ cli: { loss: "dpo", model_name_or_path: "m", use_peft: "true" } });
 * const title = runTitle(config);
 * if (title !== "dpo on m · β 0.1 · lr 5e-6 · LoRA r 16, α 32 · data null") throw new Error(title);
 * ```
 */
export function runTitle(config: TrainConfig): string {
  return [
    `${config.loss} on ${config.model_name_or_path}`,
    ...(config.beta === null ? [] : [`β ${config.beta}`]),
    `lr ${config.learning_rate.toExponential()}`,
    ...(config.use_peft ? [`LoRA r ${config.lora_r}, α ${config.lora_alpha}`] : []),
    `data ${config.dataset_name}`,
  ].join(" · ");
}

/** The panels of one run: training (smoothed) and held-out (marked) values of each metric. */
function runPanels(trainRows: MetricsRow[], heldOut: MetricsRow[]): Panel[] {
  const both = (metric: string): Panel => {
    const [train] = panelsFromRows({ train: trainRows }, [metric]);
    const [held] = panelsFromRows({ "held-out": heldOut }, [metric], "eval");
    return { ...train, series: [...train.series, ...held.series] };
  };
  const [pairwise] = panelsFromRows({ "held-out": heldOut }, ["pairwise_accuracy"], "eval");
  const logps = panelsFromRows({ train: trainRows }, ["logps/chosen", "logps/rejected"]);
  return [
    both("loss"),
    { ...pairwise, title: "held-out pairwise accuracy", yLabel: "pairwise accuracy" },
    both("rewards/accuracies"),
    both("rewards/margins"),
    {
      title: "logps: chosen and rejected",
      yLabel: "summed log-prob",
      series: logps.map((p) => ({ ...p.series[0], name: p.title })),
    },
    panelsFromRows({ train: trainRows }, ["learning_rate"], "exact")[0],
  ];
}
