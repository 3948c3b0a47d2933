/**
 * Weights & Biases logging through `@wandb/sdk`, on only when `WANDB_PROJECT` is set (as in the
 * seed's Quick Start) and a key is available; otherwise nothing here touches the network. The SDK
 * honours `WANDB_BASE_URL` (e.g. a local server). A wandb failure warns and training continues:
 * starting and finishing the run are bounded by `WANDB_INIT_TIMEOUT` seconds (default 90, as in
 * the Python SDK), since the SDK retries an unreachable server on its own.
 *
 * @module
 */
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
  if (!project) return [];
  if (!Deno.env.get("WANDB_API_KEY")) {
    console.error("Warning: WANDB_PROJECT is set but WANDB_API_KEY is not: not logging to wandb");
    return [];
  }
  const seconds = Number(Deno.env.get("WANDB_INIT_TIMEOUT") ?? 90);
  try {
    const { default: wandb }: typeof import("npm:@wandb/sdk@0.5.1") = await import(WANDB_SDK);
    await withTimeout(wandb.init({ project, config }), seconds, "wandb.init");
    let failed = false;
    return [{
      log(row: MetricsRow) {
        if (failed) return;
        try {
          const { step, ...values } = row;
          wandb.log(values, step);
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
