"""Experiment 2b: the learned attention of a tiny character-level GPT trained on the cards (cards/**/*.md).

A 2-layer Pre-LN GPT; every so often during training, the share of attention each head puts on the previous
character is measured on fixed held-out text. At the end: attention maps of chosen heads (causal: nothing above the
diagonal) and how a previous-token head emerges (Olsson et al. 2022 describe previous-token heads as the first half
of induction heads; Clark et al. 2019 found such heads in BERT).
"""

import numpy as np
import torch

from .common import Measurement
from .gpt import GPT, GPTConfig, char_dataset, get_batch

CPU_THREADS = 1  # small models: single-threaded on the CPU (see runs.py)
SIZES = {
    "quick": {"n_layer": 2, "n_embd": 32, "n_head": 4, "block": 32, "batch": 16, "steps": 150},
    "full": {"n_layer": 2, "n_embd": 64, "n_head": 4, "block": 64, "batch": 32, "steps": 1500},
}

CLAIM = (
    "A causal language model's attention is lower-triangular by construction, and training makes some heads "
    "specialise: in a 2-layer character GPT one head comes to put most of its attention on the previous character."
)


def run(ctx, n_layer: int, n_embd: int, n_head: int, block: int, batch: int, steps: int) -> Measurement:
    dev = ctx.torch_device()
    text, chars, train, val, n_files = char_dataset(ctx.cards_dir)

    T, bs = block, batch
    lr, warm = 3e-3, steps // 10
    every = max(1, steps // 15)
    show = min(T, 40)  # positions shown in the maps

    ctx.seed_all()
    cfg = GPTConfig(vocab_size=len(chars), block_size=T, n_layer=n_layer, n_head=n_head, n_embd=n_embd, pre_ln=True,
                    init="xavier")
    model = GPT(cfg).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.98))
    g = torch.Generator().manual_seed(ctx.seed + 2)
    gv = torch.Generator().manual_seed(ctx.seed + 3)
    xv, yv = get_batch(val, T, 16, gv, dev)  # (16, T) fixed held-out windows
    idx = np.arange(1, T)
    uniform_prev = float(np.mean(1.0 / (idx + 1)))  # a head spreading evenly over the causal window

    def probe():
        model.eval()
        with torch.no_grad():
            _, vl, maps = model(xv, yv, need_weights=True)
        model.train()
        A = torch.stack(maps).cpu().numpy()  # (L, B, H, T, T)
        return vl.item(), A

    trace_steps, trace_prev, trace_val = [], [], []
    for step in range(steps + 1):
        if step % every == 0 or step == steps:
            vl, A = probe()
            trace_steps.append(step)
            trace_prev.append(A[:, :, :, idx, idx - 1].mean(axis=(1, 3)).tolist())  # (L, H)
            trace_val.append(vl)
            if ctx.every(len(trace_steps) - 1, steps // every + 1, 3):
                ctx.log(f"step {step}: val loss {vl:.3f}, max previous-char share {np.max(trace_prev[-1]):.2f}")
        if step == steps:
            break
        for pg in opt.param_groups:
            pg["lr"] = lr * min(1.0, (step + 1) / warm)
        _, loss, _ = model(*get_batch(train, T, bs, g, dev))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    _, A = probe()  # (L, B, H, T, T)
    prev = np.asarray(trace_prev[-1])
    cur = A[:, :, :, np.arange(T), np.arange(T)].mean(axis=(1, 3))
    ent = (-(A * np.log(A + 1e-12)).sum(-1)).mean(axis=(1, 3))
    future = float(np.triu(A, k=1).sum())  # attention above the diagonal: exactly 0 for a causal model

    def at(i):
        return [int(i // n_head), int(i % n_head)]

    best_prev = at(np.argmax(prev))
    layer1 = [h for h in range(n_head) if h != best_prev[1] or best_prev[0] != 0]
    broad = [0, int(max(layer1, key=lambda h: ent[0, h]))]  # the broadest other layer-1 head
    last = [n_layer - 1, int(np.argmin(ent[-1]))]  # the sharpest last-layer head
    chosen = {"previous char": best_prev, "broad": broad, "sharpest, last layer": last}
    maps = {k: A[layer, 0, h, :show, :show].tolist() for k, (layer, h) in chosen.items()}
    ctx.log(f"previous-char share per head (layer x head): {np.round(prev, 2).tolist()}; uniform {uniform_prev:.2f}")

    data = {
        "corpus": {"files": n_files, "chars": len(text), "vocab": len(chars)},
        "lr": lr, "warmup_steps": warm, "arch": "pre_ln", "params": sum(p.numel() for p in model.parameters()),
        "uniform_prev": uniform_prev,
        "trace_steps": trace_steps,
        "trace_prev": trace_prev,  # per probe: (layer, head) mean attention on the previous character
        "trace_val_loss": trace_val,
        "prev_char": prev.tolist(),
        "current_char": cur.tolist(),
        "entropy": ent.tolist(),
        "future_mass": future,
        "chosen": chosen,  # label -> [layer, head] from 0
        "maps": maps,  # label -> (show, show) of the first held-out window, rows = queries
        "val_loss": trace_val[-1],
    }
    return Measurement(model=f"char GPT {n_layer}x{n_embd}, {n_head} heads, Pre-LN", claim=CLAIM, data=data,
                       steps=steps)
