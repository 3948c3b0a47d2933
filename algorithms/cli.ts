/**
 * `deno task loss --loss NAME [--beta 0.1 ...] --input FILE.json`: prints a loss, its metrics
 * and its gradient for the numbers in FILE.json, as JSON. Hyperparameters are flags with the
 * loss's snake_case names (`--label_smoothing 0.1`, `--ipo_average false`, `--kl_estimate batch`).
 *
 * @module
 */
import { parseArgs } from "node:util";
import {
  algorithm,
  ALGORITHMS,
  evaluateLoss,
  type LossData,
  resolveHyperparameters,
} from "./mod.ts";

const USAGE = `Usage: deno task loss --loss NAME [--HYPERPARAMETER VALUE ...] --input FILE.json

Prints {"loss", "metrics", "grad"} for the batch in FILE.json (see algorithms/example_input.json).
Losses: ${Object.keys(ALGORITHMS).join(", ")}`;

/**
 * Runs the command line.
 *
 * @param args Command-line arguments.
 * @returns The JSON to print.
 */
export async function main(args: string[]): Promise<string> {
  const first = parseArgs({
    args,
    options: { loss: { type: "string" }, help: { type: "boolean", short: "h" } },
    strict: false,
  }).values;
  if (first.help) return USAGE;
  if (typeof first.loss !== "string") {
    throw new Error(`Missing --loss: expected one of ${Object.keys(ALGORITHMS).join(", ")}`);
  }
  const chosen = algorithm(first.loss);
  const names = Object.keys(chosen.defaults);
  const options: Record<string, { type: "string" }> = {
    loss: { type: "string" },
    input: { type: "string" },
  };
  for (const name of names) options[name] = { type: "string" };
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args, options, strict: true }));
  } catch (error) {
    throw new Error(
      `${(error as Error).message.replace(/\.$/, "")}: --loss ${chosen.name} takes --input and ${
        names.map((n) => `--${n}`).join(", ")
      }`,
    );
  }
  if (typeof values.input !== "string") throw new Error("Missing --input: a JSON file of inputs");
  const { loss: _loss, input: file, ...flags } = values;
  // The same rules as `deno task train`: types and ranges (beta > 0, ...) come from one table.
  const hyperparameters = resolveHyperparameters(chosen, flags);
  const data = await readInput(file);
  const result = await evaluateLoss(chosen.name, data, { hyperparameters }).catch((error) => {
    throw new Error(`${(error as Error).message} (--input ${file})`);
  });
  return JSON.stringify(result, null, 2);
}

async function readInput(file: string): Promise<LossData> {
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (error) {
    throw new Error(`Cannot read --input ${file}: ${(error as Error).message}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new Error(`Invalid JSON in --input ${file}: ${(error as Error).message}`);
  }
  if (data === null || typeof data !== "object" || Array.isArray(data)) {
    throw new Error(`--input ${file} must hold a JSON object of input arrays`);
  }
  return data as LossData;
}

if (import.meta.main) {
  try {
    console.log(await main(Deno.args));
  } catch (error) {
    console.error(`error: ${(error as Error).message}`);
    Deno.exit(1);
  }
}
