/**
 * Online DPO: Direct Language Model Alignment from Online AI Feedback.
 *
 * Guo, Zhang, Liu, Liu, Khalman, Llinares, Rame, Mesnard, Zhao, Piot, Ferret and Blondel (2024),
 * arXiv:2402.04792.
 *
 * Offline DPO learns from pairs someone else's model wrote. Online DPO samples its pairs from the
 * *current* policy: for each prompt x, draw y¹, y² ~ π_θ(·|x), ask a judge which is better
 * (y_c ≻ y_r), and take one DPO step on that pair, with π_ref frozen:
 *
 *     L = −E_{x, (y_c, y_r) ~ judge(π_θ(·|x))} [ log σ(β·Δ) ],  Δ as in DPO (dpo.ts)
 *
 * or the IPO loss on the same pair (`online_loss: "ipo"`, ipo.ts). The pairs are always on-policy,
 * so the preference signal stays about the answers the model actually gives.
 *
 * Data: prompts only (any preference dataset's prompts, or a prompt-only dataset). The loop
 * generates and judges (`online: true`); ties and judge failures are counted and skipped.
 *
 * Hyperparameters: `beta`; `online_loss`; sampling `temperature`, `top_p`, `max_new_tokens`;
 * the judge: `judge` (a TypeScript module path exporting `judge(prompt, a, b)`, `http` for an
 * OpenAI-compatible endpoint at `judge_url` with model `judge_model` and the key in the variable
 * `judge_api_key_env`, or `reward_model` for the sequence-classification checkpoint at
 * `reward_model_path`, TRL's name), with `judge_timeout` seconds per verdict, `judge_max_retries` retries of an HTTP
 * request and `judge_concurrency` pairs judged at once. The built-in `judges/shorter.ts` prefers
 * the shorter answer.
 *
 * Metrics: DPO/IPO's `rewards/*` and `logps/*` on the judged pairs, plus `judge/agreement`: the
 * fraction of pairs where the policy itself already prefers the judge's choice (higher mean token
 * log-prob), which rises as the policy aligns with the judge.
 *
 * @module
 */
import { dpo } from "./dpo.ts";
import { ipo } from "./ipo.ts";
import type { Algorithm, LossOutput, PairedInputs, PairedReference } from "./types.ts";

/** Online DPO's hyperparameters. */
export const defaults = {
  /** @default 0.1 */
  beta: 0.1,
  /** The loss on judged pairs: "dpo" or "ipo". @default "dpo" */
  online_loss: "dpo",
  /** Sampling temperature of the two completions. @default 0.9 */
  temperature: 0.9,
  /** Nucleus sampling threshold. @default 1 */
  top_p: 1,
  /** Longest completion sampled. @default 64 */
  max_new_tokens: 64,
  /** Judge: a module path, "http" or "reward_model". @default "judges/shorter.ts" */
  judge: "judges/shorter.ts",
  /** Base URL of the HTTP judge (e.g. http://localhost:8000/v1). @default "" */
  judge_url: "",
  /** Model name sent to the HTTP judge. @default "" */
  judge_model: "",
  /** Environment variable holding the HTTP judge's API key ("" for none). @default "" */
  judge_api_key_env: "",
  /** Folder of the reward model (a *ForSequenceClassification checkpoint). @default "" */
  reward_model_path: "",
  /** Seconds one verdict may take (an HTTP request, a judge module's call). @default 30 */
  judge_timeout: 30,
  /** Retries of a failed or timed-out HTTP judge request. @default 2 */
  judge_max_retries: 2,
  /** Pairs judged at the same time. @default 4 */
  judge_concurrency: 4,
};

/**
 * The loss on a batch of judged pairs.
 *
 * @param x Policy and reference summed log-probs and lengths of each pair `(B)`.
 * @param hp Hyperparameters.
 * @returns The mean loss and metrics.
 */
export function loss(x: PairedInputs & PairedReference, hp: typeof defaults): LossOutput {
  const out = hp.online_loss === "ipo"
    ? ipo.loss(x, { ...ipo.defaults, beta: hp.beta })
    : dpo.loss(x, { ...dpo.defaults, beta: hp.beta });
  const prefersChosen = x.policyChosenLogps.div(x.chosenLengths)
    .gt(x.policyRejectedLogps.div(x.rejectedLengths));
  return {
    loss: out.loss,
    metrics: {
      ...out.metrics,
      "judge/agreement": prefersChosen.cast(x.chosenLengths.dtype).mean(),
    },
  };
}

/** The Online DPO module. */
export const onlineDpo: Algorithm<typeof defaults, PairedInputs & PairedReference> = {
  name: "online_dpo",
  needsReference: true,
  data: "paired",
  online: true,
  defaults,
  learningRate: 5e-7, // TRL's OnlineDPOConfig default
  loss,
};
