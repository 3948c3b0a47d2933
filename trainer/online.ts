/**
 * Online pairs (Online DPO, arXiv 2402.04792): for each prompt the current policy samples two
 * completions, a judge picks the better one, and the judged pairs become an ordinary paired batch.
 * Pairs are judged `judge_concurrency` at a time. Ties and judge failures are counted and skipped,
 * never fatal to the run; the first failure of each kind is shown with its message, and a step
 * where more than half of the pairs failed gets a warning.
 *
 * @module
 */
import { collate } from "../data/batch.ts";
import { readRows } from "../data/sources.ts";
import { encodePrompt } from "../data/template.ts";
import type { Batch, PairedExample, TokenizedExample } from "../data/types.ts";
import type { Device, Feed } from "../runtime/mod.ts";
import {
  createJudge,
  type Judge,
  JudgeFailure,
  type JudgeSettings,
  type Verdict,
} from "../judges/mod.ts";
import type { ModelConfig } from "../model/config.ts";
import type { CausalLMOptions } from "../model/decoder.ts";
import { Generator } from "../model/generate.ts";
import type { Tokenizer } from "../model/tokenizer.ts";
import type { TrainConfig } from "./config.ts";

/** Sampling settings (the online_dpo hyperparameters of the same names). */
export interface SamplingSettings {
  temperature: number;
  top_p: number;
  max_new_tokens: number;
}

/** Judge failures of one kind: how many, and the first one's message. */
export interface FailureKind {
  count: number;
  message: string;
}

/**
 * The sampling and judge settings of an online run, out of its config.
 *
 * @param config A resolved config whose loss is online (it sets these keys).
 * @returns Sampling and judge settings.
 */
export function onlineSettings(
  config: TrainConfig,
): { sampling: SamplingSettings; judge: JudgeSettings & { judge_concurrency: number } } {
  const { temperature, top_p, max_new_tokens, judge } = config;
  const { judge_timeout, judge_max_retries, judge_concurrency } = config;
  if (
    temperature === null || top_p === null || max_new_tokens === null || judge === null ||
    judge_timeout === null || judge_max_retries === null || judge_concurrency === null
  ) {
    throw new Error(`Loss "${config.loss}" is not online: it sets no sampling or judge keys`);
  }
  return {
    sampling: { temperature, top_p, max_new_tokens },
    judge: {
      judge,
      judge_url: config.judge_url ?? undefined,
      judge_model: config.judge_model ?? undefined,
      judge_api_key_env: config.judge_api_key_env ?? undefined,
      reward_model: config.reward_model_path ?? undefined,
      judge_timeout,
      judge_max_retries,
      judge_concurrency,
    },
  };
}

/** What one round of generation and judging produced. */
export interface JudgedPairs {
  /** Pairs with a winner, as tokenized examples. */
  examples: PairedExample[];
  /** Every generated pair and its verdict, for samples.jsonl. */
  records: { prompt: string; a: string; b: string; verdict: Verdict | "failed" }[];
  /** Prompts whose two completions tied. */
  ties: number;
  /** Failed judgements by reason. */
  failures: Record<string, FailureKind>;
  /** Mean completion length in tokens (over both samples of every prompt). */
  meanLength: number;
}

/**
 * Samples two completions per prompt from `weights` and judges them.
 *
 * @param prompts Prompt token ids.
 * @param context Generator, current weights, judge, tokenizer, sampling settings and seed.
 * @returns The judged pairs and counts.
 */
export async function judgePairs(
  prompts: number[][],
  context: {
    generator: Generator;
    weights: Record<string, Feed>;
    judge: Judge;
    tokenizer: Tokenizer;
    sampling: SamplingSettings;
    seed: number;
    /** Pairs judged at the same time. @default 1 */
    concurrency?: number;
  },
): Promise<JudgedPairs> {
  const { generator, weights, judge, tokenizer, sampling, seed } = context;
  const outs = await generator.generate(weights, prompts.flatMap((p) => [p, p]), {
    do_sample: true,
    temperature: sampling.temperature,
    top_p: sampling.top_p,
    max_new_tokens: sampling.max_new_tokens,
    eos_token_id: [...tokenizer.stopTokenIds],
    pad_token_id: tokenizer.padTokenId,
    seed,
  });
  const result: JudgedPairs = { examples: [], records: [], ties: 0, failures: {}, meanLength: 0 };
  result.meanLength = outs.reduce((n, o) => n + o.length, 0) / Math.max(1, outs.length);
  const texts = prompts.map((promptIds, i) => ({
    prompt: tokenizer.decode(promptIds),
    a: tokenizer.decode(outs[2 * i], { skipSpecialTokens: true }),
    b: tokenizer.decode(outs[2 * i + 1], { skipSpecialTokens: true }),
  }));
  const verdicts = await mapConcurrently(texts, context.concurrency ?? 1, async (t) => {
    try {
      return await judge.judge(t.prompt, t.a, t.b);
    } catch (error) {
      const reason = error instanceof JudgeFailure ? error.reason : "exception";
      const kind = result.failures[reason] ??= { count: 0, message: (error as Error).message };
      kind.count++;
      return "failed" as const;
    }
  });
  for (const [i, promptIds] of prompts.entries()) {
    const verdict = verdicts[i];
    result.records.push({ ...texts[i], verdict });
    if (verdict === "tie") result.ties++;
    if (verdict !== "a" && verdict !== "b") continue;
    const [a, b] = [outs[2 * i], outs[2 * i + 1]];
    const [chosenIds, rejectedIds] = verdict === "a" ? [a, b] : [b, a];
    result.examples.push({ kind: "paired", promptIds, chosenIds, rejectedIds, row: i });
  }
  return result;
}

/** `fn` over `items` with at most `limit` calls in flight; results in input order. */
async function mapConcurrently<T, R>(
  items: T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return results;
}

/**
 * Prompts of a prompt-only dataset (rows with a `prompt` string and no completions), rendered
 * with the chat template and its generation prompt.
 *
 * @param dataset File or Hub id.
 * @param tokenizer The policy's tokenizer.
 * @param options Split and row limit.
 * @returns Prompt token ids, or null when the rows are not prompt-only.
 */
export async function promptOnlyRows(
  dataset: string,
  tokenizer: Tokenizer,
  options: { split?: string; limit?: number },
): Promise<number[][] | null> {
  const source = await readRows(dataset, { split: options.split, limit: options.limit });
  const columns = new Set(source.columns);
  if (!columns.has("prompt") || ["chosen", "rejected", "completion"].some((c) => columns.has(c))) {
    return null;
  }
  const prompts: number[][] = [];
  for (const row of source.rows) {
    if (typeof row.prompt !== "string" || row.prompt === "") continue;
    const text = tokenizer.applyChatTemplate([{ role: "user", content: row.prompt }], {
      addGenerationPrompt: true,
    });
    prompts.push(encodePrompt(tokenizer, text));
  }
  return prompts;
}

/**
 * Prompts as the prepared data of a run: paired examples with empty completions (only their
 * prompts are read), no evaluation split.
 */
export function promptData(prompts: number[][]) {
  const train: PairedExample[] = prompts.map((promptIds, row) => ({
    kind: "paired",
    promptIds,
    chosenIds: [],
    rejectedIds: [],
    row,
  }));
  return {
    kind: "paired" as const,
    train: train as TokenizedExample[],
    eval: [] as TokenizedExample[],
    files: [] as string[],
    skips: { summary: (kept: number) => `Kept ${kept} prompts` },
  };
}

/** The online pair source of a run: generator, judge, and the counts since the last log. */
export class OnlineSource {
  #counts = { prompts: 0, pairs: 0, ties: 0, tokens: 0, completions: 0 };
  #failures: Record<string, number> = {};
  #step = { prompts: 0, failures: {} as Record<string, FailureKind> };
  #shown = new Set<string>();
  #records: (JudgedPairs["records"][number] & { step: number })[] = [];

  private constructor(
    readonly generator: Generator,
    readonly judge: Judge,
    readonly tokenizer: Tokenizer,
    readonly sampling: SamplingSettings,
    readonly concurrency: number,
  ) {}

  /**
   * Compiles the generator and loads the judge.
   *
   * @param config The policy's architecture.
   * @param options Tokenizer, sampling and judge settings (with `judge_concurrency`), device.
   * @returns The source.
   */
  static async create(
    config: ModelConfig,
    options: {
      tokenizer: Tokenizer;
      sampling: SamplingSettings;
      judge: JudgeSettings & { judge_concurrency: number };
      device: Device;
      model?: Pick<CausalLMOptions, "frozen" | "lora">;
    },
  ): Promise<OnlineSource> {
    const generator = await Generator.create(config, {
      device: options.device,
      model: options.model,
    });
    const judge = await createJudge(options.judge);
    return new OnlineSource(
      generator,
      judge,
      options.tokenizer,
      options.sampling,
      options.judge.judge_concurrency,
    );
  }

  /**
   * A paired batch judged from two samples per prompt of `examples[indices]`, or null when the
   * judge decided no pair (all ties or failures). The first failure of each kind is printed.
   */
  async batch(
    examples: TokenizedExample[],
    indices: number[],
    context: { weights: Record<string, Feed>; seed: number; step: number },
  ): Promise<Batch | null> {
    const judged = await judgePairs(indices.map((i) => examples[i].promptIds), {
      generator: this.generator,
      judge: this.judge,
      tokenizer: this.tokenizer,
      sampling: this.sampling,
      weights: context.weights,
      seed: context.seed,
      concurrency: this.concurrency,
    });
    const c = this.#counts;
    c.prompts += indices.length;
    c.pairs += judged.examples.length;
    c.ties += judged.ties;
    c.tokens += judged.meanLength * 2 * indices.length;
    c.completions += 2 * indices.length;
    this.#step.prompts += indices.length;
    for (const [reason, kind] of Object.entries(judged.failures)) {
      this.#failures[reason] = (this.#failures[reason] ?? 0) + kind.count;
      const step = this.#step.failures[reason] ??= { count: 0, message: kind.message };
      step.count += kind.count;
      if (!this.#shown.has(reason)) {
        this.#shown.add(reason);
        console.error(
          `Warning: judge failure (${reason}): ${kind.message} ` +
            `(shown once per kind; all are counted in judge/failures)`,
        );
      }
    }
    for (const r of judged.records) this.#records.push({ step: context.step, ...r });
    if (judged.examples.length === 0) return null;
    return collate(judged.examples, {
      padTokenId: this.tokenizer.padTokenId,
      indices: judged.examples.map((_, k) => k),
    });
  }

  /**
   * Ends a step's judging: a description of its failures when more than half of its pairs
   * failed (e.g. `the judge failed on 4 of 4 pairs: http_500 ×4`), else null.
   *
   * @returns The warning text, or null.
   */
  endStep(): string | null {
    const { prompts, failures } = this.#step;
    this.#step = { prompts: 0, failures: {} };
    const failed = Object.values(failures).reduce((n, k) => n + k.count, 0);
    if (failed * 2 <= prompts) return null;
    const kinds = Object.entries(failures).map(([reason, k]) => `${reason} ×${k.count}`);
    return `the judge failed on ${failed} of ${prompts} pairs: ${kinds.join(", ")}`;
  }

  /** Judge and length metrics since the last call (then reset). */
  takeMetrics(): Record<string, number> {
    const c = this.#counts;
    const failed = Object.values(this.#failures).reduce((a, b) => a + b, 0);
    const metrics: Record<string, number> = {
      "judge/pairs": c.pairs,
      "judge/ties": c.ties / Math.max(1, c.prompts),
      "judge/failures": failed,
      "completions/mean_length": c.tokens / Math.max(1, c.completions),
    };
    for (const [reason, n] of Object.entries(this.#failures)) {
      metrics[`judge/failures/${reason}`] = n;
    }
    this.#counts = { prompts: 0, pairs: 0, ties: 0, tokens: 0, completions: 0 };
    this.#failures = {};
    return metrics;
  }

  /** Generated pairs and verdicts since the last call, as JSON lines (then cleared). */
  takeRecords(): string {
    const lines = this.#records.map((r) => JSON.stringify(r) + "\n").join("");
    this.#records = [];
    return lines;
  }

  /** Frees the generator. */
  async release(): Promise<void> {
    await this.generator.release();
  }
}
