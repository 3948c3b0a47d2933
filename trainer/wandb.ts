/**
 * Weights & Biases logging through `@wandb/sdk`, as HF's `WandbCallback` does it: on with
 * `report_to: wandb` (or, with `report_to` unset, when `WANDB_PROJECT` is set, as in the Quick
 * Start), off with `report_to: none`; the project is `WANDB_PROJECT` (HF's default:
 * `huggingface`), the run's name `run_name` (default: output_dir); the key is `WANDB_API_KEY` or
 * the netrc entry `wandb login` writes (`NETRC` or ~/.netrc, machine = the server's host).
 * Metric names are HF's on wandb: `train/loss`, `eval/loss`, `train/global_step`. Otherwise
 * nothing here touches the network. The SDK honours `WANDB_BASE_URL` (e.g. a local server). A
 * wandb failure warns and training continues: starting and finishing the run are bounded by
 * `WANDB_INIT_TIMEOUT` seconds (default 90, as in the Python SDK), since the SDK retries an
 * unreachable server on its own.
 *
 * @module
 */
import { join } from "node:path";
import type { TrainConfig } from "./config.ts";
import type { MetricsRow, RowSink } from "./log.ts";

/**
 * The SDK, by a specifier Deno does not follow ahead of time: installed by the first run that
 * logs to wandb, not by every `deno task train` (types: the pinned version).
 */
const WANDB_SDK = "npm:@wandb/sdk@0.5.1";

/**
 * The wandb sink for this run, or none.
 *
 * @param config The resolved config (logged as the run's config).
 * @returns Zero or one sink.
 */
export async function wandbSink(config: TrainConfig): Promise<RowSink[]> {
  const project = Deno.env.get("WANDB_PROJECT");
  const on = config.report_to === "wandb" || (config.report_to === null && project);
  if (!on) return [];
  const baseUrl = Deno.env.get("WANDB_BASE_URL") ?? "https://api.wandb.ai";
  const apiKey = Deno.env.get("WANDB_API_KEY") ?? await netrcKey(new URL(baseUrl).hostname);
  if (!apiKey) {
    console.error(
      "Warning: report_to wandb but no key: set WANDB_API_KEY or run `wandb login`; " +
        "not logging to wandb",
    );
    return [];
  }
  const seconds = Number(Deno.env.get("WANDB_INIT_TIMEOUT") ?? 90);
  try {
    const { default: wandb }: typeof import("npm:@wandb/sdk@0.5.1") = await import(WANDB_SDK);
    const init = wandb.init({
      project: project ?? "huggingface",
      name: config.run_name ?? config.output_dir,
      config,
      settings: { apiKey, baseUrl },
    });
    await withTimeout(init, seconds, "wandb.init");
    let failed = false;
    return [{
      log(row: MetricsRow) {
        if (failed) return;
        try {
          wandb.log(wandbRow(row), row.step);
        } catch (error) {
          failed = true;
          console.error(`Warning: wandb logging stopped: ${(error as Error).message}`);
        }
      },
      async close() {
        await wandb.finish().catch((e: Error) =>
          console.error(`Warning: wandb finish: ${e.message}`)
        );
      },
    }];
  } catch (error) {
    console.error(`Warning: wandb disabled: ${(error as Error).message}`);
    return [];
  }
}

/**
 * A row under HF's wandb names (`transformers.integrations.rewrite_logs`): `eval_x` → `eval/x`,
 * every other key `train/…`, plus `train/global_step`.
 *
 * @param row A metrics.jsonl row.
 * @returns The values wandb receives.
 * @example
 * ```ts
 * import { wandbRow } from "./wandb.ts";
 * const r = wandbRow({ step: 5, loss: 0.6, eval_loss: 0.7 });
 * if (r["train/loss"] !== 0.6 || r["eval/loss"] !== 0.7 || r["train/global_step"] !== 5) {
 *   throw new Error("unexpected");
 * }
 * ```
 */
export function wandbRow(row: MetricsRow): Record<string, number> {
  const { step, ...values } = row;
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(values)) {
    out[k.startsWith("eval_") ? `eval/${k.slice(5)}` : `train/${k}`] = v;
  }
  out["train/global_step"] = step;
  return out;
}

/**
 * The key `wandb login` stored: the password of `host`'s netrc entry (`NETRC`, else ~/.netrc), or
 * undefined.
 */
async function netrcKey(host: string): Promise<string | undefined> {
  const file = Deno.env.get("NETRC") ?? join(Deno.env.get("HOME") ?? "", ".netrc");
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch {
    return undefined;
  }
  // netrc is whitespace-separated tokens: machine NAME login USER password KEY, in any layout.
  const tokens = text.split(/\s+/);
  for (let i = tokens.indexOf("machine"); i >= 0; i = tokens.indexOf("machine", i + 1)) {
    if (tokens[i + 1] !== host) continue;
    const end = tokens.indexOf("machine", i + 2);
    const entry = tokens.slice(i + 2, end < 0 ? undefined : end);
    const at = entry.indexOf("password");
    if (at >= 0) return entry[at + 1];
  }
  return undefined;
}

/** `promise`, or a rejection after `seconds`. */
async function withTimeout<T>(promise: Promise<T>, seconds: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what} timed out after ${seconds} s`)),
      seconds * 1000,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
