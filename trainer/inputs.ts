/**
 * What a CLI run reads from files for its `Session`: the tokenizer, the policy and the
 * examples a config names, and the frozen reference model with its on-disk log-prob cache. (The
 * page builds the same inputs from fetched bytes, in `web/run.ts`.)
 *
 * @module
 */
import type { Algorithm } from "../algorithms/mod.ts";
import { prepareData } from "../data/dataset.ts";
import type { StoredTensor } from "../graph/mod.ts";
import { loadConfig, type ModelConfig } from "../model/config.ts";
import { resolveModelDir } from "../model/load.ts";
import { loadTokenizer, type Tokenizer } from "../model/tokenizer.ts";
import { storedWeights } from "../model/weights.ts";
import { hyperparameters, type Resolved, type TrainConfig } from "./config.ts";
import { promptData, promptOnlyRows } from "./online.ts";
import { loadPolicy } from "./policy.ts";
import { contentChecksum, fingerprint, RefLogpCache } from "./ref_cache.ts";
import { dataCacheKey, dataConfigOf } from "../data/config.ts";
import { rowLayout } from "./step_graph.ts";

/** The files of a model folder that decide how text becomes tokens. */
const TOKENIZER_FILES = /^(tokenizer.*|special_tokens_map\.json|chat_template\..*)$/;

/**
 * The tokenizer, the policy, the examples and (for losses that need one) the reference a config
 * names, with a progress line for each.
 *
 * @param resolved The resolved config and its loss (which data kind; prompts only for online
 *   losses; whether a reference is needed).
 * @param say Where progress lines go.
 * @returns Tokenizer, policy, examples (with the data files read and the skip counts), and the
 *   reference model with its log-prob cache, or null.
 */
export async function loadInputs(
  resolved: Pick<Resolved, "config" | "algorithm">,
  say: (line: string) => void,
) {
  const { config, algorithm } = resolved;
  const model = requireKey(config.model_name_or_path, "model_name_or_path");
  say(`Loading ${model}`);
  const [tokenizer, policy] = await Promise.all([loadTokenizer(model), loadPolicy(config)]);
  say(`Tokenizer: vocab ${tokenizer.vocabSize}, chat template: ${tokenizer.chatTemplateSource}`);
  if (tokenizer.templateWarning) console.error(tokenizer.templateWarning);
  const data = await loadData(config, algorithm, tokenizer, say);
  if (!algorithm.needsReference) return { tokenizer, policy, data, reference: null };
  const { withKl } = rowLayout(algorithm, { kind: data.kind, hp: hyperparameters(resolved) });
  const reference = await referenceOfRun(config, {
    policy,
    files: data.files,
    kind: data.kind,
    withKl,
  });
  say(referenceLine(reference.cache.size, data.train.length + data.eval.length));
  return { tokenizer, policy, data, reference };
}

function referenceLine(cached: number, examples: number): string {
  return cached >= examples
    ? `Reference log-probs: all ${examples} examples from the cache`
    : `Reference log-probs: ${cached} of ${examples} examples cached; the rest are computed ` +
      "as their batches come (and cached)";
}

/** The run's examples: prompts for online losses, tokenized pairs or completions otherwise. */
async function loadData(
  config: TrainConfig,
  algorithm: Algorithm,
  tokenizer: Tokenizer,
  say: (line: string) => void,
) {
  const dataset = requireKey(config.dataset_name, "dataset_name");
  say(`Tokenizing ${dataset}`);
  const kind = algorithm.data === "both" ? "unpaired" : algorithm.data;
  // Online losses only need prompts: a prompt-only dataset is read as such.
  const prompts = algorithm.online
    ? await promptOnlyRows(dataset, tokenizer, {
      split: config.dataset_train_split,
      limit: config.max_samples ?? undefined,
    })
    : null;
  const data = prompts
    ? promptData(prompts)
    : await prepareData(dataConfigOf(config), tokenizer, { kind });
  say(data.skips.summary(data.train.length + data.eval.length));
  return data;
}

function requireKey(value: string | null, key: string): string {
  if (value === null) throw new Error(`Missing ${key}: set it in the YAML or pass --${key}`);
  return value;
}

/**
 * The reference of a run: `ref_model`, or the policy's initial (under LoRA: base) weights,
 * mapped from the checkpoint file in its own dtype — the same pages as the policy's frozen base,
 * no second copy in memory — and its log-prob cache, keyed by the reference weights, the data
 * files and every setting that changes tokenization (in memory only when
 * `precompute_ref_log_probs` is off).
 */
async function referenceOfRun(
  config: TrainConfig,
  run: {
    policy: { dir: string; config: ModelConfig; stored: Record<string, StoredTensor> };
    files: string[];
    kind: "paired" | "unpaired";
    withKl: boolean;
  },
): Promise<
  { model: { config: ModelConfig; weights: Record<string, StoredTensor> }; cache: RefLogpCache }
> {
  const refId = config.ref_model ?? config.model_name_or_path;
  const ref = refId === null || refId === config.model_name_or_path
    ? run.policy
    : await (async () => {
      const dir = await resolveModelDir(refId);
      const refConfig = await loadConfig(dir);
      return { dir, config: refConfig, stored: await storedWeights(dir, refConfig) };
    })();
  const model = { config: ref.config, weights: ref.stored };
  if (!config.precompute_ref_log_probs) return { model, cache: RefLogpCache.memory() };
  const settings = [
    ...dataCacheKey(dataConfigOf(config)),
    // Since KTO's held-out pairs stay whole, the eval split is by source row.
    "eval split by source row",
    // Mixed precision changes the log-probs; float32 keys stay as they were.
    ...(config.bf16 ? ["bf16"] : []),
  ];
  // What tokenized the data: the policy's tokenizer and chat template.
  const source = await contentChecksum([...run.files, run.policy.dir], TOKENIZER_FILES);
  // The kind too: `train:7` is pair 7 for paired data but completion 7 for unpaired data.
  const key = {
    model: await fingerprint(ref.dir),
    source,
    settings,
    kind: run.kind,
    kl: run.withKl,
  };
  return { model, cache: await RefLogpCache.open(key, source) };
}
