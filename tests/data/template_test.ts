import { deepStrictEqual, equal, throws } from "node:assert/strict";
import { collate } from "../../data/batch.ts";
import { SkipRow } from "../../data/skips.ts";
import { encodeCompletion, encodePrompt, tokenizeExample } from "../../data/template.ts";
import { loadTokenizer } from "../../model/tokenizer.ts";
import { addBos, TINY, tinyVariant } from "../_tiny_variant.ts";

const tok = await loadTokenizer(TINY);
const EOS = tok.eosTokenId;
const raw = (text: string) => tok.encode(text, { addSpecialTokens: false });
const user = (content: string) => ({ role: "user", content });
const assistant = (content: string) => ({ role: "assistant", content });

/** A tiny-tokenizer variant whose post-processor adds BOS (<|endoftext|>) like Llama's. */
const bosVariant = () =>
  tinyVariant((tokenizer, config) => {
    addBos(tokenizer, config);
    config.chat_template = "{{ bos_token }}" + (config.chat_template as string);
  });
const BOS = 508;

Deno.test("tokenizeExample() masks exactly the ChatML completion tokens", () => {
  const ex = tokenizeExample({
    kind: "paired",
    prompt: [user("What is 2 + 3?")],
    chosen: [assistant("2 + 3 = 5.")],
    rejected: [assistant("2 + 3 = 6.")],
    row: 0,
  }, tok);
  const promptText = "<|im_start|>user\nWhat is 2 + 3?<|im_end|>\n<|im_start|>assistant\n";
  const expectedPrompt = raw(promptText);
  const expectedChosen = [...raw("2 + 3 = 5."), EOS];
  const expectedRejected = [...raw("2 + 3 = 6."), EOS];
  if (ex.kind !== "paired") throw new Error("Expected a pair");
  deepStrictEqual(ex.promptIds, expectedPrompt);
  deepStrictEqual(ex.chosenIds, expectedChosen);
  deepStrictEqual(ex.rejectedIds, expectedRejected);

  const batch = collate([ex], { padTokenId: tok.padTokenId });
  const [p, c, r] = [expectedPrompt.length, expectedChosen.length, expectedRejected.length];
  const t = p + Math.max(c, r);
  deepStrictEqual(batch.shape, [2, t]);
  const row = (a: ArrayLike<number | bigint>, n: number) =>
    Array.from(a).slice(n * t, n * t + t).map(Number);
  deepStrictEqual(row(batch.inputIds, 0), [
    ...expectedPrompt,
    ...expectedChosen,
    ...Array(t - p - c).fill(tok.padTokenId),
  ]);
  deepStrictEqual(row(batch.inputIds, 1), [
    ...expectedPrompt,
    ...expectedRejected,
    ...Array(t - p - r).fill(tok.padTokenId),
  ]);
  deepStrictEqual(row(batch.completionMask, 0), [
    ...Array(p).fill(0),
    ...Array(c).fill(1),
    ...Array(t - p - c).fill(0),
  ]);
  deepStrictEqual(row(batch.completionMask, 1), [
    ...Array(p).fill(0),
    ...Array(r).fill(1),
    ...Array(t - p - r).fill(0),
  ]);
  deepStrictEqual(row(batch.attentionMask, 0), [
    ...Array(p + c).fill(1),
    ...Array(t - p - c).fill(0),
  ]);
  // The masked tokens decode to the answer and its end of turn, nothing of the template's "\n".
  equal(
    tok.decode(row(batch.inputIds, 0).filter((_, i) => row(batch.completionMask, 0)[i] === 1)),
    "2 + 3 = 5.<|im_end|>",
  );
});

Deno.test("tokenizeExample() uses text prompts without a template", () => {
  const ex = tokenizeExample({
    kind: "unpaired",
    prompt: "\n\nHuman: Hi\n\nAssistant:",
    completion: " Hello!",
    label: true,
    row: 0,
  }, tok);
  if (ex.kind !== "unpaired") throw new Error("Expected unpaired");
  deepStrictEqual(ex.promptIds, raw("\n\nHuman: Hi\n\nAssistant:"));
  deepStrictEqual(ex.completionIds, [...raw(" Hello!"), EOS]);
});

Deno.test("encodeCompletion() appends EOS exactly once", () => {
  for (const text of ["4", "4<|im_end|>", "4<|im_end|>\n", "4<|im_end|>\n\n "]) {
    deepStrictEqual(encodeCompletion(tok, text), [...raw("4"), EOS], JSON.stringify(text));
  }
  // Text after an inner EOS is kept: only trailing whitespace after the last EOS is the template's.
  deepStrictEqual(encodeCompletion(tok, "a<|im_end|>b"), [...raw("a<|im_end|>b"), EOS]);
});

Deno.test("encodePrompt() never doubles BOS", async () => {
  const bosDir = await bosVariant();
  const bosTok = await loadTokenizer(bosDir);
  equal(bosTok.addsBos, true);
  // The template writes BOS as text and the tokenizer would add another: one must remain.
  const rendered = bosTok.applyChatTemplate([user("Hi")], { addGenerationPrompt: true });
  equal(rendered.startsWith("<|endoftext|><|im_start|>"), true);
  const ids = encodePrompt(bosTok, rendered);
  equal(ids[0], BOS);
  equal(ids.filter((id) => id === BOS).length, 1);
  deepStrictEqual(ids.slice(1), raw(rendered.slice("<|endoftext|>".length)));
  // A plain text prompt gets the BOS the tokenizer adds, once; completions get none.
  deepStrictEqual(encodePrompt(bosTok, "Q:"), [BOS, ...raw("Q:")]);
  deepStrictEqual(encodePrompt(bosTok, "<|endoftext|><|endoftext|>Q:"), [BOS, ...raw("Q:")]);
  deepStrictEqual(encodeCompletion(bosTok, "<|endoftext|> A"), [...raw(" A"), EOS]);
  // The tiny tokenizer has no BOS: nothing is added.
  deepStrictEqual(encodePrompt(tok, "Q:"), raw("Q:"));
  await Deno.remove(bosDir, { recursive: true });
});

Deno.test("tokenizeExample() skips a template that does not extend the prompt", async () => {
  const dir = await tinyVariant((_, config) => {
    config.chat_template =
      "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}" +
      "{% if add_generation_prompt %}<|im_start|>assistant\n<think>\n{% endif %}";
  });
  const odd = await loadTokenizer(dir);
  throws(
    () =>
      tokenizeExample({
        kind: "unpaired",
        prompt: [user("Q")],
        completion: [assistant("A")],
        label: true,
        row: 0,
      }, odd),
    (e: unknown) => e instanceof SkipRow && e.reason === "template_mismatch",
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("tokenizeExample() keeps pre-tokenized ids and rejects ids outside the vocabulary", () => {
  const ex = {
    kind: "paired" as const,
    promptIds: [5, 6],
    chosenIds: [7],
    rejectedIds: [8, 9],
    row: 0,
  };
  deepStrictEqual(tokenizeExample(ex, tok), ex);
  throws(
    () => tokenizeExample({ ...ex, chosenIds: [tok.vocabSize] }, tok),
    (e: unknown) => e instanceof SkipRow && e.reason === "bad_token_ids",
  );
});

Deno.test("encodeCompletion() ends on any stop token of generation_config.json, once", async () => {
  const dir = await tinyVariant(() => {});
  // <|endoftext|> (508) is a second stop token, as in Qwen's generation_config.json.
  await Deno.writeTextFile(`${dir}/generation_config.json`, '{"eos_token_id": [510, 508]}');
  const stops = await loadTokenizer(dir);
  deepStrictEqual(stops.stopTokenIds, [EOS, BOS]);
  deepStrictEqual(encodeCompletion(stops, "4<|endoftext|>\n"), [...raw("4"), BOS]);
  deepStrictEqual(encodeCompletion(stops, "4"), [...raw("4"), EOS]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("tokenizeExample() cuts a suffix the template renders after every conversation", async () => {
  const dir = await tinyVariant((_, config) => {
    // The template's turn end is <|endoftext|>, not the EOS <|im_end|>; the header follows always.
    config.chat_template =
      "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|endoftext|>{% endfor %}{{ '<|im_start|>assistant\\n' }}";
  });
  const variant = await loadTokenizer(dir);
  equal(variant.turnEnd.tokenId, BOS);
  equal(variant.turnEnd.suffix, "<|im_start|>assistant\n");
  const ex = tokenizeExample({
    kind: "unpaired",
    prompt: [user("Hi")],
    completion: [assistant("Hello")],
    label: true,
    row: 0,
  }, variant);
  // Cut after the turn end; EOS follows because <|endoftext|> is not a stop token here.
  deepStrictEqual(ex.kind === "unpaired" && ex.completionIds, [...raw("Hello"), BOS, EOS]);
  await Deno.remove(dir, { recursive: true });
});
