/**
 * One training run of the browser page, built from bytes and text only (no file system): the
 * model from its config.json and safetensors bytes, the tokenizer from its JSON files, the rows
 * from an uploaded or embedded JSONL, and the same step graph, reference, schedule and batch order
 * as `deno task train`, on whatever runtime `Program.compile` picks (onnxruntime-web in a browser,
 * the native backend on Deno, which is how the tests check this file without a browser).
 *
 * Its settings are a config resolved by `trainer/config.ts` exactly as `deno task train` resolves
 * one (the page passes `configs/tiny.yaml` and the values its controls set), read through the
 * same `trainer/run_config.ts`.
 *
 * @module
 */
import { zipSync } from "fflate";
import type { Algorithm } from "../algorithms/types.ts";
import { collate } from "../data/batch.ts";
import { type PreparedData, prepareRows } from "../data/dataset.ts";
import { rowsFromText } from "../data/sources.ts";
import type { Row } from "../data/types.ts";
import { input } from "../graph/mod.ts";
import type { HostTensor } from "../graph/tensor.ts";
import { type ModelConfig, parseConfig } from "../model/config.ts";
import { buildCausalLM } from "../model/decoder.ts";
import { Generator } from "../model/generate.ts";
import { sequenceLogps } from "../model/logprobs.ts";
import { parseSafetensors } from "../model/safetensors.ts";
import { modelFiles } from "../model/save.ts";
import type { Tokenizer } from "../model/tokenizer.ts";
import { tokenizerFromJson } from "../model/tokenizer_json.ts";
import { toFloat32, weightShapes } from "../model/weights.ts";
import { type Feed, parseDevice, Program, TrainStep } from "../runtime/mod.ts";
import {
  batchesPerEpoch,
  batchFeeds,
  makeBatch,
  microBatches,
  pickFeeds,
  Reference,
} from "../trainer/batches.ts";
import { hyperparameters, type Resolved } from "../trainer/config.ts";
import { RefLogpCache } from "../trainer/ref_cache.ts";
import { dataConfigOf, optimizerOf, scheduleOf } from "../trainer/run_config.ts";
import { learningRate, type Schedule } from "../trainer/schedule.ts";
import { buildStepGraph, type StepGraph } from "../trainer/step_graph.ts";

/** A model's files, as fetched or uploaded. */
export interface ModelFiles {
  /** `config.json`, parsed. */
  config: Record<string, unknown>;
  /** `model.safetensors`. */
  weights: Uint8Array;
  /** Tokenizer files by name (`tokenizer.json`, `tokenizer_config.json`, ...), as text. */
  tokenizer: Record<string, string>;
}

/** One logged row: TRL's metric names, `eval/` prefixed for held-out ones. */
export type MetricsRow = Record<string, number>;

/** Summed completion log-probs of one held-out pair under the current policy. */
export interface HeldOutScore {
  /** The source row, as read. */
  row: Row;
  /** Σ log π(chosen | prompt). */
  chosen: number;
  /** Σ log π(rejected | prompt). */
  rejected: number;
}

/** A training run in the page. */
export class PageRun {
  #order: ReturnType<typeof microBatches>;
  #generator?: Promise<Generator>;
  /** The algorithm's running state (e.g. BCO's δ), updated after each step as in train.ts. */
  #algorithmState: Record<string, number>;

  private constructor(
    /** The resolved config (`configs/tiny.yaml` and the page's controls). */
    readonly settings: Resolved,
    readonly config: ModelConfig,
    readonly tokenizer: Tokenizer,
    readonly data: PreparedData,
    readonly rows: Row[],
    readonly schedule: Schedule,
    private readonly files: ModelFiles,
    private readonly graph: StepGraph,
    readonly step: TrainStep,
    private readonly evalProgram: Program,
    private readonly scorer: Program,
    private readonly reference: Reference | null,
  ) {
    this.#algorithmState = { ...(settings.algorithm.state?.initial ?? {}) };
    this.#order = microBatches(data.train, {
      batchSize: settings.config.per_device_train_batch_size,
      seed: settings.config.seed,
      groupByLength: settings.config.train_sampling_strategy === "group_by_length",
      padTokenId: tokenizer.padTokenId,
    });
  }

  /**
   * Prepares the data and compiles the step, evaluation and scoring graphs.
   *
   * @param model The model's files.
   * @param options `data`: the JSONL text and its file name; `settings`: the resolved config
   *   (its `device`: "auto" takes WebGPU when the browser offers it, else WASM).
   * @returns The run, before its first step.
   */
  static async create(
    model: ModelFiles,
    options: { data: { text: string; name: string }; settings: Resolved },
  ): Promise<PageRun> {
    const { settings } = options;
    const { algorithm, config: run } = settings;
    if (algorithm.online) {
      throw new Error(
        `Loss "${algorithm.name}" needs a judge: the page trains offline losses only`,
      );
    }
    if (run.use_peft || run.gradient_accumulation_steps !== 1) {
      throw new Error(
        "The page trains every weight with one micro-batch per step: " +
          "set use_peft false and gradient_accumulation_steps 1",
      );
    }
    if (run.bf16) {
      // Browsers have no bf16 arithmetic: the page would only emulate it, slower than float32.
      throw new Error("The page trains in float32: set bf16 false (bf16 runs on --device cuda)");
    }
    const config = parseConfig(model.config);
    const weights = readWeights(model.weights, config);
    const json = (name: string) => {
      const text = model.tokenizer[name];
      return text === undefined ? undefined : JSON.parse(text);
    };
    const tokenizer = tokenizerFromJson({
      tokenizer: json("tokenizer.json"),
      config: json("tokenizer_config.json"),
      chatTemplateJinja: model.tokenizer["chat_template.jinja"],
      generationConfig: json("generation_config.json"),
      modelConfig: model.config,
    });
    const kind = algorithm.data === "both" ? "unpaired" : algorithm.data;
    const source = rowsFromText(options.data.text, options.data.name);
    const data = await prepareRows(source, dataConfigOf(run, options.data.name), {
      tokenizer,
      kind,
    });
    const graph = buildStepGraph(config, { algorithm, hp: hyperparameters(settings), kind });
    const step = await TrainStep.create({
      loss: graph.loss,
      params: graph.model.params,
      metrics: graph.metrics,
      optimizer: optimizerOf(run),
      maxGradNorm: run.max_grad_norm,
      device: parseDevice(run.use_cpu ? "cpu" : run.device),
    });
    step.setParams(weights);
    // Every later program runs where the step landed ("auto" decides once).
    const where = { device: step.device };
    const evalProgram = await Program.compile({ loss: graph.loss, ...graph.metrics }, where);
    const lm = buildCausalLM(config);
    const lp = sequenceLogps(lm, {
      inputIds: input("input_ids", ["N", "T"], "int64"),
      attentionMask: input("attention_mask", ["N", "T"]),
      completionMask: input("completion_mask", ["N", "T"]),
    });
    const scorer = await Program.compile({ sum: lp.sum }, where);
    const reference = algorithm.needsReference
      ? await Reference.create(config, weights, { ...where, cache: RefLogpCache.memory() })
      : null;
    const perEpoch = batchesPerEpoch(data.train, run.per_device_train_batch_size);
    return new PageRun(
      settings,
      config,
      tokenizer,
      data,
      source.rows,
      scheduleOf(run, perEpoch),
      model,
      graph,
      step,
      evalProgram,
      scorer,
      reference,
    );
  }

  /** The loss. */
  get algorithm(): Algorithm {
    return this.settings.algorithm;
  }

  /** Optimizer steps taken. */
  get stepCount(): number {
    return this.step.stepCount;
  }

  /**
   * One optimizer step on the next micro-batch of the seeded order.
   *
   * @returns Loss, metrics, gradient norm, learning rate and the step's wall time.
   */
  async trainStep(): Promise<MetricsRow> {
    const start = performance.now();
    const { indices } = this.#order.next().value!;
    const feeds = await this.#feeds("train", indices);
    const lr = learningRate(this.schedule, this.step.stepCount);
    const result = await this.step.step(pickFeeds(this.step.dataInputs, feeds), { lr });
    if (!result.skipped && this.algorithm.state) {
      this.#algorithmState = this.algorithm.state.update(this.#algorithmState, result.metrics);
    }
    return {
      step: this.step.stepCount,
      loss: result.loss,
      ...result.metrics,
      grad_norm: result.gradNorm,
      learning_rate: lr,
      skipped: result.skipped ? 1 : 0,
      step_ms: performance.now() - start,
    };
  }

  /**
   * The loss and metrics on the held-out examples (at most `eval_samples`), averaged.
   *
   * @returns `eval/` metrics.
   */
  async evaluate(): Promise<MetricsRow> {
    const n = Math.min(this.data.eval.length, this.settings.config.eval_samples);
    const size = this.settings.config.per_device_eval_batch_size;
    const sums: Record<string, number> = {};
    const params = this.step.paramFeeds();
    const names = this.evalProgram.inputs.map((spec) => spec.name);
    for (let start = 0; start < n; start += size) {
      const indices = [...Array(Math.min(size, n - start)).keys()].map((i) => start + i);
      const feeds = await this.#feeds("eval", indices);
      const out = await this.evalProgram.run(pickFeeds(names, { ...feeds, ...params }));
      for (const [k, v] of Object.entries(out)) {
        sums[k] = (sums[k] ?? 0) + (v.data[0] as number) * indices.length;
      }
    }
    const row: MetricsRow = { step: this.step.stepCount };
    for (const [k, v] of Object.entries(sums)) row[`eval/${k}`] = v / n;
    return row;
  }

  /**
   * Summed completion log-probs of the first `count` held-out pairs under the current policy, in
   * one batch as `deno task score --batch_size <count>` forms it (so the two can be compared
   * number for number).
   *
   * @param count Pairs to score.
   * @returns One score per pair, with its source row.
   */
  async heldOutScores(count = 4): Promise<HeldOutScore[]> {
    const examples = this.data.eval.slice(0, count);
    if (examples.some((e) => e.kind !== "paired")) return [];
    const batch = collate(examples, { padTokenId: this.tokenizer.padTokenId, idsDtype: "int64" });
    const { shape } = batch;
    const { sum } = await this.scorer.run({
      ...this.step.paramFeeds(),
      input_ids: { dtype: "int64", shape, data: batch.inputIds },
      attention_mask: { dtype: "float32", shape, data: batch.attentionMask },
      completion_mask: { dtype: "float32", shape, data: batch.completionMask },
    });
    return examples.map((e, i) => ({
      row: this.rows[e.row],
      chosen: sum.data[i] as number,
      rejected: sum.data[i + examples.length] as number,
    }));
  }

  /**
   * Greedy completions of the first held-out prompts under the current policy.
   *
   * @param count Prompts.
   * @returns Prompt and completion texts.
   */
  async samples(count = 2): Promise<{ prompt: string; completion: string }[]> {
    this.#generator ??= Generator.create(this.config, { device: this.step.device });
    const generator = await this.#generator;
    const prompts = this.data.eval.slice(0, count).map((e) => e.promptIds);
    const outs = await generator.generate(this.step.paramFeeds(), prompts, {
      max_new_tokens: 32,
      eos_token_id: [...this.tokenizer.stopTokenIds],
      pad_token_id: this.tokenizer.padTokenId,
    });
    return outs.map((ids, i) => ({
      prompt: this.tokenizer.decode(prompts[i]),
      completion: this.tokenizer.decode(ids, { skipSpecialTokens: true }),
    }));
  }

  /**
   * The current policy as a Hugging Face checkpoint: config.json, model.safetensors (float32) and
   * the tokenizer files, zipped (one folder, loadable by `deno task score --model` once unzipped).
   *
   * @returns The zip file's bytes.
   */
  async checkpointZip(): Promise<Uint8Array> {
    const { params } = await this.step.readState();
    const files: Record<string, Uint8Array> = modelFiles({ config: this.config, weights: params });
    for (const [name, text] of Object.entries(this.files.tokenizer)) {
      files[name] = new TextEncoder().encode(text);
    }
    return zipSync(files);
  }

  /** Frees every session. */
  async release(): Promise<void> {
    await Promise.all([
      this.step.release(),
      this.evalProgram.release(),
      this.scorer.release(),
      this.reference?.program.release(),
      this.#generator?.then((g) => g.release()),
    ]);
  }

  /** Step-graph feeds of examples `indices` of a split, with reference log-probs. */
  async #feeds(split: "train" | "eval", indices: number[]): Promise<Record<string, Feed>> {
    const examples = split === "train" ? this.data.train : this.data.eval;
    const batch = makeBatch(examples, indices, {
      withKl: this.graph.withKl,
      padTokenId: this.tokenizer.padTokenId,
    });
    const reference = this.reference
      ? await this.reference.logps(batch, this.graph.groups, split)
      : undefined;
    return batchFeeds(batch, { groups: this.graph.groups, reference, state: this.#algorithmState });
  }
}

/** float32 weights by HF name from safetensors bytes, checked against the architecture. */
function readWeights(bytes: Uint8Array, config: ModelConfig): Record<string, HostTensor> {
  const { tensors } = parseSafetensors(bytes, "model.safetensors");
  const out: Record<string, HostTensor> = {};
  for (const [name, shape] of Object.entries(weightShapes(config))) {
    const t = tensors[name];
    if (!t) throw new Error(`Missing weight "${name}" in model.safetensors`);
    if (t.shape.join() !== shape.join()) {
      throw new Error(
        `Weight "${name}" has shape [${t.shape}] in model.safetensors: expected [${shape}]`,
      );
    }
    out[name] = toFloat32(t);
  }
  return out;
}
