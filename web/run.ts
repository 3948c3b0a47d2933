/**
 * The page's shell around the {@linkcode Session} `deno task train` drives: inputs from bytes and
 * text only (config.json, safetensors, tokenizer JSON, an uploaded or embedded JSONL), then the
 * same steps, batch order, evaluation and metrics as the CLI, on whatever runtime
 * `Program.compile` picks (onnxruntime-web in a browser; the native backend on Deno, which is how
 * the tests check this file). Its settings are a config resolved by `trainer/config.ts` as the
 * CLI resolves one (`configs/tiny.yaml` under the controls' values). The page adds held-out
 * scores as `deno task score` prints them, and the checkpoint as a zip.
 *
 * @module
 */
import { zipSync } from "fflate";
import { collate } from "../data/batch.ts";
import { type PreparedData, prepareRows } from "../data/dataset.ts";
import { rowsFromText } from "../data/sources.ts";
import type { Row } from "../data/types.ts";
import { type ModelConfig, parseConfig } from "../model/config.ts";
import { buildCausalLM } from "../model/decoder.ts";
import { batchFeedsOf, batchLogps } from "../model/logprobs.ts";
import { modelFiles } from "../model/save.ts";
import { tokenizerFromTexts } from "../model/tokenizer_json.ts";
import { weightsFromBytes } from "../model/weights.ts";
import { parseDevice, Program } from "../runtime/mod.ts";
import type { Resolved } from "../trainer/config.ts";
import { pickFeeds } from "../trainer/batches.ts";
import type { MetricsRow } from "../trainer/log.ts";
import { RefLogpCache } from "../trainer/ref_cache.ts";
import { dataConfigOf } from "../data/config.ts";
import { Session } from "../trainer/session.ts";

export type { MetricsRow };

/** A model's files, as fetched or uploaded. */
export interface ModelFiles {
  /** `config.json`, parsed. */
  config: Record<string, unknown>;
  /** `model.safetensors`. */
  weights: Uint8Array;
  /** Tokenizer files by name (`tokenizer.json`, `tokenizer_config.json`, ...), as text. */
  tokenizer: Record<string, string>;
}

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
  private constructor(
    /** The resolved config (`configs/tiny.yaml` and the page's controls). */
    readonly settings: Resolved,
    readonly config: ModelConfig,
    readonly data: PreparedData,
    readonly rows: Row[],
    /** The run core: step, evaluation, samples. */
    readonly session: Session,
    private readonly files: ModelFiles,
    private readonly scorer: Program,
  ) {}

  /**
   * Prepares the data and compiles the session and the scoring graph.
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
    if (run.use_peft) {
      throw new Error("The page trains every weight (its zip is a full model): set use_peft false");
    }
    if (run.bf16) {
      // Browsers have no bf16 arithmetic: the page would only emulate it, slower than float32.
      throw new Error("The page trains in float32: set bf16 false (bf16 runs on --device cuda)");
    }
    const config = parseConfig(model.config);
    const weights = weightsFromBytes(model.weights, config);
    const tokenizer = tokenizerFromTexts(model.tokenizer, model.config);
    const kind = algorithm.data === "both" ? "unpaired" : algorithm.data;
    const source = rowsFromText(options.data.text, options.data.name);
    const data = await prepareRows(source, {
      ...dataConfigOf(run),
      dataset_name: options.data.name,
    }, {
      tokenizer,
      kind,
    });
    const session = await Session.create(
      {
        tokenizer,
        policy: { config, model: {} },
        params: weights,
        data,
        reference: { config, weights },
      },
      settings,
      {
        device: parseDevice(run.use_cpu ? "cpu" : run.device),
        cache: RefLogpCache.memory(),
      },
    );
    // Where the step landed ("auto" decides once).
    const { sum } = batchLogps(buildCausalLM(config));
    const scorer = await Program.compile({ sum }, { device: session.device });
    return new PageRun(settings, config, data, source.rows, session, model, scorer);
  }

  /** Steps done (applied or skipped). */
  get stepCount(): number {
    return this.session.position.step;
  }

  /**
   * The next optimizer step (`gradient_accumulation_steps` micro-batches of the seeded order),
   * then the held-out evaluation when `eval_steps` or the last step says so, as `deno task train`
   * does.
   *
   * @returns The step's log row (with its wall time, `step_ms`), and the evaluation row or null.
   */
  async advance(): Promise<{ row: MetricsRow; evaluation: MetricsRow | null }> {
    const start = performance.now();
    const { at, warnings } = await this.session.step();
    for (const warning of warnings) console.warn(`Warning: ${warning}`);
    const row = { ...this.session.takeRow(), step_ms: performance.now() - start };
    const every = this.settings.config.eval_steps;
    const due = (every > 0 && at % every === 0) || at === this.session.schedule.total;
    return { row, evaluation: due ? await this.session.evaluate() : null };
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
    const { padTokenId } = this.session.inputs.tokenizer;
    // The scorer reads the sums alone: the batch inputs it declares (not the completion mask).
    const names = this.scorer.inputs.map((spec) => spec.name);
    const { sum } = await this.scorer.run(pickFeeds(names, {
      ...this.session.paramFeeds(),
      ...batchFeedsOf(collate(examples, { padTokenId })),
    }));
    return examples.map((e, i) => ({
      row: this.rows[e.row],
      chosen: sum.data[i] as number,
      rejected: sum.data[i + examples.length] as number,
    }));
  }

  /**
   * The current policy as a Hugging Face checkpoint: config.json, model.safetensors (float32) and
   * the tokenizer files, zipped (one folder, loadable by `deno task score --model` once unzipped).
   *
   * @returns The zip file's bytes.
   */
  async checkpointZip(): Promise<Uint8Array> {
    const { params } = await this.session.readState();
    const files: Record<string, Uint8Array> = modelFiles({ config: this.config, weights: params });
    for (const [name, text] of Object.entries(this.files.tokenizer)) {
      files[name] = new TextEncoder().encode(text);
    }
    return zipSync(files);
  }

  /** Frees every session. */
  async release(): Promise<void> {
    await Promise.all([this.session.release(), this.scorer.release()]);
  }
}
