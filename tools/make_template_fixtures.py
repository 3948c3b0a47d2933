"""Writes tests/fixtures/hf_saved/: model folders saved by transformers 5.17 itself, so the Deno
tests check that folders in the current layout (chat_template.jinja, additional_chat_templates/,
`dtype` in config.json) are read as transformers reads them.

  olmo2_jinja/    a tiny random Olmo2ForCausalLM (bfloat16, hidden size 4, the project's 512-token
                  tokenizer) whose single chat template transformers saves as chat_template.jinja
  named/          the same tokenizer with two named templates ("default" and "tool_use"), which
                  transformers saves as chat_template.jinja + additional_chat_templates/tool_use.jinja
  expected.json   transformers' own renderings of a conversation with each folder

Run: /work/pyvenv/bin/python tools/make_template_fixtures.py   (transformers 5.17, torch)
"""

import json
import os

import torch
import transformers
from transformers import AutoTokenizer, Olmo2Config, Olmo2ForCausalLM

ROOT = os.path.join(os.path.dirname(__file__), "..")
OUT = os.path.join(ROOT, "tests", "fixtures", "hf_saved")

# Not ChatML, so a test can tell this template from the one in model/tiny/tokenizer_config.json.
JINJA_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m.role | upper }}: {{ m.content }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>ASSISTANT: {% endif %}"
)
NAMED_TEMPLATES = {
    "default": "{% for m in messages %}[{{ m.role }}] {{ m.content }}{{ eos_token }}{% endfor %}"
    "{% if add_generation_prompt %}[assistant] {% endif %}",
    "tool_use": "TOOLS {% for m in messages %}{{ m.content }}{% endfor %}",
}
CONVERSATION = [
    {"role": "user", "content": "What is 2 + 2?"},
    {"role": "assistant", "content": "4"},
]


def main():
    assert transformers.__version__.startswith("5.17"), transformers.__version__
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(os.path.join(ROOT, "model", "tiny"))
    tokenizer.chat_template = JINJA_TEMPLATE
    config = Olmo2Config(
        vocab_size=len(tokenizer),
        hidden_size=4,
        intermediate_size=8,
        num_hidden_layers=1,
        num_attention_heads=1,
        num_key_value_heads=1,
        max_position_embeddings=64,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )
    model = Olmo2ForCausalLM(config).to(torch.bfloat16)
    jinja_dir = os.path.join(OUT, "olmo2_jinja")
    model.save_pretrained(jinja_dir)
    tokenizer.save_pretrained(jinja_dir)

    named_dir = os.path.join(OUT, "named")
    tokenizer.chat_template = NAMED_TEMPLATES
    tokenizer.save_pretrained(named_dir)

    expected = {}
    for name, folder in [("olmo2_jinja", jinja_dir), ("named", named_dir)]:
        reloaded = AutoTokenizer.from_pretrained(folder)
        expected[name] = {
            "prompt": reloaded.apply_chat_template(CONVERSATION[:1], tokenize=False, add_generation_prompt=True),
            "full": reloaded.apply_chat_template(CONVERSATION, tokenize=False),
        }
    expected["conversation"] = CONVERSATION
    expected["transformers"] = transformers.__version__
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
