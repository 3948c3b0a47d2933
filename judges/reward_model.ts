/**
 * A reward-model judge: a `*ForSequenceClassification` checkpoint (Llama, Qwen2 or OLMo-2 body
 * plus a `score` head, as `transformers` saves it) run through the engine. The score of a
 * conversation is the head applied to the hidden state of its last token; the higher-scored
 * completion wins, equal scores tie.
 *
 * @module
 */
import { constant, type HostTensor, input } from "../graph/mod.ts";
import { Program } from "../runtime/mod.ts";
import { loadConfig } from "../model/config.ts";
import { buildCausalLM } from "../model/decoder.ts";
import { loadWeights, weightShapes } from "../model/weights.ts";
import { loadTokenizer, type Tokenizer } from "../model/tokenizer.ts";
import type { Judge, Verdict } from "./judge.ts";

/** A compiled reward model with its tokenizer. */
export class RewardModel {
  private constructor(readonly program: Program, readonly tokenizer: Tokenizer) {}

  /**
   * Loads a sequence-classification checkpoint folder.
   *
   * @param dir Folder with config.json, safetensors (with `score.weight`) and tokenizer files.
   * @returns The reward model.
   */
  static async load(dir: string): Promise<RewardModel> {
    const config = await loadConfig(dir);
    const all = await loadWeights(dir);
    const head = all["score.weight"];
    if (!head) {
      throw new Error(
        `Reward model ${dir} has no "score.weight": not a *ForSequenceClassification checkpoint`,
      );
    }
    // The body only: a classification checkpoint has no LM head, so build it as if tied.
    const body = { ...config, tie_word_embeddings: true };
    const frozen: Record<string, HostTensor> = {};
    for (const name of Object.keys(weightShapes(body))) {
      const w = all[name] ?? all[name.replace(/^model\./, "")];
      if (!w) throw new Error(`Reward model ${dir} is missing weight "${name}"`);
      frozen[name] = w;
    }
    const model = buildCausalLM(body, { frozen });
    const ids = input("input_ids", ["N", "T"], "int64");
    const mask = input("attention_mask", ["N", "T"]);
    const last = input("last_index", ["N", 1, config.hidden_size], "int64");
    const hidden = model.hidden(ids, mask).takeAlongAxis(last, 1).squeeze(1); // (N,D)
    const W = constant(head.data as Float32Array, head.shape); // (labels,D)
    const scores = hidden.matmul(W.transpose()).slice(1, 0, 1).squeeze(1); // (N)
    const program = await Program.compile({ scores });
    return new RewardModel(program, await loadTokenizer(dir));
  }

  /**
   * Scores token sequences (right-padded internally).
   *
   * @param sequences Token ids per sequence.
   * @returns One score per sequence.
   */
  async score(sequences: number[][]): Promise<number[]> {
    const N = sequences.length;
    const T = sequences.reduce((t, s) => Math.max(t, s.length), 0);
    const D = this.program.inputs.find((s) => s.name === "last_index")!.shape[2] as number;
    const ids = new BigInt64Array(N * T);
    const mask = new Float32Array(N * T);
    const last = new BigInt64Array(N * D);
    sequences.forEach((s, n) => {
      s.forEach((t, i) => {
        ids[n * T + i] = BigInt(t);
        mask[n * T + i] = 1;
      });
      last.fill(BigInt(s.length - 1), n * D, (n + 1) * D);
    });
    const { scores } = await this.program.run({
      input_ids: { dtype: "int64", shape: [N, T], data: ids },
      attention_mask: { dtype: "float32", shape: [N, T], data: mask },
      last_index: { dtype: "int64", shape: [N, 1, D], data: last },
    });
    return Array.from(scores.data as Float32Array);
  }
}

/**
 * A judge backed by a reward model: `prompt + completion` texts are tokenized with the reward
 * model's own tokenizer and scored.
 *
 * @param model The loaded reward model.
 * @returns The judge.
 */
export function rewardModelJudge(model: RewardModel): Judge {
  return {
    name: "reward_model",
    async judge(prompt: string, a: string, b: string): Promise<Verdict> {
      const [sa, sb] = await model.score([
        model.tokenizer.encode(prompt + a),
        model.tokenizer.encode(prompt + b),
      ]);
      return sa > sb ? "a" : sb > sa ? "b" : "tie";
    },
  };
}
