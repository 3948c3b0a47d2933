/**
 * The judge a config asks for: `judge` is a module path (a rule judge), `http`, or
 * `reward_model`, with the keys each needs.
 *
 * @module
 */
import { httpJudge } from "./http.ts";
import type { Judge } from "./judge.ts";
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
}

/**
 * Creates the configured judge.
 *
 * @param settings The judge keys.
 * @returns The judge.
 */
export async function createJudge(settings: JudgeSettings): Promise<Judge> {
  if (settings.judge === "http") {
    if (!settings.judge_url || !settings.judge_model) {
      throw new Error("The http judge needs judge_url and judge_model");
    }
    return httpJudge({
      url: settings.judge_url,
      model: settings.judge_model,
      apiKeyEnv: settings.judge_api_key_env || undefined,
    });
  }
  if (settings.judge === "reward_model") {
    if (!settings.reward_model) {
      throw new Error("The reward_model judge needs reward_model: a folder");
    }
    return rewardModelJudge(await RewardModel.load(settings.reward_model));
  }
  return await loadRuleJudge(settings.judge);
}
