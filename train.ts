/**
 * The one training loop shared by every algorithm:
 *
 *   config → model + data → one compiled step graph (policy log-probs → algorithm loss → grad →
 *   AdamW) → steps with warmup/decay, accumulation and clipping → logs, evaluation, samples,
 *   checkpoints → summary and curves.
 *
 *   deno task train --loss simpo                       # embedded tiny model and sample data
 *   deno task train --config configs/dpo.yaml          # the seed's OLMo-2 1B setup
 *   deno task train --resume out/run                   # continue from the latest checkpoint
 *
 * The loop branches on the algorithm's `needsReference` and `data`, never on its name.
 *
 * @module
 */
import { join } from "node:path";
import { algorithm as getAlgorithm, resolveHyperparameters } from "./algorithms/mod.ts";
import type { TokenizedExample } from "./data/types.ts";
import { dataConfigFrom, prepareData } from "./data/dataset.ts";
import { type Feed, parseDevice, Program, TrainStep } from "./runtime/mod.ts";
import { Generator } from "./model/generate.ts";
import { loadModel } from "./model/load.ts";
import { loadTokenizer } from "./model/tokenizer.ts";
import {
  batchesPerEpoch,
  batchFeeds,
  makeBatch,
  microBatches,
  pickFeeds,
  Reference,
} from "./trainer/batches.ts";
import {
  checkpointConfig,
  findCheckpoint,
  loadCheckpoint,
  saveCheckpoint,
} from "./trainer/checkpoint.ts";
import {
  configToYaml,
  helpText,
  parseFlags,
  readYamlConfig,
  resolveConfig,
  type TrainConfig,
} from "./trainer/config.ts";
import { MetricsLog, type MetricsRow } from "./trainer/log.ts";
import { finishReport } from "./trainer/report.ts";
import { learningRate } from "./trainer/schedule.ts";
import { OnlineSource, promptData, promptOnlyRows } from "./trainer/online.ts";
import type { JudgeSettings } from "./judges/mod.ts";
import { buildStepGraph } from "./trainer/step_graph.ts";
import { wandbSink } from "./trainer/wandb.ts";

/** What a finished run reports. */
export interface TrainResult {
  /** The resolved config. */
  config: TrainConfig;
  /** Every logged row (training and `eval/*`). */
  rows: MetricsRow[];
  /** The final checkpoint folder (HF format). */
  checkpoint: string;
  /** Reference log-probs computed by this run (0 when all came from the cache). */
  referenceComputed: number;
}

const TINY_DEFAULTS = new URL("./configs/tiny.yaml", import.meta.url).pathname;

/**
 * Runs training from command-line style arguments.
 *
 * @param args E.g. `["--loss", "dpo", "--max_steps", "10"]`.
 * @param options `quiet`: no progress or summary on the console (tests, library use).
 * @returns The run's config, metrics and checkpoint path.
 */
export async function train(
  args: string[],
  options: { quiet?: boolean } = {},
): Promise<TrainResult> {
  const say = options.quiet ? () => {} : (line: string) => console.log(line);
  const flags = parseFlags(args);
  const { config: configPath, resume, ...cli } = flags;
  const resumeDir = resume ? await findCheckpoint(resume) : null;
  // Base layer: the resumed run's config, a --config file, or the embedded tiny setup.
  const yaml = resumeDir
    ? await checkpointConfig(resumeDir)
    : await readYamlConfig(configPath ?? TINY_DEFAULTS);
  const algo = getAlgorithm(String(cli.loss ?? yaml.loss ?? "dpo"));
  if ("help" in cli) {
    console.log(
      `deno task train [--config FILE] [--resume DIR] [--key value ...]\n${
        helpText(algo.defaults)
      }`,
    );
    Deno.exit(0);
  }
  const algorithmDefaults = {
    ...algo.defaults,
    ...(algo.learningRate ? { learning_rate: algo.learningRate } : {}),
  };
  const config = resolveConfig({ algorithm: algorithmDefaults, yaml, cli });
  const hp = resolveHyperparameters(
    algo,
    Object.fromEntries(Object.keys(algo.defaults).map((k) => [k, config[k]])),
  );
  if (!configPath && !resumeDir && config.model !== "model/tiny") {
    console.error(
      "Warning: no --config, so configs/tiny.yaml's settings for the tiny model apply " +
        "(learning_rate, max_steps, max_length...): pass --config configs/<loss>.yaml for a real model",
    );
  }
  const device = parseDevice(String(config.device));
  const outDir = String(config.output_dir);
  await Deno.mkdir(outDir, { recursive: true });
  await Deno.writeTextFile(join(outDir, "config.yaml"), configToYaml(config));

  // Model and data.
  const modelId = String(config.model);
  const [tokenizer, policy] = await Promise.all([loadTokenizer(modelId), loadModel(modelId)]);
  say(`Tokenizer: vocab ${tokenizer.vocabSize}, chat template: ${tokenizer.chatTemplateSource}`);
  if (tokenizer.templateWarning) console.error(tokenizer.templateWarning);
  const kind = algo.data === "both" ? "unpaired" : algo.data;
  // Online losses only need prompts: a prompt-only dataset is read as such.
  const prompts = algo.online
    ? await promptOnlyRows(String(config.dataset), tokenizer, {
      split: String(config.dataset_split),
      limit: (config.max_samples as number | null) ?? undefined,
    })
    : null;
  const data = prompts
    ? promptData(prompts)
    : await prepareData(dataConfigFrom(String(config.dataset), config), tokenizer, { kind });
  say(data.skips.summary(data.train.length + data.eval.length));

  // The step graph, compiled once.
  const graph = buildStepGraph(policy.config, { algorithm: algo, hp, kind });
  const step = await TrainStep.create({
    loss: graph.loss,
    params: graph.model.params,
    metrics: graph.metrics,
    optimizer: config.optimizer === "sgd"
      ? { name: "sgd", weightDecay: config.weight_decay as number }
      : { name: "adamw", weightDecay: config.weight_decay as number },
    maxGradNorm: config.max_grad_norm as number,
    device,
  });
  let consumed = 0;
  let algorithmState: Record<string, number> = { ...(algo.state?.initial ?? {}) };
  if (resumeDir) {
    const { state, position } = await loadCheckpoint(resumeDir, policy.config);
    step.loadState(state);
    consumed = position.consumed;
    algorithmState = position.algorithmState;
  } else {
    step.setParams(policy.weights);
  }
  const evalProgram = await Program.compile({ loss: graph.loss, ...graph.metrics }, { device });

  // Reference log-probs: a frozen copy of the initial policy (or ref_model), cached on disk.
  const reference = algo.needsReference
    ? await Reference.forRun(config, {
      policy,
      dataFiles: data.files,
      withKl: graph.withKl,
      device,
    })
    : null;

  const online = algo.online
    ? await OnlineSource.create(policy.config, {
      tokenizer,
      device,
      sampling: {
        temperature: hp.temperature as number,
        top_p: hp.top_p as number,
        max_new_tokens: hp.max_new_tokens as number,
      },
      judge: hp as unknown as JudgeSettings & { judge_concurrency: number },
    })
    : null;

  const padTokenId = tokenizer.padTokenId;
  const batchSize = config.batch_size as number;
  const accumulation = config.gradient_accumulation_steps as number;
  const perEpoch = batchesPerEpoch(data.train, batchSize);
  const total = (config.max_steps as number | null) ??
    Math.max(1, Math.floor(((config.num_epochs as number) * perEpoch) / accumulation));
  const schedule = {
    peak: config.learning_rate as number,
    total,
    warmup: Math.round((config.warmup_ratio as number) * total),
    kind: config.lr_scheduler as "linear" | "cosine" | "constant",
  };
  if (kind === "unpaired" && graph.withKl && batchSize === 1) {
    console.error("Warning: batch_size 1 gives KTO no mismatched pair: its KL point z is 0");
  }

  /**
   * Feeds of one micro-batch of `examples` (for online losses: of pairs generated from their
   * prompts and judged, or null when the judge decided none), with reference log-probs.
   */
  const feedsOf = async (
    examples: TokenizedExample[],
    indices: number[],
    split: string,
    at = 0,
  ) => {
    const generated = online && split === "train";
    const batch = generated
      ? await online.batch(examples, indices, {
        weights: step.paramFeeds(),
        seed: (config.seed as number) + at,
        step: at,
      })
      : makeBatch(examples, indices, { withKl: graph.withKl, padTokenId });
    if (!batch) return null;
    const ref = reference
      ? await reference.logps(batch, graph.groups, generated ? null : split)
      : undefined;
    return {
      feeds: batchFeeds(batch, { groups: graph.groups, reference: ref, state: algorithmState }),
      tokens: batch.attentionMask.reduce((a, b) => a + b, 0),
      examples: batch.shape[0] / graph.groups,
    };
  };

  const log = await MetricsLog.open(outDir, {
    total,
    append: resumeDir !== null,
    sinks: await wandbSink(config),
    quiet: options.quiet,
  });
  const evaluate = async (at: number) => {
    const n = Math.min(data.eval.length, config.eval_samples as number);
    if (n === 0) return;
    const sums: Record<string, number> = {};
    const params = step.paramFeeds();
    for (let start = 0; start < n; start += batchSize) {
      const indices = [...Array(Math.min(batchSize, n - start)).keys()].map((i) => start + i);
      const { feeds } = (await feedsOf(data.eval, indices, "eval"))!;
      const names = evalProgram.inputs.map((spec) => spec.name);
      const out = await evalProgram.run(pickFeeds(names, { ...feeds, ...params }));
      for (const [k, v] of Object.entries(out)) {
        sums[k] = (sums[k] ?? 0) + (v.data[0] as number) * indices.length;
      }
    }
    const row: MetricsRow = { step: at };
    for (const [k, v] of Object.entries(sums)) row[`eval/${k}`] = v / n;
    await log.log(row);
  };

  let generator: Generator | null = null;
  const sample = async (at: number) => {
    generator ??= online?.generator ?? await Generator.create(policy.config, { device });
    const prompts = data.eval.slice(0, 3).map((e) => e.promptIds);
    const outs = await generator.generate(step.paramFeeds(), prompts, {
      max_new_tokens: 48,
      eos_token_id: [...tokenizer.stopTokenIds],
      pad_token_id: padTokenId,
    });
    const lines = outs.map((ids, i) =>
      JSON.stringify({
        step: at,
        prompt: tokenizer.decode(prompts[i]),
        completion: tokenizer.decode(ids, { skipSpecialTokens: true }),
      }) + "\n"
    );
    await Deno.writeTextFile(join(outDir, "samples.jsonl"), lines.join(""), { append: true });
  };

  const save = async (at: number) => {
    const dir = join(outDir, `checkpoint-${at}`);
    await saveCheckpoint(
      dir,
      { config: policy.config, tokenizerDir: policy.dir },
      await step.readState(),
      {
        step: at,
        consumed,
        algorithmState,
        config,
      },
    );
    return dir;
  };

  // The loop, after a baseline evaluation of the starting policy.
  if (!resumeDir) await evaluate(0);
  const order = microBatches(data.train, {
    batchSize,
    seed: config.seed as number,
    groupByLength: config.group_by_length as boolean,
    padTokenId,
  }, consumed);
  let skipped = 0;
  let window = { tokens: 0, examples: 0, start: performance.now() };
  let checkpoint = "";
  for (let s = step.stepCount + skipped; s < total; s = step.stepCount + skipped) {
    const micro: Record<string, Feed>[] = [];
    let epoch = 0;
    for (let k = 0; k < accumulation; k++) {
      const next = order.next().value!;
      epoch = next.epoch;
      const made = await feedsOf(data.train, next.indices, "train", s + 1);
      consumed++;
      if (!made) continue;
      micro.push(pickFeeds(step.dataInputs, made.feeds));
      window.tokens += made.tokens;
      window.examples += made.examples;
    }
    if (online) {
      await Deno.writeTextFile(join(outDir, "samples.jsonl"), online.takeRecords(), {
        append: true,
      });
    }
    if (micro.length === 0) {
      skipped++;
      console.error(`Warning: step ${s + 1} skipped: the judge decided no pair`);
      continue;
    }
    const lr = learningRate(schedule, s);
    const result = await step.step(micro, { lr });
    if (result.skipped) {
      skipped++;
      console.error(`Warning: step ${s + 1} skipped: loss or gradient not finite`);
    } else if (algo.state) {
      algorithmState = algo.state.update(algorithmState, result.metrics);
    }
    const at = s + 1;
    if (at % (config.log_every as number) === 0 || at === total) {
      const seconds = (performance.now() - window.start) / 1000;
      await log.log({
        step: at,
        epoch: epoch + (consumed % perEpoch) / perEpoch,
        loss: result.loss,
        ...result.metrics,
        grad_norm: result.gradNorm,
        learning_rate: lr,
        tokens_per_s: window.tokens / seconds,
        samples_per_s: window.examples / seconds,
        "skipped/steps": skipped,
        ...online?.takeMetrics(),
      });
      window = { tokens: 0, examples: 0, start: performance.now() };
    }
    const every = (key: string) =>
      (config[key] as number) > 0 && at % (config[key] as number) === 0;
    if (every("eval_every") && at < total) await evaluate(at);
    if (every("sample_every")) await sample(at);
    if (every("save_every") && at < total) checkpoint = await save(at);
  }
  await evaluate(total);
  checkpoint = await save(total);
  await reference?.cache.save();
  await log.close();

  const summary = await finishReport(outDir, log.rows, {
    title: `${algo.name} on ${config.dataset}`,
    headline: `${total} steps of ${algo.name} on ${policy.dir} (${step.device})`,
    checkpoint,
  });
  for (const line of summary) say(line);
  await Promise.all([
    step.release(),
    evalProgram.release(),
    reference?.program.release(),
    online?.release(),
  ]);
  if (generator !== online?.generator) await (generator as Generator | null)?.release();
  return { config, rows: log.rows, checkpoint, referenceComputed: reference?.computed ?? 0 };
}

if (import.meta.main) {
  try {
    await train(Deno.args);
  } catch (error) {
    console.error(`error: ${(error as Error).message}`);
    Deno.exit(1);
  }
}
