/**
 * Text generation for samples during training and for online methods: greedy decoding or
 * sampling (temperature, top-p), stopping at EOS or after `max_new_tokens`, with a KV cache.
 *
 * Two graphs are compiled once per model: "prefill" runs the left-padded prompts (N,T) and
 * returns the last position's logits and every layer's keys and values; "decode" takes one new
 * token per row, the attention mask so far and those caches (N,KV,P,d), and returns the next
 * logits and the caches grown by one. Weights are graph inputs, so the same compiled generator
 * follows a model that is being trained. Token choice happens on the host.
 *
 * @module
 */
import { input, type Tensor } from "../graph/mod.ts";
import { type Feed, Program, type Value } from "../runtime/mod.ts";
import type { ModelConfig } from "./config.ts";
import { buildCausalLM, type CausalLMOptions } from "./decoder.ts";

/** Decoding options (HF `generate` names). */
export interface GenerateOptions {
  /**
   * Tokens to generate at most, per row.
   * @default 64
   */
  max_new_tokens?: number;
  /**
   * Sample from the distribution; false: greedy (argmax).
   * @default false
   */
  do_sample?: boolean;
  /**
   * Logits are divided by this before sampling.
   * @default 1
   */
  temperature?: number;
  /**
   * Nucleus sampling: keep the most likely tokens whose probabilities sum to at least this.
   * @default 1
   */
  top_p?: number;
  /** Generation stops for a row after any of these ids (kept in the output). */
  eos_token_id?: number | number[];
  /**
   * Id written after a row has stopped (never returned); defaults to the first EOS id or 0.
   */
  pad_token_id?: number;
  /**
   * Seed of the sampler.
   * @default 0
   */
  seed?: number;
  /**
   * Use the KV cache; false recomputes the whole sequence at every step (for testing).
   * @default true
   */
  use_cache?: boolean;
}

/** A seeded uniform generator (mulberry32). */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Picks the next token from one row of logits.
 *
 * @param logits The row's logits (V).
 * @param options Sampling settings; greedy unless `do_sample`.
 * @param rand Uniform [0, 1) generator.
 * @returns The token id.
 * @example
 * ```ts
 * import { pickToken } from "./generate.ts";
 * if (pickToken(new Float32Array([0, 3, 1]), {}, Math.random) !== 1) throw new Error("unexpected");
 * ```
 */
export function pickToken(
  logits: Float32Array,
  options: Pick<GenerateOptions, "do_sample" | "temperature" | "top_p">,
  rand: () => number,
): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  if (!options.do_sample) return best;
  const temperature = options.temperature ?? 1;
  if (!(temperature > 0)) {
    throw new Error(`Invalid temperature ${temperature}: expected > 0 (or do_sample: false)`);
  }
  const probs = Array.from(logits, (l) => Math.exp((l - logits[best]) / temperature));
  const total = probs.reduce((a, b) => a + b, 0);
  const order = probs.map((_, i) => i).sort((a, b) => probs[b] - probs[a]);
  const topP = options.top_p ?? 1;
  // Nucleus: the smallest prefix of the sorted tokens whose mass reaches top_p (at least one).
  const kept: number[] = [];
  let mass = 0;
  for (const i of order) {
    kept.push(i);
    mass += probs[i] / total;
    if (mass >= topP) break;
  }
  let r = rand() * kept.reduce((a, i) => a + probs[i], 0);
  for (const i of kept) {
    r -= probs[i];
    if (r <= 0) return i;
  }
  return kept[kept.length - 1];
}

/** Compiled prefill and decode graphs of one architecture. */
export class Generator {
  private constructor(
    readonly config: ModelConfig,
    readonly prefill: Program,
    readonly decode: Program,
  ) {}

  /**
   * Compiles the prefill and decode graphs of `config`'s architecture.
   *
   * @param config The model config.
   * @param options `device` to run on; `model`: how the weights enter the graph (frozen base and
   *   LoRA adapters: the weights fed to `generate` are then the adapters).
   * @returns The generator.
   * @example
   * ```ts
   * import { Generator, loadConfig, loadWeights } from "./mod.ts";
   * const config = await loadConfig("model/tiny");
   * const gen = await Generator.create(config);
   * const [out] = await gen.generate(await loadWeights("model/tiny", config), [[509]], {
   *   max_new_tokens: 3,
   * });
   * if (out.length === 0 || out.length > 3) throw new Error("unexpected");
   * await gen.release();
   * ```
   */
  static async create(
    config: ModelConfig,
    options: {
      device?: "cpu" | "cuda" | "webgpu" | "auto";
      model?: Pick<CausalLMOptions, "frozen" | "lora">;
    } = {},
  ): Promise<Generator> {
    const model = buildCausalLM(config, options.model);
    const { num_key_value_heads: KV, head_dim: d } = config;
    const first = model.step(
      input("input_ids", ["N", "T"], "int64"),
      input("attention_mask", ["N", "T"]),
      null,
    );
    const prefillOut: Record<string, Tensor> = {
      logits: model.head(first.hidden.slice(1, -1).squeeze(1)),
    };
    first.present.forEach((c, i) => {
      prefillOut[`present.${i}.key`] = c.key;
      prefillOut[`present.${i}.value`] = c.value;
    });
    const past = first.present.map((_, i) => ({
      key: input(`past.${i}.key`, ["N", KV, "P", d]),
      value: input(`past.${i}.value`, ["N", KV, "P", d]),
    }));
    const next = model.step(
      input("input_ids", ["N", 1], "int64"),
      input("attention_mask", ["N", "K"]),
      past,
    );
    const decodeOut: Record<string, Tensor> = { logits: model.head(next.hidden.squeeze(1)) };
    next.present.forEach((c, i) => {
      decodeOut[`present.${i}.key`] = c.key;
      decodeOut[`present.${i}.value`] = c.value;
    });
    const device = options.device;
    return new Generator(
      config,
      await Program.compile(prefillOut, { device }),
      await Program.compile(decodeOut, { device }),
    );
  }

  /**
   * Generates a completion for each prompt (batched, left-padded).
   *
   * @param weights Weights by HF name (host tensors, or a train step's `paramFeeds()`).
   * @param prompts Token ids of each prompt (at least one token each).
   * @param options Decoding options.
   * @returns The generated ids of each prompt, up to and including its EOS.
   */
  async generate(
    weights: Record<string, Feed>,
    prompts: number[][],
    options: GenerateOptions = {},
  ): Promise<number[][]> {
    if (prompts.length === 0) return [];
    if (prompts.some((p) => p.length === 0)) {
      throw new Error("Cannot generate from an empty prompt");
    }
    const eos = new Set([options.eos_token_id ?? this.config.eos_token_id ?? []].flat());
    const pad = options.pad_token_id ?? [...eos][0] ?? 0;
    const maxNew = options.max_new_tokens ?? 64;
    const rand = random(options.seed ?? 0);
    const N = prompts.length;
    const width = prompts.reduce((w, p) => Math.max(w, p.length), 0);
    // Left padding, so every row's next token goes at the same position.
    const rows = prompts.map((p) => [...Array(width - p.length).fill(pad), ...p]);
    const mask = prompts.map((p) => [...Array(width - p.length).fill(0), ...p.map(() => 1)]);
    const out: number[][] = prompts.map(() => []);
    const done = new Array(N).fill(false);
    const weightFeeds = Object.fromEntries(
      this.prefill.inputs.filter((s) => s.name in weights).map((s) => [s.name, weights[s.name]]),
    );
    let logits = await this.#run(this.prefill, rows, mask, weightFeeds, {});
    try {
      for (let step = 0; step < maxNew; step++) {
        const V = logits.shape[1];
        const tokens = prompts.map((_, n) => {
          if (done[n]) return pad;
          const id = pickToken(logits.data.subarray(n * V, (n + 1) * V), options, rand);
          out[n].push(id);
          if (eos.has(id)) done[n] = true;
          return id;
        });
        if (done.every(Boolean) || step === maxNew - 1) break;
        tokens.forEach((id, n) => {
          rows[n].push(id);
          mask[n].push(1);
        });
        const previous = logits;
        logits = options.use_cache === false
          ? await this.#run(this.prefill, rows, mask, weightFeeds, {})
          : await this.#run(this.decode, tokens.map((t) => [t]), mask, weightFeeds, logits.caches);
        release(previous.caches);
      }
    } finally {
      release(logits.caches);
    }
    return out;
  }

  async #run(
    program: Program,
    ids: number[][],
    mask: number[][],
    weights: Record<string, Feed>,
    past: Record<string, Feed>,
  ): Promise<{ shape: number[]; data: Float32Array; caches: Record<string, Value> }> {
    const T = ids[0].length, K = mask[0].length;
    const raw = await program.runRaw({
      ...weights,
      ...past,
      input_ids: {
        dtype: "int64",
        shape: [ids.length, T],
        data: BigInt64Array.from(ids.flat(), BigInt),
      },
      attention_mask: {
        dtype: "float32",
        shape: [mask.length, K],
        data: Float32Array.from(mask.flat()),
      },
    });
    const caches: Record<string, Value> = {};
    for (const [name, t] of Object.entries(raw)) {
      if (name.startsWith("present.")) caches[name.replace("present.", "past.")] = t;
    }
    const logits = await program.read(raw.logits).finally(() => raw.logits.release());
    return { shape: logits.shape, data: logits.data as Float32Array, caches };
  }

  /** Frees both sessions. */
  async release(): Promise<void> {
    await this.prefill.release();
    await this.decode.release();
  }
}

/** Frees key/value caches once the next step has its own. */
function release(caches: Record<string, Value>): void {
  for (const v of Object.values(caches)) v.release();
}
