/**
 * Checks shared by the algorithm tests: a loss against its independent reference (value, metrics,
 * and the gradient against central differences of the reference), and the loss graph's own
 * gradient against central differences of the graph (via tests/graph/_gradcheck.ts).
 *
 * @module
 */
import { algorithm, evaluateLoss, type LossResult, requiredInputs } from "../../algorithms/mod.ts";
import { input, type Tensor } from "../../graph/mod.ts";
import { type CheckInput, gradcheck } from "../graph/_gradcheck.ts";
import type { Batch, Reference } from "./_reference.ts";

/** Hyperparameter overrides. */
export type Hp = Record<string, number | boolean | string>;

/** Throws unless |got − want| ≤ tol·max(1, |want|), reporting the difference. */
export function assertClose(got: number, want: number, tol: number, what: string): void {
  const diff = Math.abs(got - want) / Math.max(1, Math.abs(want));
  if (!(diff <= tol)) {
    throw new Error(`${what}: got ${got}, expected ${want}, difference ${diff} > ${tol}`);
  }
}

/** The policy columns a batch differentiates by. */
export const policyKeys = (
  b: Batch,
): ("policy_logps" | "policy_chosen_logps" | "policy_rejected_logps")[] =>
  b.policy_logps ? ["policy_logps"] : ["policy_chosen_logps", "policy_rejected_logps"];

/** Central differences of `f` with respect to each policy log-prob of `b`. */
export function numericGrad(b: Batch, f: (b: Batch) => number): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const key of policyKeys(b)) {
    out[key] = b[key]!.map((x, i) => {
      const h = 1e-6 * (Math.abs(x) || 1); // relative steps: ORPO has curvature 1/ℓ̄² near 0
      const at = (v: number) => f({ ...b, [key]: b[key]!.map((y, j) => j === i ? v : y) });
      return (at(x + h) - at(x - h)) / (2 * h);
    });
  }
  return out;
}

/**
 * Runs loss `name` through `evaluateLoss` and checks it against `reference`: the loss and each
 * reference metric within `tol` (relative), and the gradient within `gradTol` of central
 * differences of `gradOf` (default: the reference loss).
 */
export async function checkLoss(
  name: string,
  batch: Batch,
  hp: Hp,
  reference: Reference,
  options: { tol?: number; gradTol?: number; gradOf?: (b: Batch) => number } = {},
): Promise<LossResult> {
  const { tol = 1e-12, gradTol = 1e-7 } = options;
  const out = await evaluateLoss(name, { ...batch }, { hyperparameters: hp });
  const full = { ...algorithm(name).defaults, ...hp };
  const want = reference(batch, full);
  assertClose(out.loss, want.loss, tol, `${name} loss`);
  for (const [metric, value] of Object.entries(want.metrics ?? {})) {
    assertClose(out.metrics[metric], value, tol, `${name} metric ${metric}`);
  }
  const numeric = numericGrad(batch, options.gradOf ?? ((b) => reference(b, full).loss));
  for (const [key, values] of Object.entries(numeric)) {
    values.forEach((v, i) =>
      assertClose(out.grad[key][i], v, gradTol, `${name} d loss/d ${key}[${i}]`)
    );
  }
  return out;
}

/** Names of the graph inputs `t` depends on. */
function inputsOf(t: Tensor): Set<string> {
  const names = new Set<string>(), seen = new Set<number>(), stack = [t];
  while (stack.length) {
    const x = stack.pop()!;
    if (seen.has(x.id)) continue;
    seen.add(x.id);
    if (x.op === "Input") names.add(x.name!);
    stack.push(...x.inputs);
  }
  return names;
}

/**
 * Finite-difference check of the loss graph itself (float64): every policy and reference
 * log-prob input the loss reads is differentiated; lengths, labels, scores, mismatched log-probs
 * and state are held constant.
 */
export async function checkGraphGradient(name: string, batch: Batch, hp: Hp = {}): Promise<number> {
  const alg = algorithm(name);
  const full = { ...alg.defaults, ...hp };
  const kind = batch.policy_logps ? "unpaired" : "paired";
  const snake = (n: string) => n.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
  const columns: [string, number[]][] = requiredInputs(alg, { kind, hp: full })
    .map((n) => [n, (batch as Record<string, number[]>)[snake(n)]]);
  const state = Object.entries(alg.state?.initial ?? {})
    .map(([k, v]) => [k, batch.state?.[k] ?? v] as const);
  const build = (xs: Tensor[]) => {
    const inputs: Record<string, unknown> = {};
    columns.forEach(([n], i) => inputs[n] = xs[i]);
    if (state.length) {
      inputs.state = Object.fromEntries(state.map(([k], j) => [k, xs[columns.length + j]]));
    }
    return alg.loss(inputs, full).loss;
  };
  // Probe which inputs the loss reads: the check feeds only those (DPO ignores lengths).
  const probe = [
    ...columns.map(([n]) => input(n, ["B"], "float64")),
    ...state.map(([k]) => input(k, [], "float64")),
  ];
  const read = inputsOf(build(probe));
  const keep = probe.map((t) => read.has(t.name!));
  const differentiable = (n: string) => /^(policy|reference)(Chosen|Rejected)?Logps$/.test(n);
  const specs: CheckInput[] = [
    ...columns.map(([n, data]): CheckInput =>
      differentiable(n)
        ? { shape: [data.length], declared: ["B"], data }
        : { shape: [data.length], declared: ["B"], constant: { dtype: "float64", data } }
    ),
    ...state.map(([, v]): CheckInput => ({ shape: [], constant: { dtype: "float64", data: [v] } })),
  ];
  const placeholder = (i: number) => input(`unused${i}`, [1], "float64");
  return await gradcheck(
    (...xs: Tensor[]) => {
      let next = 0;
      return build(keep.map((k, i) => k ? xs[next++] : placeholder(i)));
    },
    specs.filter((_, i) => keep[i]),
    { tol: 1e-6 },
  );
}

/** A seeded batch of B pairs with plausible magnitudes (log-probs −5…−60, lengths 3…40). */
export function randomBatch(B: number, seed = 1): Batch {
  let a = seed >>> 0;
  const u = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const col = (lo: number, hi: number) => Array.from({ length: B }, () => lo + (hi - lo) * u());
  const ints = (lo: number, hi: number) => col(lo, hi).map(Math.round);
  const policyChosen = col(-60, -5);
  const policyRejected = col(-60, -5);
  return {
    policy_chosen_logps: policyChosen,
    policy_rejected_logps: policyRejected,
    reference_chosen_logps: policyChosen.map((p) => p + (u() - 0.5) * 8),
    reference_rejected_logps: policyRejected.map((p) => p + (u() - 0.5) * 8),
    chosen_lengths: ints(3, 40),
    rejected_lengths: ints(3, 40),
    chosen_scores: col(6, 10),
    rejected_scores: col(1, 5.5),
    policy_kl_logps: col(-60, -5),
    reference_kl_logps: col(-60, -5),
  };
}
