/**
 * The loop's view of the data: micro-batches in a seeded, resumable order, with the rows a step
 * graph expects (G groups of B rows, see `step_graph.ts`), and the reference log-probs those rows
 * need — from the on-disk cache or from a frozen reference model.
 *
 * @module
 */
import { batchIndices, type BatchOptions, collate, exampleLength } from "../data/batch.ts";
import type { Batch, TokenizedExample, UnpairedExample } from "../data/types.ts";
import type { HostTensor, Precision, StoredTensor } from "../graph/mod.ts";
import type { Device } from "../runtime/mod.ts";
import { Program } from "../runtime/mod.ts";
import type { ModelConfig } from "../model/config.ts";
import { buildCausalLM } from "../model/decoder.ts";
import { batchFeedsOf, batchLogps } from "../model/logprobs.ts";
import { FEEDS } from "./step_graph.ts";
import type { RefLogpCache } from "./ref_cache.ts";

/** Settings that fix the batch order. */
export interface OrderOptions {
  /** Examples per micro-batch. */
  batchSize: number;
  /** Shuffling seed (combined with the epoch). */
  seed: number;
  /** Shuffled, or similar lengths together. */
  train_sampling_strategy: BatchOptions["train_sampling_strategy"];
  /** Pad id for collation. */
  padTokenId: number;
}

/**
 * Micro-batches (as example indices) from `start` on, epoch after epoch: a deterministic order,
 * so a resumed run sees exactly the batches an uninterrupted one would.
 *
 * @param examples The training examples.
 * @param options Order settings.
 * @param start Micro-batches already consumed.
 * @returns An endless iterator of `{ epoch, indices }`.
 */
export function* microBatches(
  examples: TokenizedExample[],
  options: OrderOptions,
  start = 0,
): Generator<{ epoch: number; indices: number[] }> {
  const lengths = examples.map(exampleLength);
  let position = 0;
  for (let epoch = 0;; epoch++) {
    const batches = batchIndices(lengths, {
      batch_size: options.batchSize,
      seed: options.seed,
      epoch,
      train_sampling_strategy: options.train_sampling_strategy,
      shuffle: true,
    });
    for (const indices of batches) if (position++ >= start) yield { epoch, indices };
  }
}

/**
 * Rank `rank`'s part of a global micro-batch: every `size`-th index from the `rank`-th, the batch
 * first padded by repeating its own indices to a multiple of `size` (torch's DistributedSampler
 * pads the same way), so every rank's micro-batch has the same length.
 *
 * @param indices The global micro-batch.
 * @param world `rank` and `size`.
 * @returns This rank's indices.
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { shard } from "./batches.ts";
 * deepStrictEqual(shard([5, 6, 7, 8], { rank: 1, size: 2 }), [6, 8]);
 * deepStrictEqual(shard([5, 6, 7], { rank: 1, size: 2 }), [6, 5]);
 * ```
 */
export function shard(indices: number[], world: { rank: number; size: number }): number[] {
  const { rank, size } = world;
  const padded = Math.ceil(indices.length / size) * size;
  const out: number[] = [];
  for (let i = rank; i < padded; i += size) out.push(indices[i % indices.length]);
  return out;
}

/**
 * Examples in one micro-batch of the seeded order: `per_device_train_batch_size` for each of
 * `ranks` (a data-parallel rank trains on its {@linkcode shard} of every one).
 *
 * @param config The run's per-device batch.
 * @param ranks Ranks of the run (1 without data parallel).
 * @returns The global micro-batch.
 * @example
 * ```ts
 * import { globalBatchSize } from "./batches.ts";
 * if (globalBatchSize({ per_device_train_batch_size: 4 }, 2) !== 8) throw new Error("unexpected");
 * ```
 */
export function globalBatchSize(
  config: { per_device_train_batch_size: number },
  ranks: number,
): number {
  return config.per_device_train_batch_size * ranks;
}

/** Micro-batches per epoch. */
export function batchesPerEpoch(examples: TokenizedExample[], batchSize: number): number {
  return Math.ceil(examples.length / batchSize);
}

/**
 * The model batch for `indices`: for KL-estimating losses, each unpaired row i is followed (in a
 * second group) by row i's prompt with the completion of example (i + 1) mod n of the whole split —
 * a fixed mismatched pair, so its reference log-prob can be cached like any other.
 */
export function makeBatch(
  examples: TokenizedExample[],
  indices: number[],
  options: { withKl: boolean; padTokenId: number },
): Batch {
  const rows = indices.map((i) => examples[i]);
  if (!options.withKl) return collate(rows, { padTokenId: options.padTokenId, indices });
  const mismatched = indices.map((i): UnpairedExample => ({
    ...(examples[i] as UnpairedExample),
    completionIds: (examples[(i + 1) % examples.length] as UnpairedExample).completionIds,
  }));
  return collate([...rows, ...mismatched], {
    padTokenId: options.padTokenId,
    indices: [...indices, ...indices],
  });
}

/** Per-batch feeds of the step graph (a program takes the subset it declares). */
export function batchFeeds(
  batch: Batch,
  options: { groups: number; reference?: Float32Array; state?: Record<string, number> },
): Record<string, HostTensor | number> {
  const [N] = batch.shape;
  const B = N / options.groups;
  const f32 = (data: Float32Array, shape: number[]): HostTensor => ({
    dtype: "float32",
    shape,
    data,
  });
  const feeds: Record<string, HostTensor | number> = batchFeedsOf(batch);
  if (options.reference) feeds[FEEDS.reference] = f32(options.reference, [options.groups, B]);
  if (batch.kind === "unpaired") feeds[FEEDS.labels] = f32(batch.labels.slice(0, B), [B]);
  if (batch.kind === "paired") {
    const { score_chosen, score_rejected } = batch.extras;
    if (score_chosen) feeds[FEEDS.chosenScores] = f32(score_chosen, [B]);
    if (score_rejected) feeds[FEEDS.rejectedScores] = f32(score_rejected, [B]);
  }
  for (const [k, v] of Object.entries(options.state ?? {})) feeds[`state.${k}`] = v;
  return feeds;
}

/** The feeds named `names`, with a clear error for any that `feeds` lacks. */
export function pickFeeds<T>(names: string[], feeds: Record<string, T>): Record<string, T> {
  const out: Record<string, T> = {};
  for (const name of names) {
    if (!(name in feeds)) {
      const why = name.endsWith("scores")
        ? ": the loss needs score_chosen / score_rejected columns in every row"
        : "";
      throw new Error(`Missing input "${name}" for this batch${why}`);
    }
    out[name] = feeds[name];
  }
  return out;
}

/**
 * Reference log-probs: from the cache where it has them, else from a frozen reference model.
 */
export class Reference {
  computed = 0;

  private constructor(
    /** The reference model, or null when only the cache answers. */
    readonly program: Program | null,
    readonly cache: RefLogpCache,
    /** Weights fed with every batch (in-memory ones; see {@link Reference.create}). */
    private readonly weights: Record<string, HostTensor>,
  ) {}

  /**
   * Compiles the reference model. Weights that lie in checkpoint files are built in as
   * constants (mapped by onnxruntime, never read into JavaScript); weights in memory (the page's)
   * are fed as inputs, as the policy's are, because onnxruntime rewrites in-memory constants
   * (prepacking, folding) into kernels that round differently: fed, they give the policy's
   * log-probs bit for bit at step 0, as the file-mapped ones do.
   *
   * @param config Architecture.
   * @param weights Frozen weights (in memory, or where they lie in the checkpoint files).
   * @param options Device, cache and precision (as the policy's, TRL's autocast covers both).
   * @returns The reference.
   */
  static async create(
    config: ModelConfig,
    weights: Record<string, HostTensor | StoredTensor>,
    options: { device: Device; cache: RefLogpCache; precision?: Precision },
  ): Promise<Reference> {
    const inMemory = Object.values(weights).every((w) => !("file" in w));
    const { precision } = options;
    const model = buildCausalLM(config, inMemory ? { precision } : { frozen: weights, precision });
    const lp = batchLogps(model);
    const program = await Program.compile({ logps: lp.sum }, { device: options.device });
    const fed = inMemory ? weights as Record<string, HostTensor> : {};
    return new Reference(program, options.cache, fed);
  }

  /**
   * Reference log-probs from `cache` alone (a benchmark fills it as a run's cache would be).
   *
   * @param cache The values.
   * @returns The reference; a batch the cache lacks is an error naming the example.
   */
  static cacheOnly(cache: RefLogpCache): Reference {
    return new Reference(null, cache, {});
  }

  /**
   * Reference log-probs of a batch as (G,B), from the cache where possible (cache keys are
   * `split:index`, values one per group). `split` null: fresh text (generated pairs), no cache.
   */
  async logps(batch: Batch, groups: number, split: string | null): Promise<Float32Array> {
    const B = batch.shape[0] / groups;
    const keys = split === null ? [] : batch.indices.slice(0, B).map((i) => `${split}:${i}`);
    const cached = keys.map((k) => this.cache.get(k));
    const out = new Float32Array(groups * B);
    if (split !== null && cached.every((v) => v !== undefined)) {
      cached.forEach((v, b) => v!.forEach((x, g) => out[g * B + b] = x));
      return out;
    }
    if (!this.program) {
      const missing = keys.find((_, b) => cached[b] === undefined) ?? "generated text";
      throw new Error(
        `Missing reference log-probs of ${missing}: no reference model to compute them`,
      );
    }
    const feeds = batchFeeds(batch, { groups });
    const names = this.program.inputs.map((spec) => spec.name);
    const { logps } = await this.program.run(pickFeeds(names, { ...feeds, ...this.weights }));
    const values = logps.data as Float32Array;
    this.computed += B;
    keys.forEach((k, b) =>
      this.cache.set(k, Array.from({ length: groups }, (_, g) => values[g * B + b]))
    );
    out.set(values);
    return out;
  }
}
