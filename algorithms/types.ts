/**
 * The contract between the train loop and an algorithm, and the two checks both sides use.
 *
 * An algorithm is a record `{ name, needsReference, data, defaults, loss }` (plus, optionally,
 * `requires`, `state`, `learningRate` and `trlLossTypes`). The train loop computes per-sequence tensors from the
 * model inside the train-step graph, hands them to `loss(inputs, hp)`, and differentiates the
 * returned scalar. It decides what to compute from `needsReference`, `data` and `requires(hp)`
 * only, never from the algorithm's name.
 *
 * Shapes: every input is `(B)`, one value per row of the batch (a pair for paired data, a
 * completion for unpaired data), float32 in training and float64 in tests. `B` may be any size
 * ≥ 1. Log-probs are *summed* over the completion's tokens (prompt and padding excluded); lengths
 * are completion token counts, as floats.
 *
 * What the loop provides:
 *
 * | data kind          | always                                                            | when `needsReference`                             |
 * | ------------------ | ----------------------------------------------------------------- | ------------------------------------------------- |
 * | paired             | `policyChosenLogps`, `policyRejectedLogps`, `chosenLengths`, `rejectedLengths` | `referenceChosenLogps`, `referenceRejectedLogps` |
 * | unpaired           | `policyLogps`, `lengths`, `labels` (1 desirable, 0 undesirable)  | `referenceLogps`                                  |
 *
 * An algorithm with `data: "both"` gets either set, depending on the dataset. Anything else is
 * an extra that the algorithm lists in `requires(hp)`:
 * - `chosenScores`, `rejectedScores`: the dataset's ratings of each answer (e.g. UltraFeedback's
 *   `score_chosen` / `score_rejected`), for ODPO's offset.
 * - `policyKlLogps`, `referenceKlLogps`: summed log-probs of a *mismatched* completion, row i's
 *   prompt followed by the completion of row (i + 1) mod B (the chosen one for paired data), for
 *   KTO's reference point. With B = 1 that completion is row 0's own; the loss must ignore it.
 *
 * Algorithms that carry scalars across steps (BCO's running reward mean) declare `state`: the
 * loop feeds each value as a scalar input (shape `[]`) in `inputs.state`, and after each optimizer
 * step replaces the values with `state.update(state, metrics)`.
 *
 * Metrics are scalars (means over the batch), with TRL's names: `rewards/chosen`,
 * `rewards/rejected` (the algorithm's implicit reward, e.g. β·log π/π_ref), `rewards/margins`
 * (their difference), `rewards/accuracies` (fraction of pairs whose chosen reward is higher; for
 * `data: "both"` algorithms, fraction of completions on the right side of the reference point),
 * `logps/chosen`, `logps/rejected` (summed policy log-probs), plus the algorithm's own.
 *
 * @module
 */
import type { Tensor } from "../graph/mod.ts";

/** What a dataset gives: preference pairs, labelled single completions, or either. */
export type DataKind = "paired" | "unpaired" | "both";

/** Per-pair inputs from paired data, each `(B)`. */
export interface PairedInputs {
  /** Σₜ log π_θ(y_c,t | x, y_c,<t): the chosen completion's summed log-prob under the policy. */
  policyChosenLogps: Tensor;
  /** The rejected completion's summed log-prob under the policy. */
  policyRejectedLogps: Tensor;
  /** |y_c|: token count of the chosen completion. */
  chosenLengths: Tensor;
  /** |y_r|: token count of the rejected completion. */
  rejectedLengths: Tensor;
}

/** Reference-model log-probs for paired data, present when `needsReference`. */
export interface PairedReference {
  /** The chosen completion's summed log-prob under the frozen reference model. */
  referenceChosenLogps: Tensor;
  /** The rejected completion's summed log-prob under the reference model. */
  referenceRejectedLogps: Tensor;
}

/** Per-completion inputs from unpaired (KTO-style) data, each `(B)`. */
export interface UnpairedInputs {
  /** The completion's summed log-prob under the policy. */
  policyLogps: Tensor;
  /** Token count of the completion. */
  lengths: Tensor;
  /** 1 for a desirable completion, 0 for an undesirable one. */
  labels: Tensor;
}

/** Reference-model log-probs for unpaired data, present when `needsReference`. */
export interface UnpairedReference {
  /** The completion's summed log-prob under the reference model. */
  referenceLogps: Tensor;
}

/** Score columns of a preference dataset, present when listed in `requires`. */
export interface Scores {
  /** Rating of the chosen answer. */
  chosenScores: Tensor;
  /** Rating of the rejected answer. */
  rejectedScores: Tensor;
}

/** Log-probs of mismatched prompt/completion pairs, present when listed in `requires`. */
export interface KlInputs {
  /** log π_θ(y_{(i+1) mod B} | x_i), summed over the completion. */
  policyKlLogps: Tensor;
  /** The same under the reference model. */
  referenceKlLogps: Tensor;
}

/** Name of any per-sequence input. */
export type InputName = keyof (
  & PairedInputs
  & PairedReference
  & UnpairedInputs
  & UnpairedReference
  & Scores
  & KlInputs
);

/** Every input name, in a stable order (for checks and the JSON format of `evaluateLoss`). */
export const INPUT_NAMES: readonly InputName[] = [
  "policyChosenLogps",
  "policyRejectedLogps",
  "referenceChosenLogps",
  "referenceRejectedLogps",
  "chosenLengths",
  "rejectedLengths",
  "chosenScores",
  "rejectedScores",
  "policyLogps",
  "referenceLogps",
  "lengths",
  "labels",
  "policyKlLogps",
  "referenceKlLogps",
];

/** Scalar state inputs, by the keys of the algorithm's `state.initial`. */
export interface StateInputs {
  /** One scalar tensor (shape `[]`) per state key. */
  state: Record<string, Tensor>;
}

/** The loosest view of a loss's inputs (what the registry's type promises). */
export type LossInputs = Partial<Record<InputName, Tensor>> & Partial<StateInputs>;

/** Hyperparameters: flat, snake_case keys as in TRL, numbers, booleans or strings. */
export type Hyperparameters = Record<string, number | boolean | string>;

/** What a loss returns. */
export interface LossOutput {
  /** The batch loss: a scalar, the mean over the batch. */
  loss: Tensor;
  /** Scalars to log, by TRL's names. */
  metrics: Record<string, Tensor>;
}

/** Scalars an algorithm keeps across optimizer steps. */
export interface AlgorithmState {
  /** Values before the first step. */
  initial: Readonly<Record<string, number>>;
  /**
   * The next step's state.
   *
   * @param state This step's state.
   * @param metrics This step's metrics (averaged over micro-batches).
   * @returns The state for the next step.
   */
  update(state: Record<string, number>, metrics: Record<string, number>): Record<string, number>;
}

/** One direct-alignment algorithm. `I` is the input record its loss reads. */
export interface Algorithm<H extends Hyperparameters = Hyperparameters, I = LossInputs> {
  /** The `--loss` name. */
  readonly name: string;
  /** Whether the loss reads reference-model log-probs (then the loop computes them). */
  readonly needsReference: boolean;
  /** Which datasets it trains on. */
  readonly data: DataKind;
  /** Hyperparameters and their defaults. */
  readonly defaults: Readonly<H>;
  /**
   * The loop generates its pairs from the current policy and a judge (Online DPO) instead of
   * reading them from the dataset, whose prompts it uses.
   */
  readonly online?: boolean;
  /** Learning rate the source recommends, used when the config sets none. */
  readonly learningRate?: number;
  /** TRL's `loss_type` names for this loss (`sigmoid` for DPO), so TRL configs select it. */
  readonly trlLossTypes?: readonly string[];
  /** Scalars kept across steps, fed back as `inputs.state`. */
  readonly state?: AlgorithmState;
  /**
   * Extra inputs beyond those of its data kind (see the module doc).
   *
   * @param hp The resolved hyperparameters.
   * @returns Input names.
   */
  requires?(hp: H): readonly InputName[];
  /**
   * Builds the loss graph.
   *
   * @param inputs Symbolic per-sequence tensors, each `(B)`.
   * @param hp The resolved hyperparameters.
   * @returns The batch loss and metrics.
   */
  loss(inputs: I, hp: H): LossOutput;
}

const PAIRED: readonly InputName[] = [
  "policyChosenLogps",
  "policyRejectedLogps",
  "chosenLengths",
  "rejectedLengths",
];
const UNPAIRED: readonly InputName[] = ["policyLogps", "lengths", "labels"];

/**
 * The inputs an algorithm's loss reads for a dataset of one kind: what the loop must compute.
 *
 * @param algorithm The algorithm.
 * @param options `kind`: the dataset's kind; `hp`: resolved hyperparameters (for `requires`).
 * @returns Input names, in `INPUT_NAMES` order.
 * @example
 * ```ts
 * import { requiredInputs } from "./types.ts";
 * import { dpo } from "./dpo.ts";
 * const names = requiredInputs(dpo, { kind: "paired", hp: dpo.defaults });
 * if (!names.includes("referenceChosenLogps")) throw new Error("unexpected");
 * ```
 */
export function requiredInputs(
  algorithm: Algorithm,
  options: { kind: "paired" | "unpaired"; hp: Hyperparameters },
): InputName[] {
  const { kind, hp } = options;
  if (algorithm.data !== "both" && algorithm.data !== kind) {
    throw new Error(
      `Loss "${algorithm.name}" trains on ${algorithm.data} data: got ${kind} data`,
    );
  }
  const names = new Set<InputName>(kind === "paired" ? PAIRED : UNPAIRED);
  if (algorithm.needsReference) {
    if (kind === "paired") names.add("referenceChosenLogps").add("referenceRejectedLogps");
    else names.add("referenceLogps");
  }
  for (const name of algorithm.requires?.(hp) ?? []) names.add(name);
  return INPUT_NAMES.filter((name) => names.has(name));
}
