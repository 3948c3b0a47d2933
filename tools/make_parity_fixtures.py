#!/usr/bin/python3
"""Writes the parity fixtures of tests/model/parity_test.ts: tiny random Llama, Qwen2 and OLMo-2
models and what an independent PyTorch implementation computes for them.

The architectures are re-implemented here in plain PyTorch, following transformers'
modeling_llama.py / modeling_qwen2.py / modeling_olmo2.py (RMSNorm, rotate_half RoPE with
llama3 scaling, repeat_kv grouped-query attention, SwiGLU), because `transformers` cannot be
installed offline. The reference runs in float64 from the float32 weights it saves, so its
numbers are the exact values the project's float32 graph must approach (tested to 1e-4 relative).

For each model, tests/fixtures/parity/<name>/ holds:
  config.json            HF config
  model.safetensors      float32 weights (HF names)
  expected.safetensors   inputs (input_ids, attention_mask, completion_mask), per-sequence
                         logp_sum / logp_count / logp_mean, token_logps (N,T), and
                         grad.<weight name>: d(Σ_n w_n · logp_sum_n)/d(weight), w = [1, -0.5, 2]
  greedy.json            (llama_gqa only) 6 greedy tokens after each of two prompts
plus llama_gqa_bf16/ (the same weights rounded to bfloat16, expectations recomputed from them)
and llama_gqa_sharded/ (the float32 weights in two shards with model.safetensors.index.json).

Run with Debian's torch:  apt-get install -y python3-torch && /usr/bin/python3 tools/make_parity_fixtures.py
"""

import json
import math
import os
import struct

import torch

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "parity")

# ------------------------------------------------------------------ safetensors (no library)

ST_DTYPE = {torch.float32: "F32", torch.bfloat16: "BF16", torch.float16: "F16", torch.int64: "I64"}


def save_safetensors(path, tensors):
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, t in tensors.items():
        t = t.contiguous()
        raw = (t.view(torch.int16) if t.dtype in (torch.bfloat16, torch.float16) else t).numpy().tobytes()
        header[name] = {"dtype": ST_DTYPE[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":"))
    text += " " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text.encode())
        for b in blobs:
            f.write(b)


# ------------------------------------------------------------------ the reference model


def rms_norm(x, w, eps):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def inv_freq(cfg):
    d = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    inv = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, d, 2, dtype=torch.int64).float() / d))
    s = cfg.get("rope_scaling")
    if s and s["rope_type"] == "llama3":
        old, lo, hi, factor = s["original_max_position_embeddings"], s["low_freq_factor"], s["high_freq_factor"], s["factor"]
        wavelen = 2 * math.pi / inv
        scaled = torch.where(wavelen > old / lo, inv / factor, inv)
        smooth = (old / wavelen - lo) / (hi - lo)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = ~(wavelen < old / hi) * ~(wavelen > old / lo)
        inv = torch.where(medium, smoothed, scaled)
    return inv.double()


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def repeat_kv(x, n):
    b, kv, t, d = x.shape
    return x[:, :, None].expand(b, kv, n, t, d).reshape(b, kv * n, t, d)


def forward(cfg, W, ids, mask):
    """Logits (N,T,V) in float64; W maps HF names to float64 tensors."""
    kind = cfg["model_type"]
    H, KV = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    d = cfg.get("head_dim") or cfg["hidden_size"] // H
    eps = cfg["rms_norm_eps"]
    N, T = ids.shape
    pos = (mask.cumsum(-1) - 1).clamp(min=0).double()
    freqs = pos[..., None] * inv_freq(cfg)
    emb = torch.cat((freqs, freqs), -1)
    cos, sin = emb.cos()[:, None], emb.sin()[:, None]
    causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
    allowed = causal[None, None] & mask.bool()[:, None, None, :]

    def lin(x, name):
        y = x @ W[name + ".weight"].T
        return y + W[name + ".bias"] if name + ".bias" in W else y

    x = W["model.embed_tokens.weight"][ids]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}"

        def attn(h):
            q, k, v = lin(h, p + ".self_attn.q_proj"), lin(h, p + ".self_attn.k_proj"), lin(h, p + ".self_attn.v_proj")
            if kind == "olmo2":
                q = rms_norm(q, W[p + ".self_attn.q_norm.weight"], eps)
                k = rms_norm(k, W[p + ".self_attn.k_norm.weight"], eps)
            q = q.view(N, T, H, d).transpose(1, 2)
            k = k.view(N, T, KV, d).transpose(1, 2)
            v = v.view(N, T, KV, d).transpose(1, 2)
            q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
            k, v = repeat_kv(k, H // KV), repeat_kv(v, H // KV)
            s = (q @ k.transpose(2, 3)) / math.sqrt(d)
            s = s.masked_fill(~allowed, -1e9)
            o = (s.softmax(-1) @ v).transpose(1, 2).reshape(N, T, H * d)
            return lin(o, p + ".self_attn.o_proj")

        def mlp(h):
            return lin(torch.nn.functional.silu(lin(h, p + ".mlp.gate_proj")) * lin(h, p + ".mlp.up_proj"), p + ".mlp.down_proj")

        if kind == "olmo2":
            x = x + rms_norm(attn(x), W[p + ".post_attention_layernorm.weight"], eps)
            x = x + rms_norm(mlp(x), W[p + ".post_feedforward_layernorm.weight"], eps)
        else:
            x = x + attn(rms_norm(x, W[p + ".input_layernorm.weight"], eps))
            x = x + mlp(rms_norm(x, W[p + ".post_attention_layernorm.weight"], eps))
    x = rms_norm(x, W["model.norm.weight"], eps)
    head = W["model.embed_tokens.weight"] if cfg["tie_word_embeddings"] else W["lm_head.weight"]
    return x @ head.T


# ------------------------------------------------------------------ configs and weights


def make_weights(cfg, gen):
    D, F, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    H, KV = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    d = cfg.get("head_dim") or D // H
    kind = cfg["model_type"]
    bias = kind == "qwen2"
    W = {}

    def rand(*shape, scale=0.2):
        return (torch.randn(*shape, generator=gen) * scale).float()

    def norm(n):
        return (1 + 0.1 * torch.randn(n, generator=gen)).float()

    W["model.embed_tokens.weight"] = rand(V, D, scale=0.5)
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}"
        if kind != "olmo2":
            W[p + ".input_layernorm.weight"] = norm(D)
        for name, o, n in [("q_proj", H * d, D), ("k_proj", KV * d, D), ("v_proj", KV * d, D), ("o_proj", D, H * d)]:
            W[f"{p}.self_attn.{name}.weight"] = rand(o, n)
            if bias and name != "o_proj":
                W[f"{p}.self_attn.{name}.bias"] = rand(o, scale=0.1)
        if kind == "olmo2":
            W[p + ".self_attn.q_norm.weight"] = norm(H * d)
            W[p + ".self_attn.k_norm.weight"] = norm(KV * d)
        W[p + ".mlp.gate_proj.weight"] = rand(F, D)
        W[p + ".mlp.up_proj.weight"] = rand(F, D)
        W[p + ".mlp.down_proj.weight"] = rand(D, F)
        W[p + ".post_attention_layernorm.weight"] = norm(D)
        if kind == "olmo2":
            W[p + ".post_feedforward_layernorm.weight"] = norm(D)
    W["model.norm.weight"] = norm(D)
    if not cfg["tie_word_embeddings"]:
        W["lm_head.weight"] = rand(V, D, scale=0.5)
    return W


BASE = dict(vocab_size=48, hidden_size=32, intermediate_size=48, num_hidden_layers=2, max_position_embeddings=128,
            hidden_act="silu", bos_token_id=1, eos_token_id=2)
CONFIGS = {
    "llama_gqa": dict(BASE, model_type="llama", architectures=["LlamaForCausalLM"], num_attention_heads=4,
                      num_key_value_heads=2, rms_norm_eps=1e-6, rope_theta=10000.0, rope_scaling=None,
                      tie_word_embeddings=False, attention_bias=False, mlp_bias=False),
    "llama3_tied": dict(BASE, model_type="llama", architectures=["LlamaForCausalLM"], num_attention_heads=4,
                        num_key_value_heads=1, head_dim=12, rms_norm_eps=1e-5, rope_theta=500000.0,
                        rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                                          original_max_position_embeddings=16),
                        tie_word_embeddings=True, attention_bias=False, mlp_bias=False),
    "qwen2": dict(BASE, model_type="qwen2", architectures=["Qwen2ForCausalLM"], num_attention_heads=4,
                  num_key_value_heads=2, rms_norm_eps=1e-6, rope_theta=1000000.0, tie_word_embeddings=True,
                  use_sliding_window=False, sliding_window=None),
    "olmo2": dict(BASE, model_type="olmo2", architectures=["Olmo2ForCausalLM"], num_attention_heads=4,
                  num_key_value_heads=2, rms_norm_eps=1e-6, rope_theta=500000.0, rope_scaling=None,
                  tie_word_embeddings=False, attention_bias=False),
}

# Three sequences of T = 8: no padding, right padding, left padding; prompts then completions.
IDS = torch.tensor([[1, 5, 9, 14, 3, 22, 7, 2], [1, 30, 31, 4, 11, 2, 0, 0], [0, 0, 1, 17, 6, 40, 45, 2]])
MASK = torch.tensor([[1] * 8, [1] * 6 + [0] * 2, [0] * 2 + [1] * 6])
COMPLETION = torch.tensor([[0, 0, 0, 1, 1, 1, 1, 1], [0, 0, 0, 1, 1, 1, 0, 0], [0, 0, 0, 0, 1, 1, 1, 1]])
SEQ_WEIGHTS = torch.tensor([1.0, -0.5, 2.0], dtype=torch.float64)


def expectations(cfg, W32):
    W = {k: v.double().requires_grad_(True) for k, v in W32.items()}
    logits = forward(cfg, W, IDS, MASK)
    logp = logits[:, :-1].log_softmax(-1).gather(-1, IDS[:, 1:, None]).squeeze(-1)
    m = COMPLETION[:, 1:].double()
    token = torch.cat([torch.zeros(3, 1, dtype=torch.float64), logp * m], 1)
    total, count = token.sum(1), m.sum(1)
    (total * SEQ_WEIGHTS).sum().backward()
    out = {
        "input_ids": IDS.clone(),
        "attention_mask": MASK.float(),
        "completion_mask": COMPLETION.float(),
        "logp_sum": total.detach().float(),
        "logp_count": count.float(),
        "logp_mean": (total / count.clamp(min=1)).detach().float(),
        "token_logps": token.detach().float(),
    }
    for k, v in W.items():
        out["grad." + k] = v.grad.float()
    return out


def greedy(cfg, W32, prompt, n):
    W = {k: v.double() for k, v in W32.items()}
    ids = list(prompt)
    for _ in range(n):
        t = torch.tensor([ids])
        ids.append(int(forward(cfg, W, t, torch.ones_like(t))[0, -1].argmax()))
    return ids[len(prompt):]


def write_model(name, cfg, W, dtype="float32"):
    folder = os.path.join(OUT, name)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(dict(cfg, torch_dtype=dtype), f, indent=2)
    return folder


def main():
    torch.manual_seed(0)
    for i, (name, cfg) in enumerate(CONFIGS.items()):
        gen = torch.Generator().manual_seed(1234 + i)
        W = make_weights(cfg, gen)
        folder = write_model(name, cfg, W)
        save_safetensors(os.path.join(folder, "model.safetensors"), W)
        save_safetensors(os.path.join(folder, "expected.safetensors"), expectations(cfg, W))
        if name == "llama_gqa":
            runs = [greedy(cfg, W, [1, 5, 9, 14], 6), greedy(cfg, W, [1, 30], 6)]
            with open(os.path.join(folder, "greedy.json"), "w") as f:
                json.dump({"prompts": [[1, 5, 9, 14], [1, 30]], "tokens": runs}, f)
            # bfloat16 checkpoint: expectations from the rounded weights.
            Wb = {k: v.bfloat16() for k, v in W.items()}
            folder = write_model(name + "_bf16", cfg, Wb, "bfloat16")
            save_safetensors(os.path.join(folder, "model.safetensors"), Wb)
            save_safetensors(os.path.join(folder, "expected.safetensors"),
                             expectations(cfg, {k: v.float() for k, v in Wb.items()}))
            # Two shards + index, same weights and expectations as the float32 model.
            folder = write_model(name + "_sharded", cfg, W)
            names = list(W)
            shards = {"model-00001-of-00002.safetensors": names[: len(names) // 2],
                      "model-00002-of-00002.safetensors": names[len(names) // 2:]}
            for file, keys in shards.items():
                save_safetensors(os.path.join(folder, file), {k: W[k] for k in keys})
            index = {"metadata": {"total_size": sum(v.numel() * 4 for v in W.values())},
                     "weight_map": {k: f for f, keys in shards.items() for k in keys}}
            with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
                json.dump(index, f, indent=2)
    print("wrote", os.path.normpath(OUT))


if __name__ == "__main__":
    main()
