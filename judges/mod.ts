/**
 * Judges rank two completions of one prompt, for Online DPO ("Direct Language Model Alignment from
 * Online AI Feedback", arXiv 2402.04792): the policy samples two answers, a judge says which is
 * better, and the pair trains the policy.
 *
 * Three kinds, chosen by config: a rule judge (a TypeScript module exporting `judge`), an HTTP
 * judge (an OpenAI-compatible chat endpoint), and a reward model (a sequence-classification
 * checkpoint run through the engine). A judge that fails throws {@linkcode JudgeFailure}; the
 * caller counts and skips that pair.
 *
 * @module
 */

export * from "./judge.ts";
export * from "./rule.ts";
export * from "./http.ts";
export * from "./reward_model.ts";
export * from "./select.ts";
