/**
 * Online pairs (Online DPO, arXiv 2402.04792): for each prompt the current policy samples two
 * completions, a judge picks the better one, and the judged pairs become an ordinary paired batch.
 * Ties and judge failures are counted and skipped, never fatal to the run.
 *
 * @module
 */
import { collate } from "../data/batch.ts";
import { readRows } from "../data/sources.ts";
import { encodePrompt } from "../data/template.ts";
import type { Batch, PairedExample, TokenizedExample } from "../data/types.ts";
import type { Device, Feed } from "../graph/mod.ts";
import {
  createJudge,
  type Judge,
  JudgeFailure,
  type JudgeSettings,
  type Verdict,
} from "../judges/mod.ts";
import type { ModelConfig } from "../model/config.ts";
import { Generator } from "../model/generate.ts";
import type { Tokenizer } from "../model/tokenizer.ts";

/** Sampling settings (the online_dpo hyperparameters of the same names). */
export interface SamplingSettings {
  temperature: number;
  top_p: number;
  max_new_tokens: number;
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
  failures: Record<string, number>;
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
  },
): Promise<JudgedPairs> {
  const { generator, weights, judge, tokenizer, sampling, seed } = context;
  const outs = await generator.generate(weights, prompts.flatMap((p) => [p, p]), {
    do_sample: true,
    temperature: sampling.temperature,
    top_p: sampling.top_p,
    max_new_tokens: sampling.max_new_tokens,
    eos_token_id: tokenizer.eosTokenId,
    pad_token_id: tokenizer.padTokenId,
    seed,
  });
  const result: JudgedPairs = { examples: [], records: [], ties: 0, failures: {}, meanLength: 0 };
  result.meanLength = outs.reduce((n, o) => n + o.length, 0) / Math.max(1, outs.length);
  for (const [i, promptIds] of prompts.entries()) {
    const [a, b] = [outs[2 * i], outs[2 * i + 1]];
    const prompt = tokenizer.decode(promptIds);
    const [textA, textB] = [a, b].map((ids) => tokenizer.decode(ids, { skipSpecialTokens: true }));
    let verdict: Verdict | "failed";
    try {
      verdict = await judge.judge(prompt, textA, textB);
    } catch (error) {
      const reason = error instanceof JudgeFailure ? error.reason : "error";
      result.failures[reason] = (result.failures[reason] ?? 0) + 1;
      verdict = "failed";
    }
    result.records.push({ prompt, a: textA, b: textB, verdict });
    if (verdict === "tie") result.ties++;
    if (verdict !== "a" && verdict !== "b") continue;
    const [chosenIds, rejectedIds] = verdict === "a" ? [a, b] : [b, a];
    result.examples.push({ kind: "paired", promptIds, chosenIds, rejectedIds, row: i });
  }
  return result;
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
  #counts = { prompts: 0, pairs: 0, ties: 0, failures: 0, tokens: 0, completions: 0 };
  #records: (JudgedPairs["records"][number] & { step: number })[] = [];

  private constructor(
    readonly generator: Generator,
    readonly judge: Judge,
    readonly tokenizer: Tokenizer,
    readonly sampling: SamplingSettings,
  ) {}

  /**
   * Compiles the generator and loads the judge.
   *
   * @param config The policy's architecture.
   * @param options Tokenizer, sampling and judge settings, device.
   * @returns The source.
   */
  static async create(
    config: ModelConfig,
    options: {
      tokenizer: Tokenizer;
      sampling: SamplingSettings;
      judge: JudgeSettings;
      device: Device;
    },
  ): Promise<OnlineSource> {
    const generator = await Generator.create(config, { device: options.device });
    const judge = await createJudge(options.judge);
    return new OnlineSource(generator, judge, options.tokenizer, options.sampling);
  }

  /**
   * A paired batch judged from two samples per prompt of `examples[indices]`, or null when the
   * judge decided no pair (all ties or failures).
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
    });
    const c = this.#counts;
    c.prompts += indices.length;
    c.pairs += judged.examples.length;
    c.ties += judged.ties;
    c.failures += Object.values(judged.failures).reduce((a, b) => a + b, 0);
    c.tokens += judged.meanLength * 2 * indices.length;
    c.completions += 2 * indices.length;
    for (const r of judged.records) this.#records.push({ step: context.step, ...r });
    if (judged.examples.length === 0) return null;
    return collate(judged.examples, {
      padTokenId: this.tokenizer.padTokenId,
      indices: judged.examples.map((_, k) => k),
    });
  }

  /** Judge and length metrics since the last call (then reset). */
  takeMetrics(): Record<string, number> {
    const c = this.#counts;
    const metrics = {
      "judge/pairs": c.pairs,
      "judge/ties": c.ties / Math.max(1, c.prompts),
      "judge/failures": c.failures,
      "completions/mean_length": c.tokens / Math.max(1, c.completions),
    };
    this.#counts = { prompts: 0, pairs: 0, ties: 0, failures: 0, tokens: 0, completions: 0 };
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
