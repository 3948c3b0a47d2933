"""PyTorch reference for `deno task bench`: the same DPO train step on the same shapes.

SmolLM2-135M's architecture (random weights) or a preset, B pairs x T tokens (first half prompt,
second half completion), reference log-probs fed as from a cache, DPO sigmoid loss (beta 0.1),
global-norm clipping at 1, torch.optim.AdamW. Prints one JSON line like the Deno bench:
median step time over `--steps` after `--warmup`, and the process's peak RSS.

    /work/pyvenv/bin/python bench/torch_step.py --batch_size 1 --max_length 128 --steps 10
"""
import argparse
import json
import resource
import statistics
import time

import torch
import torch.nn.functional as F
from transformers import LlamaConfig, LlamaForCausalLM

PRESETS = {
    "smollm2-135m": dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                         num_attention_heads=9, num_key_value_heads=3, vocab_size=49152,
                         rope_theta=100000.0, tie_word_embeddings=True),
    "smollm2-360m": dict(hidden_size=960, intermediate_size=2560, num_hidden_layers=32,
                         num_attention_heads=15, num_key_value_heads=5, vocab_size=49152,
                         rope_theta=100000.0, tie_word_embeddings=True),
}

parser = argparse.ArgumentParser()
parser.add_argument("--model", default="smollm2-135m", choices=sorted(PRESETS))
parser.add_argument("--batch_size", type=int, default=1)
parser.add_argument("--max_length", type=int, default=128)
parser.add_argument("--steps", type=int, default=10)
parser.add_argument("--warmup", type=int, default=2)
args = parser.parse_args()

torch.manual_seed(0)
config = LlamaConfig(max_position_embeddings=8192, rms_norm_eps=1e-5, **PRESETS[args.model])
config._attn_implementation = "sdpa"
model = LlamaForCausalLM(config).train()
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=0.0)

B, T = args.batch_size, args.max_length
N = 2 * B
ids = torch.randint(0, config.vocab_size, (N, T))
completion = (torch.arange(T) >= T // 2).float().expand(N, T)
reference = -torch.rand(N) * T


def step() -> float:
    logits = model(input_ids=ids).logits[:, :-1].float()
    logps = torch.gather(logits.log_softmax(-1), 2, ids[:, 1:, None]).squeeze(2)
    seq = (logps * completion[:, 1:]).sum(1)
    margin = (seq[:B] - reference[:B]) - (seq[B:] - reference[B:])
    loss = -F.logsigmoid(0.1 * margin).mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    return loss.item()


times = []
for i in range(args.warmup + args.steps):
    t0 = time.perf_counter()
    step()
    if i >= args.warmup:
        times.append((time.perf_counter() - t0) * 1000)
params = sum(p.numel() for p in model.parameters())
print(json.dumps({
    "runtime": f"torch {torch.__version__} ({torch.get_num_threads()} threads)",
    "model": args.model,
    "params": params,
    "batch_pairs": B,
    "max_length": T,
    "step_ms_median": round(statistics.median(times), 1),
    "peak_host_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
}))
