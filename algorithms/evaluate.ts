/**
 * Evaluating a loss on concrete numbers: the graph that training builds, run once in float64 on
 * the CPU, with the gradient of the batch loss with respect to each policy log-prob. This is the
 * reader's tool (and `deno task loss`) for checking a loss by hand.
 *
 * @module
 */
import { grad, type HostTensor, input, type Tensor } from "../graph/mod.ts";
import { Program } from "../runtime/mod.ts";
import {
  type Algorithm,
  INPUT_NAMES,
  type InputName,
  type LossInputs,
  requiredInputs,
} from "./types.ts";
import { resolveHyperparameters } from "./keys.ts";

/**
 * Concrete inputs, one number per row, under snake_case names: `policy_chosen_logps`,
 * `policy_rejected_logps`, `reference_chosen_logps`, `reference_rejected_logps`, `chosen_lengths`,
 * `rejected_lengths` for paired data (`policy_logps`, `reference_logps`, `lengths`, `labels` for
 * unpaired data), and where a loss needs them `chosen_scores`, `rejected_scores`,
 * `policy_kl_logps`, `reference_kl_logps`. `state` overrides the algorithm's initial state.
 */
export type LossData = { [name: string]: number[] | Record<string, number> | undefined } & {
  state?: Record<string, number>;
};

/** Options for {@linkcode evaluate}. */
export interface EvaluateOptions {
  /** Hyperparameter overrides (strings are parsed, as on the command line). */
  hyperparameters?: Record<string, unknown>;
}

/** The loss, metrics and gradient for one batch. */
export interface LossResult {
  /** The batch loss. */
  loss: number;
  /** Scalar metrics by name. */
  metrics: Record<string, number>;
  /** d loss / d each policy log-prob, by input name (snake_case). */
  grad: Record<string, number[]>;
}

/** What an input must hold beyond being finite, where it must hold more. */
const RULES: Partial<Record<InputName, string>> = {
  chosenLengths: "a token count > 0",
  rejectedLengths: "a token count > 0",
  lengths: "a token count > 0",
  labels: "0 (undesirable) or 1 (desirable)",
};

function valid(name: InputName, v: number): boolean {
  if (!Number.isFinite(v)) return false;
  if (name === "labels") return v === 0 || v === 1;
  return RULES[name] === undefined || v > 0;
}

/** `policyChosenLogps` → `policy_chosen_logps`. */
export const snakeCase = (name: string): string =>
  name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/**
 * Builds `algorithm`'s loss on float64 inputs, runs it on the CPU and returns the loss, the
 * metrics and the gradient with respect to the policy log-probs.
 *
 * @param algorithm The algorithm.
 * @param data One array per input (see {@linkcode LossData}), all of the same length B ≥ 1.
 * @param options Hyperparameter overrides.
 * @returns Loss, metrics and gradient.
 */
export async function evaluate(
  algorithm: Algorithm,
  data: LossData,
  options: EvaluateOptions = {},
): Promise<LossResult> {
  const known = new Set(["state", ...INPUT_NAMES.map(snakeCase)]);
  const unknown = Object.keys(data).filter((key) => !known.has(key));
  if (unknown.length > 0) {
    throw new Error(
      `Unknown inputs: ${unknown.join(", ")}: expected some of ${[...known].join(", ")}`,
    );
  }
  const hp = resolveHyperparameters(algorithm, options.hyperparameters ?? {});
  const kind = data.policy_logps !== undefined ? "unpaired" : "paired";
  const names = requiredInputs(algorithm, { kind, hp });
  const missing = names.map(snakeCase).filter((name) => data[name] === undefined);
  if (missing.length > 0) {
    throw new Error(`Missing inputs for loss "${algorithm.name}": ${missing.join(", ")}`);
  }

  const inputs: LossInputs = {};
  const feeds: Record<string, HostTensor> = {};
  let rows: number | undefined;
  for (const name of names) {
    const key = snakeCase(name);
    const values = data[key];
    if (
      !Array.isArray(values) || values.length === 0 || values.some((v) => typeof v !== "number")
    ) {
      throw new Error(`Input "${key}" must be a non-empty array of numbers`);
    }
    const bad = values.findIndex((v) => !valid(name, v));
    if (bad >= 0) {
      throw new Error(
        `Input "${key}"[${bad}] is ${values[bad]}: expected ${RULES[name] ?? "a finite number"}`,
      );
    }
    rows ??= values.length;
    if (values.length !== rows) {
      throw new Error(
        `Input "${key}" has ${values.length} values: expected ${rows}, as the first input`,
      );
    }
    inputs[name] = input(key, ["B"], "float64");
    feeds[key] = { dtype: "float64", shape: [rows], data: Float64Array.from(values) };
  }
  if (algorithm.state) {
    inputs.state = {};
    for (const [key, initial] of Object.entries(algorithm.state.initial)) {
      const value = data.state?.[key] ?? initial;
      inputs.state[key] = input(`state_${key}`, [], "float64");
      feeds[`state_${key}`] = { dtype: "float64", shape: [], data: Float64Array.of(value) };
    }
  }

  const { loss, metrics } = algorithm.loss(inputs, hp);
  const policy: InputName[] = kind === "paired"
    ? ["policyChosenLogps", "policyRejectedLogps"]
    : ["policyLogps"];
  const grads = grad(loss, policy.map((name) => inputs[name]!));
  const metricNames = Object.keys(metrics);
  const outputs: Record<string, Tensor> = { loss };
  grads.forEach((g, i) => outputs[`grad_${i}`] = g);
  metricNames.forEach((name, i) => outputs[`metric_${i}`] = metrics[name]);

  const program = await Program.compile(outputs, { device: "cpu" });
  try {
    // A loss need not read every input it may be given (DPO ignores lengths): feed what it reads.
    const used = Object.fromEntries(program.inputs.map((spec) => [spec.name, feeds[spec.name]]));
    const out = await program.run(used);
    const number = (t: HostTensor) => Number(t.data[0]);
    return {
      loss: number(out.loss),
      metrics: Object.fromEntries(metricNames.map((name, i) => [name, number(out[`metric_${i}`])])),
      grad: Object.fromEntries(
        policy.map((name, i) => [snakeCase(name), Array.from(out[`grad_${i}`].data, Number)]),
      ),
    };
  } finally {
    await program.release();
  }
}
