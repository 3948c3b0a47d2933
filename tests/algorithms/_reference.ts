/**
 * Independent reference values: every loss written again in plain float64 TypeScript, straight
 * from the formulas of its paper (or TRL's documented form), row by row, sharing no code with
 * `algorithms/`. `Math.log1p` / `Math.expm1` give accurate values where the graph needs tricks.
 *
 * @module
 */

/** A batch of concrete inputs, snake_case as in `evaluateLoss` (absent columns undefined). */
export type Batch = {
  policy_chosen_logps?: number[];
  policy_rejected_logps?: number[];
  reference_chosen_logps?: number[];
  reference_rejected_logps?: number[];
  chosen_lengths?: number[];
  rejected_lengths?: number[];
  chosen_scores?: number[];
  rejected_scores?: number[];
  policy_logps?: number[];
  reference_logps?: number[];
  lengths?: number[];
  labels?: number[];
  policy_kl_logps?: number[];
  reference_kl_logps?: number[];
  state?: Record<string, number>;
};

/** A reference loss: batch and hyperparameters to the batch loss (and some metrics). */
export type Reference = (
  b: Batch,
  hp: Record<string, number | boolean | string>,
) => { loss: number; metrics?: Record<string, number> };

export const logSigmoid = (x: number): number =>
  x < 0 ? x - Math.log1p(Math.exp(x)) : -Math.log1p(Math.exp(-x));
export const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));
export const mean = (a: number[]): number => a.reduce((s, v) => s + v, 0) / a.length;
const num = (v: unknown) => v as number;

/** Per-pair log-ratios r_c = π_c − ref_c and r_r = π_r − ref_r. */
function ratios(b: Batch): { rc: number[]; rr: number[] } {
  const rc = b.policy_chosen_logps!.map((p, i) => p - b.reference_chosen_logps![i]);
  const rr = b.policy_rejected_logps!.map((p, i) => p - b.reference_rejected_logps![i]);
  return { rc, rr };
}

/** TRL-style pair metrics from per-pair rewards. */
function pairMetrics(b: Batch, c: number[], r: number[]): Record<string, number> {
  return {
    "rewards/chosen": mean(c),
    "rewards/rejected": mean(r),
    "rewards/accuracies": mean(c.map((v, i) => v > r[i] ? 1 : 0)),
    "rewards/margins": mean(c.map((v, i) => v - r[i])),
    "logps/chosen": mean(b.policy_chosen_logps!),
    "logps/rejected": mean(b.policy_rejected_logps!),
  };
}

/** −(1−ε) log σ(βΔ) − ε log σ(−βΔ), per pair, from log-ratios. */
const conservative = (β: number, ε: number, rc: number[], rr: number[]) =>
  rc.map((c, i) => {
    const Δ = c - rr[i];
    return -(1 - ε) * logSigmoid(β * Δ) - ε * logSigmoid(-β * Δ);
  });

export const dpo: Reference = (b, hp) => {
  const β = num(hp.beta), ε = num(hp.label_smoothing ?? 0);
  const { rc, rr } = ratios(b);
  return {
    loss: mean(conservative(β, ε, rc, rr)),
    metrics: pairMetrics(b, rc.map((v) => β * v), rr.map((v) => β * v)),
  };
};

export const rdpo: Reference = (b, hp) => {
  const β = num(hp.beta), ε = num(hp.label_smoothing);
  const { rc, rr } = ratios(b);
  const losses = rc.map((c, i) => {
    const Δ = c - rr[i];
    return (-(1 - ε) * logSigmoid(β * Δ) + ε * logSigmoid(-β * Δ)) / (1 - 2 * ε);
  });
  return { loss: mean(losses) };
};

export const dpoNorm: Reference = (b, hp) => {
  const β = num(hp.beta), ε = num(hp.label_smoothing);
  const { rc, rr } = ratios(b);
  const c = rc.map((v, i) => v / b.chosen_lengths![i]);
  const r = rr.map((v, i) => v / b.rejected_lengths![i]);
  return {
    loss: mean(conservative(β, ε, c, r)),
    metrics: pairMetrics(b, c.map((v) => β * v), r.map((v) => β * v)),
  };
};

export const ipo: Reference = (b, hp) => {
  const β = num(hp.beta);
  let { rc, rr } = ratios(b);
  if (hp.ipo_average) {
    rc = rc.map((v, i) => v / b.chosen_lengths![i]);
    rr = rr.map((v, i) => v / b.rejected_lengths![i]);
  }
  return {
    loss: mean(rc.map((c, i) => (c - rr[i] - 1 / (2 * β)) ** 2)),
    metrics: pairMetrics(b, rc.map((v) => β * v), rr.map((v) => β * v)),
  };
};

const meanTokenLogps = (b: Batch) => ({
  lc: b.policy_chosen_logps!.map((p, i) => p / b.chosen_lengths![i]),
  lr: b.policy_rejected_logps!.map((p, i) => p / b.rejected_lengths![i]),
});

export const simpo: Reference = (b, hp) => {
  const β = num(hp.beta), γ = num(hp.simpo_gamma), w = num(hp.cpo_alpha);
  const { lc, lr } = meanTokenLogps(b);
  const nll = mean(lc.map((v) => -v));
  const pref = mean(lc.map((c, i) => -logSigmoid(β * (c - lr[i]) - γ)));
  return {
    loss: pref + w * nll,
    metrics: { ...pairMetrics(b, lc.map((v) => β * v), lr.map((v) => β * v)), nll_loss: nll },
  };
};

/** log(1 − e^x) for x < 0, to float64 accuracy with Math's expm1/log1p (Mächler 2012). */
export const log1mexp = (x: number): number =>
  x > -Math.LN2 ? Math.log(-Math.expm1(x)) : Math.log1p(-Math.exp(x));

export const orpo: Reference = (b, hp) => {
  const λ = num(hp.beta);
  const { lc, lr } = meanTokenLogps(b);
  const logOdds = lc.map((c, i) => (c - lr[i]) - (log1mexp(c) - log1mexp(lr[i])));
  const nll = mean(lc.map((v) => -v));
  const ratio = logOdds.map(logSigmoid);
  return {
    loss: nll - λ * mean(ratio),
    metrics: {
      ...pairMetrics(b, lc.map((v) => λ * v), lr.map((v) => λ * v)),
      nll_loss: nll,
      log_odds_ratio: mean(ratio),
      log_odds_chosen: mean(logOdds),
    },
  };
};

export const odpo: Reference = (b, hp) => {
  const β = num(hp.beta), α = num(hp.odpo_alpha);
  const { rc, rr } = ratios(b);
  const offset = b.chosen_scores!.map((s, i) => α * Math.log(s - b.rejected_scores![i]));
  return {
    loss: mean(rc.map((c, i) => -logSigmoid(β * (c - rr[i]) - offset[i]))),
    metrics: { offset: mean(offset) },
  };
};

export const hinge: Reference = (b, hp) => {
  const β = num(hp.beta);
  const { rc, rr } = ratios(b);
  return { loss: mean(rc.map((c, i) => Math.max(0, 1 - β * (c - rr[i])))) };
};

export const apoZero: Reference = (b, hp) => {
  const β = num(hp.beta);
  const { rc, rr } = ratios(b);
  return { loss: mean(rc.map((c, i) => 1 - sigmoid(β * c) + sigmoid(β * rr[i]))) };
};

export const nca: Reference = (b, hp) => {
  const β = num(hp.beta);
  const { rc, rr } = ratios(b);
  const losses = rc.map((c, i) =>
    -logSigmoid(β * c) - 0.5 * logSigmoid(-β * c) - 0.5 * logSigmoid(-β * rr[i])
  );
  return { loss: mean(losses) };
};

export const rpo: Reference = (b, hp) => {
  const β = num(hp.beta), α = num(hp.rpo_alpha);
  const { rc, rr } = ratios(b);
  const nll = mean(b.policy_chosen_logps!.map((p, i) => -p / b.chosen_lengths![i]));
  return { loss: mean(rc.map((c, i) => -logSigmoid(β * (c - rr[i])))) + α * nll };
};

/** Completions with labels: paired data unpaired as chosen (1) then rejected (0). */
export function completions(b: Batch): { r: number[]; logps: number[]; labels: number[] } {
  if (b.policy_logps) {
    return {
      r: b.policy_logps.map((p, i) => p - b.reference_logps![i]),
      logps: b.policy_logps,
      labels: b.labels!,
    };
  }
  const { rc, rr } = ratios(b);
  return {
    r: [...rc, ...rr],
    logps: [...b.policy_chosen_logps!, ...b.policy_rejected_logps!],
    labels: [...rc.map(() => 1), ...rr.map(() => 0)],
  };
}

/** KTO's reference point z, as the paper: max(0, mean mismatched log-ratio), 0 with B = 1. */
export function ktoReferencePoint(b: Batch, estimate: string): number {
  if (estimate === "batch") return Math.max(0, mean(completions(b).r));
  const kl = b.policy_kl_logps!.map((p, i) => p - b.reference_kl_logps![i]);
  return kl.length > 1 ? Math.max(0, mean(kl)) : 0;
}

/** KTO's loss at a given reference point z. */
export function ktoLoss(b: Batch, hp: Record<string, unknown>, z: number): number {
  const β = num(hp.beta), wd = num(hp.desirable_weight), wu = num(hp.undesirable_weight);
  const { r, labels } = completions(b);
  return mean(
    r.map((ri, i) =>
      labels[i] === 1 ? wd * (1 - sigmoid(β * (ri - z))) : wu * (1 - sigmoid(β * (z - ri)))
    ),
  );
}

export const kto: Reference = (b, hp) => {
  const z = ktoReferencePoint(b, hp.kl_estimate as string);
  return { loss: ktoLoss(b, hp, z), metrics: { kl: z } };
};

/** BCO's δ for this step: the running mean including this batch's mean reward. */
export function bcoDelta(b: Batch, β: number): number {
  const { delta = 0, steps = 0 } = b.state ?? {};
  return (steps * delta + mean(completions(b).r.map((v) => β * v))) / (steps + 1);
}

/** BCO's loss at a given baseline δ. */
export function bcoLoss(b: Batch, β: number, δ: number): number {
  const { r, labels } = completions(b);
  return mean(
    r.map((ri, i) => labels[i] === 1 ? -logSigmoid(β * ri - δ) : -logSigmoid(-(β * ri - δ))),
  );
}

export const bco: Reference = (b, hp) => {
  const δ = bcoDelta(b, num(hp.beta));
  return { loss: bcoLoss(b, num(hp.beta), δ), metrics: { delta: δ } };
};
