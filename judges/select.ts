/**
 * The judge a config asks for: `judge` is a module path (a rule judge), `http`, or
 * `reward_model`, with the keys each needs. Every judge runs under `judge_timeout` seconds per
 * verdict (the HTTP judge per request, retried `judge_max_retries` times).
 *
 * @module
 */
import { httpJudge } from "./http.ts";
import { type Judge, withDeadline } from "./judge.ts";
import { RewardModel, rewardModelJudge } from "./reward_model.ts";
import { loadRuleJudge } from "./rule.ts";

/** Judge settings, as the config keys of the `online_dpo` loss. */
export interface JudgeSettings {
  /** A module path, "http" or "reward_model". */
  judge: string;
  /** HTTP judge base URL. */
  judge_url?: string;
  /** HTTP judge model name. */
  judge_model?: string;
  /** Name of the variable holding the HTTP judge's key ("" for none). */
  judge_api_key_env?: string;
  /** Reward model folder. */
  reward_model?: string;
  /** Seconds a verdict (an HTTP request, a module's call) may take. */
  judge_timeout: number;
  /** Retries of a failed HTTP request. */
  judge_max_retries: number;
}

/**
 * Creates the configured judge.
 *
 * @param settings The judge keys.
 * @returns The judge.
 */
export async function createJudge(settings: JudgeSettings): Promise<Judge> {
  const timeoutMs = settings.judge_timeout * 1000;
  if (settings.judge === "http") {
    if (!settings.judge_url || !settings.judge_model) {
      throw new Error("The http judge needs judge_url and judge_model");
    }
    return httpJudge({
      url: settings.judge_url,
      model: settings.judge_model,
      apiKeyEnv: settings.judge_api_key_env || undefined,
      timeoutMs,
      maxRetries: settings.judge_max_retries,
    });
  }
  if (settings.judge === "reward_model") {
    if (!settings.reward_model) {
      throw new Error("The reward_model judge needs reward_model_path: a folder");
    }
    return withDeadline(rewardModelJudge(await RewardModel.load(settings.reward_model)), timeoutMs);
  }
  return withDeadline(await loadRuleJudge(settings.judge), timeoutMs);
}
