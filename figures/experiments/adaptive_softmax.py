"""Experiment 8: full softmax vs adaptive softmax (Grave et al. 2017, torch.nn.AdaptiveLogSoftmaxWithLoss).

Time of one training step (forward + backward of the output layer and its loss) for a batch of hidden states,
as the vocabulary grows. Targets follow a Zipf law, as word frequencies do, so most land in the head cluster.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

from .common import Measurement

CPU_THREADS = None  # torch threads on the CPU; None = all cores (timings)
SIZES = {
    "quick": {"tokens": 512, "vocabs": [2_000, 8_000], "reps": 2},
    "quick-cuda": {"tokens": 4096, "vocabs": [2_000, 8_000], "reps": 2},
    "full": {"tokens": 512, "vocabs": [2_000, 8_000, 32_000, 128_000], "reps": 5},
    "full-cuda": {"tokens": 4096, "vocabs": [4_000, 16_000, 64_000, 256_000], "reps": 5},
}

CLAIM = (
    "The full softmax output layer costs time linear in the vocabulary; adaptive softmax (frequent words in a small "
    "head, rare words in low-dimensional tail clusters) is several times faster at large vocabularies."
)


def zipf_targets(V, n, g):
    p = 1.0 / torch.arange(1, V + 1, dtype=torch.float64)  # Zipf, exponent 1
    return torch.multinomial(p / p.sum(), n, replacement=True, generator=g)


def run(ctx, tokens: int, vocabs: list[int], reps: int) -> Measurement:
    dev = ctx.torch_device()
    d = 256
    n_tok = tokens  # hidden states per step (batch x sequence)
    full_t, ada_t, head_share, params_full, params_ada, cutoffs_all = [], [], [], [], [], []
    for V in vocabs:
        ctx.seed_all()
        g = torch.Generator().manual_seed(ctx.seed)
        y = zipf_targets(V, n_tok, g).to(dev)  # (N,)
        h = torch.randn(n_tok, d, device=dev, requires_grad=True)  # (N, d) hidden states
        cutoffs = [V // 20, V // 4]  # head: 5% most frequent words (+ 2 cluster tokens), two tails
        full = nn.Linear(d, V, bias=False).to(dev)
        ada = nn.AdaptiveLogSoftmaxWithLoss(d, V, cutoffs=cutoffs, div_value=4.0).to(dev)

        def step_full(full=full, h=h, y=y):
            loss = F.cross_entropy(full(h), y)  # logits (N, V)
            loss.backward()

        def step_ada(ada=ada, h=h, y=y):
            loss = ada(h, y).loss
            loss.backward()

        tf = ctx.time_fn(step_full, reps=reps, budget_s=20)
        ta = ctx.time_fn(step_ada, reps=reps, budget_s=20)
        full_t.append(tf)
        ada_t.append(ta)
        head_share.append((y < cutoffs[0]).float().mean().item())
        params_full.append(sum(p.numel() for p in full.parameters()))
        params_ada.append(sum(p.numel() for p in ada.parameters()))
        cutoffs_all.append(cutoffs)
        ctx.log(f"V={V:>7,}: full {tf * 1e3:8.1f} ms  adaptive {ta * 1e3:7.1f} ms  x{tf / ta:.1f}  "
                f"(targets in head {head_share[-1]:.0%})")

    data = {
        "d_model": d, "tokens_per_step": n_tok, "vocab": vocabs, "reps": reps, "div_value": 4.0,
        "cutoffs": cutoffs_all, "targets": "Zipf (exponent 1)",
        "time_full_s": full_t, "time_adaptive_s": ada_t, "speedup": [a / b for a, b in zip(full_t, ada_t)],
        "head_share": head_share, "params_full": params_full, "params_adaptive": params_ada,
        "timing": "median of reps, forward + backward, after one warm-up step; "
                  "torch.cuda.synchronize around each on CUDA",
    }
    return Measurement(model=f"output layer d={d}, {n_tok} tokens/step", claim=CLAIM, data=data)
