/**
 * Weights & Biases logging through `@wandb/sdk`, on only when `WANDB_PROJECT` is set (as in the
 * seed's Quick Start) and a key is available; otherwise nothing here touches the network. The SDK
 * honours `WANDB_BASE_URL` (e.g. a local server). A wandb failure warns and training continues.
 *
 * @module
 */
import type { TrainConfig } from "./config.ts";
import type { MetricsRow, RowSink } from "./log.ts";

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
  try {
    const { default: wandb } = await import("@wandb/sdk");
    await wandb.init({ project, config });
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
