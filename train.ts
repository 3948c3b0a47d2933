/**
 * The one training loop shared by every algorithm:
 *
 *   config → model + data → one compiled step graph (policy log-probs → algorithm loss → grad →
 *   AdamW) → steps with warmup/decay, accumulation and clipping → logs, evaluation, samples,
 *   checkpoints → summary and curves.
 *
 *   deno task train --loss simpo                       # embedded tiny model and sample data
 *   deno task train --config configs/dpo.yaml          # the book's reference setup (OLMo-2 1B)
 *   deno task train --resume out/run                   # continue from the latest checkpoint
 *                                                      # (TRL recipes: resume_from_checkpoint)
 *   deno task train --nproc_per_node 2                 # data parallel: 2 ranks under mpiexec
 *   mpiexec -n 4 -f hosts deno task train              # the same by hand, on several machines
 *
 * A run owns its output_dir (an OS lock; a second live run is refused); a new run will not write
 * into a folder holding another run's files (`--resume` it, or `--overwrite_output_dir`); Ctrl-C or
 * SIGTERM stops after the current micro-batch with a checkpoint of the last whole step (exit 130).
 * In a data-parallel run (`trainer/distributed.ts`) every rank steps on its shard; rank 0 alone
 * holds the lock, evaluates, samples, logs and saves.
 *
 * This file is the CLI shell around the in-memory run core, `trainer/session.ts` (which the
 * browser page, the benchmark and `compare` drive too): arguments → settings, the output lock,
 * resume and rewind, files in, checkpoints and logs out, the report. As nanoGPT's train.py: small
 * phase functions (`setup`, `evaluate`, `sample`, `save`, `loop`, `finish`) around one explicit
 * {@link Run}. It branches on the algorithm's `needsReference`, `data` and `online`, never on its
 * name.
 *
 * @module
 */
import { join } from "node:path";
import type { Algorithm } from "./algorithms/mod.ts";
import { defaultCacheDir, parseDevice } from "./runtime/mod.ts";
import { mergeAdapterFolder } from "./merge.ts";
import { batchesPerEpoch, globalBatchSize } from "./trainer/batches.ts";
import {
  checkpointPosition,
  findCheckpoint,
  loadCheckpoint,
  type RunPosition,
  saveCheckpoint,
  STATE_FILE,
} from "./trainer/checkpoint.ts";
import { hfTrainerState } from "./trainer/hf_state.ts";
import {
  helpText,
  hyperparameters,
  KEYS,
  parseFlags,
  readYamlConfig,
  resolveConfig,
  type Resolved,
  type TrainConfig,
  trlDifferences,
} from "./trainer/config.ts";
import { MetricsLog, type MetricsRow } from "./trainer/log.ts";
import { loadInputs } from "./trainer/inputs.ts";
import { onlineSettings, OnlineSource } from "./trainer/online.ts";
import { Interrupt, INTERRUPTED_EXIT } from "./trainer/interrupt.ts";
import { OutputLock } from "./trainer/output_lock.ts";
import { joinWorld, keepGlobalBatch, launch, takeNproc } from "./trainer/distributed.ts";
import { Mpi } from "./runtime/mpi.ts";
import type { World } from "./runtime/world.ts";
import { initialParams, type Policy } from "./trainer/policy.ts";
import { finishReport, runTitle } from "./trainer/report.ts";
import {
  claimNewRun,
  pruneCheckpoints,
  readMetrics,
  repairLogs,
  rewindRun,
  runFolderOf,
} from "./trainer/run_dir.ts";
import { RefLogpCache } from "./trainer/ref_cache.ts";
import {
  type Change,
  refuseDefiningChanges,
  resumedChanges,
  writeRunConfig,
} from "./trainer/resume.ts";
import { checkBatchSettings, scheduleOf } from "./trainer/run_config.ts";
import { Session } from "./trainer/session.ts";
import { wandbSink } from "./trainer/wandb.ts";

/** What a finished run reports. */
export interface TrainResult {
  /** The resolved config. */
  config: TrainConfig;
  /**
   * Every row of the run's metrics.jsonl (training, `eval_*` and the closing `train_runtime`
   * row, before a resume too).
   */
  rows: MetricsRow[];
  /** The final checkpoint folder (HF format). */
  checkpoint: string;
  /** Reference log-probs computed by this run (0 when all came from the cache). */
  referenceComputed: number;
  /**
   * How the run ended: `done`; `nothing_to_do` (a finished run resumed: nothing was written);
   * `interrupted` (SIGINT/SIGTERM: a checkpoint was written, the CLI exits 130).
   */
  outcome: "done" | "nothing_to_do" | "interrupted";
  /** Steps skipped, by reason (`nonfinite_loss`, `no_judged_pair`). */
  skipped: Record<string, number>;
}

/** A resolved config plus where a resumed run continues from. */
export interface RunSettings extends Resolved {
  /** The checkpoint to resume from, or null. */
  resumeDir: string | null;
  /** Where that checkpoint's run stood, or null. */
  resumed: RunPosition | null;
  /** Whether the base layer is the embedded configs/tiny.yaml. */
  embedded: boolean;
  /** What a resume changed (only keys that may change; see trainer/resume.ts). */
  changes?: Change[];
}

/** Options of {@link train} and {@link runTraining}. */
export interface TrainOptions {
  /** No progress or summary on the console (tests, library use). @default false */
  quiet?: boolean;
}

/** Everything one CLI run holds; the phase functions below read and advance it. */
export interface Run {
  readonly config: TrainConfig;
  readonly algorithm: Algorithm;
  readonly say: (line: string) => void;
  readonly policy: Policy;
  /** The in-memory run: compiled step, batch order, position, evaluation. */
  readonly session: Session;
  /** The run's log; null on the ranks of a data-parallel run other than 0, which write nothing. */
  readonly log: MetricsLog | null;
  /** The step the run starts after (the resumed checkpoint's, or 0). */
  readonly start: number;
  /** Set by the first SIGINT/SIGTERM: the loop stops after the current step. */
  readonly interrupt: Interrupt;
  /** The ranks of a data-parallel run, or null. */
  readonly world: World | null;
  /**
   * Saves the reference log-probs computed on the way (a no-op for an in-memory cache); `gather`
   * (data parallel, every rank once, at the end): first each rank's shard's, so the file is whole.
   */
  readonly saveCache: (options?: { gather: boolean }) => Promise<void>;
  /** The last checkpoint written. */
  checkpoint: string;
}

/** The embedded default run: the tiny model on the sample data. */
export const EMBEDDED_CONFIG = new URL("./configs/tiny.yaml", import.meta.url).pathname;

/**
 * Runs training from command-line style arguments.
 *
 * @param args E.g. `["--loss", "dpo", "--max_steps", "10"]`.
 * @param options Console output.
 * @returns The run's config, metrics and checkpoint path.
 */
export async function train(args: string[], options: TrainOptions = {}): Promise<TrainResult> {
  return await runTraining(await settingsFromArgs(args), options);
}

/**
 * The settings `args` describe: `--config FILE` (or configs/tiny.yaml) or `--resume DIR` as the
 * base layer, the other flags on top.
 *
 * @param args Command-line arguments.
 * @returns The resolved settings.
 */
export async function settingsFromArgs(args: string[]): Promise<RunSettings> {
  const { config: configPath, resume: flag, resume_from_checkpoint: hfFlag, ...cli } = parseFlags(
    args,
  );
  if (flag && configPath) {
    throw new Error(
      `--config ${configPath} with --resume ${flag}: a resumed run's settings are its ` +
        "checkpoint's; pass the ones that may change as flags",
    );
  }
  // A recipe's resume_from_checkpoint (HF's) resumes with the checkpoint's settings, as --resume.
  const { resume_from_checkpoint: hfRecipe, ...recipe } = configPath
    ? await readYamlConfig(configPath)
    : {};
  const resume = flag ?? resumeTarget(hfFlag ?? hfRecipe, cli.output_dir ?? recipe.output_dir);
  const resumeDir = resume ? await findCheckpoint(resume) : null;
  const resumed = resumeDir ? await checkpointPosition(resumeDir) : null;
  if (resumed) refuseDefiningChanges(resumed.config, cli, resumeDir!);
  if (resume && cli.output_dir !== undefined && cli.output_dir !== runFolderOf(resume)) {
    throw new Error(
      `--resume ${resume} writes to ${runFolderOf(resume)}, not --output_dir ${cli.output_dir}: ` +
        `copy the run folder to ${cli.output_dir} and resume that copy`,
    );
  }
  const base = resumeDir ? join(resumeDir, STATE_FILE) : configPath ?? EMBEDDED_CONFIG;
  const yaml = resumed?.config ?? (configPath ? recipe : await readYamlConfig(base));
  // A resumed run writes where --resume points, whatever output_dir its checkpoint recorded.
  const resolved = resolveConfig({
    yaml,
    yamlName: base,
    cli: resume ? { ...cli, output_dir: runFolderOf(resume) } : cli,
  });
  const changes = resumed ? resumedChanges(resumed.config, resolved.config) : [];
  return { ...resolved, resumeDir, resumed, changes, embedded: !configPath && !resumeDir };
}

/**
 * HF's `resume_from_checkpoint` as `--resume`: a checkpoint folder, or true for the latest
 * checkpoint in output_dir; false or unset: none.
 */
function resumeTarget(value: unknown, outputDir: unknown): string | undefined {
  if (value === undefined || value === null || value === false || value === "false") return;
  return value === true || value === "true"
    ? String(outputDir ?? KEYS.output_dir.default)
    : String(value);
}

/**
 * Trains with resolved settings: setup, a baseline evaluation, the steps, the final evaluation,
 * checkpoint and report.
 *
 * @param settings From {@link settingsFromArgs} or built by a caller such as `compare`.
 * @param options Console output.
 * @returns The run's config, metrics, checkpoint path and outcome.
 * @throws When no step could be applied (every one was skipped), after the summary.
 */
export async function runTraining(
  settings: RunSettings,
  options: TrainOptions = {},
): Promise<TrainResult> {
  const world = joinWorld(settings.config.use_cpu ? "cpu" : settings.config.device);
  const lead = (world?.rank ?? 0) === 0;
  if (settings.resumed) {
    const kept = keepGlobalBatch(settings.config, {
      saved: settings.resumed.world_size ?? 1,
      world,
    });
    if (kept.notice && lead) console.error(kept.notice);
    settings = { ...settings, config: kept.config };
  }
  const { config, resumed } = settings;
  // Held by rank 0 until training returns; the kernel drops it if the process dies.
  using _lock = !lead
    ? null
    : resumed
    ? await OutputLock.acquire(config.output_dir)
    : await claimNewRun(config.output_dir, {
      overwrite: config.overwrite_output_dir,
      say: options.quiet ? undefined : (line) => console.error(line),
    });
  using interrupt = Interrupt.listen();
  const run = await setup(settings, { ...options, quiet: options.quiet || !lead }, {
    interrupt,
    world,
  });
  if (!run) {
    return {
      config,
      rows: [],
      checkpoint: settings.resumeDir!,
      referenceComputed: 0,
      outcome: "nothing_to_do",
      skipped: resumed?.skipped ?? {},
    };
  }
  try {
    if (!resumed && config.eval_on_start && run.log) await evaluate(run);
    await loop(run);
    return await finish(run);
  } finally {
    await run.session.release();
  }
}

/**
 * Loads the model and data, compiles the session, restores a checkpoint: a ready {@link Run}; or
 * null when the resumed run had already finished (then nothing is written).
 */
async function setup(
  settings: RunSettings,
  options: TrainOptions,
  context: { interrupt: Interrupt; world: World | null },
): Promise<Run | null> {
  const { config, algorithm, resumeDir, resumed } = settings;
  const { interrupt, world } = context;
  const lead = (world?.rank ?? 0) === 0;
  const say = options.quiet ? () => {} : (line: string) => console.log(line);
  for (const notice of settings.notices) if (!options.quiet) console.error(notice);
  if (!options.quiet) warnAboutDefaults(settings);
  const device = parseDevice(config.use_cpu ? "cpu" : config.device);
  const outDir = config.output_dir;
  const { tokenizer, policy, data, reference } = await loadInputs(settings, say);
  checkBatchSettings(config, data.train.length);
  const ranks = world?.size ?? 1;
  if (ranks > data.train.length) {
    throw new Error(
      `${ranks} ranks for ${data.train.length} training examples: every rank needs one; ` +
        `pass --nproc_per_node ${data.train.length} or fewer`,
    );
  }
  const { total } = scheduleOf(
    config,
    batchesPerEpoch(data.train, globalBatchSize(config, ranks)),
  );
  if (resumed && resumed.step >= total) {
    for (const note of await repairLogs(outDir)) say(`Resume: ${note}`);
    say(`Nothing to do: ${outDir} finished at step ${resumed.step} of ${total}`);
    return null;
  }
  if (resumed && lead) {
    for (const note of await rewindRun(outDir, resumed.step)) say(`Resume: ${note}`);
    say(`Resuming from ${resumeDir} (step ${resumed.step} of ${total})`);
  }
  const resume = resumed ? { step: resumed.step, changes: settings.changes ?? [] } : null;
  if (lead) {
    for (const note of await writeRunConfig(outDir, config, resume)) say(`Resume: ${note}`);
  }
  const { frozen, lora } = policy.model;
  const online = algorithm.online
    ? await OnlineSource.create(policy.config, {
      tokenizer,
      device,
      model: lora ? { frozen, lora } : undefined,
      ...onlineSettings(config),
    })
    : undefined;
  const saved = resumeDir ? await loadCheckpoint(resumeDir, policy) : null;
  const session = await Session.create(
    {
      tokenizer,
      policy,
      params: saved ? undefined : await initialParams(policy, config.seed),
      data,
      reference: reference?.model,
      online,
    },
    settings,
    {
      device,
      cacheDir: defaultCacheDir(),
      cache: reference?.cache ?? RefLogpCache.memory(),
      state: saved
        ? { tensors: saved.state, position: { skipped: {}, ...saved.position } }
        : undefined,
      world,
    },
  );
  if (config.bf16) say(precisionLine(session.device));
  const log = !lead ? null : await MetricsLog.open(outDir, {
    total,
    append: resumeDir !== null,
    sinks: await wandbSink(config),
    quiet: options.quiet,
  });
  return {
    config,
    algorithm,
    say,
    policy,
    session,
    log,
    start: resumed?.step ?? 0,
    interrupt,
    world,
    saveCache: async (options) => {
      if (!reference) return;
      if (world && options?.gather) reference.cache.gather(world);
      if (lead) await reference.cache.save();
    },
    checkpoint: "",
  };
}

/** What `bf16` does on the device the step runs on. */
function precisionLine(device: string): string {
  return device === "cuda"
    ? "Precision: bf16 mixed precision (bf16 matmuls, float32 master weights and AdamW)"
    : `Precision: bf16 mixed precision emulated on ${device} (float32 with bf16 rounding: ` +
      "the numbers of the cuda step, not its speed)";
}

function warnAboutDefaults(settings: RunSettings): void {
  const { config } = settings;
  const differences = settings.resumed ? [] : trlDifferences(settings);
  if (differences.length > 0) {
    console.error(
      "Defaults that differ from TRL 1.13's (set a key to silence its line):\n" +
        differences.map((line) => `  ${line}`).join("\n"),
    );
  }
  if (settings.embedded && config.model_name_or_path !== "model/tiny") {
    console.error(
      "Warning: no --config, so configs/tiny.yaml's settings for the tiny model apply " +
        "(learning_rate, max_steps, max_length...): pass --config configs/<loss>.yaml for a real model",
    );
  }
}

/** Held-out metrics of the current policy, logged as `eval_*` at the current step. */
async function evaluate(run: Run): Promise<void> {
  const row = await run.session.evaluate();
  if (row) await run.log?.log(row);
}

/** Three held-out prompts completed by the current policy, appended to samples.jsonl. */
async function sample(run: Run): Promise<void> {
  const { step } = run.session.position;
  const lines = (await run.session.sample(3, { maxNewTokens: 48 })).map((s) =>
    JSON.stringify({ step, ...s }) + "\n"
  );
  await appendSamples(run, lines.join(""));
}

async function appendSamples(run: Run, text: string): Promise<void> {
  if (text) {
    await Deno.writeTextFile(join(run.config.output_dir, "samples.jsonl"), text, { append: true });
  }
}

/**
 * Writes `checkpoint-<at>` (HF format, or PEFT's adapter files under LoRA, plus optimizer state
 * and the run's position).
 */
async function save(run: Run, at: number): Promise<void> {
  const outDir = run.config.output_dir;
  const dir = join(outDir, `checkpoint-${at}`);
  const { consumed, algorithmState, skipped } = run.session.position;
  // Reference log-probs computed so far are on disk before the checkpoint that used them.
  await run.saveCache();
  const hfState = hfTrainerState(run.config, {
    step: at,
    epoch: consumed / run.session.perEpoch,
    total: run.session.schedule.total,
    rows: await readMetrics<MetricsRow>(outDir),
  });
  await saveCheckpoint(dir, run.policy, await run.session.readState(), {
    step: at,
    consumed,
    algorithmState,
    skipped,
    config: run.config,
    world_size: run.world?.size ?? 1,
  }, { hfState, generation: run.session.inputs.tokenizer });
  run.checkpoint = dir;
  await pruneCheckpoints(outDir, {
    limit: run.config.save_total_limit,
    keep: run.start > 0 ? run.start : null,
  });
}

/** The steps from where the run stands to the end, with logging, evaluation, samples, saves. */
async function loop(run: Run): Promise<void> {
  const { config, session } = run;
  const { total } = session.schedule;
  const every = (n: number, at: number) => n > 0 && at % n === 0;
  // HF's eval_strategy epoch: after each epoch's optimizer steps (its dataloader length / accumulation).
  const evalEvery = config.eval_strategy === "epoch"
    ? Math.max(1, Math.floor(session.perEpoch / config.gradient_accumulation_steps))
    : config.eval_steps;
  const nonfiniteBefore = session.position.skipped.nonfinite_loss ?? 0;
  // Asked between micro-batches, on every rank alike (a signal to one rank stops them all).
  const stop = () => stopRequested(run);
  // A signal stops the loop between micro-batches; finish() then saves where it stopped.
  while (session.position.step < total) {
    const { at, warnings, records, stopped } = await session.step({ stop });
    if (stopped) break;
    const log = run.log; // rank 0 alone writes, evaluates and samples
    if (log) {
      await appendSamples(run, records);
      for (const warning of warnings) console.error(`Warning: ${warning}`);
    }
    stopIfNothingFinite(run, (session.position.skipped.nonfinite_loss ?? 0) - nonfiniteBefore);
    if (every(config.logging_steps, at) || at === total) {
      const row = session.takeRow();
      await log?.log(row);
    }
    if (!log) continue;
    if (every(evalEvery, at) && at < total) await evaluate(run);
    if (every(config.sample_every, at)) await sample(run);
    if (every(config.save_steps, at) && at < total) await save(run, at);
  }
}

/** Steps in a row with a non-finite loss, none applied, after which a run's start stops. */
const NONFINITE_AT_START = 5;

/**
 * Stops a run whose first {@link NONFINITE_AT_START} steps were all non-finite: such a start
 * does not recover (the model, β, the rate or the data is wrong), and the rest would only repeat
 * the warning.
 */
function stopIfNothingFinite(run: Run, nonfinite: number): void {
  if (run.session.applied > 0 || nonfinite < NONFINITE_AT_START) return;
  const hp = Object.entries(hyperparameters(run)).filter(([, v]) => typeof v === "number")
    .map(([k, v]) => `${k} ${v}`);
  throw new Error(
    `Stopped at step ${run.session.position.step}: its first ${nonfinite} steps all had a non-finite loss or ` +
      `gradient, none was applied. Likely causes: the loss's hyperparameters (${
        hp.join(", ") || "none"
      }), learning_rate ${run.config.learning_rate}, or the model or data (NaN weights, ` +
      `broken rows): lower the value that is too large, or check ${run.config.model_name_or_path}`,
  );
}

/** Whether a signal asked the run to stop: on any rank, so that all stop at the same point. */
function stopRequested(run: Run): boolean {
  const asked = new Float64Array([run.interrupt.requested ? 1 : 0]);
  run.world?.sumNumbers(asked);
  return asked[0] > 0;
}

/**
 * The final evaluation, checkpoint and report; after a signal, the checkpoint where the run
 * stopped and the command that resumes it.
 *
 * @throws When the run applied none of the steps it attempted (after the report).
 */
async function finish(run: Run): Promise<TrainResult> {
  const { session } = run;
  const { total } = session.schedule;
  const at = session.position.step;
  const outDir = run.config.output_dir;
  const signal = at < total ? run.interrupt.requested ?? "a signal to another rank" : null;
  if (!run.log) {
    await run.saveCache({ gather: true });
    return {
      config: run.config,
      rows: [],
      checkpoint: "",
      referenceComputed: 0,
      outcome: signal ? "interrupted" : "done",
      skipped: session.position.skipped,
    };
  }
  if (signal) {
    if (at > run.start && !run.checkpoint.endsWith(`checkpoint-${at}`)) await save(run, at);
  } else {
    await evaluate(run);
    if (session.applied > 0) await save(run, total);
    await run.log.log(session.summary());
  }
  await run.saveCache({ gather: true });
  if (!signal && session.applied > 0 && run.config.merge_adapter && run.policy.lora) {
    run.say(`merged model: ${await mergeAdapterFolder(run.checkpoint, join(outDir, "merged"))}`);
  }
  await run.log.close();
  const rows = await readMetrics<MetricsRow>(outDir);
  const { skipped } = session.position;
  const summary = await finishReport(outDir, rows, {
    title: runTitle(run.config),
    headline: signal
      ? `Stopped by ${signal} at step ${at} of ${total}`
      : `Done: ${total} steps of ${run.algorithm.name} on ${run.policy.dir} (${session.device})`,
    checkpoint: run.checkpoint,
    skipped,
  });
  for (const line of summary) run.say(line);
  if (signal && run.checkpoint) console.error(`Resume with: deno task train --resume ${outDir}`);
  if (!signal && session.applied === 0) {
    const reasons = Object.entries(skipped).map(([k, n]) => `${k} ${n}`);
    throw new Error(
      `No step was applied: all ${at - run.start} steps were skipped (${
        reasons.join(", ")
      }); see the warnings above`,
    );
  }
  return {
    config: run.config,
    rows,
    checkpoint: run.checkpoint,
    referenceComputed: session.referenceComputed,
    outcome: signal ? "interrupted" : "done",
    skipped,
  };
}

/**
 * `--help` for `deno task train`: usage, then every key the chosen loss reads with the value a
 * run with the same arguments would use.
 *
 * @param args The command line (its `--config`, `--resume` and `--loss` pick the values shown).
 * @returns The help text.
 */
export async function trainHelp(args: string[]): Promise<string> {
  const settings = await settingsFromArgs(args);
  const base = settings.embedded ? "configs/tiny.yaml (the embedded default run)" : "";
  return [
    "Usage: deno task train [--nproc_per_node N] [--config FILE.yaml] [--resume DIR] [--key value ...]",
    "",
    `Keys read by loss ${settings.algorithm.name}, with the values this run would use${
      base ? `; base layer: ${base}` : ""
    }:`,
    helpText(settings),
  ].join("\n");
}

/**
 * The command-line entry: `--help`, or a run; errors print one line and exit 1.
 *
 * @param args Command-line arguments.
 */
export async function main(args: string[]): Promise<void> {
  try {
    const { nproc, rest } = takeNproc(args);
    if (rest.includes("--help") || rest.includes("-h")) {
      console.log(await trainHelp(rest.filter((a) => a !== "--help" && a !== "-h")));
      return;
    }
    if (nproc !== null && nproc > 1) {
      // Resolved here too, so a bad setting is one line before any rank starts.
      const { config } = await settingsFromArgs(rest);
      Deno.exit(
        await launch(import.meta.filename!, {
          args: rest,
          nproc,
          permissions: "hub",
          timeout: config.ddp_timeout,
        }),
      );
    }
    const { outcome } = await train(rest);
    Mpi.current?.finalize();
    if (outcome === "interrupted") Deno.exit(INTERRUPTED_EXIT);
  } catch (error) {
    const mpi = Mpi.current;
    console.error(`error: ${mpi ? `rank ${mpi.rank}: ` : ""}${(error as Error).message}`);
    // The other ranks may be waiting on this one: end them all.
    mpi?.abort(1);
    Deno.exit(1);
  }
}

if (import.meta.main) await main(Deno.args);
