"""Checks that a checkpoint written by this project loads back in transformers 5.17 with its chat
template and dtype intact (a manual check, not a CI step: CI has no Python).

  /work/pyvenv/bin/python tools/check_checkpoint_in_transformers.py CHECKPOINT SOURCE_MODEL

CHECKPOINT is a folder `deno task train` saved (e.g. out/run/checkpoint-60), SOURCE_MODEL the
--model folder it started from. Checked:
  1. config.json has one dtype key, `dtype`, and it names the stored weights' dtype;
  2. AutoModelForCausalLM.from_pretrained(dtype="auto") loads every weight (none missing or
     unexpected) in that dtype, and a forward pass gives finite logits;
  3. AutoTokenizer.from_pretrained finds the same chat template as for SOURCE_MODEL, from the same
     file, and renders a conversation identically.
Prints one line per check and exits 1 when any fails.
"""

import json
import os
import struct
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

SAFETENSORS_DTYPES = {"F32": "float32", "BF16": "bfloat16", "F16": "float16"}
CONVERSATION = [
    {"role": "user", "content": "What is 2 + 2?"},
    {"role": "assistant", "content": "4"},
]


def stored_dtypes(folder):
    dtypes = set()
    for name in os.listdir(folder):
        if name.endswith(".safetensors"):
            with open(os.path.join(folder, name), "rb") as f:
                (size,) = struct.unpack("<Q", f.read(8))
                header = json.loads(f.read(size))
            dtypes |= {SAFETENSORS_DTYPES[v["dtype"]] for k, v in header.items() if k != "__metadata__"}
    return dtypes


def template_file(folder):
    for name in ("chat_template.jinja", "chat_template.json"):
        if os.path.exists(os.path.join(folder, name)):
            return name
    return "tokenizer_config.json"


def main(checkpoint, source):
    results = []

    def check(name, ok, detail):
        results.append(ok)
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}")

    with open(os.path.join(checkpoint, "config.json")) as f:
        raw = json.load(f)
    stored = stored_dtypes(checkpoint)
    check(
        "config.json dtype",
        raw.get("dtype") in stored and len(stored) == 1 and "torch_dtype" not in raw,
        f'dtype={raw.get("dtype")!r} torch_dtype={raw.get("torch_dtype")!r}, stored {sorted(stored)}',
    )

    model, info = AutoModelForCausalLM.from_pretrained(checkpoint, dtype="auto", output_loading_info=True)
    bad = {k: v for k, v in info.items() if v and k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    with torch.no_grad():
        logits = model(torch.tensor([[1, 2, 3]])).logits
    check(
        "AutoModelForCausalLM",
        not bad and str(model.dtype).removeprefix("torch.") == raw.get("dtype") and bool(torch.isfinite(logits).all()),
        f"{type(model).__name__} in {model.dtype}, loading problems {bad or 'none'}, logits finite",
    )

    ours, theirs = AutoTokenizer.from_pretrained(checkpoint), AutoTokenizer.from_pretrained(source)
    same = ours.chat_template == theirs.chat_template and template_file(checkpoint) == template_file(source)
    if same and ours.chat_template is not None:
        same = ours.apply_chat_template(CONVERSATION, tokenize=False) == theirs.apply_chat_template(
            CONVERSATION, tokenize=False
        )
    check(
        "chat template",
        same,
        f"from {template_file(checkpoint)} (source: {template_file(source)}), "
        f"{'identical' if same else 'DIFFERENT'} rendering",
    )
    return 0 if all(results) else 1


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
