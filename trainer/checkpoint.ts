/**
 * Checkpoints: the policy in Hugging Face format (model.safetensors + config.json + tokenizer
 * files, loadable by `transformers` and `deno task score`; under LoRA, PEFT's adapter files), the
 * optimizer state, where the run stands (step, micro-batches consumed, algorithm state, resolved
 * config) for `--resume` in `run_state.json`, and HF's `trainer_state.json` (see hf_state.ts).
 *
 * A checkpoint is written into a temporary folder and renamed into place, so a crash mid-write
 * never leaves a half checkpoint under the final name.
 *
 * @module
 */
import { basename, dirname, join } from "node:path";
import type { TrainState } from "../runtime/mod.ts";
import { readSafetensors, serializeSafetensors } from "../model/safetensors.ts";
import { generationConfigOf } from "../model/save.ts";
import { weightFiles } from "../model/weights.ts";
import type { Value } from "./config.ts";
import { exportDtype, loadPolicyParams, MASTERS_FILE, type Policy, savePolicy } from "./policy.ts";
import type { HfTrainerState } from "./hf_state.ts";
import { checkpointSteps } from "./run_dir.ts";

/** Where a run stands, beside the weights. */
export interface RunPosition {
  /** Optimizer steps taken. */
  step: number;
  /** Micro-batches consumed (fixes the data position). */
  consumed: number;
  /** Algorithm state (e.g. BCO's running mean). */
  algorithmState: Record<string, number>;
  /** Steps skipped so far, by reason (`step` minus these is the optimizer's own step count). */
  skipped?: Record<string, number>;
  /** Ranks of the data-parallel run that saved it (absent: 1); `consumed` counts its global batches. */
  world_size?: number;
  /** The resolved config of the run. */
  config: Record<string, Value>;
}

/** The run's own resume data (HF's `trainer_state.json` is written beside it). */
export const STATE_FILE = "run_state.json";
const HF_STATE_FILE = "trainer_state.json";
const OPTIMIZER_FILE = "optimizer.safetensors";

/**
 * Writes `dir` atomically: HF-format model, optimizer state, run position and, when given, HF's
 * trainer state.
 *
 * @param dir Final checkpoint folder.
 * @param policy The policy (full model or LoRA adapters; see policy.ts).
 * @param state Parameters and optimizer state.
 * @param position Step, data position, algorithm state and config.
 * @param options `hfState`: HF's `trainer_state.json` (from `hfTrainerState`); `generation`:
 *   the tokenizer's stop set and pad id, for a `generation_config.json` when the model has none.
 */
export async function saveCheckpoint(
  dir: string,
  policy: Policy,
  state: TrainState,
  position: RunPosition,
  options: {
    hfState?: HfTrainerState;
    generation?: { stopTokenIds: readonly number[]; padTokenId: number };
  } = {},
): Promise<void> {
  const tmp = `${dir}.partial`;
  await Deno.remove(tmp, { recursive: true }).catch(() => {});
  try {
    await savePolicy(tmp, policy, {
      params: state.params,
      dtype: exportDtype(position.config.save_dtype, policy),
      baseModel: String(position.config.model_name_or_path),
    });
    const slots: Record<string, TrainState["params"][string]> = {};
    for (const [slot, tensors] of Object.entries(state.slots)) {
      for (const [name, t] of Object.entries(tensors)) slots[`${slot}.${name}`] = t;
    }
    await Deno.writeFile(join(tmp, OPTIMIZER_FILE), serializeSafetensors(slots));
    await Deno.writeTextFile(join(tmp, STATE_FILE), JSON.stringify(position, null, 2) + "\n");
    const generation = join(tmp, "generation_config.json");
    if (options.generation && !await exists(generation)) {
      const json = generationConfigOf(policy.config, options.generation);
      await Deno.writeTextFile(generation, JSON.stringify(json, null, 2) + "\n");
    }
    if (options.hfState) {
      await Deno.writeTextFile(
        join(tmp, HF_STATE_FILE),
        JSON.stringify(options.hfState, null, 2) + "\n",
      );
    }
  } catch (error) {
    // A failed save (a full disk) must not keep the disk full.
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    const message = (error as Error).message;
    // The previous checkpoint goes only once this one is whole (save_total_limit 1 included).
    const room = /os error 28|ENOSPC/.test(message)
      ? ": free space (with save_total_limit too, the oldest checkpoint goes only once a new one " +
        "is whole: a save needs room for one more)"
      : "";
    throw new Error(`Cannot write checkpoint ${dir}: ${message}${room}`);
  }
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  await Deno.rename(tmp, dir);
}

/**
 * The checkpoint to resume from: `path` itself, or the latest `checkpoint-N` inside it. A corrupt
 * one is an error naming the bad file and offering the previous complete checkpoint.
 *
 * @param path A checkpoint folder or a run's output folder.
 * @returns The checkpoint folder.
 */
export async function findCheckpoint(path: string): Promise<string> {
  const own = await Deno.stat(join(path, STATE_FILE)).then(() => true, () => false);
  if (own) {
    const problem = await checkpointProblem(path);
    if (problem) throw new Error(`Cannot resume from ${path}: ${problem}`);
    await refuseLaterCheckpoints(path);
    return path;
  }
  if (!await Deno.stat(path).then((s) => s.isDirectory, () => false)) {
    throw new Error(`Cannot resume from ${path}: no such folder`);
  }
  const steps = await checkpointSteps(path);
  if (steps.length === 0) {
    throw new Error(
      `Cannot resume from ${path}: no checkpoint-N folder in it (a run that stopped before its ` +
        `first checkpoint): start it again without --resume, into the same folder`,
    );
  }
  const latest = join(path, `checkpoint-${steps.at(-1)}`);
  const problem = await checkpointProblem(latest);
  if (!problem) return latest;
  for (const step of steps.slice(0, -1).reverse()) {
    const previous = join(path, `checkpoint-${step}`);
    if (!await checkpointProblem(previous)) {
      throw new Error(
        `The latest checkpoint is corrupt: ${problem}. The previous complete one is ${previous}: ` +
          `resume from it with --resume ${previous}`,
      );
    }
  }
  throw new Error(`The latest checkpoint is corrupt: ${problem}, and no earlier one is complete`);
}

/**
 * Resuming `checkpoint-N` makes a new future of its run from step N, which removes the run's
 * later checkpoints: refused while any of them is complete (a corrupt one may go), so a finished
 * run is never cut back without the user deleting those checkpoints themselves.
 */
async function refuseLaterCheckpoints(dir: string): Promise<void> {
  const step = /^checkpoint-(\d+)$/.exec(basename(dir));
  if (!step) return; // a checkpoint folder of its own, not inside a run
  const run = dirname(dir);
  const later: string[] = [];
  for (const s of await checkpointSteps(run)) {
    const name = `checkpoint-${s}`;
    if (s > Number(step[1]) && !await checkpointProblem(join(run, name))) later.push(name);
  }
  if (later.length === 0) return;
  throw new Error(
    `Cannot resume from ${dir}: ${run} holds later checkpoints of the same run (${
      later.join(", ")
    }) that resuming would remove: resume the latest with --resume ${run}, or delete them ` +
      `first to continue from step ${step[1]}`,
  );
}

/**
 * What is wrong with a checkpoint folder, cheaply (headers and sizes, not the tensors), or null
 * when every file it needs is there and whole.
 *
 * @param dir A checkpoint folder.
 * @returns A description naming the bad file, or null.
 */
export async function checkpointProblem(dir: string): Promise<string | null> {
  try {
    await checkpointPosition(dir);
    // A LoRA checkpoint holds the adapter (PEFT's files), a full one the HF model.
    const adapter = await exists(join(dir, "adapter_config.json"));
    const config = join(dir, adapter ? "adapter_config.json" : "config.json");
    try {
      JSON.parse(await Deno.readTextFile(config));
    } catch (error) {
      return `${config}: ${(error as Error).message}`;
    }
    const weights = adapter ? [join(dir, "adapter_model.safetensors")] : await weightFiles(dir);
    const masters = join(dir, MASTERS_FILE);
    if (await exists(masters)) weights.push(masters);
    for (const file of [...weights, join(dir, OPTIMIZER_FILE)]) {
      const problem = await safetensorsProblem(file);
      if (problem) return `${file}: ${problem}`;
    }
    return null;
  } catch (error) {
    return (error as Error).message;
  }
}

const exists = (path: string) => Deno.stat(path).then(() => true, () => false);

/** A safetensors file's header parses and its data is all there. */
async function safetensorsProblem(path: string): Promise<string | null> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path);
  } catch (error) {
    return (error as Error).message;
  }
  try {
    const size = (await file.stat()).size;
    const head = new Uint8Array(8);
    if (size < 8 || await file.read(head) !== 8) return "truncated";
    const length = Number(new DataView(head.buffer).getBigUint64(0, true));
    if (8 + length > size) return "truncated header";
    const bytes = new Uint8Array(length);
    let read = 0;
    while (read < length) {
      const n = await file.read(bytes.subarray(read));
      if (n === null) return "truncated header";
      read += n;
    }
    const header = JSON.parse(new TextDecoder().decode(bytes)) as Record<
      string,
      { data_offsets?: [number, number] }
    >;
    const end = Object.values(header).reduce((m, e) => Math.max(m, e.data_offsets?.[1] ?? 0), 0);
    return 8 + length + end > size ? `truncated: ${size} bytes of ${8 + length + end}` : null;
  } catch (error) {
    return `unreadable header: ${(error as Error).message}`;
  } finally {
    file.close();
  }
}

/**
 * Reads a checkpoint back.
 *
 * @param dir A checkpoint folder.
 * @param policy The policy (to check and convert the weights).
 * @returns The train state (for `TrainStep.loadState`) and the run position.
 */
export async function loadCheckpoint(
  dir: string,
  policy: Policy,
): Promise<{ state: TrainState; position: RunPosition }> {
  const position = await checkpointPosition(dir);
  const params = await loadPolicyParams(dir, policy);
  const optimizer = await readSafetensors(join(dir, OPTIMIZER_FILE));
  const slots: TrainState["slots"] = {};
  for (const [key, t] of Object.entries(optimizer.tensors)) {
    const dot = key.indexOf(".");
    (slots[key.slice(0, dot)] ??= {})[key.slice(dot + 1)] = t;
  }
  const skipped = Object.values(position.skipped ?? {}).reduce((a, b) => a + b, 0);
  return { state: { step: position.step - skipped, params, slots }, position };
}

/**
 * Where a checkpoint's run stood (step, data position, config...), without its tensors.
 *
 * @param dir A checkpoint folder.
 * @returns Its run position.
 */
export async function checkpointPosition(dir: string): Promise<RunPosition> {
  const path = join(dir, STATE_FILE);
  let position: RunPosition;
  try {
    position = JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    throw new Error(`Cannot read ${path}: ${(e as Error).message}`);
  }
  if (!Number.isInteger(position?.step) || typeof position.config !== "object") {
    throw new Error(`${path} is not a trainer state: it needs "step" and "config"`);
  }
  return position;
}
