/**
 * Full train-step benchmark: the policy's forward and backward through the real decoder, a
 * direct-alignment loss, clipping and AdamW — reference log-probs fed as from the cache — on
 * random tokens, and prints step time, tokens/s, achieved TFLOP/s, trainable and total parameters
 * and peak host memory.
 *
 *   deno task bench [--model smollm2-135m|smollm2-360m|olmo2-1b|tiny|DIR] [--batch_size 1]
 *                   [--max_length 128] [--use_peft false] [--lora_r 16]
 *                   [--gradient_checkpointing false] [--bf16 false]
 *                   [--device cpu|cuda|webgpu|auto]
 *                   [--loss dpo] [--steps 10] [--warmup 2] [--profile] [--cuda_graph false]
 *   deno task bench --grid 1x16,2x512,8x512 [other flags]    # batch × max_length → peak memory
 *
 * The presets are the architectures of SmolLM2-135M, SmolLM2-360M and OLMo-2-0425-1B (from
 * their config.json) with random weights, so the benchmark needs no download; with `--use_peft`
 * the random base is written once as a bfloat16 checkpoint (as the real ones are) that the step
 * maps as frozen weights. FLOPs: 6 · parameters · tokens (forward + backward matmuls) plus
 * attention's 12 · layers · T · hidden per token (LoRA still runs the full backward through the
 * frozen weights, for the activations' gradients). `batch_size` counts pairs: 2× sequences.
 *
 * Peak memory is the process's high-water mark (getrusage's ru_maxrss), which includes transient
 * buffers that sampling after each step would miss; `--grid` runs each cell in a fresh process,
 * since the mark never goes down. `rss_after_warmup_mib` and `rss_end_mib` show whether host
 * memory grows over the counted steps. `--profile` adds onnxruntime's own kernel time per step
 * (its profiler's per-node times, summed) beside the wall-clock step time, and where the nodes
 * ran: nodes per step by execution provider, the ops that fell back to the CPU on a device, and
 * the bytes Memcpy nodes move per step (on a GPU: only the batch in and scalars out). onnxruntime's optimized
 * graphs are cached (`defaultCacheDir()`): a second run's `compile_ms` shows the saving.
 * `--cuda_graph true` binds fixed buffers every step, which on cuda lets onnxruntime replay each
 * stage as a captured CUDA graph (`TrainStepOptions.fixedBuffers`).
 * `--bf16 true` builds the mixed-precision step (TRL's `bf16`): real bfloat16 on cuda, emulated
 * (float32 with bfloat16 rounding, slower than float32) elsewhere.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { algorithm } from "../algorithms/mod.ts";
import type { HostTensor } from "../graph/mod.ts";
import { join } from "node:path";
import { defaultCacheDir, parseDevice } from "../runtime/mod.ts";
import { loadConfig, type ModelConfig, parseConfig } from "../model/config.ts";
import { initLora, LINEAR_MODULES } from "../model/lora.ts";
import { f32ToBf16 } from "../model/_dtype.ts";
import { loadWeights, storedWeights, weightShapes } from "../model/weights.ts";
import type { TokenizedExample } from "../data/types.ts";
import { resolveConfig } from "../trainer/config.ts";
import type { MetricsRow } from "../trainer/log.ts";
import { RefLogpCache } from "../trainer/ref_cache.ts";
import { Session } from "../trainer/session.ts";
import { PRESETS } from "./presets.ts";

const { values } = parseArgs({
  options: {
    model: { type: "string", default: "smollm2-135m" },
    batch_size: { type: "string", default: "1" },
    max_length: { type: "string", default: "128" },
    device: { type: "string", default: "cpu" },
    loss: { type: "string", default: "dpo" },
    steps: { type: "string", default: "10" },
    warmup: { type: "string", default: "2" },
    profile: { type: "boolean", default: false },
    use_peft: { type: "string", default: "false" },
    lora_r: { type: "string", default: "16" },
    gradient_checkpointing: { type: "string", default: "false" },
    cuda_graph: { type: "string", default: "false" },
    bf16: { type: "string", default: "false" },
    grid: { type: "string" },
  },
});

/** Flags of a boolean option, strictly. */
function flag(name: "use_peft" | "gradient_checkpointing" | "cuda_graph" | "bf16"): boolean {
  const v = values[name];
  if (v !== "true" && v !== "false") {
    throw new Error(`Invalid --${name} ${v}: expected true or false`);
  }
  return v === "true";
}

/**
 * A seeded uniform stream (xorshift32), so every run benchmarks the same weights and tokens; in
 * integer arithmetic, since a 1B-parameter preset draws 1.5 billion numbers (7× faster than a
 * Lehmer stream's floating-point modulo: 9 s instead of a minute).
 */
let state = 12345;
function uniform(): number {
  state ^= state << 13;
  state ^= state >>> 17;
  state ^= state << 5;
  return (state >>> 0) / 4294967296;
}

/** Random float32 weights shaped like `config`'s (norm scales 1). */
function randomWeight(name: string, shape: number[]): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  if (name.endsWith("norm.weight")) return new Float32Array(n).fill(1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = (uniform() - 0.5) * 0.07;
  return data;
}

/**
 * Writes a random bfloat16 checkpoint of `config` into a temporary folder, one tensor at a time
 * (so a 1B model never sits in memory whole), and returns the folder.
 */
async function randomCheckpoint(config: ModelConfig): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "bench-model-" });
  const shapes = weightShapes(config);
  const header: Record<string, unknown> = { __metadata__: { format: "pt" } };
  let offset = 0;
  for (const [name, shape] of Object.entries(shapes)) {
    const bytes = shape.reduce((a, b) => a * b, 1) * 2;
    header[name] = { dtype: "BF16", shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (json.length % 8)) % 8);
  const file = await Deno.open(`${dir}/model.safetensors`, { write: true, create: true });
  const write = async (bytes: Uint8Array) => {
    for (let done = 0; done < bytes.length;) done += await file.write(bytes.subarray(done));
  };
  const head = new Uint8Array(8);
  new DataView(head.buffer).setBigUint64(0, BigInt(json.length), true);
  await write(head);
  await write(new TextEncoder().encode(json));
  for (const [name, shape] of Object.entries(shapes)) {
    const bits = f32ToBf16(randomWeight(name, shape));
    await write(new Uint8Array(bits.buffer));
  }
  file.close();
  await Deno.writeTextFile(
    `${dir}/config.json`,
    JSON.stringify({ ...config.raw, dtype: "bfloat16" }),
  );
  return dir;
}

/**
 * The process's peak resident memory so far, in bytes: getrusage's ru_maxrss (Linux: KiB), read
 * through FFI because Deno allows `/proc/self/status` only with --allow-all.
 */
function peakRss(): number {
  const libc = Deno.dlopen("libc.so.6", {
    getrusage: { parameters: ["i32", "buffer"], result: "i32" },
  });
  try {
    // struct rusage: two struct timevals (16 bytes each), then ru_maxrss.
    const usage = new BigInt64Array(18);
    if (libc.symbols.getrusage(0, usage) !== 0) throw new Error("getrusage failed");
    return Number(usage[4]) * 1024;
  } finally {
    libc.close();
  }
}

/** What onnxruntime's profile says of the counted steps. */
interface ProfileSummary {
  /** Median over steps of the per-node kernel times, summed over every session's run. */
  kernel_ms_median: number;
  /** Nodes run per step, by execution provider (a CPU count on cuda means a node fell back). */
  nodes_per_step: Record<string, number>;
  /** Which ops ran on the CPU provider in a device step, with their counts per step. */
  cpu_ops_per_step: Record<string, number>;
  /** Bytes moved per step by Memcpy nodes (host↔device copies inside the graphs). */
  memcpy_bytes_per_step: number;
}

/**
 * Reads onnxruntime's profiles: for each counted step, the per-node events inside each session's
 * runs (each session runs once per step, so run `i` of every session is step `i`).
 */
async function profileSummary(dir: string, skip: number, device: string): Promise<ProfileSummary> {
  type Event = {
    cat: string;
    name: string;
    ts: number;
    dur: number;
    args?: { op_name?: string; provider?: string; output_size?: string };
  };
  const perStep: number[] = [];
  const nodes: Record<string, number> = {};
  const cpuOps: Record<string, number> = {};
  let memcpyBytes = 0;
  let steps = 0;
  for await (const entry of Deno.readDir(dir)) {
    const events = JSON.parse(await Deno.readTextFile(join(dir, entry.name))) as Event[];
    const runs = events.filter((e) => e.cat === "Session" && e.name === "model_run");
    runs.slice(skip).forEach((run, i) => {
      const inside = events.filter((e) =>
        e.cat === "Node" && e.name.endsWith("_kernel_time") && e.ts >= run.ts &&
        e.ts < run.ts + run.dur
      );
      perStep[i] = (perStep[i] ?? 0) + inside.reduce((a, e) => a + e.dur, 0) / 1000;
      for (const e of inside) {
        const provider = e.args?.provider ?? "unknown";
        const op = e.args?.op_name ?? "?";
        nodes[provider] = (nodes[provider] ?? 0) + 1;
        if (device !== "cpu" && provider === "CPUExecutionProvider") {
          cpuOps[op] = (cpuOps[op] ?? 0) + 1;
        }
        if (op.startsWith("Memcpy")) memcpyBytes += Number(e.args?.output_size ?? 0);
      }
    });
    steps = Math.max(steps, runs.length - skip);
  }
  await Deno.remove(dir, { recursive: true });
  const per = (counts: Record<string, number>) =>
    Object.fromEntries(Object.entries(counts).map(([k, n]) => [k, n / steps]));
  return {
    kernel_ms_median: +perStep.sort((a, b) => a - b)[Math.floor(perStep.length / 2)].toFixed(1),
    nodes_per_step: per(nodes),
    cpu_ops_per_step: per(cpuOps),
    memcpy_bytes_per_step: memcpyBytes / steps,
  };
}

/** Elements of every tensor (of a shape table or of host tensors). */
function count(tensors: Record<string, number[] | HostTensor>): number {
  const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
  return Object.values(tensors).reduce((n, t) => n + size(Array.isArray(t) ? t : t.shape), 0);
}

/** Runs `--grid`: each batch×length cell in a fresh process, then a table. */
async function grid(cells: string): Promise<void> {
  const args = Deno.args.filter((a, i, all) =>
    a !== "--grid" && all[i - 1] !== "--grid" &&
    !a.startsWith("--grid=")
  );
  const rows: Record<string, unknown>[] = [];
  for (const cell of cells.split(",")) {
    const m = /^(\d+)x(\d+)$/.exec(cell.trim());
    if (!m) throw new Error(`Invalid --grid cell "${cell}": expected BATCHxLENGTH, e.g. 8x512`);
    const command = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-all",
        new URL(import.meta.url).pathname,
        ...args,
        "--batch_size",
        m[1],
        "--max_length",
        m[2],
      ],
      stdout: "piped",
      stderr: "inherit",
    });
    const out = await command.output();
    const text = new TextDecoder().decode(out.stdout).trim();
    const row = out.success
      ? JSON.parse(text.split("\n").pop()!)
      : { batch_pairs: Number(m[1]), max_length: Number(m[2]), failed: `exit ${out.code}` };
    console.log(JSON.stringify(row));
    rows.push(row);
  }
  console.log("\n| batch × length | peak host RSS (GiB) | step (s) |\n| --- | --- | --- |");
  for (const r of rows) {
    const peak = r.peak_host_rss_mib === undefined
      ? String(r.failed)
      : ((r.peak_host_rss_mib as number) / 1024).toFixed(2);
    const step = r.step_ms_median === undefined
      ? "—"
      : ((r.step_ms_median as number) / 1000).toFixed(1);
    console.log(`| ${r.batch_pairs} × ${r.max_length} | ${peak} | ${step} |`);
  }
}

/** One benchmark cell: compile, warm up, time `steps` steps, print one JSON line. */
async function bench(): Promise<void> {
  const device = parseDevice(values.device!);
  const [B, T, steps, warmup] = [values.batch_size, values.max_length, values.steps, values.warmup]
    .map(Number);
  const usePeft = flag("use_peft");
  const preset = PRESETS[values.model!];
  const localDir = values.model === "tiny" ? "model/tiny" : values.model!;
  const config = preset
    ? parseConfig(preset, `${values.model} preset`)
    : await loadConfig(localDir);
  const lora = usePeft
    ? {
      r: Number(values.lora_r),
      alpha: 2 * Number(values.lora_r),
      dropout: 0,
      targetModules: [...LINEAR_MODULES],
    }
    : null;
  // Full fine-tuning feeds float32 masters; LoRA maps the frozen base from a checkpoint file.
  const modelDir = usePeft && preset ? await randomCheckpoint(config) : localDir;
  const frozen = usePeft ? await storedWeights(modelDir, config) : undefined;
  // Not kept here: once uploaded, the step holds the only copy.
  const initialWeights = async (): Promise<Record<string, HostTensor>> =>
    lora ? initLora(config, { ...lora, seed: 1 }) : preset
      ? Object.fromEntries(
        Object.entries(weightShapes(config)).map(([name, shape]) => [
          name,
          { dtype: "float32" as const, shape, data: randomWeight(name, shape) },
        ]),
      )
      : await loadWeights(localDir, config);

  const algo = algorithm(values.loss!);
  if (algo.data !== "paired") {
    throw new Error(`The benchmark feeds paired data: "${algo.name}" is not`);
  }
  // The run core `deno task train` drives, at a constant learning rate, on B random pairs of
  // T/2 prompt and T/2 completion tokens: every step is one micro-batch of all of them.
  const resolved = resolveConfig({
    cli: {
      loss: algo.name,
      per_device_train_batch_size: String(B),
      max_steps: String(warmup + steps),
      learning_rate: "1e-5",
      lr_scheduler_type: "constant",
    },
  });
  const random = (n: number) =>
    Array.from({ length: n }, () => Math.floor(uniform() * config.vocab_size));
  const pairs: TokenizedExample[] = Array.from({ length: B }, (_, row) => ({
    kind: "paired",
    promptIds: random(T / 2),
    chosenIds: random(T / 2),
    rejectedIds: random(T / 2),
    row,
  }));
  // Reference log-probs as from the cache: no reference model is compiled. Chosen and rejected
  // get the same one, so the margin is the policy's own and the loss is not saturated (random
  // ones put β·margin at tens: a loss of 0 or of 20, a gradient of 0 or a clipped one).
  const cache = RefLogpCache.memory();
  pairs.forEach((_, i) => {
    const reference = -uniform() * T;
    cache.set(`train:${i}`, [reference, reference]);
  });
  const profileDir = values.profile ? await Deno.makeTempDir({ prefix: "bench-profile-" }) : "";
  const { session, trainable, compileMs } = await (async () => {
    const params = await initialWeights();
    const buildStart = performance.now();
    const session = await Session.create(
      {
        tokenizer: { padTokenId: 0, stopTokenIds: [], decode: () => "" },
        policy: {
          config,
          model: {
            ...(lora ? { frozen, lora } : {}),
            gradientCheckpointing: flag("gradient_checkpointing"),
            precision: flag("bf16") ? "bfloat16" : "float32",
          },
        },
        params,
        data: { kind: "paired", train: pairs, eval: [] },
      },
      resolved,
      {
        device,
        cache,
        cacheDir: defaultCacheDir(),
        trainStep: {
          profile: values.profile ? join(profileDir, "step") : undefined,
          fixedBuffers: flag("cuda_graph"),
          // A CUDA graph needs every node on the device: fixed sizes fold the shape arithmetic away.
          // C: every completion token of the 2B rows (T/2 each) reaches the LM head.
          staticDims: flag("cuda_graph") ? { N: 2 * B, T, B, C: B * T } : undefined,
        },
      },
    );
    const compileMs = performance.now() - buildStart;
    return { session, trainable: count(params), compileMs };
  })();

  const times: number[] = [];
  let last: MetricsRow = { step: 0 };
  let rssAfterWarmup = 0;
  for (let i = 0; i < warmup + steps; i++) {
    if (i === warmup) rssAfterWarmup = Deno.memoryUsage().rss;
    const t0 = performance.now();
    await session.step();
    if (i >= warmup) times.push(performance.now() - t0);
    last = session.takeRow();
  }
  const total = count(weightShapes(config));
  const N = 2 * B, tokens = N * T;
  const flops = 6 * total * tokens +
    12 * config.num_hidden_layers * T * config.hidden_size * tokens;
  const median = times.sort((a, b) => a - b)[Math.floor(times.length / 2)];
  const rssEnd = Deno.memoryUsage().rss;
  await session.release(); // also writes the profiles
  const profile = values.profile
    ? await profileSummary(profileDir, warmup, session.device)
    : undefined;
  console.log(JSON.stringify({
    device: session.device,
    model: values.model,
    params: total + (lora ? trainable : 0),
    trainable_params: trainable,
    use_peft: usePeft,
    gradient_checkpointing: flag("gradient_checkpointing"),
    cuda_graph: flag("cuda_graph"),
    bf16: flag("bf16"),
    loss: algo.name,
    batch_pairs: B,
    sequences: N,
    max_length: T,
    compile_ms: Math.round(compileMs),
    step_ms_median: +median.toFixed(1),
    tokens_per_s: Math.round(tokens / (median / 1000)),
    tflops: +(flops / (median / 1000) / 1e12).toFixed(4),
    last_loss: last.loss,
    last_grad_norm: last.grad_norm,
    ...profile,
    peak_host_rss_mib: Math.round(peakRss() / 2 ** 20),
    rss_after_warmup_mib: Math.round(rssAfterWarmup / 2 ** 20),
    rss_end_mib: Math.round(rssEnd / 2 ** 20),
  }));
  if (usePeft && preset) await Deno.remove(modelDir, { recursive: true });
}

if (values.grid) await grid(values.grid);
else await bench();
