"""TRL 1.13's own DPO loss code on float64 inputs, for tests/algorithms/trl_parity_test.ts.

    /work/v22/bin/python tools/make_trl_loss_fixtures.py

For each TRL loss type listed in TYPES, this takes the branch `elif loss_type == "<type>":` out of
`trl.trainer.dpo_trainer.DPOTrainer._compute_loss`'s source, unchanged, and runs it on a seeded
random batch in float64 (logits, labels and completion masks for chosen and rejected answers,
reference log-probs), so the expected values are what TRL computes, not a re-derivation. Writes
tests/fixtures/trl/losses.json: per type, the hyperparameters, the per-sequence inputs this project's
losses read (summed log-probs and completion token counts) and TRL's batch loss
(`per_sequence_loss.mean()`). A `[sigmoid, sft]` entry with loss_weights [0.8, 0.2] runs the loop
over both branches as TRL's `loss += per_sequence_loss.mean() * loss_weight` does.
"""

import inspect
import json
import math
import pathlib
import re
import textwrap
import types

import torch
import torch.nn.functional as F
from trl.trainer.dpo_trainer import DPOTrainer

ROOT = pathlib.Path(__file__).resolve().parent.parent
# TRL builds some constants with torch.tensor(x) (exo_pair's ε): float64 by default here, so the
# fixture carries no float32 rounding.
torch.set_default_dtype(torch.float64)
TYPES = ["exo_pair", "sppo_hard", "apo_down", "discopop", "aot", "aot_unpaired", "sft", "sigmoid"]
HP = {"beta": 0.3, "label_smoothing": 0.1, "discopop_tau": 0.05}
B, T, V = 4, 6, 11


def branches():
    """The body of each `loss_type == "..."` branch of TRL's loss loop, dedented."""
    source = inspect.getsource(DPOTrainer._compute_loss)
    found = {}
    pattern = re.compile(r'^(\s*)(?:el)?if loss_type == "(\w+)":\n', re.M)
    matches = list(pattern.finditer(source))
    for m, nxt in zip(matches, matches[1:] + [None]):
        end = nxt.start() if nxt else source.index("else:", m.end())
        found[m.group(2)] = textwrap.dedent(source[m.end():end])
    return found


def batch(seed):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(2 * B, T, V, generator=g, dtype=torch.float64) * 2
    labels = torch.randint(0, V, (2 * B, T), generator=g)
    mask = (torch.rand(2 * B, T, generator=g) < 0.8).long()
    mask[:, 0] = 1  # every completion has a token
    per_token = torch.gather(logits.log_softmax(-1), 2, labels.unsqueeze(-1)).squeeze(-1)
    logps = (per_token * mask).sum(1)
    chosen_logps, rejected_logps = logps.chunk(2)
    ref = logps.detach() + torch.randn(2 * B, generator=g, dtype=torch.float64) * 1.5
    ref_chosen_logps, ref_rejected_logps = ref.chunk(2)
    return {
        "shift_logits": logits,
        "shift_labels": labels,
        "shift_completion_mask": mask,
        "completion_mask": mask,
        "chosen_logps": chosen_logps,
        "rejected_logps": rejected_logps,
        "ref_chosen_logps": ref_chosen_logps,
        "ref_rejected_logps": ref_rejected_logps,
    }


def trl_loss(code, loss_types, weights, seed):
    env = batch(seed)
    chosen_logratios = env["chosen_logps"] - env["ref_chosen_logps"]
    rejected_logratios = env["rejected_logps"] - env["ref_rejected_logps"]
    self = types.SimpleNamespace(
        beta=HP["beta"], label_smoothing=HP["label_smoothing"],
        args=types.SimpleNamespace(discopop_tau=HP["discopop_tau"]),
    )
    env.update(
        self=self, torch=torch, F=F, math=math, device="cpu",
        chosen_logratios=chosen_logratios, rejected_logratios=rejected_logratios,
        chosen_scores=chosen_logratios, rejected_scores=rejected_logratios,  # reverse KL: DPO
        delta_score=chosen_logratios - rejected_logratios,
    )
    loss = 0.0
    for loss_type, weight in zip(loss_types, weights, strict=True):
        exec(code[loss_type], env)
        loss += env["per_sequence_loss"].mean() * weight
    counts = env["completion_mask"].sum(1).double()
    chosen_lengths, rejected_lengths = counts.chunk(2)
    return {
        "loss_type": loss_types,
        "loss_weights": weights,
        "hyperparameters": HP,
        "inputs": {
            "policy_chosen_logps": env["chosen_logps"].tolist(),
            "policy_rejected_logps": env["rejected_logps"].tolist(),
            "reference_chosen_logps": env["ref_chosen_logps"].tolist(),
            "reference_rejected_logps": env["ref_rejected_logps"].tolist(),
            "chosen_lengths": chosen_lengths.tolist(),
            "rejected_lengths": rejected_lengths.tolist(),
        },
        "loss": float(loss),
    }


def main():
    code = branches()
    cases = [trl_loss(code, [t], [1.0], seed) for seed, t in enumerate(TYPES)]
    cases.append(trl_loss(code, ["sigmoid", "sft"], [0.8, 0.2], 99))
    import trl

    out = ROOT / "tests" / "fixtures" / "trl" / "losses.json"
    out.write_text(json.dumps({"trl": trl.__version__, "cases": cases}, indent=1) + "\n")
    print(f"wrote {out}: {len(cases)} cases")


if __name__ == "__main__":
    main()
