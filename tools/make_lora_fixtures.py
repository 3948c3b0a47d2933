#!/usr/bin/env python3
"""LoRA parity fixtures (tests/model/lora_parity_test.ts) made with PEFT itself, and the check that
an adapter written by a training run loads in PEFT with the same log-probs.

    /work/pyvenv/bin/python tools/make_lora_fixtures.py
        writes tests/fixtures/lora/<llama|qwen2|olmo2>/: a tiny random base model (float32,
        save_pretrained), a PEFT LoRA adapter on all seven linear layers with non-zero B
        (save_pretrained), and expected.safetensors: the inputs, per-sequence completion
        log-prob sums and the gradients of sum_n w_n * logp_n (w = [1, -0.5, 2]) with respect to
        every lora_A / lora_B, all computed in float64 by PEFT over transformers (eager attention).

    /work/pyvenv/bin/python tools/make_lora_fixtures.py --check BASE_DIR ADAPTER_DIR SCORES.jsonl DATA.jsonl
        loads ADAPTER_DIR with PeftModel.from_pretrained over BASE_DIR and compares its completion
        log-prob sums on DATA.jsonl's pre-tokenized rows with SCORES.jsonl (`deno task score`).

Needs torch 2.13, transformers 5.17, peft 0.21 (the local wheelhouse).
"""

import json
import os
import sys

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, LlamaConfig, Olmo2Config, Qwen2Config

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "lora")
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
SMALL = dict(vocab_size=48, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
             num_attention_heads=2, num_key_value_heads=1, head_dim=8, max_position_embeddings=64,
             rms_norm_eps=1e-6, tie_word_embeddings=False)
MODELS = {
    "llama": LlamaConfig(**SMALL),
    "qwen2": Qwen2Config(**SMALL),
    "olmo2": Olmo2Config(**SMALL),
}


def completion_logps(model, ids, mask, completion):
    """Sum over completion tokens of log p(token | previous), positions counting real tokens."""
    positions = (mask.cumsum(1) - 1).clamp(min=0)
    logits = model(input_ids=ids, attention_mask=mask, position_ids=positions).logits
    logp = torch.log_softmax(logits[:, :-1], -1).gather(-1, ids[:, 1:, None]).squeeze(-1)
    # where, not a product: padded positions may hold NaN that must not leak into the sum.
    return torch.where(completion[:, 1:] > 0, logp, 0.0).sum(1)


def make(name, config):
    torch.manual_seed(len(name))
    config._attn_implementation = "eager"
    base = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    folder = os.path.join(OUT, name)
    os.makedirs(folder, exist_ok=True)
    base.save_pretrained(folder)
    lora = LoraConfig(r=2, lora_alpha=6, lora_dropout=0.0, target_modules=TARGETS,
                      task_type="CAUSAL_LM")
    model = get_peft_model(base, lora)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.copy_(torch.randn_like(p) * 0.2)  # non-zero B: the adapters change the output
    model.save_pretrained(folder)
    model = model.to(torch.float64)
    # Row 0 left-padded, row 2 right-padded, row 1 full.
    ids = torch.randint(0, config.vocab_size, (3, 9))
    mask = torch.ones(3, 9, dtype=torch.float64)
    mask[0, :2] = 0
    mask[2, 7:] = 0
    completion = torch.zeros(3, 9, dtype=torch.float64)
    completion[0, 5:] = 1
    completion[1, 4:] = 1
    completion[2, 3:7] = 1
    # Each row alone, without its padding: what a padded batch must reproduce (eager attention
    # turns fully masked padding queries into NaN that would leak through the padded keys).
    rows = []
    for n in range(3):
        real = mask[n] > 0
        rows.append(completion_logps(model, ids[n][real][None], mask[n][real][None].long(),
                                     completion[n][real][None]))
    logps = torch.cat(rows)
    weights = torch.tensor([1.0, -0.5, 2.0], dtype=torch.float64)
    (logps * weights).sum().backward()
    expected = {
        "input_ids": ids.to(torch.int64),
        "attention_mask": mask.float(),
        "completion_mask": completion.float(),
        "logp_sum": logps.detach().float(),
    }
    for n, p in model.named_parameters():
        if "lora_" in n:
            # base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight
            key = n.replace("base_model.model.", "", 1).replace(".default", "")
            expected[f"grad.{key}"] = p.grad.float()
    save_file({k: v.contiguous() for k, v in expected.items()},
              os.path.join(folder, "expected.safetensors"))
    print(f"{name}: logp_sum {logps.tolist()}")


def check(base_dir, adapter_dir, scores_path, data_path):
    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float64,
                                                attn_implementation="eager")
    model = PeftModel.from_pretrained(base, adapter_dir).to(torch.float64)
    rows = [json.loads(line) for line in open(data_path)]
    ours = [json.loads(line) for line in open(scores_path)]
    worst = 0.0
    for row, mine in zip(rows, ours):
        for side in ("chosen", "rejected"):
            seq = row["prompt_input_ids"] + row[f"{side}_input_ids"]
            ids = torch.tensor([seq])
            mask = torch.ones_like(ids)
            completion = torch.zeros(1, len(seq), dtype=torch.float64)
            completion[0, len(row["prompt_input_ids"]):] = 1
            peft = completion_logps(model, ids, mask, completion).item()
            diff = abs(peft - mine[side]["logp_sum"]) / max(abs(peft), 1e-9)
            worst = max(worst, diff)
    print(json.dumps({"rows": len(rows), "max_relative_diff": worst, "ok": worst < 1e-4}))
    return 0 if worst < 1e-4 else 1


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--check":
        sys.exit(check(*sys.argv[2:6]))
    for name, config in MODELS.items():
        make(name, config)
