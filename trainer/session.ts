/**
 * The run core every shell drives: one in-memory training session (compile once, step, evaluate,
 * sample) with no file system, so `train.ts` (the CLI), `web/run.ts` (the page), `bench/` and
 * `compare` all run the same steps, batch order, evaluation and metrics.
 *
 *   inputs (tokenizer, policy, examples, reference weights) + resolved config
 *     → one step graph → `step()` per optimizer update (gradient accumulation, LoRA dropout
 *     seeds, skips, the algorithm's state) → `takeRow()` (the window's means, as HF logs them),
 *     `evaluate()` (the loss's metrics and `eval_pairwise_accuracy`), `sample(n)`.
 *
 * What a shell adds is where things go: the CLI loads files, writes checkpoints and logs; the page
 * reads bytes and draws.
 *
 * @module
 */
import type { Algorithm } from "../algorithms/mod.ts";
import type { TokenizedExample } from "../data/types.ts";
import { type HostTensor, input, type StoredTensor } from "../graph/mod.ts";
import type { ModelConfig } from "../model/config.ts";
import type { CausalLMOptions } from "../model/decoder.ts";
import { Generator } from "../model/generate.ts";
import type { Tokenizer } from "../model/tokenizer.ts";
import {
  type Device,
  type Feed,
  Program,
  type ResolvedDevice,
  type TrainState,
  TrainStep,
  type TrainStepOptions,
} from "../runtime/mod.ts";
import type { World } from "../runtime/world.ts";
import {
  batchesPerEpoch,
  batchFeeds,
  globalBatchSize,
  makeBatch,
  microBatches,
  pickFeeds,
  Reference,
  shard,
} from "./batches.ts";
import { hyperparameters, type Resolved, type TrainConfig } from "./config.ts";
import type { MetricsRow } from "./log.ts";
import { evalKey, LogWindow } from "./log_window.ts";
import type { OnlineSource } from "./online.ts";
import { PairwiseTally } from "./pairwise.ts";
import type { RefLogpCache } from "./ref_cache.ts";
import { optimizerOf, scheduleOf } from "./run_config.ts";
import { learningRate, type Schedule } from "./schedule.ts";
import { buildStepGraph, type StepGraph } from "./step_graph.ts";

/** What a session trains, already in memory. */
export interface SessionInputs {
  /** The policy's tokenizer (pad and stop ids, decoding samples). */
  tokenizer: Pick<Tokenizer, "padTokenId" | "stopTokenIds" | "decode">;
  /** The policy's architecture and how its decoder is built (frozen base and LoRA adapters). */
  policy: { config: ModelConfig; model: CausalLMOptions };
  /**
   * The starting parameters of a fresh run (unused when `state` resumes one). Handed over: once
   * the step holds its copy, their arrays are freed (detached, length 0), except those an
   * in-memory `reference` shares; so are a resumed `state`'s.
   */
  params?: Record<string, HostTensor>;
  /** The examples: train and held-out, paired or unpaired. */
  data: { kind: "paired" | "unpaired"; train: TokenizedExample[]; eval: TokenizedExample[] };
  /**
   * The frozen reference model, for losses that need one; without it every reference log-prob
   * must be in the cache (as the benchmark feeds them).
   */
  reference?: { config: ModelConfig; weights: Record<string, HostTensor | StoredTensor> };
  /** For online losses, the generator and judge pairs come from (the session releases it). */
  online?: OnlineSource;
}

/** Where a session stands: what a checkpoint saves besides the tensors. */
export interface Position {
  /** The last step done (applied or skipped). */
  step: number;
  /** Micro-batches consumed (fixes the data position). */
  consumed: number;
  /** Steps skipped so far, by reason. */
  skipped: Record<string, number>;
  /** The algorithm's running state (e.g. BCO's δ). */
  algorithmState: Record<string, number>;
}

/** How one optimizer step went. */
export interface StepReport {
  /** The step's number. */
  at: number;
  /** Why the step was skipped (`no_judged_pair`, `nonfinite_loss`), or null when applied. */
  skipped: string | null;
  /** Warnings for the user (a skipped step, a judge failing on most pairs). */
  warnings: string[];
  /** Online losses: the generated pairs and verdicts, as JSON lines for samples.jsonl. */
  records: string;
  /** Whether `stop` dropped the step between micro-batches (the position is as before it). */
  stopped: boolean;
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

/** One training run in memory: compiled programs, batch order, position and log window. */
export class Session {
  /** Micro-batches per epoch. */
  readonly perEpoch: number;
  /** Total steps and the learning-rate schedule. */
  readonly schedule: Schedule;
  /** Steps this session applied (not skipped). */
  applied = 0;
  #position: Position;
  #order: Iterator<{ epoch: number; indices: number[] }>;
  #log = new LogWindow();
  #generator: Generator | null = null;
  #evalProgram: Promise<Program> | null = null;

  private constructor(
    readonly inputs: Omit<SessionInputs, "params">,
    readonly config: TrainConfig,
    readonly algorithm: Algorithm,
    private readonly graph: StepGraph,
    private readonly trainStep: TrainStep,
    /** Compiles the evaluation program (on the first evaluation: a benchmark never needs it). */
    private readonly compileEval: () => Promise<Program>,
    private readonly reference: Reference | null,
    position: Position,
    private readonly world: World | null,
  ) {
    this.#position = position;
    // Data parallel: the order is of global micro-batches, each shared out among the ranks.
    const batchSize = globalBatchSize(config, world?.size ?? 1);
    this.perEpoch = batchesPerEpoch(inputs.data.train, batchSize);
    this.schedule = scheduleOf(config, this.perEpoch);
    this.#order = microBatches(inputs.data.train, {
      batchSize,
      seed: config.seed,
      train_sampling_strategy: config.train_sampling_strategy,
      padTokenId: inputs.tokenizer.padTokenId,
    }, position.consumed);
  }

  /**
   * Compiles the train step and the evaluation program (and the reference model, for losses that
   * need one) and loads the starting parameters, or a saved state with its position.
   *
   * @param inputs Tokenizer, policy, examples, reference weights, online pair source.
   * @param resolved The resolved config and its algorithm.
   * @param options `device`; `cache`: reference log-probs already known (on disk for the CLI, in
   *   memory for the page); `state`: a checkpoint's tensors and position to resume from;
   *   `cacheDir`: where onnxruntime's optimized step is kept between runs (none in the page);
   *   `trainStep`: the step's profiling, fixed-buffer and static-size options (the benchmark's);
   *   `world`: the ranks of a data-parallel run (this one trains on its shard of each batch).
   * @returns The session, before its next step.
   */
  static async create(
    inputs: SessionInputs,
    resolved: Pick<Resolved, "config" | "algorithm">,
    options: {
      device: Device;
      cache: RefLogpCache;
      state?: { tensors: TrainState; position: Position };
      cacheDir?: string;
      trainStep?: Pick<TrainStepOptions, "profile" | "fixedBuffers" | "staticDims">;
      world?: World | null;
    },
  ): Promise<Session> {
    const { config, algorithm } = resolved;
    if (options.world && inputs.online) {
      throw new Error(
        `Loss ${algorithm.name} generates its pairs online, which data-parallel runs do not ` +
          "support yet: train it with one rank (drop --nproc_per_node)",
      );
    }
    const hp = hyperparameters(resolved);
    const { policy, data } = inputs;
    // LoRA dropout masks derive from a fed seed; evaluation uses a graph without dropout.
    const lora = policy.model.lora;
    const dropout = (lora?.dropout ?? 0) > 0;
    const stepGraph = (training: boolean) =>
      buildStepGraph(policy.config, {
        algorithm,
        hp,
        kind: data.kind,
        model: training && dropout
          ? { ...policy.model, lora: { ...lora!, dropoutSeed: input(DROPOUT_SEED, []) } }
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
      device: options.device,
      cacheDir: options.cacheDir,
      world: options.world ?? undefined,
      ...options.trainStep,
    });
    const position = startingPoint(step, { inputs, algorithm, state: options.state });
    await step.upload();
    freeHostCopies(inputs.params, options.state?.tensors, inputs.reference?.weights ?? {});
    // Every later program runs where the step landed ("auto" decides once).
    const where = { device: step.device };
    const compileEval = () => {
      const evalGraph = dropout ? stepGraph(false) : graph;
      return Program.compile({
        loss: evalGraph.loss,
        ...evalGraph.metrics,
        [SEQ_LOGPS]: evalGraph.perSequence.logps,
        [SEQ_COUNTS]: evalGraph.perSequence.counts,
      }, where);
    };
    const ref = inputs.reference;
    const reference = !algorithm.needsReference
      ? null
      : ref
      ? await Reference.create(ref.config, ref.weights, {
        ...where,
        cache: options.cache,
        precision: policy.model.precision,
      })
      : Reference.cacheOnly(options.cache);
    const { params: _, ...kept } = inputs;
    const world = options.world ?? null;
    return new Session(
      kept,
      config,
      algorithm,
      graph,
      step,
      compileEval,
      reference,
      position,
      world,
    );
  }

  /** Where the run stands (a copy). */
  get position(): Position {
    const p = this.#position;
    return { ...p, skipped: { ...p.skipped }, algorithmState: { ...p.algorithmState } };
  }

  /** Where the step runs. */
  get device(): ResolvedDevice {
    return this.trainStep.device;
  }

  /** Reference log-probs computed by this session (0 when all came from the cache). */
  get referenceComputed(): number {
    return this.reference?.computed ?? 0;
  }

  /**
   * The next optimizer step: `gradient_accumulation_steps` micro-batches of the seeded order, one
   * update, its metrics added to the log window. A step the judge decided no pair for
   * (`no_judged_pair`), or with a non-finite loss or gradient (`nonfinite_loss`), is counted as
   * skipped.
   *
   * @param options `stop`: asked before each micro-batch (a signal); true drops the step.
   * @returns The step's number, skip reason, warnings and online records.
   */
  async step(options: { stop?: () => boolean } = {}): Promise<StepReport> {
    const position = this.#position;
    const at = ++position.step;
    const micro: Record<string, Feed>[] = [];
    const consumed = position.consumed;
    const counts = new Float64Array(2); // tokens and examples, summed over the ranks
    for (let k = 0; k < this.config.gradient_accumulation_steps; k++) {
      if (options.stop?.()) {
        [position.step, position.consumed] = [at - 1, consumed]; // a checkpoint is step at - 1's
        return { at: at - 1, skipped: null, warnings: [], records: "", stopped: true };
      }
      const { indices } = this.#order.next().value!;
      const mine = this.world ? shard(indices, this.world) : indices;
      const made = await this.#batch(this.inputs.data.train, mine, "train", at);
      position.consumed++;
      if (!made) continue;
      const seed: Record<string, number> = this.trainStep.dataInputs.includes(DROPOUT_SEED)
        ? { [DROPOUT_SEED]: dropoutSeed(this.config.seed, position.consumed) }
        : {};
      micro.push(pickFeeds(this.trainStep.dataInputs, { ...made.feeds, ...seed }));
      counts[0] += made.tokens;
      counts[1] += made.examples;
    }
    this.world?.sumNumbers(counts);
    this.#log.addBatch(counts[0], counts[1]);
    const online = this.inputs.online;
    const report: StepReport = {
      at,
      skipped: null,
      warnings: [],
      records: online?.takeRecords() ?? "",
      stopped: false,
    };
    const judging = online?.endStep();
    if (judging) report.warnings.push(`step ${at}: ${judging}`);
    const skip = (reason: string, why: string) => {
      position.skipped[reason] = (position.skipped[reason] ?? 0) + 1;
      report.warnings.push(`step ${at} skipped: ${why}`);
      return { ...report, skipped: reason };
    };
    if (micro.length === 0) return skip("no_judged_pair", "the judge decided no pair");
    const lr = learningRate(this.schedule, at - 1);
    const result = await this.trainStep.step(micro, { lr });
    if (result.skipped) return skip("nonfinite_loss", "loss or gradient not finite");
    this.applied++;
    if (this.algorithm.state) {
      position.algorithmState = this.algorithm.state.update(
        position.algorithmState,
        result.metrics,
      );
    }
    this.#log.addStep(result);
    return report;
  }

  /**
   * The log row of the steps since the last call, as HF's Trainer logs it: the loss and the
   * loss's metrics as the window's means; `grad_norm` the last step's; `learning_rate` the
   * scheduler's current rate (after this step, what HF's `_get_learning_rate()` reads: the rate
   * of the next step); throughput, the epoch and the skip counts (a window whose every step was
   * skipped has no loss and no `grad_norm`); then a new window.
   *
   * @returns The row, at the current step.
   */
  takeRow(): MetricsRow {
    const { step, skipped } = this.#position;
    const counts = Object.entries(skipped).map(([k, n]) => [`skipped/${k}`, n]);
    return {
      step,
      epoch: this.#epoch(),
      ...this.#log.take(),
      learning_rate: learningRate(this.schedule, step),
      "skipped/steps": Object.values(skipped).reduce((a, b) => a + b, 0),
      ...Object.fromEntries(counts),
      ...this.inputs.online?.takeMetrics(),
    };
  }

  /**
   * HF's closing row of a training run, for this session's steps (see `LogWindow.summary`).
   *
   * @returns The row, at the current step.
   */
  summary(): MetricsRow {
    return { step: this.#position.step, epoch: this.#epoch(), ...this.#log.summary() };
  }

  /** Epochs done, fractional (HF's `epoch`). */
  #epoch(): number {
    return this.#position.consumed / this.perEpoch;
  }

  /**
   * Held-out metrics of the current policy at the current step, over the whole held-out split
   * (or its first `eval_samples` examples when set), named as TRL's log history names them: the
   * loss's own metrics (means over examples) as `eval_*`, `eval_pairwise_accuracy` (the one
   * figure every loss shares), and HF's `eval_runtime`, `eval_samples_per_second`,
   * `eval_steps_per_second`.
   *
   * @returns The row, or null when there is nothing to evaluate (no held-out examples, or
   *   `eval_strategy` no).
   */
  async evaluate(): Promise<MetricsRow | null> {
    const examples = this.inputs.data.eval;
    const n = Math.min(examples.length, this.config.eval_samples ?? Infinity);
    if (n === 0 || this.config.eval_strategy === "no") return null;
    const started = performance.now();
    const size = this.config.per_device_eval_batch_size;
    const sums: Record<string, number> = {};
    const tally = new PairwiseTally();
    const params = this.trainStep.paramFeeds();
    const program = await (this.#evalProgram ??= this.compileEval());
    const names = program.inputs.map((spec) => spec.name);
    for (let start = 0; start < n; start += size) {
      const indices = [...Array(Math.min(size, n - start)).keys()].map((i) => start + i);
      const made = await this.#batch(examples, indices, "eval");
      if (!made) continue;
      const out = await program.run(pickFeeds(names, { ...made.feeds, ...params }));
      const { [SEQ_LOGPS]: logps, [SEQ_COUNTS]: counts, ...metrics } = out;
      for (const [k, v] of Object.entries(metrics)) {
        sums[k] = (sums[k] ?? 0) + Number(v.data[0]) * indices.length;
      }
      tally.addBatch(indices.map((i) => examples[i]), {
        logps: logps.data,
        counts: counts.data,
        reference: made.reference,
      });
    }
    const row: MetricsRow = { step: this.#position.step, epoch: this.#epoch() };
    for (const [k, v] of Object.entries(sums)) row[evalKey(k)] = v / n;
    const accuracy = tally.accuracy();
    if (!Number.isNaN(accuracy)) row[evalKey("pairwise_accuracy")] = accuracy;
    const seconds = (performance.now() - started) / 1000;
    row[evalKey("runtime")] = seconds;
    row[evalKey("samples_per_second")] = n / seconds;
    row[evalKey("steps_per_second")] = Math.ceil(n / size) / seconds;
    return row;
  }

  /**
   * Greedy completions of the first `n` held-out prompts under the current policy.
   *
   * @param n Prompts.
   * @param options `maxNewTokens`: completion length limit.
   * @returns Prompt and completion texts.
   */
  async sample(
    n: number,
    options: { maxNewTokens: number },
  ): Promise<{ prompt: string; completion: string }[]> {
    const { tokenizer, policy, online } = this.inputs;
    const { frozen, lora } = policy.model;
    this.#generator ??= online?.generator ?? await Generator.create(policy.config, {
      device: this.device,
      model: lora ? { frozen, lora } : undefined,
    });
    const prompts = this.inputs.data.eval.slice(0, n).map((e) => e.promptIds);
    const outs = await this.#generator.generate(this.trainStep.paramFeeds(), prompts, {
      max_new_tokens: options.maxNewTokens,
      eos_token_id: [...tokenizer.stopTokenIds],
      pad_token_id: tokenizer.padTokenId,
    });
    return outs.map((ids, i) => ({
      prompt: tokenizer.decode(prompts[i]),
      completion: tokenizer.decode(ids, { skipSpecialTokens: true }),
    }));
  }

  /**
   * The current parameters (and optimizer state), for a checkpoint.
   *
   * @returns The state, read back from where it lives.
   */
  async readState(): Promise<TrainState> {
    return await this.trainStep.readState();
  }

  /**
   * The current parameters as feeds of another program (e.g. a scorer) on the same device.
   *
   * @returns Parameters by graph-input name.
   */
  paramFeeds(): Record<string, Feed> {
    return this.trainStep.paramFeeds();
  }

  /** Frees every compiled program (the online source's generator too). */
  async release(): Promise<void> {
    const online = this.inputs.online;
    await Promise.all([
      this.trainStep.release(),
      this.#evalProgram?.then((program) => program.release()),
      this.reference?.program?.release(),
      online?.release(),
    ]);
    if (this.#generator !== online?.generator) await this.#generator?.release();
  }

  /**
   * Feeds of one micro-batch of `examples` (for online losses: of pairs generated from their
   * prompts and judged, or null when the judge decided none), with reference log-probs.
   */
  async #batch(examples: TokenizedExample[], indices: number[], split: "train" | "eval", at = 0) {
    const online = split === "train" ? this.inputs.online : undefined;
    const batch = online
      ? await online.batch(examples, indices, {
        weights: this.trainStep.paramFeeds(),
        seed: this.config.seed + at,
        step: at,
      })
      : makeBatch(examples, indices, {
        withKl: this.graph.withKl,
        padTokenId: this.inputs.tokenizer.padTokenId,
      });
    if (!batch) return null;
    const { groups } = this.graph;
    const reference = this.reference
      ? await this.reference.logps(batch, groups, online ? null : split)
      : undefined;
    const state = this.#position.algorithmState;
    return {
      feeds: batchFeeds(batch, { groups, reference, state }),
      reference,
      tokens: batch.attentionMask.reduce((a, b) => a + b, 0),
      examples: batch.shape[0] / groups,
    };
  }
}

/**
 * Frees host tensors' memory now. V8 would free the unreachable arrays only at its next
 * collection, which a run that allocates little in JavaScript may not reach for many steps: a
 * second copy of the model (three when resuming: parameters and AdamW's moments) would sit beside
 * the step's (SmolLM2-135M at 1 × 512: about 500 MiB of the peak; BENCHMARKS.md, issue 18).
 * Arrays the reference model still feeds with every batch (the page passes the same weights as
 * both) are kept.
 */
function freeHostCopies(
  params: Record<string, HostTensor> | undefined,
  state: TrainState | undefined,
  reference: Record<string, HostTensor | StoredTensor>,
): void {
  const fed = new Set(Object.values(reference).flatMap((w) => "data" in w ? [w.data.buffer] : []));
  const groups = [params, state?.params, ...Object.values(state?.slots ?? {})];
  for (const group of groups) {
    for (const t of Object.values(group ?? {})) {
      const buffer = t.data.buffer;
      if (buffer instanceof ArrayBuffer && !buffer.detached && !fed.has(buffer)) buffer.transfer(0);
    }
  }
}

/** Loads the starting parameters into `step`, or a saved state; the position it stands at. */
function startingPoint(
  step: TrainStep,
  from: {
    inputs: SessionInputs;
    algorithm: Algorithm;
    state?: { tensors: TrainState; position: Position };
  },
): Position {
  if (from.state) {
    step.loadState(from.state.tensors);
    const p = from.state.position;
    return { ...p, skipped: { ...p.skipped }, algorithmState: { ...p.algorithmState } };
  }
  if (!from.inputs.params) throw new Error("Missing starting parameters: pass params or a state");
  step.setParams(from.inputs.params);
  return {
    step: 0,
    consumed: 0,
    skipped: {},
    algorithmState: { ...from.algorithm.state?.initial },
  };
}
