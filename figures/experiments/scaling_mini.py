"""Experiment: a compute-optimal scaling curve in miniature (IsoFLOP profiles, Chinchilla's approach 2).

Hoffmann et al. 2022, "Training Compute-Optimal Large Language Models" (Chinchilla), approach 2: fix a compute
budget C, train models of several sizes N for D = C / (6N) tokens each (a cosine schedule per run, to the end of
that run), and read the loss-optimal size N*(C) off a parabola fitted to final loss against log N; repeat for
several budgets and fit power laws N*(C) ∝ C^a and L*(C) = A·C^(-b). Kaplan et al. 2020, "Scaling Laws for Neural
Language Models", define N as the non-embedding parameters and C ≈ 6ND; both are used here.

The models are the tiny character-level GPTs of gpt.py trained with gpt.train_lm on the deck's card text. Two
choices make the miniature honest:
- the vocabulary is the 255 most frequent characters of the training split plus one shared id for all rarer ones
  (about 91% of the training characters keep their own id): with the full ~1500-character vocabulary the output
  layer alone would cost many times the non-embedding FLOPs of the smallest models, and 6N would not be the compute;
- every model uses the same batch (tokens per step), warmup fraction and cosine decay to 10% of the peak
  learning rate at its own last step (Chinchilla's decay); the peak learning rate is 4e-3 up to width 16 and
  ∝ 1/sqrt(width) above (a slightly smaller rate for the wider models).
Each budget trains a window of consecutive sizes of one ladder, shifted to larger models as C grows (as Chinchilla
centres each IsoFLOP profile on its optimum). Epochs = D / training characters are recorded: the smallest models
of the largest budget see the data several times.
"""

import math

import numpy as np
import torch

from .common import Measurement
from .gpt import GPT, GPTConfig, char_dataset, get_batch, train_lm

CPU_THREADS = 1  # small models: single-threaded on the CPU (see runs.py)
SIZES = {
    # ladder: (n_layer, n_embd) from small to large; budget j trains ladder[starts[j]: starts[j] + per_budget]
    "quick": {"ladder": [[1, 6], [1, 8], [1, 12]], "budgets": [2e8, 1.2e9], "starts": [0, 0], "per_budget": 3,
              "vocab": 256, "block": 32, "batch": 8, "eval_batches": 16},
    "full": {"ladder": [[1, 6], [1, 8], [1, 12], [1, 16], [2, 16], [2, 24], [2, 32]],
             "budgets": [1e9, 3e9, 1e10], "starts": [0, 1, 2], "per_budget": 5, "vocab": 256, "block": 32,
             "batch": 8, "eval_batches": 64},
}

CLAIM = (
    "At a fixed compute budget C = 6ND, final loss is U-shaped in model size (too small: capacity-limited; too "
    "large: too few tokens), and the loss-optimal size N* grows with C as a power law (Hoffmann et al. 2022, "
    "IsoFLOP profiles)."
)

PEAK_LR, LR_WIDTH, WARMUP_FRAC, MIN_LR = 4e-3, 16, 0.05, 0.1


def non_embedding(model) -> int:
    """Kaplan et al.'s N: all parameters but the token and position embeddings and the (untied) output layer."""
    return sum(p.numel() for n, p in model.named_parameters() if not n.startswith(("wte.", "wpe.", "head.")))


def peak_lr(width: int) -> float:
    return PEAK_LR * min(1.0, (LR_WIDTH / width) ** 0.5)


def parabola(logn, loss):
    """Least-squares loss ≈ p0·x² + p1·x + p2 in x = log10 N; its vertex when it opens upward and lies within the
    measured sizes, else (``inside`` false) the best measured size: a parabola is not extrapolated."""
    x, y = np.asarray(logn, float), np.asarray(loss, float)
    p = np.polyfit(x, y, 2)
    rms = float(np.sqrt(np.mean((np.polyval(p, x) - y) ** 2)))
    convex = bool(p[0] > 0)
    xv = -p[1] / (2 * p[0]) if convex else float("nan")
    if not (convex and x.min() <= xv <= x.max()):  # no minimum among the sizes: the best measured size
        i = int(np.argmin(y))
        return {"coef": p.tolist(), "rms": rms, "convex": convex, "inside": False, "n_opt": float(10 ** x[i]),
                "loss_opt": float(y[i])}
    return {"coef": p.tolist(), "rms": rms, "convex": True, "inside": True, "n_opt": float(10 ** xv),
            "loss_opt": float(np.polyval(p, xv))}


def power_law(c, y):
    """log10 y = k·log10 c + m: returns (k, 10^m, R²)."""
    lx, ly = np.log10(c), np.log10(y)
    k, m = np.polyfit(lx, ly, 1)
    res = ly - (k * lx + m)
    tot = ly - ly.mean()
    r2 = float(1 - (res @ res) / (tot @ tot)) if tot @ tot > 0 else float("nan")
    return float(k), float(10 ** m), r2


def run(ctx, ladder: list, budgets: list, starts: list, per_budget: int, vocab: int, block: int, batch: int,
        eval_batches: int) -> Measurement:
    dev = ctx.torch_device()
    text, chars, train, val, n_files = char_dataset(ctx.cards_dir)
    # the vocab - 1 most frequent training characters keep an id, the rest share the last one
    counts = torch.bincount(train, minlength=len(chars))
    order = torch.argsort(counts, descending=True, stable=True)
    remap = torch.full((len(chars),), vocab - 1, dtype=torch.long)
    remap[order[:vocab - 1]] = torch.arange(vocab - 1)
    train, val = remap[train], remap[val]  # (n_train,), (n_val,) ids < vocab
    coverage = {"train": float((train < vocab - 1).float().mean()), "val": float((val < vocab - 1).float().mean())}
    ctx.log(f"corpus: {n_files} files, {len(text):,} chars, {len(chars)} distinct -> vocabulary {vocab} "
            f"({coverage['train']:.1%} of training chars keep their own id)")

    T, B = block, batch
    gv = torch.Generator().manual_seed(ctx.seed + 7)
    held = [get_batch(val, T, B, gv, dev) for _ in range(eval_batches)]  # fixed held-out windows, (B, T) each

    def make(n_layer, n_embd):
        ctx.seed_all()  # the same seed for every model
        cfg = GPTConfig(vocab_size=vocab, block_size=T, n_layer=n_layer, n_head=2 if n_embd < 16 else 4,
                        n_embd=n_embd, pre_ln=True)
        return GPT(cfg).to(dev)

    sizes = []
    for n_layer, n_embd in ladder:
        m = make(n_layer, n_embd)
        sizes.append({"n_layer": n_layer, "n_embd": n_embd, "n_head": m.cfg.n_head, "N": non_embedding(m),
                      "params_total": sum(p.numel() for p in m.parameters()), "lr": peak_lr(n_embd)})

    runs, total_steps = [], 0
    for j, C in enumerate(budgets):
        for i in range(starts[j], starts[j] + per_budget):
            s = sizes[i]
            steps = max(1, round(C / (6 * s["N"]) / (T * B)))  # D = C / 6N tokens, in whole steps
            D = steps * T * B
            model = make(s["n_layer"], s["n_embd"])
            g = torch.Generator().manual_seed(ctx.seed + 1)  # the same data order for every run
            losses = train_lm(model, train, steps=steps, block=T, batch=B, lr=s["lr"], generator=g, device=dev,
                              warmup=max(1, round(WARMUP_FRAC * steps)), min_lr=MIN_LR)
            with torch.no_grad():
                held_loss = float(np.mean([model(x, y)[1].item() for x, y in held]))
            tail = max(1, steps // 10)
            d = s["n_embd"]
            # per-token training FLOPs (Kaplan: 6N + 6·n_layer·n_ctx·d) plus the output layer 6·V·d
            flops_tok = 6 * s["N"] + 6 * s["n_layer"] * T * d + 6 * vocab * d
            runs.append({"budget": C, "size": i, "N": s["N"], "steps": steps, "tokens": D,
                         "epochs": D / len(train), "tokens_per_param": D / s["N"], "loss": held_loss,
                         "train_loss_end": float(np.mean(losses[-tail:])), "six_n_share": 6 * s["N"] / flops_tok})
            total_steps += steps
            ctx.log(f"C={C:.0e}: L{s['n_layer']} d{d} N={s['N']:,} {steps} steps ({D / len(train):.2f} epochs): "
                    f"held-out {held_loss:.3f}")

    # fits: a parabola in log10 N per budget, then power laws across budgets ------------------------------------
    per_budget_fit = []
    for C in budgets:
        rs = [r for r in runs if r["budget"] == C]
        f = parabola([math.log10(r["N"]) for r in rs], [r["loss"] for r in rs])
        best = min(rs, key=lambda r: r["loss"])
        f.update({"budget": C, "best_measured_N": best["N"], "best_measured_loss": best["loss"],
                  "d_opt": C / (6 * f["n_opt"]), "tokens_per_param_opt": C / (6 * f["n_opt"] ** 2),
                  "epochs_opt": C / (6 * f["n_opt"]) / len(train)})
        per_budget_fit.append(f)
        ctx.log(f"C={C:.0e}: N* = {f['n_opt']:,.0f} (vertex inside the sizes: {f['inside']}), L* = {f['loss_opt']:.3f},"
                f" D*/N* = {f['tokens_per_param_opt']:.0f} tokens per parameter")
    Cs = np.asarray(budgets, float)
    Ls = np.asarray([f["loss_opt"] for f in per_budget_fit])
    Ns = np.asarray([f["n_opt"] for f in per_budget_fit])
    k, A, r2 = power_law(Cs, Ls)
    frontier = {"b": -k, "A": A, "r2": r2}  # L*(C) = A·C^(-b)
    scaling = {"loss": frontier}
    if len(budgets) >= 3:
        a, G, r2n = power_law(Cs, Ns)
        scaling["n_opt"] = {"a": a, "G": G, "r2": r2n}  # N*(C) = G·C^a, so D*(C) ∝ C^(1-a)
        ctx.log(f"N* ∝ C^{a:.2f} (R² {r2n:.3f}); L* ∝ C^-{-k:.3f} (R² {r2:.3f})")
    else:
        ctx.log(f"L* ∝ C^-{-k:.3f} ({len(budgets)} budgets: no N* exponent)")

    # the same tokens, more parameters: pairs of runs whose token counts are within 15% ----------------------
    same_tokens = []
    for r1 in runs:
        for r2_ in runs:
            if r1["N"] < r2_["N"] and abs(r1["tokens"] / r2_["tokens"] - 1) <= 0.15:
                same_tokens.append({"tokens": [r1["tokens"], r2_["tokens"]], "N": [r1["N"], r2_["N"]],
                                    "loss": [r1["loss"], r2_["loss"]]})

    data = {
        "corpus": {"files": n_files, "chars": len(text), "distinct_chars": len(chars), "train_chars": len(train),
                   "val_chars": len(val)},
        "vocab": vocab, "coverage": coverage, "block": T, "batch": B, "tokens_per_step": T * B,
        "eval_tokens": eval_batches * B * T,
        "schedule": {"peak_lr": PEAK_LR, "lr_full_up_to_width": LR_WIDTH, "lr_rule": "peak_lr * min(1, sqrt(16/d))",
                     "warmup_frac": WARMUP_FRAC, "min_lr_frac": MIN_LR, "decay": "cosine to the last step"},
        "sizes": sizes,
        "budgets": budgets,
        "runs": runs,
        "fits": per_budget_fit,
        "scaling": scaling,
        "same_tokens": same_tokens,
    }
    return Measurement(model=f"char GPTs, N = {sizes[0]['N']:,}–{sizes[-1]['N']:,} non-embedding params",
                       claim=CLAIM, data=data, steps=total_steps)
