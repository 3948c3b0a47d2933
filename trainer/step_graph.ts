/**
 * The graph of one training step, from token batch to loss: the policy's sequence log-probs,
 * split into the per-sequence tensors the algorithm reads, plus the inputs fed from outside the
 * model (reference log-probs, labels, scores, algorithm state).
 *
 * Rows of a batch come in G groups of B (shape letters: N = G·B rows, T tokens):
 * paired data → [chosen, rejected]; unpaired → [completions] or, when the algorithm needs a KL
 * estimate, [completions, mismatched completions]. Reference log-probs arrive as one (G,B) input,
 * so the same graph serves both a precomputed cache and reference forward passes.
 *
 * @module
 */
import type { Algorithm, Hyperparameters, InputName, LossInputs } from "../algorithms/mod.ts";
import { requiredInputs } from "../algorithms/mod.ts";
import { input, type Tensor } from "../graph/mod.ts";
import type { ModelConfig } from "../model/config.ts";
import { buildCausalLM, type CausalLM, type CausalLMOptions } from "../model/decoder.ts";
import { BATCH_INPUTS, batchLogps } from "../model/logprobs.ts";

/** The built step graph and what it needs fed. */
export interface StepGraph {
  /** The policy model (its `params` are the trainable inputs). */
  model: CausalLM;
  /** Scalar batch loss. */
  loss: Tensor;
  /** Scalar metrics. */
  metrics: Record<string, Tensor>;
  /** Row groups per batch (see the module doc). */
  groups: number;
  /** Whether the last group holds mismatched (KL) completions. */
  withKl: boolean;
  /** The algorithm's inputs, by name. */
  needs: InputName[];
  /** Summed completion log-probs and token counts of every row (N = groups·B), for evaluation. */
  perSequence: { logps: Tensor; counts: Tensor };
}

/** Desirable (label 1) and undesirable completions' logit sums and token counts. */
function labelledLogits(sums: Tensor, counts: Tensor, labels: Tensor) {
  const bad = labels.neg().add(1);
  return {
    chosen: [sums.mul(labels), counts.mul(labels)],
    rejected: [sums.mul(bad), counts.mul(bad)],
  };
}

/** Names of the graph inputs fed per batch. */
export const FEEDS = {
  ...BATCH_INPUTS,
  reference: "reference_logps",
  labels: "labels",
  chosenScores: "chosen_scores",
  rejectedScores: "rejected_scores",
} as const;

/**
 * Which inputs `algorithm` reads and how a batch's rows are grouped for it (see the module doc).
 *
 * @param algorithm The loss.
 * @param options The data kind and the resolved hyperparameters.
 * @returns The inputs it needs, whether the last group holds KL completions, groups per batch.
 * @example
 * ```ts
 * import { algorithm } from "../algorithms/mod.ts";
 * import { rowLayout } from "./step_graph.ts";
 * const kto = algorithm("kto");
 * const { withKl, groups } = rowLayout(kto, { kind: "unpaired", hp: kto.defaults });
 * if (!withKl || groups !== 2) throw new Error("unexpected");
 * ```
 */
export function rowLayout(
  algorithm: Algorithm,
  options: { kind: "paired" | "unpaired"; hp: Hyperparameters },
): Pick<StepGraph, "needs" | "withKl" | "groups"> {
  const { kind, hp } = options;
  const needs = requiredInputs(algorithm, { kind, hp });
  const withKl = needs.includes("policyKlLogps");
  if (withKl && kind === "paired") {
    throw new Error(`Loss "${algorithm.name}" needs KL completions, which need unpaired data`);
  }
  return { needs, withKl, groups: kind === "paired" ? 2 : withKl ? 2 : 1 };
}

/**
 * Builds the step graph of `algorithm` on a model of `config`'s architecture.
 *
 * @param config The policy's architecture.
 * @param options Algorithm, resolved hyperparameters, the data kind, and how the decoder is built
 *   (`model`: frozen base and LoRA adapters, gradient checkpointing).
 * @returns The graph pieces.
 */
export function buildStepGraph(
  config: ModelConfig,
  options: {
    algorithm: Algorithm;
    hp: Hyperparameters;
    kind: "paired" | "unpaired";
    model?: CausalLMOptions;
  },
): StepGraph {
  const { algorithm, hp, kind } = options;
  const { needs, withKl, groups } = rowLayout(algorithm, { kind, hp });
  const model = buildCausalLM(config, options.model);
  const lp = batchLogps(model);
  /** Row g of a (G,B) tensor, as (B). */
  const row = (t: Tensor, g: number) => t.slice(0, g, g + 1).squeeze(0);
  /** Row group g of a per-row (N) tensor, as (B). */
  const group = (t: Tensor, g: number) => row(t.reshape([groups, "B"]), g);
  const reference = input(FEEDS.reference, [groups, "B"]);
  const available: Partial<Record<InputName, Tensor>> = kind === "paired"
    ? {
      policyChosenLogps: group(lp.sum, 0),
      policyRejectedLogps: group(lp.sum, 1),
      chosenLengths: group(lp.count, 0),
      rejectedLengths: group(lp.count, 1),
      referenceChosenLogps: row(reference, 0),
      referenceRejectedLogps: row(reference, 1),
      chosenScores: input(FEEDS.chosenScores, ["B"]),
      rejectedScores: input(FEEDS.rejectedScores, ["B"]),
    }
    : {
      policyLogps: group(lp.sum, 0),
      lengths: group(lp.count, 0),
      labels: input(FEEDS.labels, ["B"]),
      referenceLogps: row(reference, 0),
      ...(withKl
        ? {
          policyKlLogps: group(lp.sum, 1),
          referenceKlLogps: row(reference, 1),
        }
        : {}),
    };
  const inputs: LossInputs = {};
  for (const name of needs) {
    const t = available[name];
    if (!t) {
      throw new Error(`Loss "${algorithm.name}" needs input "${name}", which ${kind} data lacks`);
    }
    inputs[name] = t;
  }
  if (algorithm.state) {
    inputs.state = Object.fromEntries(
      Object.keys(algorithm.state.initial).map((k) => [k, input(`state.${k}`, [])]),
    );
  }
  const { loss, metrics } = algorithm.loss(inputs, hp);
  const logits = kind === "paired"
    ? {
      chosen: [group(lp.logitSum, 0), group(lp.count, 0)],
      rejected: [group(lp.logitSum, 1), group(lp.count, 1)],
    }
    : labelledLogits(group(lp.logitSum, 0), group(lp.count, 0), available.labels!);
  // TRL's logits/*: the mean logit over every completion token of the batch.
  metrics["logits/chosen"] = logits.chosen[0].sum().div(logits.chosen[1].sum().maximum(1));
  metrics["logits/rejected"] = logits.rejected[0].sum().div(logits.rejected[1].sum().maximum(1));
  const perSequence = { logps: lp.sum, counts: lp.count };
  return { model, loss, metrics, groups, withKl, needs, perSequence };
}
