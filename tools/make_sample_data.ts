/**
 * Regenerates the embedded sample preference data in `data/samples/` (deterministic: same output
 * on every run).
 *
 *     deno task make:samples
 *
 * Writes:
 * - `ultrafeedback_sample.jsonl`: 480 rows in UltraFeedback's conversational form
 *   (`prompt` string, `chosen`/`rejected` message lists that start with the user turn,
 *   `score_chosen`/`score_rejected` ratings on UltraFeedback's 1–5 scale).
 * - `hh_sample.jsonl`: 12 rows of HH-RLHF raw transcripts (`chosen`/`rejected` strings).
 * - `unpaired_sample.jsonl`: 60 conversational `prompt`/`completion`/`label` rows for KTO and BCO.
 *
 * The preference is one a tiny LM can learn from a minute of CPU training: every prompt is a short,
 * templated request with one right answer that can be read off the prompt or a small fixed table
 * (single-digit sums, colours of common things, opposites, repeating or capitalising a word,
 * counting, greetings). The chosen answer is correct, polite and concise; the rejected one is
 * wrong (off-by-one sum, wrong colour, wrong word, miscounted list) or off-format (rude, lower
 * case, rambling). Completions stay under ~40 tokens of the tiny tokenizer.
 *
 * @module
 */

import { seededRandom } from "../data/shuffle.ts";

type Message = { role: "user" | "assistant"; content: string };
interface Item {
  prompt: string;
  chosen: string;
  rejected: string;
}

const random = seededRandom(20240611);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)];
const int = (lo: number, hi: number): number => lo + Math.floor(random() * (hi - lo + 1));

const COLORS: [string, string][] = [
  ["a banana", "yellow"],
  ["the sky", "blue"],
  ["grass", "green"],
  ["snow", "white"],
  ["coal", "black"],
  ["a tomato", "red"],
  ["an orange", "orange"],
  ["a lemon", "yellow"],
  ["a carrot", "orange"],
  ["a strawberry", "red"],
  ["milk", "white"],
  ["a leaf", "green"],
  ["the sea", "blue"],
  ["a crow", "black"],
  ["an eggplant", "purple"],
  ["a grape", "purple"],
  ["chocolate", "brown"],
  ["a lime", "green"],
  ["a cherry", "red"],
  ["a pumpkin", "orange"],
];
const ALL_COLORS = [...new Set(COLORS.map(([, c]) => c))];

const OPPOSITES: [string, string][] = [
  ["hot", "cold"],
  ["big", "small"],
  ["up", "down"],
  ["day", "night"],
  ["fast", "slow"],
  ["open", "closed"],
  ["happy", "sad"],
  ["old", "new"],
  ["left", "right"],
  ["light", "dark"],
  ["wet", "dry"],
  ["high", "low"],
  ["full", "empty"],
  ["early", "late"],
  ["hard", "soft"],
  ["near", "far"],
];

const WORDS = [
  "apple",
  "river",
  "stone",
  "cloud",
  "tiger",
  "pencil",
  "garden",
  "window",
  "rabbit",
  "candle",
  "forest",
  "silver",
  "button",
  "dragon",
  "planet",
  "violin",
  "basket",
  "rocket",
  "castle",
  "mirror",
  "lemon",
  "orbit",
  "music",
  "ocean",
];

const GREETINGS: [string, string][] = [
  ["Say hello.", "Hello! How can I help you today?"],
  ["Greet me.", "Hi there! It is nice to meet you."],
  ["Say good morning.", "Good morning! I hope you have a great day."],
  ["Say thank you.", "Thank you very much!"],
  ["Say goodbye.", "Goodbye! Take care."],
  ["Wish me luck.", "Good luck! You can do it."],
];
const RUDE = [
  "No.",
  "Go away.",
  "I do not care.",
  "Stop asking me things.",
  "Whatever.",
  "Ask someone else.",
];

function arithmetic(): Item {
  const a = int(0, 9), b = int(0, 9);
  const wrong = a + b + pick(a + b < 2 ? [1, 2] : [-2, -1, 1, 2]);
  return {
    prompt: pick([`What is ${a} + ${b}?`, `Compute ${a} + ${b}.`, `Calculate ${a} plus ${b}.`]),
    chosen: `${a} + ${b} = ${a + b}.`,
    rejected: pick([
      `${a} + ${b} = ${wrong}.`,
      `I think it is ${a + b + pick([1, 3])}, but I am not sure about math.`,
    ]),
  };
}

function color(): Item {
  const [thing, c] = pick(COLORS);
  const wrong = pick(ALL_COLORS.filter((x) => x !== c));
  const sentence = (x: string) => `${thing[0].toUpperCase()}${thing.slice(1)} is ${x}.`;
  return {
    prompt: pick([`What color is ${thing}?`, `Name the color of ${thing}.`]),
    chosen: sentence(c),
    rejected: pick([sentence(wrong), `Colors are hard. Maybe ${wrong}? Or ${c}? I cannot say.`]),
  };
}

function opposite(): Item {
  const [w, o] = pick(OPPOSITES);
  return {
    prompt: `What is the opposite of ${w}?`,
    chosen: `The opposite of ${w} is ${o}.`,
    rejected: pick([`The opposite of ${w} is ${w}.`, `${o}. Why do you even ask?`]),
  };
}

function repeat(): Item {
  const w = pick(WORDS);
  const other = pick(WORDS.filter((x) => x !== w));
  const n = int(2, 3);
  return {
    prompt: `Repeat the word ${w} ${n === 2 ? "twice" : "three times"}.`,
    chosen: Array(n).fill(w).join(" "),
    rejected: pick([Array(n).fill(other).join(" "), Array(n + 1).fill(w).join(" ")]),
  };
}

function capitals(): Item {
  const w = pick(WORDS);
  return {
    prompt: `Write ${w} in capital letters.`,
    chosen: w.toUpperCase(),
    rejected: pick([w, `${w[0].toUpperCase()}${w.slice(1)}`]),
  };
}

function counting(): Item {
  const from = int(1, 4), to = from + int(2, 5);
  const seq = Array.from({ length: to - from + 1 }, (_, i) => String(from + i));
  const skip = int(1, seq.length - 2);
  return {
    prompt: `Count from ${from} to ${to}.`,
    chosen: seq.join(", "),
    rejected: pick([
      seq.filter((_, i) => i !== skip).join(", "),
      [...seq, String(to + 1)].join(", "),
    ]),
  };
}

function greeting(): Item {
  const [prompt, answer] = pick(GREETINGS);
  return { prompt, chosen: answer, rejected: pick(RUDE) };
}

const FAMILIES = [arithmetic, color, opposite, repeat, capitals, counting, greeting];

const conversation = (prompt: string, answer: string): Message[] => [
  { role: "user", content: prompt },
  { role: "assistant", content: answer },
];
const score = (lo: number, hi: number) => int(lo * 2, hi * 2) / 2;

function ultrafeedbackRows(n: number): string[] {
  const rows: string[] = [];
  for (let i = 0; i < n; i++) {
    const item = FAMILIES[i % FAMILIES.length]();
    rows.push(JSON.stringify({
      prompt: item.prompt,
      chosen: conversation(item.prompt, item.chosen),
      rejected: conversation(item.prompt, item.rejected),
      score_chosen: score(4, 5),
      score_rejected: score(1, 2.5),
    }));
  }
  return rows;
}

function hhRows(n: number): string[] {
  const rows: string[] = [];
  for (let i = 0; i < n; i++) {
    const item = FAMILIES[i % FAMILIES.length]();
    // Every third row is two turns deep, so the shared prefix holds a whole earlier exchange.
    const history = i % 3 === 2 ? `\n\nHuman: Hi!\n\nAssistant: Hello! How can I help you?` : "";
    const head = `${history}\n\nHuman: ${item.prompt}\n\nAssistant:`;
    rows.push(
      JSON.stringify({ chosen: `${head} ${item.chosen}`, rejected: `${head} ${item.rejected}` }),
    );
  }
  return rows;
}

function unpairedRows(n: number): string[] {
  const rows: string[] = [];
  for (let i = 0; i < n; i++) {
    const item = FAMILIES[i % FAMILIES.length]();
    // About 60 % desirable: KTO is meant for imbalanced, truly unpaired feedback.
    const label = random() < 0.6;
    rows.push(JSON.stringify({
      prompt: [{ role: "user", content: item.prompt }],
      completion: [{ role: "assistant", content: label ? item.chosen : item.rejected }],
      label,
    }));
  }
  return rows;
}

const dir = new URL("../data/samples/", import.meta.url);
await Deno.mkdir(dir, { recursive: true });
const files: [string, string[]][] = [
  ["ultrafeedback_sample.jsonl", ultrafeedbackRows(480)],
  ["hh_sample.jsonl", hhRows(12)],
  ["unpaired_sample.jsonl", unpairedRows(60)],
];
for (const [name, rows] of files) {
  await Deno.writeTextFile(new URL(name, dir), rows.join("\n") + "\n");
  console.log(`Wrote ${rows.length} rows to data/samples/${name}`);
}
