"""Experiment 2: a tiny character-level GPT trained from scratch on the deck's own cards (cards/**/*.md).

Post-LN (LN(x + f(x)), the original Transformer / BERT) vs Pre-LN (x + f(LN(x)), GPT-2 and later), each with
and without a linear learning-rate warmup, at several peak learning rates (Adam). Xiong et al. 2020, "On Layer
Normalization in the Transformer Architecture": at initialisation Post-LN's gradients are large near the output,
so it needs warmup or a small learning rate; Pre-LN's are well-behaved across layers. Also: the gradient norm per
layer at initialisation. (The attention maps of a trained model: gpt_attention.py.)
"""

import hashlib
import math

import numpy as np
import torch

from .common import Measurement
from .gpt import GPT, GPTConfig, char_dataset, get_batch

CPU_THREADS = 1  # small models: single-threaded on the CPU (see runs.py)
SIZES = {
    "quick": {"n_layer": 2, "n_embd": 32, "n_head": 2, "block": 32, "batch": 16, "steps": 40, "lrs": [1e-2],
              "eval_batches": 4},
    "full": {"n_layer": 6, "n_embd": 64, "n_head": 4, "block": 32, "batch": 32, "steps": 400,
             "lrs": [1e-3, 3e-3, 1e-2], "eval_batches": 16},
}

CLAIM = (
    "Post-LN Transformers need a learning-rate warmup (or a small learning rate) to train, while Pre-LN "
    "Transformers train without one; at initialisation Post-LN's gradient norm grows toward the output layers "
    "(Xiong et al. 2020)."
)


def downsample(xs, n=100):
    """Window means: a curve of ~n points from one value per step."""
    a = np.asarray(xs, dtype=float)
    w = max(1, len(a) // n)
    m = len(a) // w * w
    steps = (np.arange(0, m, w) + w - 1).tolist()
    return steps, np.nanmean(a[:m].reshape(-1, w), axis=1).tolist()


def run(ctx, n_layer: int, n_embd: int, n_head: int, block: int, batch: int, steps: int, lrs: list[float],
        eval_batches: int) -> Measurement:
    dev = ctx.torch_device()
    text, chars, train, val, n_files = char_dataset(ctx.cards_dir)
    ctx.log(f"corpus: {n_files} card files, {len(text):,} chars, vocabulary {len(chars)}")

    bs, T = batch, block
    warm = steps // 4  # linear warmup over the first quarter, then constant

    def make(pre_ln):
        ctx.seed_all()  # the same init for every run of one architecture
        cfg = GPTConfig(vocab_size=len(chars), block_size=T, n_layer=n_layer, n_head=n_head, n_embd=n_embd,
                        pre_ln=pre_ln,
                        init="xavier")  # Xavier linears as in Xiong et al.; Post-LN gets BERT's embedding LN
        return GPT(cfg).to(dev)

    @torch.no_grad()
    def val_loss(model):
        model.eval()
        g = torch.Generator().manual_seed(ctx.seed + 99)
        out = sum(model(*get_batch(val, T, bs, g, dev))[1].item() for _ in range(eval_batches)) / eval_batches
        model.train()
        return out

    # gradient norm per layer at initialisation (mean over a few batches) -------------------------------------
    init_grad = {}
    for arch, pre in (("post_ln", False), ("pre_ln", True)):
        model = make(pre)
        g = torch.Generator().manual_seed(ctx.seed + 1)
        norms = np.zeros(n_layer)
        for _ in range(8):
            model.zero_grad()
            model(*get_batch(train, T, bs, g, dev))[1].backward()
            # the FFN output weight, as in Xiong et al.'s Fig. 3
            norms += [blk.mlp[2].weight.grad.norm().item() for blk in model.blocks]
        init_grad[arch] = (norms / 8).tolist()
        ctx.log(f"|grad W_FFN2| per layer at init, {arch}: " + " ".join(f"{v:.3f}" for v in init_grad[arch]))

    # training runs --------------------------------------------------------------------------------------------
    runs = []
    counts = np.bincount(train.numpy(), minlength=len(chars)).astype(float)
    p = counts / counts.sum()
    unigram = float(-(p[p > 0] * np.log(p[p > 0])).sum())  # loss of predicting the character frequencies
    for lr in lrs:
        for arch, pre in (("post_ln", False), ("pre_ln", True)):
            for warmup in (False, True):
                model = make(pre)
                opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.98))
                g = torch.Generator().manual_seed(ctx.seed + 2)  # the same batches for every run
                losses, gnorms = [], []
                for step in range(steps):
                    f = (step + 1) / warm if warmup and step < warm else 1.0
                    for pg in opt.param_groups:
                        pg["lr"] = lr * f
                    _, loss, _ = model(*get_batch(train, T, bs, g, dev))
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    gn = math.sqrt(sum(p.grad.pow(2).sum().item() for p in model.parameters()))
                    opt.step()
                    losses.append(loss.item())
                    gnorms.append(gn)
                vl = val_loss(model)
                s, lc = downsample(losses)
                _, gc = downsample(gnorms)
                runs.append({"arch": arch, "warmup": warmup, "lr": lr, "val_loss": vl,
                             "final_train_loss": float(np.mean(losses[-max(1, steps // 20):])),
                             "max_grad_norm": max(gnorms), "curve_steps": s, "loss": lc, "grad_norm": gc})
                ctx.log(f"lr {lr:g} {arch} {'warmup' if warmup else 'no warmup':9s}: val loss {vl:.3f} "
                        f"(unigram {unigram:.2f}), max grad norm {max(gnorms):.1f}")

    data = {
        "corpus": {"files": n_files, "chars": len(text), "vocab": len(chars), "val_chars": len(val),
                   "sha256": hashlib.sha256(text.encode()).hexdigest()[:16]},
        "warmup_steps": warm, "optimizer": "Adam(0.9, 0.98), constant lr after warmup",
        "params": sum(p.numel() for p in model.parameters()),
        "unigram_loss": unigram,
        # arch -> per layer (1 = next to the input): |dL/dW| of the FFN output weight, mean of 8 batches
        "init_grad_norm": init_grad,
        "runs": runs,
    }
    return Measurement(model=f"char GPT {n_layer}x{n_embd}, {n_head} heads, block {T}", claim=CLAIM, data=data,
                       steps=steps)
