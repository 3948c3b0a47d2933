/**
 * An LLM judge behind an OpenAI-compatible chat endpoint (`POST {url}/chat/completions`). The
 * model is asked to answer with one letter, A or B. Timeouts, network errors and 429/5xx answers
 * are retried a bounded number of times (network errors and 429/5xx after an exponential backoff;
 * a timeout right away, so a hung server costs at most `timeoutMs × (maxRetries + 1)` per pair);
 * after that, or on an answer that names neither letter, the call throws
 * {@linkcode JudgeFailure} and the pair is skipped.
 *
 * @module
 */
import { type Judge, JudgeFailure, type Verdict } from "./judge.ts";

/** Options for {@linkcode httpJudge}. */
export interface HttpJudgeOptions {
  /** Base URL, e.g. `http://localhost:8000/v1`. */
  url: string;
  /** Model name sent in the request. */
  model: string;
  /** Name of the environment variable holding the API key (sent as a Bearer token). */
  apiKeyEnv?: string;
  /**
   * Per-request timeout in milliseconds.
   * @default 30000
   */
  timeoutMs?: number;
  /**
   * Retries after the first attempt.
   * @default 2
   */
  maxRetries?: number;
  /**
   * First backoff in milliseconds (doubled each retry).
   * @default 500
   */
  backoffMs?: number;
}

const SYSTEM = "You compare two answers to the same user prompt. Reply with exactly one letter: " +
  "A if Answer A is better, B if Answer B is better.";

/**
 * Creates an HTTP judge.
 *
 * @param options Endpoint, model, key variable and retry policy.
 * @returns The judge.
 */
export function httpJudge(options: HttpJudgeOptions): Judge {
  const { url, model, timeoutMs = 30_000, maxRetries = 2, backoffMs = 500 } = options;
  const key = options.apiKeyEnv ? Deno.env.get(options.apiKeyEnv) : undefined;
  if (options.apiKeyEnv && !key) {
    throw new Error(`Judge API key variable ${options.apiKeyEnv} is not set`);
  }
  const endpoint = `${url.replace(/\/$/, "")}/chat/completions`;
  return {
    name: `http:${model}`,
    async judge(prompt: string, a: string, b: string): Promise<Verdict> {
      const body = JSON.stringify({
        model,
        temperature: 0,
        max_tokens: 1,
        messages: [
          { role: "system", content: SYSTEM },
          { role: "user", content: `Prompt:\n${prompt}\n\nAnswer A:\n${a}\n\nAnswer B:\n${b}` },
        ],
      });
      let last = new JudgeFailure("No attempt made", "error");
      for (let attempt = 0; attempt <= maxRetries; attempt++) {
        if (attempt > 0 && last.reason !== "timeout") {
          await new Promise((r) => setTimeout(r, backoffMs * 2 ** (attempt - 1)));
        }
        let response: Response;
        try {
          response = await fetch(endpoint, {
            method: "POST",
            headers: {
              "content-type": "application/json",
              ...(key ? { authorization: `Bearer ${key}` } : {}),
            },
            body,
            signal: AbortSignal.timeout(timeoutMs),
          });
        } catch (error) {
          const timeout = (error as Error).name === "TimeoutError";
          last = new JudgeFailure(
            timeout
              ? `Judge ${endpoint} did not answer within ${timeoutMs / 1000} s (judge_timeout)`
              : `Judge request to ${endpoint} failed: ${(error as Error).message}`,
            timeout ? "timeout" : "network",
          );
          continue;
        }
        if (!response.ok) {
          await response.body?.cancel();
          last = new JudgeFailure(
            `Judge ${endpoint} answered HTTP ${response.status}`,
            `http_${response.status}`,
          );
          if (response.status === 429 || response.status >= 500) continue;
          throw last;
        }
        const replyText = await response.text();
        let content: unknown;
        try {
          content = JSON.parse(replyText)?.choices?.[0]?.message?.content;
        } catch {
          throw new JudgeFailure(
            `Judge ${endpoint} replied with non-JSON: ${JSON.stringify(replyText.slice(0, 80))}`,
            "unparseable",
          );
        }
        const text = String(content ?? "").trim().toUpperCase();
        if (text.startsWith("A")) return "a";
        if (text.startsWith("B")) return "b";
        throw new JudgeFailure(
          `Judge reply names neither A nor B: ${JSON.stringify(text.slice(0, 80))}`,
          "unparseable",
        );
      }
      throw last;
    },
  };
}
