import { deepStrictEqual, equal, ok, throws } from "node:assert/strict";
import { detectFormat, parseRow } from "../../data/formats.ts";
import { SkipRow } from "../../data/skips.ts";
import type { Row } from "../../data/types.ts";

const user = (content: string) => ({ role: "user", content });
const assistant = (content: string) => ({ role: "assistant", content });

function skipReason(row: Row, format: Parameters<typeof parseRow>[1]["format"]): string {
  try {
    parseRow(row, { format, index: 0 });
  } catch (e) {
    if (e instanceof SkipRow) return e.reason;
    throw e;
  }
  return "not skipped";
}

Deno.test("detectFormat() recognises each format from its columns", () => {
  equal(detectFormat(["prompt", "chosen", "rejected"], { rows: [{ chosen: "a" }] }), "text");
  equal(
    detectFormat(["prompt", "chosen", "rejected"], { rows: [{ chosen: [user("a")] }] }),
    "conversational",
  );
  equal(
    detectFormat(["chosen", "rejected"], { rows: [{ chosen: null }, { chosen: [user("a")] }] }),
    "conversational",
  );
  equal(
    detectFormat(["chosen", "rejected"], { rows: [{ chosen: "\n\nHuman: a\n\nAssistant: b" }] }),
    "hh_rlhf",
  );
  equal(detectFormat(["prompt", "completion", "label"]), "unpaired");
  equal(
    detectFormat(["prompt_input_ids", "chosen_input_ids", "rejected_input_ids", "prompt"]),
    "tokenized",
  );
  equal(detectFormat(["prompt_input_ids", "completion_input_ids", "label"]), "tokenized");
});

Deno.test("detectFormat() names found and expected columns when they fit no format", () => {
  throws(() => detectFormat(["question", "answer"], { origin: "x.jsonl" }), (e: Error) => {
    ok(e.message.includes("x.jsonl") && e.message.includes("question, answer"), e.message);
    ok(e.message.includes("prompt + chosen + rejected"), e.message);
    return true;
  });
  throws(() => detectFormat(["prompt", "chosen"], { format: "text" }), (e: Error) => {
    ok(e.message.startsWith('Missing columns for format "text"'), e.message);
    ok(e.message.includes(": rejected") && e.message.includes("found: prompt, chosen"), e.message);
    return true;
  });
  throws(
    () => detectFormat(["chosen", "rejected"], { rows: [{ chosen: "plain" }] }),
    /Missing column "prompt"/,
  );
  throws(() => detectFormat(["a"], { format: "nope" as never }), /Unknown format "nope"/);
  equal(
    detectFormat(["prompt", "chosen", "rejected"], { format: "conversational" }),
    "conversational",
  );
});

Deno.test("parseRow() reads text pairs and UltraFeedback ratings", () => {
  const row = {
    prompt: "Q",
    chosen: " A",
    rejected: " B",
    "chosen-rating": 5,
    "rejected-rating": 2,
  };
  deepStrictEqual(parseRow(row, { format: "text", index: 4 }), {
    kind: "paired",
    prompt: "Q",
    chosen: " A",
    rejected: " B",
    extras: { score_chosen: 5, score_rejected: 2 },
    row: 4,
  });
});

Deno.test("parseRow() takes the shared messages as the conversational prompt", () => {
  const history = [user("Hi"), assistant("Hello"), user("2 + 2?")];
  const row = {
    prompt: "2 + 2?",
    chosen: [...history, assistant("4")],
    rejected: [...history, assistant("5")],
  };
  deepStrictEqual(parseRow(row, { format: "conversational", index: 0 }), {
    kind: "paired",
    prompt: history,
    chosen: [assistant("4")],
    rejected: [assistant("5")],
    row: 0,
  });
});

Deno.test("parseRow() uses the prompt column when the conversations share nothing", () => {
  const fromString = parseRow(
    { prompt: "Q", chosen: [assistant("A")], rejected: [assistant("B")] },
    {
      format: "conversational",
      index: 0,
    },
  );
  deepStrictEqual("prompt" in fromString && fromString.prompt, [user("Q")]);
  const fromMessages = parseRow(
    {
      prompt: [{ role: "system", content: "S" }, user("Q")],
      chosen: [assistant("A")],
      rejected: [assistant("B")],
    },
    { format: "conversational", index: 0 },
  );
  deepStrictEqual("prompt" in fromMessages && fromMessages.prompt, [{
    role: "system",
    content: "S",
  }, user("Q")]);
});

Deno.test("parseRow() cuts HH transcripts after the last shared Assistant turn", () => {
  const head = "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: Sky colour?\n\nAssistant:";
  // Both answers start with " The sky is": the common prefix runs into the answers.
  const parsed = parseRow({
    chosen: `${head} The sky is blue.`,
    rejected: `${head} The sky is green.`,
  }, {
    format: "hh_rlhf",
    index: 0,
  });
  deepStrictEqual(parsed, {
    kind: "paired",
    prompt: head,
    chosen: " The sky is blue.",
    rejected: " The sky is green.",
    row: 0,
  });
});

Deno.test("parseRow() reads unpaired rows, text or conversational", () => {
  deepStrictEqual(
    parseRow({ prompt: "Q", completion: " A", label: false }, { format: "unpaired", index: 1 }),
    {
      kind: "unpaired",
      prompt: "Q",
      completion: " A",
      label: false,
      row: 1,
    },
  );
  const conv = parseRow({ prompt: [user("Q")], completion: "A", label: 1 }, {
    format: "unpaired",
    index: 0,
  });
  deepStrictEqual(conv, {
    kind: "unpaired",
    prompt: [user("Q")],
    completion: [assistant("A")],
    label: true,
    row: 0,
  });
});

Deno.test("parseRow() passes pre-tokenized ids through unchanged", () => {
  const row = {
    prompt_input_ids: [1, 2],
    chosen_input_ids: [3],
    rejected_input_ids: [4, 5],
    score_chosen: 9,
  };
  deepStrictEqual(parseRow(row, { format: "tokenized", index: 0 }), {
    kind: "paired",
    promptIds: [1, 2],
    chosenIds: [3],
    rejectedIds: [4, 5],
    extras: { score_chosen: 9 },
    row: 0,
  });
  const unpaired = parseRow({ prompt_input_ids: [1], completion_input_ids: [2], label: true }, {
    format: "tokenized",
    index: 0,
  });
  deepStrictEqual(unpaired, {
    kind: "unpaired",
    promptIds: [1],
    completionIds: [2],
    label: true,
    row: 0,
  });
});

Deno.test("parseRow() skips bad rows with a reason", () => {
  const conv = (chosen: unknown, rejected: unknown = [user("Q"), assistant("B")]) => ({
    chosen,
    rejected,
  });
  const cases: [Row, Parameters<typeof parseRow>[1]["format"], string][] = [
    [{ prompt: null, chosen: "a", rejected: "b" }, "text", "null_field"],
    [{ prompt: "Q", chosen: "  ", rejected: "b" }, "text", "empty_field"],
    [{ prompt: "Q", chosen: 3, rejected: "b" }, "text", "non_string_content"],
    [{ prompt: "Q", chosen: "same", rejected: "same" }, "text", "identical_chosen_rejected"],
    [conv([user("Q"), assistant("B")]), "conversational", "identical_chosen_rejected"],
    [
      conv([user("Q"), { role: "assistant", content: [{ type: "text", text: "A" }] }]),
      "conversational",
      "non_string_content",
    ],
    [conv([user("Q"), { role: "assistant", content: null }]), "conversational", "null_field"],
    [conv([user("Q"), assistant("")]), "conversational", "empty_field"],
    [conv([user("Q")]), "conversational", "empty_field"],
    [conv([user("Q"), user("again")]), "conversational", "no_assistant_turn"],
    [
      conv([user("Q"), assistant("A"), user("thanks")]),
      "conversational",
      "last_turn_not_assistant",
    ],
    [
      { prompt: [user("Q")], completion: [assistant("A"), user("more?")], label: true },
      "unpaired",
      "last_turn_not_assistant",
    ],
    [conv("not a list"), "conversational", "non_string_content"],
    [{ chosen: [assistant("A")], rejected: [assistant("B")] }, "conversational", "null_field"],
    [{ chosen: "\n\nHuman: a", rejected: "\n\nHuman: b" }, "hh_rlhf", "no_assistant_turn"],
    [
      { chosen: "\n\nHuman: a\n\nAssistant:", rejected: "\n\nHuman: a\n\nAssistant: b" },
      "hh_rlhf",
      "empty_field",
    ],
    [{ prompt: "Q", completion: "A", label: "yes" }, "unpaired", "bad_label"],
    [{ prompt: "Q", completion: null, label: true }, "unpaired", "null_field"],
    [
      { prompt_input_ids: [], chosen_input_ids: [1], rejected_input_ids: [2] },
      "tokenized",
      "bad_token_ids",
    ],
    [
      { prompt_input_ids: [1], chosen_input_ids: [1.5], rejected_input_ids: [2] },
      "tokenized",
      "bad_token_ids",
    ],
    [
      { prompt_input_ids: [1], chosen_input_ids: [2], rejected_input_ids: [2] },
      "tokenized",
      "identical_chosen_rejected",
    ],
  ];
  for (const [row, format, reason] of cases) {
    equal(skipReason(row, format), reason, JSON.stringify(row));
  }
});
