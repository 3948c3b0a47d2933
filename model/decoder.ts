/**
 * The decoder-only transformer of the supported architectures, written with the graph DSL.
 *
 * Llama (Touvron et al. 2023, arXiv:2302.13971; Llama 3: arXiv:2407.21783), per layer:
 *   h = x + Attn(RMSNorm(x));  y = h + MLP(RMSNorm(h));  MLP(x) = down(silu(gate(x)) · up(x))
 * with RoPE on q and k, grouped-query attention (each key/value head serves
 * num_attention_heads / num_key_value_heads query heads) and an optionally tied LM head.
 * Qwen2 adds q/k/v biases. OLMo-2 (arXiv:2501.00656) moves the norms after each block,
 * `h = x + RMSNorm(Attn(x))`, and RMS-normalises the whole q and k projections. Those
 * differences come from `config.layout`; nothing here branches on `model_type`.
 *
 * Shapes: N sequences, T tokens (S new tokens and P cached ones when decoding with a KV cache),
 * D hidden size, V vocabulary, H query heads, KV key/value heads, G = H / KV, d head_dim.
 * Hidden states flow as (N·T, D) matrices so every projection and its gradient is one 2-D matmul.
 *
 * @module
 */
import {
  checkpoint,
  compare,
  concat,
  constant,
  currentPrecision,
  type HostTensor,
  input,
  linearLogSoftmaxAt,
  type Precision,
  storedConstant,
  type StoredTensor,
  type Tensor,
  where,
  withPrecision,
} from "../graph/mod.ts";
import { arange, sin, sumSquares } from "../graph/ops.ts";
import { type LoraConfig, loraShapes } from "./lora.ts";
import type { ModelConfig } from "./config.ts";
import { applyRope, ropeAngles, ropeInvFreq } from "./rope.ts";
import { weightShapes } from "./weights.ts";

/** Cached keys and values of one layer, each (N,KV,P,d). */
export interface LayerCache {
  key: Tensor;
  value: Tensor;
}

/** Options of {@link buildCausalLM}. */
export interface CausalLMOptions {
  /**
   * Prefix of the graph-input names of the weights (e.g. `"ref."` for a second copy in the same
   * graph); the weights themselves stay keyed by HF name.
   * @default ""
   */
  prefix?: string;
  /**
   * Frozen weights: built into the graph as constants (ONNX initializers) instead of inputs, in
   * their own dtype (float16/bfloat16 are cast to float32 inside the graph). File-backed ones
   * (`storedWeights`) are mapped by onnxruntime from the checkpoint, never read into JavaScript.
   * For a reference model, or the base under LoRA adapters.
   * @default undefined (weights are inputs)
   */
  frozen?: Record<string, HostTensor | StoredTensor>;
  /**
   * LoRA adapters on the linear layers (see lora.ts): `W x + (α/r)·B A x`. A and B are the
   * model's `params` (graph inputs named `prefix + ….lora_A.weight`), the base weights must be
   * `frozen`. `dropoutSeed` (training graphs, when `dropout` > 0): a scalar input from which the
   * dropout masks derive, so a given (seed, step) always drops the same units.
   */
  lora?: LoraConfig & { dropoutSeed?: Tensor };
  /**
   * Recompute each decoder layer in the backward from its input instead of keeping its
   * activations (graph/checkpoint.ts): less memory, about one more forward of compute. Applies
   * to `hidden` and `logits`; `step` returns no caches then.
   * @default false
   */
  gradientCheckpointing?: boolean;
  /**
   * `bfloat16`: mixed precision (TRL's `bf16`): matrix products in bfloat16 on float32 master
   * weights, statistics in float32, by the precision table of graph/precision.ts. The model code
   * is the same; only the graph functions run under that precision.
   * @default "float32"
   */
  precision?: Precision;
}

/** A causal LM as graph functions over its weights. */
export interface CausalLM {
  /** The config it was built from. */
  readonly config: ModelConfig;
  /** Weight inputs in {@link weightShapes} order, named `prefix + HF name` (empty when frozen). */
  readonly params: Tensor[];
  /** Every weight tensor by HF name (inputs or constants). */
  readonly weights: Readonly<Record<string, Tensor>>;
  /**
   * Final-norm hidden states.
   *
   * @param inputIds Token ids (N,T), int32 or int64.
   * @param attentionMask (N,T): 1 on tokens, 0 on padding (float32 or int); left or right padding.
   * @returns Hidden states (N,T,D).
   */
  hidden(inputIds: Tensor, attentionMask: Tensor): Tensor;
  /** The LM head: (…,D) hidden states to (…,V) logits. */
  head(hidden: Tensor): Tensor;
  /**
   * Log-probabilities of `labels` under the LM head, `log softmax(head(hidden))[labels]`, chunked
   * over the vocabulary with the chunks recomputed in the backward
   * (graph/linear_log_softmax.ts): no (…,V) logits are kept for the backward.
   *
   * @param hidden Hidden states (…,D).
   * @param labels Token ids (…), int64.
   * @returns Log-probabilities (…).
   */
  labelLogps(hidden: Tensor, labels: Tensor): Tensor;
  /** Mean logit over the vocabulary (…) of hidden states (…,D): h · mean_v W_v, no (…,V) tensor. */
  meanLogit(hidden: Tensor): Tensor;
  /** `head(hidden(inputIds, attentionMask))`: logits (N,T,V). */
  logits(inputIds: Tensor, attentionMask: Tensor): Tensor;
  /**
   * One step with a KV cache: S new tokens after P cached ones.
   *
   * @param inputIds New token ids (N,S).
   * @param attentionMask Mask of cached and new tokens (N,P+S).
   * @param past Per-layer caches (N,KV,P,d), or null for the first step (P = 0, causal mask).
   * @returns Hidden states of the new tokens (N,S,D) and the caches extended by them.
   */
  step(
    inputIds: Tensor,
    attentionMask: Tensor,
    past: LayerCache[] | null,
  ): { hidden: Tensor; present: LayerCache[] };
}

/** Per-step context shared by the layers: sizes, rotary angles and the boolean mask. */
interface Ctx {
  N: string | number;
  S: string | number;
  /** cos/sin (N,1,1,S,d) for queries (N,KV,G,S,d) and (N,1,S,d) for keys (N,KV,S,d). */
  q: { cos: Tensor; sin: Tensor };
  k: { cos: Tensor; sin: Tensor };
  /** (N,1,1,S,K): true where a query may attend to a key. */
  mask: Tensor;
}

/** Masked attention scores: large and negative, not -∞, so a fully masked row stays finite. */
const MASKED = -1e9;

/**
 * Builds the graph functions of `config`'s architecture over weight inputs (or frozen constants).
 *
 * @param config The model config.
 * @param options Input-name prefix, or frozen weights.
 * @returns The model.
 * @example
 * ```ts
 * import { input } from "../graph/mod.ts";
 * import { buildCausalLM } from "./decoder.ts";
 * import { loadConfig } from "./config.ts";
 * const model = buildCausalLM(await loadConfig("model/tiny"));
 * const logits = model.logits(input("ids", ["N", "T"], "int64"), input("mask", ["N", "T"]));
 * if (logits.shape[2] !== model.config.vocab_size) throw new Error("unexpected");
 * ```
 */
export function buildCausalLM(config: ModelConfig, options: CausalLMOptions = {}): CausalLM {
  const shapes = weightShapes(config);
  const weights: Record<string, Tensor> = {};
  const params: Tensor[] = [];
  if (options.lora && !options.frozen) throw new Error("LoRA needs frozen base weights");
  for (const [name, shape] of Object.entries(shapes)) {
    const frozen = options.frozen?.[name];
    if (options.frozen && !frozen) throw new Error(`Missing frozen weight: ${name}`);
    if (frozen) {
      const stored = "file" in frozen
        ? storedConstant(frozen)
        : constant(frozen.data, shape, frozen.dtype);
      weights[name] = stored.cast("float32");
    } else {
      weights[name] = input(`${options.prefix ?? ""}${name}`, shape);
      params.push(weights[name]);
    }
  }
  const lora = options.lora;
  for (const [name, shape] of Object.entries(lora ? loraShapes(config, lora) : {})) {
    weights[name] = input(`${options.prefix ?? ""}${name}`, shape);
    params.push(weights[name]);
  }
  const w = (name: string) => weights[name];
  const maybe = (name: string): Tensor | undefined => weights[name];
  const invFreq = ropeInvFreq(config);
  const { hidden_size: D, num_attention_heads: H, num_key_value_heads: KV, head_dim: d } = config;
  const G = H / KV;
  const eps = config.rms_norm_eps;

  /** x (M,in) @ Wᵀ (+ b) (+ (α/r)·(x Aᵀ) Bᵀ on adapted layers): 2-D matmuls. */
  const linear = (x: Tensor, name: string): Tensor => {
    let y = x.matmul(w(`${name}.weight`).transpose());
    const b = maybe(`${name}.bias`);
    if (b) y = y.add(b);
    const a = maybe(`${name}.lora_A.weight`);
    if (!a || !lora) return y;
    const down = dropout(x, name).matmul(a.transpose()); // (M,r): the cheap side first
    return y.add(down.matmul(w(`${name}.lora_B.weight`).transpose()).mul(lora.alpha / lora.r));
  };
  /**
   * Inverted dropout on an adapter's input, its mask a hash of (element index, layer, seed
   * input): fixed by (seed, step), so a resumed run drops exactly the same units.
   */
  const dropout = (x: Tensor, name: string): Tensor => {
    const p = lora?.dropout ?? 0;
    if (p === 0 || !lora?.dropoutSeed) return x;
    const cols = x.shape[1] as number;
    const row = arange(x, 0).cast("float32").unsqueeze(1);
    const col = arange(x, 1).cast("float32").unsqueeze(0);
    const salt = [...name].reduce((h, c) => (h * 31 + c.charCodeAt(0)) % 9973, 7);
    const index = row.mul(cols).add(col).mul(1e-3).add(lora.dropoutSeed.mul(0.618).add(salt));
    // The classic shader hash fract(sin(v)·43758.5453): uniform enough for a dropout mask.
    const hashed = sin(index).mul(43758.5453);
    const uniform = hashed.sub(hashed.cast("int64").cast("float32")).abs();
    return where(uniform.ge(p), x.mul(1 / (1 - p)), 0);
  };
  /**
   * `f(x)` whose backward recomputes it from x (graph/checkpoint.ts), for pieces whose kept
   * tensors cost more memory than their recomputation costs time. Plain under gradient
   * checkpointing, which recomputes the whole layer anyway.
   */
  const recomputed = (x: Tensor, f: (x: Tensor) => Tensor, leaves: Tensor[] = []): Tensor =>
    options.gradientCheckpointing ? f(x) : checkpoint(x, f, leaves);
  /**
   * RMSNorm (Zhang & Sennrich 2019): x / sqrt(mean(x²) + ε) · g, in float32 as HF: the sum of
   * squares is a float32 statistic (one pass, no x² copy) whatever x's dtype.
   *
   * In bf16 it is {@linkcode recomputed}: otherwise it keeps float32 copies of its bf16 input and
   * products for the backward (OLMo-2-1B at 8 × 512: 10 of the 35 GiB the step keeps;
   * BENCHMARKS.md, issue 18), for one elementwise pass more.
   */
  const rmsNorm = (x: Tensor, name: string): Tensor => {
    const g = w(`${name}.weight`);
    const norm = (x: Tensor) => {
      const meanSquare = sumSquares(x, -1, true).div(x.shape[x.rank - 1] as number);
      return x.mul(meanSquare.add(eps).rsqrt()).mul(g);
    };
    if (currentPrecision() !== "bfloat16") return norm(x);
    return recomputed(x, norm, params.includes(g) ? [g] : []);
  };

  function attention(
    x: Tensor,
    p: string,
    ctx: Ctx,
    past: LayerCache | null,
  ): { out: Tensor; cache: LayerCache } {
    const { N, S, mask } = ctx;
    let q = linear(x, `${p}.q_proj`), k = linear(x, `${p}.k_proj`);
    const v = linear(x, `${p}.v_proj`);
    if (config.layout.qkNorm) {
      q = rmsNorm(q, `${p}.q_norm`);
      k = rmsNorm(k, `${p}.k_norm`);
    }
    // (N·S, H·d) → (N,KV,G,S,d): query head h = kv·G + g uses key/value head kv (HF repeat_kv).
    const q5 = applyRope(
      q.reshape([N, S, KV, G, d]).transpose([0, 2, 3, 1, 4]),
      ctx.q.cos,
      ctx.q.sin,
    );
    let k4 = applyRope(k.reshape([N, S, KV, d]).transpose([0, 2, 1, 3]), ctx.k.cos, ctx.k.sin);
    let v4 = v.reshape([N, S, KV, d]).transpose([0, 2, 1, 3]);
    if (past) {
      // Named like the mask's key axis so the two broadcast (the size is inferred at run time).
      const K = mask.shape[mask.rank - 1];
      k4 = concat([past.key, k4], 2).reshape([N, KV, K, d]);
      v4 = concat([past.value, v4], 2).reshape([N, KV, K, d]);
    }
    const scores = q5.matmul(k4.unsqueeze(2).transpose()).mul(1 / Math.sqrt(d)); // (N,KV,G,S,K)
    const probs = where(mask, scores, MASKED).softmax(-1);
    const out = probs.matmul(v4.unsqueeze(2)) // (N,KV,G,S,d)
      .transpose([0, 3, 1, 2, 4])
      .reshape([-1, H * d]);
    return { out: linear(out, `${p}.o_proj`), cache: { key: k4, value: v4 } };
  }

  /**
   * SiLU {@linkcode recomputed}: σ(x) is not kept (as PyTorch's SiLU keeps only x), an
   * (N·T, intermediate) tensor less per layer, for one elementwise pass more.
   */
  const silu = (x: Tensor): Tensor => recomputed(x, (x) => x.silu());
  const mlp = (x: Tensor, p: string): Tensor =>
    linear(silu(linear(x, `${p}.gate_proj`)).mul(linear(x, `${p}.up_proj`)), `${p}.down_proj`);

  function step(
    inputIds: Tensor,
    attentionMask: Tensor,
    past: LayerCache[] | null,
  ): { hidden: Tensor; present: LayerCache[] } {
    const [N, S] = inputIds.shape;
    const keep = attentionMask.gt(0); // (N,K)
    // Positions count real tokens, so left and right padding give the same positions as
    // unpadded text; padding positions get 0.
    const maskF = attentionMask.cast("float32");
    let positions = maskF.cumsum(1).sub(1).maximum(0); // (N,K)
    let mask = keep.unsqueeze([1, 2, 3]); // (N,1,1,1,K)
    if (past) {
      positions = positions.slice(1, -(S as number));
    } else {
      const i = arange(inputIds, 1);
      const causal = compare("LessOrEqual", i.unsqueeze(0), i.unsqueeze(1)); // (S,K): key ≤ query
      mask = compare("And", mask, causal);
    }
    const { cos, sin } = ropeAngles(positions, invFreq); // (N,S,d)
    const ctx: Ctx = {
      N,
      S,
      q: { cos: cos.unsqueeze([1, 2]), sin: sin.unsqueeze([1, 2]) },
      k: { cos: cos.unsqueeze(1), sin: sin.unsqueeze(1) },
      mask,
    };
    let x = w("model.embed_tokens.weight").gather(inputIds).reshape([-1, D]); // (N·S, D)
    const present: LayerCache[] = [];
    const layer = (x: Tensor, i: number): Tensor => {
      const p = `model.layers.${i}`;
      const layerPast = past?.[i] ?? null;
      if (config.layout.norm === "pre") {
        const a = attention(rmsNorm(x, `${p}.input_layernorm`), `${p}.self_attn`, ctx, layerPast);
        present.push(a.cache);
        const h = x.add(a.out);
        return h.add(mlp(rmsNorm(h, `${p}.post_attention_layernorm`), `${p}.mlp`));
      }
      const a = attention(x, `${p}.self_attn`, ctx, layerPast);
      present.push(a.cache);
      const h = x.add(rmsNorm(a.out, `${p}.post_attention_layernorm`));
      return h.add(rmsNorm(mlp(h, `${p}.mlp`), `${p}.post_feedforward_layernorm`));
    };
    for (let i = 0; i < config.num_hidden_layers; i++) {
      if (options.gradientCheckpointing && !past) {
        const leaves = params.filter((t) => t.name!.includes(`layers.${i}.`));
        x = checkpoint(x, (input) => layer(input, i), leaves);
      } else {
        x = layer(x, i);
      }
    }
    if (options.gradientCheckpointing && !past) present.length = 0;
    const hidden = rmsNorm(x, "model.norm").reshape([N, S, D]);
    return { hidden, present };
  }

  const headWeight = config.tie_word_embeddings
    ? w("model.embed_tokens.weight")
    : w("lm_head.weight");
  const head = (h: Tensor): Tensor => {
    const lead = h.shape.slice(0, -1);
    return h.reshape([-1, D]).matmul(headWeight.transpose()).reshape([...lead, config.vocab_size]);
  };
  const precision = options.precision ?? "float32";
  const hidden = (ids: Tensor, mask: Tensor) =>
    withPrecision(precision, () => step(ids, mask, null).hidden);
  const lmHead = (h: Tensor) => withPrecision(precision, () => head(h));
  return {
    config,
    params,
    weights,
    hidden,
    head: lmHead,
    labelLogps: (h, labels) =>
      withPrecision(precision, () => linearLogSoftmaxAt(h, headWeight, labels)),
    meanLogit: (h) =>
      withPrecision(precision, () => h.matmul(headWeight.mean(0, true).transpose()).squeeze(-1)),
    logits: (ids, mask) => lmHead(hidden(ids, mask)),
    step: (ids, mask, past) => withPrecision(precision, () => step(ids, mask, past)),
  };
}
