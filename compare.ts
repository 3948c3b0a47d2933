/**
 * Trains several losses with the same seed and data and draws their curves side by side — the
 * seed's headline reward-accuracy figure, reproducible from one command:
 *
 *   deno task compare --losses dpo,simpo,kto,orpo [--config FILE] [--key value ...]
 *
 * Each loss keeps its own hyperparameter defaults (β, γ, ...) and learning rate. A base config
 * that names a loss (configs/dpo.yaml) sets hyperparameters and the learning rate for that loss
 * only; one that names none (configs/tiny.yaml) sets the learning rate for all. A hyperparameter
 * flag applies to the losses that read it. Each run writes to `<output_dir>/<loss>`; the figure
 * goes to `<output_dir>/compare.svg`.
 *
 * @module
 */
import { join } from "node:path";
import { algorithm as getAlgorithm } from "./algorithms/mod.ts";
import { EMBEDDED_CONFIG, runTraining, type TrainOptions, type TrainResult } from "./train.ts";
import {
  canonicalKey,
  KEYS,
  type KeySpec,
  parseFlags,
  readsKey,
  readYamlConfig,
  resolveConfig,
} from "./trainer/config.ts";
import { INTERRUPTED_EXIT } from "./trainer/interrupt.ts";
import type { MetricsRow } from "./trainer/log.ts";
import { evalKey } from "./trainer/log_window.ts";
import { type Panel, panelsFromRows, renderSvg } from "./trainer/plot.ts";

const USAGE = "Usage: deno task compare --losses a,b,c [--config FILE.yaml] [--key value ...]";

/**
 * Runs the comparison.
 *
 * @param args `--losses a,b,c` plus any train flags.
 * @param options Console output.
 * @returns The figure's path and each loss's run.
 */
export async function compare(
  args: string[],
  options: TrainOptions = {},
): Promise<{ figure: string; runs: Record<string, TrainResult> }> {
  const { losses, config: configPath, ...cli } = parseFlags(args);
  if (!losses) throw new Error(`Missing --losses: a comma-separated list such as dpo,ipo,kto`);
  const names = losses.split(",").map((s) => s.trim()).filter(Boolean);
  names.forEach(getAlgorithm); // unknown names fail before any training
  const base = configPath ?? EMBEDDED_CONFIG;
  const yaml = await readYamlConfig(base);
  const outputDir = cli.output_dir ?? "out/compare";
  checkFlagsAreRead(cli, names);
  const runs: Record<string, TrainResult> = {};
  for (const loss of names) {
    const resolved = resolveConfig({
      yaml: layerFor(yaml, loss),
      yamlName: base,
      cli: { ...layerFor(cli, loss), loss, output_dir: join(outputDir, loss) },
    });
    const settings = { ...resolved, resumeDir: null, resumed: null, embedded: false };
    runs[loss] = await runTraining(settings, options);
    // Ctrl-C stops the comparison, not only the current loss's run.
    if (runs[loss].outcome === "interrupted") break;
  }
  const figure = join(outputDir, "compare.svg");
  await Deno.writeTextFile(figure, comparisonFigure(runs));
  if (!options.quiet) console.log(`Figure: ${figure}`);
  return { figure, runs };
}

/** The keys of `values` that configure `loss`: see the module doc. */
function layerFor<T>(values: Record<string, T>, loss: string): Record<string, T> {
  const algorithm = getAlgorithm(loss);
  const named = values.loss ?? values.loss_type;
  const ownedByOther = named !== undefined && String(named) !== loss;
  const out: Record<string, T> = {};
  for (const [name, value] of Object.entries(values)) {
    const key = canonicalKey(name);
    if (key === "loss" || key === "loss_type") continue;
    const perLoss = key !== null && (KEYS[key] as KeySpec).readBy === "loss";
    if (perLoss && !readsKey(algorithm, key)) continue;
    if (ownedByOther && (perLoss || key === "learning_rate")) continue;
    out[name] = value;
  }
  return out;
}

function checkFlagsAreRead(cli: Record<string, string>, losses: string[]): void {
  for (const name of Object.keys(cli)) {
    const key = canonicalKey(name);
    if (key === null || (KEYS[key] as KeySpec).readBy !== "loss") continue;
    if (!losses.some((loss) => readsKey(getAlgorithm(loss), key))) {
      throw new Error(`--${name} is read by none of ${losses.join(", ")}: remove it`);
    }
  }
}

/**
 * The comparison figure: held-out pairwise accuracy first (the one figure that means the same
 * for every loss), then the log-probs of chosen and rejected answers (one scale for all), then
 * each loss's reward margins in a panel of its own (their reward scales differ).
 */
function comparisonFigure(runs: Record<string, TrainResult>): string {
  const rows = (has: string): Record<string, MetricsRow[]> =>
    Object.fromEntries(
      Object.entries(runs).map((
        [k, run],
      ) => [k, run.rows.filter((r) => typeof r[has] === "number")]),
    );
  const [pairwise] = panelsFromRows(
    rows(evalKey("loss")),
    [evalKey("pairwise_accuracy")],
    "eval",
  );
  const margins = Object.keys(runs).map((loss): Panel => {
    const [panel] = panelsFromRows({ [loss]: rows("loss")[loss] }, ["rewards/margins"]);
    return { ...panel, title: `rewards/margins: ${loss}` };
  });
  const panels = [
    { ...pairwise, title: "held-out pairwise accuracy", yLabel: "pairwise accuracy" },
    ...panelsFromRows(rows("loss"), ["logps/chosen", "logps/rejected"]),
    ...margins,
  ];
  return renderSvg(panels, `${Object.keys(runs).join(" vs ")}: same data, each loss's defaults`);
}

/**
 * The command-line entry: `--help`, or a comparison; errors print one line and exit 1.
 *
 * @param args Command-line arguments.
 */
export async function main(args: string[]): Promise<void> {
  try {
    if (args.includes("--help") || args.includes("-h")) {
      console.log(`${USAGE}\n\nEvery key of \`deno task train --help\` is accepted.`);
      return;
    }
    const { runs } = await compare(args);
    if (Object.values(runs).some((r) => r.outcome === "interrupted")) Deno.exit(INTERRUPTED_EXIT);
  } catch (error) {
    console.error(`error: ${(error as Error).message}`);
    Deno.exit(1);
  }
}

if (import.meta.main) await main(Deno.args);
