/** What the run-safety tests share: a quick run's flags, its logged steps, a model that is all NaN. */
import { join } from "node:path";

/** A run of a few seconds on the tiny model: SimPO, 48 rows, micro-batches of 2. */
export const QUICK = [
  "--loss",
  "simpo",
  "--eval_steps",
  "0",
  "--max_samples",
  "48",
  "--per_device_train_batch_size",
  "2",
];

/**
 * The steps of a run folder's training rows in `metrics.jsonl`, in file order.
 *
 * @param dir The run folder.
 * @returns The steps.
 */
export async function metricSteps(dir: string): Promise<number[]> {
  return (await Deno.readTextFile(join(dir, "metrics.jsonl"))).trim().split("\n")
    .map((line) => JSON.parse(line)).filter((r) => "loss" in r).map((r) => r.step as number);
}

/**
 * A copy of model/tiny whose final norm is NaN: every step's loss is non-finite.
 *
 * @returns The model folder (the caller removes it).
 */
export async function nanModel(): Promise<string> {
  const model = await Deno.makeTempDir();
  for await (const f of Deno.readDir("model/tiny")) {
    await Deno.copyFile(`model/tiny/${f.name}`, `${model}/${f.name}`);
  }
  const { readSafetensors, serializeSafetensors } = await import("../model/safetensors.ts");
  const { tensors } = await readSafetensors(`${model}/model.safetensors`);
  (tensors["model.norm.weight"].data as Uint16Array).fill(0x7fc0); // bfloat16 NaN
  await Deno.writeFile(`${model}/model.safetensors`, serializeSafetensors(tensors));
  return model;
}
