import { deepStrictEqual, equal, match, ok, rejects } from "node:assert/strict";
import { loadTokenizer, renderFallbackChat } from "../../model/tokenizer.ts";
import { addBos, TINY, tinyVariant } from "../_tiny_variant.ts";

Deno.test("loadTokenizer() loads the tiny tokenizer with its special tokens", async () => {
  const tok = await loadTokenizer(TINY);
  const json = JSON.parse(await Deno.readTextFile(`${TINY}/tokenizer.json`));
  const special = Object.fromEntries(
    json.added_tokens.map((t: { content: string; id: number }) => [t.content, t.id]),
  );
  equal(tok.vocabSize, Object.keys(json.model.vocab).length + json.added_tokens.length);
  ok(tok.vocabSize >= 512 && tok.vocabSize <= 1024);
  equal(tok.eosTokenId, special["<|im_end|>"]);
  equal(tok.padTokenId, special["<|pad|>"]);
  equal(tok.bosTokenId, null);
  equal(tok.addsBos, false);
  ok(tok.hasChatTemplate);
  deepStrictEqual(tok.encode("<|im_start|>"), [special["<|im_start|>"]]);
  deepStrictEqual([...tok.specialTokenIds].sort(), Object.values(special).sort());
});

Deno.test("loadTokenizer() round-trips every sample text and unseen unicode", async () => {
  const tok = await loadTokenizer(TINY);
  const texts = ["Ünïcödé 日本語 🙂 tabs\tand\r\nnewlines", "   leading spaces", "x"];
  for (const name of ["ultrafeedback_sample", "hh_sample", "unpaired_sample"]) {
    for (const line of (await Deno.readTextFile(`data/samples/${name}.jsonl`)).trim().split("\n")) {
      const row = JSON.parse(line);
      for (const v of Object.values(row)) {
        if (typeof v === "string") texts.push(v);
        if (Array.isArray(v)) texts.push(...v.map((m: { content: string }) => m.content));
      }
    }
  }
  let tokens = 0, chars = 0;
  for (const text of texts) {
    const ids = tok.encode(text);
    equal(tok.decode(ids), text);
    ok(ids.every((id) => id >= 0 && id < tok.vocabSize));
    tokens += ids.length;
    chars += text.length;
  }
  // The merges were learned on these texts, so they must compress well below one token per char.
  ok(tokens / chars < 0.5, `tokens per char ${tokens / chars}`);
});

Deno.test("applyChatTemplate() renders ChatML", async () => {
  const tok = await loadTokenizer(TINY);
  const messages = [{ role: "user", content: "What is 2 + 3?" }, {
    role: "assistant",
    content: "5",
  }];
  equal(
    tok.applyChatTemplate(messages),
    "<|im_start|>user\nWhat is 2 + 3?<|im_end|>\n<|im_start|>assistant\n5<|im_end|>\n",
  );
  equal(
    tok.applyChatTemplate(messages.slice(0, 1), { addGenerationPrompt: true }),
    "<|im_start|>user\nWhat is 2 + 3?<|im_end|>\n<|im_start|>assistant\n",
  );
});

Deno.test("applyChatTemplate() falls back to HH-style transcripts without a chat template", async () => {
  const dir = await tinyVariant((_, config) => delete config.chat_template);
  const tok = await loadTokenizer(dir);
  equal(tok.hasChatTemplate, false);
  const messages = [{ role: "user", content: "Hi" }, { role: "assistant", content: "Hello" }];
  equal(tok.applyChatTemplate(messages), "User: Hi\n\nAssistant: Hello");
  const prompt = renderFallbackChat(messages.slice(0, 1), { addGenerationPrompt: true });
  equal(prompt, "User: Hi\n\nAssistant:");
  ok(tok.applyChatTemplate(messages).startsWith(prompt));
  await Deno.remove(dir, { recursive: true });
});

Deno.test("loadTokenizer() reports a BOS-adding post-processor", async () => {
  const dir = await tinyVariant(addBos);
  const tok = await loadTokenizer(dir);
  equal(tok.bosTokenId, 508);
  equal(tok.addsBos, true);
  equal(tok.encode("Hi")[0], 508);
  equal(tok.encode("Hi", { addSpecialTokens: false })[0] === 508, false);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("loadTokenizer() names the id and cache path for an uncached Hub id offline", async () => {
  const cacheDir = await Deno.makeTempDir();
  await rejects(
    () => loadTokenizer("some-org/some-model", { offline: true, cacheDir }),
    (e: Error) => {
      match(e.message, /"some-org\/some-model"/);
      ok(e.message.includes(`${cacheDir}/models--some-org--some-model`), e.message);
      return true;
    },
  );
  await rejects(() => loadTokenizer("./no/such/folder"), /Tokenizer folder not found/);
  await Deno.remove(cacheDir, { recursive: true });
});

Deno.test("loadTokenizer() loads a 151k-entry vocabulary (Qwen's size) without a stack overflow", async () => {
  const size = 151_669;
  const dir = await tinyVariant((tokenizer) => {
    const model = tokenizer.model as { vocab: Record<string, number> };
    const added = tokenizer.added_tokens as { id: number }[];
    // Unreachable filler entries (no merge produces them) after the 4 special tokens' ids.
    for (let id = 512; id < size; id++) model.vocab[`<filler_${id}>`] = id;
    equal(added.at(-1)!.id, 511);
  });
  const tok = await loadTokenizer(dir);
  equal(tok.vocabSize, size);
  equal(tok.decode(tok.encode("What is 2 + 2?")), "What is 2 + 2?");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("loadTokenizer() names generation_config.json when its eos_token_id is malformed", async () => {
  const dir = await tinyVariant(() => {});
  await Deno.writeTextFile(`${dir}/generation_config.json`, '{"eos_token_id": "x"}');
  await rejects(loadTokenizer(dir), /Bad "eos_token_id" in .*generation_config\.json/);
  await Deno.remove(dir, { recursive: true });
});
