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
 *
 * A run owns its output_dir (an OS lock; a second live run is refused); a new run will not write
 * into a folder holding another run's files (`--resume` it, or `--overwrite_output_dir`); Ctrl-C or
 * SIGTERM stops at the end of the current step with a checkpoint (exit 130).
 *
 * As nanoGPT's train.py: small phase functions (`setup`, `evaluate`, `sample`, `save`,
 * `optimizerStep`, `logWindow`, `finish`) around one explicit {@link Run}. The loop branches on
 * the algorithm's `needsReference`, `data` and `online`, never on its name.
 *
 * @module
 */
import { join } from "node:path";
import type { Algorithm, Hyperparameters } from "./algorithms/mod.ts";
import { prepareData } from "./data/dataset.ts";
import type { TokenizedExample } from "./data/types.ts";
import { input } from "./graph/mod.ts";
import {
  defaultCacheDir,
  type Device,
  type Feed,
  parseDevice,
  Program,
  TrainStep,
} from "./runtime/mod.ts";
import type { CausalLMOptions } from "./model/decoder.ts";
import { Generator } from "./model/generate.ts";
import { loadTokenizer, type Tokenizer } from "./model/tokenizer.ts";
import { mergeAdapterFolder } from "./merge.ts";
import {
  batchesPerEpoch,
  batchFeeds,
  makeBatch,
  microBatches,
  pickFeeds,
  Reference,
} from "./trainer/batches.ts";
import {
  checkpointPosition,
  findCheckpoint,
  loadCheckpoint,
  type RunPosition,
  saveCheckpoint,
} from "./trainer/checkpoint.ts";
import {
  configToYaml,
  helpText,
  hyperparameters,
  parseFlags,
  readYamlConfig,
  resolveConfig,
  type Resolved,
  type TrainConfig,
} from "./trainer/config.ts";
import { MetricsLog, type MetricsRow } from "./trainer/log.ts";
import { onlineSettings, OnlineSource, promptData, promptOnlyRows } from "./trainer/online.ts";
import { Interrupt, INTERRUPTED_EXIT } from "./trainer/interrupt.ts";
import { OutputLock } from "./trainer/output_lock.ts";
import { initialParams, loadPolicy, type Policy } from "./trainer/policy.ts";
import { PairwiseTally } from "./trainer/pairwise.ts";
import { finishReport } from "./trainer/report.ts";
import {
  claimNewRun,
  pruneCheckpoints,
  readMetrics,
  rewindRun,
  runFolderOf,
} from "./trainer/run_dir.ts";
import { dataConfigOf, optimizerOf, scheduleOf } from "./trainer/run_config.ts";
import { learningRate, type Schedule } from "./trainer/schedule.ts";
import { buildStepGraph, type StepGraph } from "./trainer/step_graph.ts";
import { wandbSink } from "./trainer/wandb.ts";

/** What a finished run reports. */
export interface TrainResult {
  /** The resolved config. */
  config: TrainConfig;
  /** Every row of the run's metrics.jsonl (training and `eval/*`, before a resume too). */
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
}

/** Options of {@link train} and {@link runTraining}. */
export interface TrainOptions {
  /** No progress or summary on the console (tests, library use). @default false */
  quiet?: boolean;
}

/** Everything one run holds; the phase functions below read and advance it. */
export interface Run {
  readonly config: TrainConfig;
  readonly algorithm: Algorithm;
  readonly hp: Hyperparameters;
  readonly outDir: string;
  readonly say: (line: string) => void;
  readonly tokenizer: Tokenizer;
  readonly policy: Policy;
  /** How generation builds the model: the frozen base and adapters under LoRA. */
  readonly generatorModel: Pick<CausalLMOptions, "frozen" | "lora"> | undefined;
  readonly data: { train: TokenizedExample[]; eval: TokenizedExample[] };
  readonly graph: StepGraph;
  readonly step: TrainStep;
  readonly evalProgram: Program;
  readonly reference: Reference | null;
  readonly online: OnlineSource | null;
  readonly schedule: Schedule;
  readonly perEpoch: number;
  readonly log: MetricsLog;
  readonly resumed: boolean;
  /** The step the run starts after (the resumed checkpoint's, or 0). */
  readonly start: number;
  /** Set by the first SIGINT/SIGTERM: the loop stops after the current step. */
  readonly interrupt: Interrupt;
  /** Where the run stands: micro-batches consumed, steps skipped by reason, the algorithm's state. */
  position: {
    consumed: number;
    skipped: Record<string, number>;
    algorithmState: Record<string, number>;
  };
  /** The last step done (applied or skipped). */
  at: number;
  /** Steps this process applied. */
  applied: number;
  /** Sums since the last logged row (HF logs the window's mean). */
  window: Window;
  generator: Generator | null;
  checkpoint: string;
}

interface Window {
  steps: number;
  sums: Record<string, number>;
  tokens: number;
  examples: number;
  start: number;
}

/** The scalar input LoRA dropout masks derive from (see {@link dropoutSeed}). */
const DROPOUT_SEED = "lora_dropout_seed";

/**
 * The dropout seed of the micro-batch after `consumed` ones: a function of (seed, data position)
 * only, so a resumed run draws the same masks; small enough to be exact in float32.
 */
const dropoutSeed = (seed: number, consumed: number) => ((seed % 97) * 100003 + consumed) % 2 ** 24;

/** Names of the eval program's per-sequence outputs (beside the loss's scalar metrics). */
const SEQ_LOGPS = "sequence/logps", SEQ_COUNTS = "sequence/counts";

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
  const { config: configPath, resume, ...cli } = parseFlags(args);
  const resumeDir = resume ? await findCheckpoint(resume) : null;
  const resumed = resumeDir ? await checkpointPosition(resumeDir) : null;
  if (resume && cli.output_dir !== undefined && cli.output_dir !== runFolderOf(resume)) {
    throw new Error(
      `--resume ${resume} writes to ${runFolderOf(resume)}, not --output_dir ${cli.output_dir}: ` +
        `copy the run folder to ${cli.output_dir} and resume that copy`,
    );
  }
  const base = resumeDir ? join(resumeDir, "trainer_state.json") : configPath ?? EMBEDDED_CONFIG;
  const yaml = resumed?.config ?? await readYamlConfig(base);
  // A resumed run writes where --resume points, whatever output_dir its checkpoint recorded.
  const resolved = resolveConfig({
    yaml,
    yamlName: base,
    cli: resume ? { ...cli, output_dir: runFolderOf(resume) } : cli,
  });
  return { ...resolved, resumeDir, resumed, embedded: !configPath && !resumeDir };
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
  const { config, resumed } = settings;
  // Held until training returns; the kernel drops it if the process dies.
  using _lock = resumed
    ? await OutputLock.acquire(config.output_dir)
    : await claimNewRun(config.output_dir, { overwrite: config.overwrite_output_dir });
  using interrupt = Interrupt.listen();
  const run = await setup(settings, options, interrupt);
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
    if (!run.resumed) await evaluate(run, 0);
    await loop(run);
    return await finish(run);
  } finally {
    await release(run);
  }
}

/**
 * Loads the model and data, compiles the programs, restores a checkpoint: a ready {@link Run}; or
 * null when the resumed run had already finished (then nothing is written).
 */
async function setup(
  settings: RunSettings,
  options: TrainOptions,
  interrupt: Interrupt,
): Promise<Run | null> {
  const { config, algorithm, resumeDir, resumed } = settings;
  const say = options.quiet ? () => {} : (line: string) => console.log(line);
  for (const notice of settings.notices) if (!options.quiet) console.error(notice);
  warnAboutDefaults(settings);
  const device = parseDevice(config.use_cpu ? "cpu" : config.device);
  const outDir = config.output_dir;
  const { tokenizer, policy, data } = await loadInputs(config, algorithm, say);
  const perEpoch = batchesPerEpoch(data.train, config.per_device_train_batch_size);
  const schedule = scheduleOf(config, perEpoch);
  if (resumed && resumed.step >= schedule.total) {
    say(`Nothing to do: ${outDir} finished at step ${resumed.step} of ${schedule.total}`);
    return null;
  }
  if (resumed) {
    for (const note of await rewindRun(outDir, resumed.step)) say(`Resume: ${note}`);
    say(`Resuming from ${resumeDir} (step ${resumed.step} of ${schedule.total})`);
  }
  await Deno.writeTextFile(join(outDir, "config.yaml"), configToYaml(config));
  const { hp, graph, step, evalProgram, position } = await compile(settings, policy, data, device);
  if (config.bf16) say(precisionLine(step.device));
  const generatorModel = policy.lora ? { frozen: policy.stored, lora: policy.lora } : undefined;
  const reference = algorithm.needsReference
    ? await Reference.forRun(config, {
      policy,
      dataFiles: data.files,
      kind: data.kind,
      withKl: graph.withKl,
      device,
    })
    : null;
  if (reference) say(referenceLine(reference, data.train.length + data.eval.length));
  const online = algorithm.online
    ? await OnlineSource.create(policy.config, {
      tokenizer,
      device,
      model: generatorModel,
      ...onlineSettings(config),
    })
    : null;
  const log = await MetricsLog.open(outDir, {
    total: schedule.total,
    append: resumeDir !== null,
    sinks: await wandbSink(config),
    quiet: options.quiet,
  });
  return {
    config,
    algorithm,
    hp,
    outDir,
    say,
    tokenizer,
    policy,
    generatorModel,
    data,
    graph,
    step,
    evalProgram,
    reference,
    online,
    schedule,
    perEpoch,
    log,
    resumed: resumeDir !== null,
    start: resumed?.step ?? 0,
    interrupt,
    position,
    at: resumed?.step ?? 0,
    applied: 0,
    window: newWindow(),
    generator: null,
    checkpoint: "",
  };
}

/**
 * The compiled programs of a run: the train step (with the starting parameters loaded, fresh or
 * from the checkpoint) and the evaluation program, which adds per-sequence log-probs.
 */
async function compile(
  settings: RunSettings,
  policy: Policy,
  data: { kind: "paired" | "unpaired" },
  device: Device,
) {
  const { config, algorithm, resumeDir } = settings;
  const hp = hyperparameters(settings);
  // LoRA dropout masks derive from a fed seed; evaluation uses a graph without dropout.
  const dropout = (policy.lora?.dropout ?? 0) > 0;
  const stepGraph = (training: boolean) =>
    buildStepGraph(policy.config, {
      algorithm,
      hp,
      kind: data.kind,
      model: training && dropout
        ? { ...policy.model, lora: { ...policy.lora!, dropoutSeed: input(DROPOUT_SEED, []) } }
        : policy.model,
    });
  const graph = stepGraph(true);
  if (graph.withKl && config.per_device_train_batch_size === 1) {
    console.error("Warning: batch size 1 gives KTO no mismatched pair: its KL point z is 0");
  }
  const step = await TrainStep.create({
    loss: graph.loss,
    params: graph.model.params,
    metrics: graph.metrics,
    optimizer: optimizerOf(config),
    maxGradNorm: config.max_grad_norm,
    device,
    cacheDir: defaultCacheDir(),
  });
  const position = await startingPoint(step, { policy, algorithm, resumeDir, seed: config.seed });
  const evalGraph = dropout ? stepGraph(false) : graph;
  const evalProgram = await Program.compile({
    loss: evalGraph.loss,
    ...evalGraph.metrics,
    [SEQ_LOGPS]: evalGraph.perSequence.logps,
    [SEQ_COUNTS]: evalGraph.perSequence.counts,
  }, { device });
  return { hp, graph, step, evalProgram, position };
}

/**
 * Loads the starting parameters into `step` — the policy's weights, or fresh adapters under LoRA
 * — or a checkpoint's with its position.
 */
async function startingPoint(
  step: TrainStep,
  from: { policy: Policy; algorithm: Algorithm; resumeDir: string | null; seed: number },
): Promise<Run["position"]> {
  if (!from.resumeDir) {
    step.setParams(await initialParams(from.policy, from.seed));
    return { consumed: 0, skipped: {}, algorithmState: { ...from.algorithm.state?.initial } };
  }
  const saved = await loadCheckpoint(from.resumeDir, from.policy);
  step.loadState(saved.state);
  const { consumed, algorithmState, skipped = {} } = saved.position;
  return { consumed, skipped: { ...skipped }, algorithmState };
}

/** What `bf16` does on the device the step runs on. */
function precisionLine(device: string): string {
  return device === "cuda"
    ? "Precision: bf16 mixed precision (bf16 matmuls, float32 master weights and AdamW)"
    : `Precision: bf16 mixed precision emulated on ${device} (float32 with bf16 rounding: ` +
      "the numbers of the cuda step, not its speed)";
}

function referenceLine(reference: Reference, examples: number): string {
  const cached = reference.cache.size;
  return cached >= examples
    ? `Reference log-probs: all ${examples} examples from the cache`
    : `Reference log-probs: ${cached} of ${examples} examples cached; the rest are computed ` +
      "as their batches come (and cached)";
}

function warnAboutDefaults(settings: RunSettings): void {
  const { config } = settings;
  if (settings.embedded && config.model_name_or_path !== "model/tiny") {
    console.error(
      "Warning: no --config, so configs/tiny.yaml's settings for the tiny model apply " +
        "(learning_rate, max_steps, max_length...): pass --config configs/<loss>.yaml for a real model",
    );
  }
}

function requireKey(value: string | null, key: string): string {
  if (value === null) throw new Error(`Missing ${key}: set it in the YAML or pass --${key}`);
  return value;
}

/** The tokenizer, the policy and the examples, with a progress line for each. */
async function loadInputs(config: TrainConfig, algorithm: Algorithm, say: (line: string) => void) {
  const model = requireKey(config.model_name_or_path, "model_name_or_path");
  say(`Loading ${model}`);
  const [tokenizer, policy] = await Promise.all([loadTokenizer(model), loadPolicy(config)]);
  say(`Tokenizer: vocab ${tokenizer.vocabSize}, chat template: ${tokenizer.chatTemplateSource}`);
  if (tokenizer.templateWarning) console.error(tokenizer.templateWarning);
  const data = await loadData(config, algorithm, tokenizer, say);
  return { tokenizer, policy, data };
}

/** The run's examples: prompts for online losses, tokenized pairs or completions otherwise. */
async function loadData(
  config: TrainConfig,
  algorithm: Algorithm,
  tokenizer: Tokenizer,
  say: (line: string) => void,
) {
  const dataset = requireKey(config.dataset_name, "dataset_name");
  say(`Tokenizing ${dataset}`);
  const kind = algorithm.data === "both" ? "unpaired" : algorithm.data;
  // Online losses only need prompts: a prompt-only dataset is read as such.
  const prompts = algorithm.online
    ? await promptOnlyRows(dataset, tokenizer, {
      split: config.dataset_train_split,
      limit: config.max_samples ?? undefined,
    })
    : null;
  const data = prompts
    ? promptData(prompts)
    : await prepareData(dataConfigOf(config, dataset), tokenizer, { kind });
  say(data.skips.summary(data.train.length + data.eval.length));
  return data;
}

/**
 * Feeds of one micro-batch of `examples` (for online losses: of pairs generated from their
 * prompts and judged, or null when the judge decided none), with reference log-probs.
 */
async function batchOf(
  run: Run,
  examples: TokenizedExample[],
  indices: number[],
  split: "train" | "eval",
  at = 0,
) {
  const online = split === "train" ? run.online : null;
  const batch = online
    ? await online.batch(examples, indices, {
      weights: run.step.paramFeeds(),
      seed: run.config.seed + at,
      step: at,
    })
    : makeBatch(examples, indices, {
      withKl: run.graph.withKl,
      padTokenId: run.tokenizer.padTokenId,
    });
  if (!batch) return null;
  const ref = run.reference
    ? await run.reference.logps(batch, run.graph.groups, online ? null : split)
    : undefined;
  const { groups } = run.graph;
  return {
    feeds: batchFeeds(batch, { groups, reference: ref, state: run.position.algorithmState }),
    reference: ref,
    tokens: batch.attentionMask.reduce((a, b) => a + b, 0),
    examples: batch.shape[0] / groups,
  };
}

/**
 * Held-out metrics of the current policy, logged as `eval/*` at step `at`: the loss's own
 * metrics (means over examples) and `eval/pairwise_accuracy`, the one figure every loss shares.
 */
async function evaluate(run: Run, at: number): Promise<void> {
  const n = Math.min(run.data.eval.length, run.config.eval_samples);
  if (n === 0 || run.config.eval_strategy === "no") return;
  const size = run.config.per_device_eval_batch_size;
  const sums: Record<string, number> = {};
  const tally = new PairwiseTally();
  const params = run.step.paramFeeds();
  const names = run.evalProgram.inputs.map((spec) => spec.name);
  for (let start = 0; start < n; start += size) {
    const indices = [...Array(Math.min(size, n - start)).keys()].map((i) => start + i);
    const made = await batchOf(run, run.data.eval, indices, "eval");
    if (!made) continue;
    const out = await run.evalProgram.run(pickFeeds(names, { ...made.feeds, ...params }));
    const { [SEQ_LOGPS]: logps, [SEQ_COUNTS]: counts, ...metrics } = out;
    for (const [k, v] of Object.entries(metrics)) {
      sums[k] = (sums[k] ?? 0) + Number(v.data[0]) * indices.length;
    }
    tallyPairs(tally, indices.map((i) => run.data.eval[i]), {
      logps: logps.data,
      counts: counts.data,
      reference: made.reference,
    });
  }
  const row: MetricsRow = { step: at };
  for (const [k, v] of Object.entries(sums)) row[`eval/${k}`] = v / n;
  const accuracy = tally.accuracy();
  if (!Number.isNaN(accuracy)) row["eval/pairwise_accuracy"] = accuracy;
  await run.log.log(row);
}

/** Adds a batch's completions (row-group 0, and 1 for pairs) to the pairwise tally. */
function tallyPairs(
  tally: PairwiseTally,
  examples: TokenizedExample[],
  seq: { logps: ArrayLike<unknown>; counts: ArrayLike<unknown>; reference?: Float32Array },
): void {
  const B = examples.length;
  const at = (i: number) => ({
    logp: Number(seq.logps[i]),
    count: Number(seq.counts[i]),
    ref: seq.reference ? seq.reference[i] : undefined,
  });
  examples.forEach((e, b) => {
    if (e.kind === "paired") {
      tally.add(e.row, true, at(b));
      tally.add(e.row, false, at(B + b));
    } else {
      tally.add(e.row, e.label, at(b));
    }
  });
}

/** Three held-out prompts completed by the current policy, appended to samples.jsonl. */
async function sample(run: Run, at: number): Promise<void> {
  const device = run.step.device;
  run.generator ??= run.online?.generator ??
    await Generator.create(run.policy.config, { device, model: run.generatorModel });
  const prompts = run.data.eval.slice(0, 3).map((e) => e.promptIds);
  const outs = await run.generator.generate(run.step.paramFeeds(), prompts, {
    max_new_tokens: 48,
    eos_token_id: [...run.tokenizer.stopTokenIds],
    pad_token_id: run.tokenizer.padTokenId,
  });
  const lines = outs.map((ids, i) =>
    JSON.stringify({
      step: at,
      prompt: run.tokenizer.decode(prompts[i]),
      completion: run.tokenizer.decode(ids, { skipSpecialTokens: true }),
    }) + "\n"
  );
  await Deno.writeTextFile(join(run.outDir, "samples.jsonl"), lines.join(""), { append: true });
}

/**
 * Writes `checkpoint-<at>` (HF format, or PEFT's adapter files under LoRA, plus optimizer state
 * and the run's position).
 */
async function save(run: Run, at: number): Promise<void> {
  const dir = join(run.outDir, `checkpoint-${at}`);
  await saveCheckpoint(dir, run.policy, await run.step.readState(), {
    step: at,
    consumed: run.position.consumed,
    algorithmState: run.position.algorithmState,
    skipped: run.position.skipped,
    config: run.config,
  });
  run.checkpoint = dir;
  await pruneCheckpoints(run.outDir, {
    limit: run.config.save_total_limit,
    keep: run.resumed ? run.start : null,
  });
}

/** The steps from where the run stands to the end, with logging, evaluation, samples, saves. */
async function loop(run: Run): Promise<void> {
  const { config, schedule } = run;
  const order = microBatches(run.data.train, {
    batchSize: config.per_device_train_batch_size,
    seed: config.seed,
    groupByLength: config.train_sampling_strategy === "group_by_length",
    padTokenId: run.tokenizer.padTokenId,
  }, run.position.consumed);
  const every = (n: number, at: number) => n > 0 && at % n === 0;
  // A signal stops the loop between steps; finish() then saves where it stopped.
  while (run.at < schedule.total && !run.interrupt.requested) {
    const at = ++run.at;
    await optimizerStep(run, order, at);
    const epoch = run.position.consumed / run.perEpoch;
    if (every(config.logging_steps, at) || at === schedule.total) await logWindow(run, at, epoch);
    if (every(config.eval_steps, at) && at < schedule.total) await evaluate(run, at);
    if (every(config.sample_every, at)) await sample(run, at);
    if (every(config.save_steps, at) && at < schedule.total) await save(run, at);
  }
}

/**
 * Step `at`: one optimizer update over `gradient_accumulation_steps` micro-batches, its metrics
 * added to the window. A step the judge decided no pair for (`no_judged_pair`), or with a
 * non-finite loss or gradient (`nonfinite_loss`), is counted as skipped.
 */
async function optimizerStep(
  run: Run,
  order: Iterator<{ epoch: number; indices: number[] }>,
  at: number,
): Promise<void> {
  const micro: Record<string, Feed>[] = [];
  for (let k = 0; k < run.config.gradient_accumulation_steps; k++) {
    const next = order.next().value!;
    const made = await batchOf(run, run.data.train, next.indices, "train", at);
    run.position.consumed++;
    if (!made) continue;
    const seed: Record<string, number> = run.step.dataInputs.includes(DROPOUT_SEED)
      ? { [DROPOUT_SEED]: dropoutSeed(run.config.seed, run.position.consumed) }
      : {};
    micro.push(pickFeeds(run.step.dataInputs, { ...made.feeds, ...seed }));
    run.window.tokens += made.tokens;
    run.window.examples += made.examples;
  }
  if (run.online) {
    const records = run.online.takeRecords();
    await Deno.writeTextFile(join(run.outDir, "samples.jsonl"), records, { append: true });
  }
  const judging = run.online?.endStep();
  if (judging) console.error(`Warning: step ${at}: ${judging}`);
  if (micro.length === 0) return skip(run, at, "no_judged_pair", "the judge decided no pair");
  const lr = learningRate(run.schedule, at - 1);
  const result = await run.step.step(micro, { lr });
  if (result.skipped) return skip(run, at, "nonfinite_loss", "loss or gradient not finite");
  run.applied++;
  if (run.algorithm.state) {
    run.position.algorithmState = run.algorithm.state.update(
      run.position.algorithmState,
      result.metrics,
    );
  }
  addToWindow(run.window, {
    loss: result.loss,
    ...result.metrics,
    grad_norm: result.gradNorm,
    learning_rate: lr,
  });
}

function skip(run: Run, at: number, reason: string, why: string): void {
  run.position.skipped[reason] = (run.position.skipped[reason] ?? 0) + 1;
  console.error(`Warning: step ${at} skipped: ${why}`);
}

function skippedSteps(run: Run): number {
  return Object.values(run.position.skipped).reduce((a, b) => a + b, 0);
}

function newWindow(): Window {
  return { steps: 0, sums: {}, tokens: 0, examples: 0, start: performance.now() };
}

function addToWindow(window: Window, values: Record<string, number>): void {
  window.steps++;
  for (const [k, v] of Object.entries(values)) window.sums[k] = (window.sums[k] ?? 0) + v;
}

/**
 * Logs the mean of every metric over the steps since the last row, as HF's Trainer does, with
 * the skip counts (a window whose every step was skipped logs those alone, no loss).
 */
async function logWindow(run: Run, at: number, epoch: number): Promise<void> {
  const { window } = run;
  const seconds = (performance.now() - window.start) / 1000;
  const means: Record<string, number> = {};
  for (const [k, v] of Object.entries(window.sums)) means[k] = v / Math.max(1, window.steps);
  const skipped = Object.entries(run.position.skipped).map(([k, n]) => [`skipped/${k}`, n]);
  await run.log.log({
    step: at,
    epoch,
    ...means,
    ...(window.steps > 0
      ? { tokens_per_s: window.tokens / seconds, samples_per_s: window.examples / seconds }
      : {}),
    "skipped/steps": skippedSteps(run),
    ...Object.fromEntries(skipped),
    ...run.online?.takeMetrics(),
  });
  run.window = newWindow();
}

/**
 * The final evaluation, checkpoint and report; after a signal, the checkpoint where the run
 * stopped and the command that resumes it.
 *
 * @throws When the run applied none of the steps it attempted (after the report).
 */
async function finish(run: Run): Promise<TrainResult> {
  const { total } = run.schedule;
  const signal = run.at < total ? run.interrupt.requested : null;
  if (signal) {
    if (run.at > run.start && !run.checkpoint.endsWith(`checkpoint-${run.at}`)) {
      await save(run, run.at);
    }
  } else {
    await evaluate(run, total);
    if (run.applied > 0) await save(run, total);
  }
  await run.reference?.cache.save();
  if (!signal && run.applied > 0 && run.config.merge_adapter && run.policy.lora) {
    run.say(
      `merged model: ${await mergeAdapterFolder(run.checkpoint, join(run.outDir, "merged"))}`,
    );
  }
  await run.log.close();
  const rows = await readMetrics<MetricsRow>(run.outDir);
  const summary = await finishReport(run.outDir, rows, {
    title: `${run.algorithm.name} on ${run.config.dataset_name}`,
    headline: signal
      ? `Stopped by ${signal} at step ${run.at} of ${total}`
      : `Done: ${total} steps of ${run.algorithm.name} on ${run.policy.dir} (${run.step.device})`,
    checkpoint: run.checkpoint,
    skipped: run.position.skipped,
  });
  for (const line of summary) run.say(line);
  if (signal && run.checkpoint) {
    console.error(`Resume with: deno task train --resume ${run.outDir}`);
  }
  if (!signal && run.applied === 0) {
    const reasons = Object.entries(run.position.skipped).map(([k, n]) => `${k} ${n}`);
    throw new Error(
      `No step was applied: all ${run.at - run.start} steps were skipped (${
        reasons.join(", ")
      }); see the warnings above`,
    );
  }
  return {
    config: run.config,
    rows,
    checkpoint: run.checkpoint,
    referenceComputed: run.reference?.computed ?? 0,
    outcome: signal ? "interrupted" : "done",
    skipped: run.position.skipped,
  };
}

/** Frees the compiled programs. */
async function release(run: Run): Promise<void> {
  await Promise.all([
    run.step.release(),
    run.evalProgram.release(),
    run.reference?.program.release(),
    run.online?.release(),
  ]);
  if (run.generator !== run.online?.generator) await run.generator?.release();
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
    "Usage: deno task train [--config FILE.yaml] [--resume DIR] [--key value ...]",
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
    if (args.includes("--help") || args.includes("-h")) {
      console.log(await trainHelp(args.filter((a) => a !== "--help" && a !== "-h")));
      return;
    }
    const { outcome } = await train(args);
    if (outcome === "interrupted") Deno.exit(INTERRUPTED_EXIT);
  } catch (error) {
    console.error(`error: ${(error as Error).message}`);
    Deno.exit(1);
  }
}

if (import.meta.main) await main(Deno.args);
