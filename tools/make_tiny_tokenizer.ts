/**
 * Trains the embedded tiny tokenizer on the sample data and writes it in Hugging Face format to
 * `model/tiny/` (deterministic: same files on every run). Run `deno task make:samples` first if
 * the samples changed.
 *
 *     deno task make:tokenizer
 *
 * The tokenizer is a byte-level BPE like GPT-2's and Qwen2's, small enough for a model of a few
 * hundred thousand parameters:
 * - ids 0–255: the 256 bytes (GPT-2's byte-to-unicode alphabet), so any text round-trips;
 * - ids 256–507: 252 merges learned from the sample data (most frequent pair first, ties broken
 *   by the pair's text so the result does not depend on iteration order);
 * - ids 508–511: the special tokens `<|endoftext|>`, `<|im_start|>`, `<|im_end|>` (EOS) and
 *   `<|pad|>` (padding); there is no BOS token, as in Qwen2.
 *
 * Pre-tokenization is Qwen2's split regex (digits are single tokens, which helps a tiny model with
 * arithmetic) followed by byte-level mapping, and `tokenizer_config.json` holds a ChatML chat
 * template. The files load with `transformers.AutoTokenizer` in Python and in JavaScript.
 *
 * @module
 */

const VOCAB_SIZE = 512;
const SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|pad|>"];
const NUM_MERGES = VOCAB_SIZE - 256 - SPECIAL_TOKENS.length;

/**
 * Qwen2's pre-tokenizer pattern, with `(?i:...)` spelled out as character classes so the same
 * text is a valid regex for JavaScript, Oniguruma (Python tokenizers) and the Rust crate.
 */
const SPLIT_PATTERN =
  "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

const CHAT_TEMPLATE = "{% for message in messages %}" +
  "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}" +
  "{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/** GPT-2's reversible map from bytes to printable unicode characters. */
function bytesToUnicode(): string[] {
  const printable: number[] = [];
  for (let b = 33; b <= 126; b++) printable.push(b);
  for (let b = 161; b <= 172; b++) printable.push(b);
  for (let b = 174; b <= 255; b++) printable.push(b);
  const map: string[] = new Array(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    map[b] = printable.includes(b) ? String.fromCharCode(b) : String.fromCharCode(256 + extra++);
  }
  return map;
}

/** The texts the tokenizer is trained on: every sample, as the model will see it. */
async function corpus(): Promise<string[]> {
  const dir = new URL("../data/samples/", import.meta.url);
  const texts: string[] = [];
  // What ChatML leaves between its special tokens: "role\ncontent" for each message.
  const chat = (messages: { role: string; content: string }[]) =>
    messages.map((m) => `${m.role}\n${m.content}`);
  for (const name of ["ultrafeedback_sample.jsonl", "hh_sample.jsonl", "unpaired_sample.jsonl"]) {
    const lines = (await Deno.readTextFile(new URL(name, dir))).split("\n").filter((l) => l);
    for (const line of lines) {
      const row = JSON.parse(line);
      for (const key of ["chosen", "rejected", "prompt", "completion"]) {
        const value = row[key];
        if (typeof value === "string") texts.push(value);
        else if (Array.isArray(value)) { for (const text of chat(value)) texts.push(text); }
      }
    }
  }
  return texts;
}

function train(texts: string[]): { vocab: Record<string, number>; merges: string[] } {
  const byteChar = bytesToUnicode();
  const split = new RegExp(SPLIT_PATTERN, "gu");
  const encoder = new TextEncoder();
  const wordCounts = new Map<string, number>();
  for (const text of texts) {
    for (const piece of text.match(split) ?? []) {
      const word = Array.from(encoder.encode(piece), (b) => byteChar[b]).join(" ");
      wordCounts.set(word, (wordCounts.get(word) ?? 0) + 1);
    }
  }
  let words = [...wordCounts].map(([w, count]) => ({ symbols: w.split(" "), count }));
  const vocab: Record<string, number> = {};
  byteChar.forEach((c, b) => vocab[c] = b);
  const merges: string[] = [];
  for (let m = 0; m < NUM_MERGES; m++) {
    const pairs = new Map<string, number>();
    for (const { symbols, count } of words) {
      for (let i = 0; i + 1 < symbols.length; i++) {
        const key = `${symbols[i]} ${symbols[i + 1]}`;
        pairs.set(key, (pairs.get(key) ?? 0) + count);
      }
    }
    let best = "", bestCount = 0;
    for (const [key, count] of pairs) {
      if (count > bestCount || (count === bestCount && key < best)) {
        [best, bestCount] = [key, count];
      }
    }
    if (bestCount < 2) throw new Error(`Corpus too small: only ${m} merges of ${NUM_MERGES} found`);
    const [a, b] = best.split(" ");
    merges.push(best);
    vocab[a + b] = 256 + m;
    words = words.map(({ symbols, count }) => {
      const out: string[] = [];
      for (let i = 0; i < symbols.length; i++) {
        if (i + 1 < symbols.length && symbols[i] === a && symbols[i + 1] === b) {
          out.push(a + b);
          i++;
        } else out.push(symbols[i]);
      }
      return { symbols: out, count };
    });
  }
  return { vocab, merges };
}

const { vocab, merges } = train(await corpus());
const firstSpecial = VOCAB_SIZE - SPECIAL_TOKENS.length;
const addedTokens = SPECIAL_TOKENS.map((content, i) => ({
  id: firstSpecial + i,
  content,
  single_word: false,
  lstrip: false,
  rstrip: false,
  normalized: false,
  special: true,
}));
const byteLevel = {
  type: "ByteLevel",
  add_prefix_space: false,
  trim_offsets: false,
  use_regex: false,
};
const tokenizerJson = {
  version: "1.0",
  truncation: null,
  padding: null,
  added_tokens: addedTokens,
  normalizer: { type: "NFC" },
  pre_tokenizer: {
    type: "Sequence",
    pretokenizers: [
      { type: "Split", pattern: { Regex: SPLIT_PATTERN }, behavior: "Isolated", invert: false },
      byteLevel,
    ],
  },
  post_processor: byteLevel,
  decoder: byteLevel,
  model: {
    type: "BPE",
    dropout: null,
    unk_token: null,
    continuing_subword_prefix: "",
    end_of_word_suffix: "",
    fuse_unk: false,
    byte_fallback: false,
    ignore_merges: false,
    vocab,
    merges,
  },
};
const tokenizerConfig = {
  add_bos_token: false,
  add_prefix_space: false,
  added_tokens_decoder: Object.fromEntries(
    addedTokens.map(({ id, ...token }) => [String(id), token]),
  ),
  bos_token: null,
  chat_template: CHAT_TEMPLATE,
  clean_up_tokenization_spaces: false,
  eos_token: "<|im_end|>",
  errors: "replace",
  model_max_length: 512,
  pad_token: "<|pad|>",
  split_special_tokens: false,
  tokenizer_class: "PreTrainedTokenizerFast",
  unk_token: null,
};
const specialTokensMap = { eos_token: "<|im_end|>", pad_token: "<|pad|>" };

const dir = new URL("../model/tiny/", import.meta.url);
await Deno.mkdir(dir, { recursive: true });
const write = (name: string, value: unknown) =>
  Deno.writeTextFile(new URL(name, dir), JSON.stringify(value, null, 2) + "\n");
await write("tokenizer.json", tokenizerJson);
await write("tokenizer_config.json", tokenizerConfig);
await write("special_tokens_map.json", specialTokensMap);
console.log(`Wrote model/tiny/tokenizer.json: ${VOCAB_SIZE} tokens, ${merges.length} merges`);
