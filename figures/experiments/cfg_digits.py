"""Experiment: classifier-free guidance on scikit-learn's 8x8 digits (Ho & Salimans 2022).

One class-conditional ε-network (diffusion.DenoiseMLP with a label embedding) is trained with condition dropout:
with probability P_UNCOND the label is replaced by the null label, so the same network predicts ε_c = ε(x_t, t, y)
and ε_u = ε(x_t, t, ∅). Sampling (DDIM, η = 0) uses the guided prediction

    ε̃ = ε_u + w (ε_c − ε_u)        (w = 0: unconditional, w = 1: plain conditional, w > 1: guided)

which is Ho & Salimans' (1 + w') ε_c − w' ε_u with w' = w − 1 (the "guidance_scale" of Stable Diffusion / diffusers).
A classifier trained only on real digits (an MLP as in digits.py, never shown a sample) scores each w: accuracy
against the requested label, its entropy, and the spread of the samples (mean pairwise distance within a class).
"""

import time

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from .common import Measurement
from .diffusion import DenoiseMLP, Schedule, ddim, ddim_timesteps, ddpm_ancestral, ddpm_loss, n_params, train
from .digits import mlp

CPU_THREADS = 1  # small models: single-threaded on the CPU (see runs.py)
SIZES = {
    "quick": {"hidden": 128, "blocks": 2, "train_steps": 800, "batch": 256, "lr": 2e-3, "per_class": 30,
              "sample_steps": 20, "step_sweep": [5, 20], "ddpm_full": False, "T": 1000, "clf_steps": 200},
    "full": {"hidden": 256, "blocks": 3, "train_steps": 4000, "batch": 256, "lr": 2e-3, "per_class": 100,
             "sample_steps": 50, "step_sweep": [5, 10, 20, 50], "ddpm_full": True, "T": 1000, "clf_steps": 300},
}

CLAIM = (
    "Classifier-free guidance trades diversity for fidelity: raising the guidance scale w in "
    "eps_u + w (eps_c - eps_u) makes samples easier to classify as the requested class while their spread within "
    "a class shrinks (Ho & Salimans 2022)."
)

P_UNCOND = 0.15
W_SCALES = [0.0, 1.0, 2.0, 3.0, 5.0]
CLASSIFIER = [64, 128, 10]
SNAP_STEPS = (0, 0.5, 0.7, 0.8, 0.9, 1.0)   # fractions of the DDIM run at which x_t is kept for the figure
SNAP_W = 3.0
K_NN = 5                                    # k of the precision / recall balls


def pixels(x):
    """[-1, 1] model space -> the 0..16 pixel scale of load_digits."""
    return (x.clamp(-1, 1) + 1) * 8


def pairwise(X):
    """Mean Euclidean distance between distinct rows (0..16 pixel units)."""
    n = len(X)
    if n < 2:
        return float("nan")
    d = torch.cdist(X.double(), X.double())
    return float(d.sum() / (n * (n - 1)))


def precision_recall(real, fake, k: int = K_NN):
    """Improved precision and recall (Kynkäänniemi et al. 2019) in pixel space: each point's ball reaches its k-th
    nearest neighbour in its own set. Precision: share of samples inside some real ball (fidelity); recall: share of
    real images inside some sample ball (diversity, coverage of the data)."""
    R, S = real.double(), fake.double()
    d = torch.cdist(R, S)                                   # (real, fake)
    r_real = torch.cdist(R, R).sort(1).values[:, k]         # column 0 is the point itself
    r_fake = torch.cdist(S, S).sort(1).values[:, k]
    return float((d < r_real[:, None]).any(0).float().mean()), float((d < r_fake[None]).any(1).float().mean())


def run(ctx, hidden, blocks, train_steps, batch, lr, per_class, sample_steps, step_sweep, ddpm_full, T,
        clf_steps) -> Measurement:
    dev = ctx.torch_device()
    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=ctx.seed, stratify=y)  # as digits.py

    def t(a, dt=torch.float32):
        return torch.as_tensor(np.asarray(a), dtype=dt, device=dev)

    Xtr, Xte, ytr, yte = t(Xtr), t(Xte), t(ytr, torch.long), t(yte, torch.long)
    # standardised as in digits.py, but with std >= 1 pixel unit: a pixel that is blank in every training image
    # (std 0) would otherwise turn a faint stroke of a sample into a huge input and a confident wrong answer
    mu, sd = Xtr.mean(0), Xtr.std(0).clamp_min(1.0)

    # -- the judge: an MLP classifier trained on the real training images only -------------------------------------
    ctx.seed_all(1)
    clf = mlp(CLASSIFIER, dropout=0.2).to(dev)
    opt = torch.optim.Adam(clf.parameters(), lr=1e-3, weight_decay=1e-4)
    for _ in range(clf_steps):
        loss = F.cross_entropy(clf((Xtr - mu) / sd), ytr)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    clf.eval()

    @torch.no_grad()
    def judge(P):  # P: 0..16 pixels -> (pred, prob of pred, entropy)
        p = clf((P - mu) / sd).softmax(-1)
        return p.argmax(1), p, -(p * p.clamp_min(1e-12).log()).sum(1)

    clf_acc = float((judge(Xte)[0] == yte).float().mean())
    ctx.log(f"classifier {CLASSIFIER} test acc on real digits {clf_acc:.4f}")

    # -- the conditional diffusion model with condition dropout ----------------------------------------------------
    sched = Schedule(T, "linear", dev)
    x0 = Xtr / 8 - 1  # [-1, 1]
    ctx.seed_all(2)
    net = DenoiseMLP(64, hidden, blocks, temb=64, n_classes=10).to(dev)
    g = torch.Generator().manual_seed(ctx.seed + 3)

    def batch_loss(step):
        idx = torch.randint(0, len(x0), (batch,), generator=g).to(dev)
        lab = ytr[idx].clone()
        drop = torch.rand(batch, generator=g).to(dev) < P_UNCOND
        lab[drop] = 10  # the null label: the same network learns ε(x_t, t, ∅)
        return ddpm_loss(net, sched, x0[idx], lab)

    ema_decay = 0.999 if train_steps >= 3000 else 0.99
    model, losses, every, train_time = train(net, batch_loss, train_steps, lr, ema_decay, ctx)

    labels = torch.arange(10, device=dev).repeat_interleave(per_class)  # requested class of each sample
    N = len(labels)
    null = torch.full_like(labels, 10)

    def guided(w):
        def eps_fn(x, tt):
            tv = torch.full((x.shape[0],), tt * 1000 / T, device=dev)
            if w == 1.0:
                return model(x, tv, labels)
            if w == 0.0:
                return model(x, tv, null)
            e = model(torch.cat([x, x]), torch.cat([tv, tv]), torch.cat([labels, null]))  # one batched call
            ec, eu = e[:N], e[N:]
            return eu + w * (ec - eu)
        return eps_fn

    def score(P, w=None):
        pred, p, ent = judge(P)
        prec, rec = precision_recall(Xtr, P)
        in_class = [precision_recall(Xtr[ytr == c], P[labels == c])[1] for c in range(10)]
        return {
            "acc": float((pred == labels).float().mean()),
            "entropy": float(ent.mean()),
            "confidence": float(p.max(1).values.mean()),
            "precision": prec,
            "recall": rec,
            # per requested class: meaningless for unconditional samples (w = 0)
            "recall_in_class": None if w == 0.0 else float(np.mean(in_class)),
            "spread": float(np.mean([pairwise(P[pred == c]) for c in range(10) if int((pred == c).sum()) >= 2])),
            "predicted_classes": int(len(set(pred.tolist()))),
        }

    # real reference: the held-out test images, scored the same way against the training images
    _, pr, ent = judge(Xte)
    prec, rec = precision_recall(Xtr, Xte)
    real = {"images": int(len(yte)), "acc": clf_acc, "entropy": float(ent.mean()),
            "confidence": float(pr.max(1).values.mean()), "precision": prec, "recall": rec,
            "recall_in_class": float(np.mean([precision_recall(Xtr[ytr == c], Xte[yte == c])[1] for c in range(10)])),
            "spread": float(np.mean([pairwise(Xte[yte == c]) for c in range(10)]))}

    # -- the guidance sweep: the same starting noise for every w ---------------------------------------------------
    gen = torch.Generator(device=dev).manual_seed(ctx.seed + 4)
    zT = torch.randn(N, 64, device=dev, generator=gen)
    first = torch.stack([torch.nonzero(labels == c)[0, 0] for c in range(10)])  # one sample per class to show
    snap_idx = sorted({int(round(f * sample_steps)) for f in SNAP_STEPS})
    sweep, grid, process = [], [], None
    for w in W_SCALES:
        ctx.sync()
        t1 = time.perf_counter()
        xs, sn = ddim(guided(w), sched, zT, sample_steps, eta=0.0, clip_x0=1.0,
                      snap_at=snap_idx if w == SNAP_W else ())
        ctx.sync()
        dt = time.perf_counter() - t1
        P = pixels(xs)
        s = {"w": w, "time_s": dt, "nfe": sample_steps * (2 if w not in (0.0, 1.0) else 1), **score(P, w)}
        sweep.append(s)
        grid.append(P[first].round().int().tolist())
        if w == SNAP_W:
            ts = ddim_timesteps(T, sample_steps)
            process = {"steps": snap_idx, "t": [ts[i] + 1 if i < len(ts) else 0 for i in snap_idx],  # paper's t
                       "x": [pixels(sn[i][first]).round().int().tolist() for i in snap_idx]}
        ctx.log(f"w={w:g}: acc {s['acc']:.3f} entropy {s['entropy']:.3f} precision {s['precision']:.3f} "
                f"recall {s['recall']:.3f} spread {s['spread']:.2f} ({dt:.1f}s)")

    # -- sampler steps at w = 1 (no guidance): DDIM steps against accuracy, and the full ancestral chain ---------
    steps_rows, KEEP = [], ("acc", "precision", "recall")
    for k in step_sweep:
        ctx.sync()
        t1 = time.perf_counter()
        xs, _ = ddim(guided(1.0), sched, zT, k, eta=0.0, clip_x0=1.0)
        ctx.sync()
        steps_rows.append({"sampler": "ddim", "steps": k, "time_s": time.perf_counter() - t1,
                           **{m: v for m, v in score(pixels(xs)).items() if m in KEEP}})
    if ddpm_full:
        ctx.sync()
        t1 = time.perf_counter()
        xs, _ = ddpm_ancestral(guided(1.0), sched, zT, generator=gen)
        ctx.sync()
        steps_rows.append({"sampler": "ddpm", "steps": T, "time_s": time.perf_counter() - t1,
                           **{m: v for m, v in score(pixels(xs)).items() if m in KEEP}})
    ctx.log("w=1 steps: " + "  ".join(f"{r['sampler']} {r['steps']}: acc {r['acc']:.3f} recall {r['recall']:.3f}"
                                      for r in steps_rows))

    n = n_params(net)
    data = {
        "data": {"name": "sklearn load_digits 8x8", "train": int(len(ytr)), "test": int(len(yte)),
                 "scaling": "pixels 0..16 -> x/8 - 1 in [-1, 1]"},
        "net": {"params": n, "hidden": hidden, "blocks": blocks, "labels": "10 classes + null label",
                "ema_decay": ema_decay},
        "schedule": {"kind": "linear", "T": T, "beta_1": 1e-4, "beta_T": 0.02},
        "train": {"steps": train_steps, "batch": batch, "optimizer": f"Adam lr {lr:g}, cosine to 5%",
                  "p_uncond": P_UNCOND, "time_s": train_time},
        "loss": {"steps": [every * (i + 1) for i in range(len(losses))], "ddpm": losses},
        "guidance": "eps_u + w (eps_c - eps_u); w = 0 unconditional, w = 1 conditional (= Ho & Salimans w' = w - 1)",
        "sampler": {"kind": "DDIM eta = 0, x0-prediction clipped to [-1, 1]", "steps": sample_steps},
        "classifier": {"sizes": CLASSIFIER, "trained_on": "real training images only", "test_acc": clf_acc,
                       "steps": clf_steps, "input": "(pixels - train mean) / max(train std, 1)"},
        "per_class": per_class,
        "samples": N,
        "metrics": {"acc": "classifier's label == requested label", "entropy": "classifier entropy (nats)",
                    "precision_recall": f"Kynkaanniemi et al. 2019, k = {K_NN}, pixel space, against the "
                                        "training images (recall_in_class: per requested class, mean)",
                    "spread": "mean pairwise L2 (0..16 pixel units) within the classifier's predicted class"},
        "w": W_SCALES,
        "sweep": sweep,
        "real": real,
        "steps_at_w1": steps_rows,
        "grid": {"w": W_SCALES, "images": grid},
        "process": {"w": SNAP_W, **process},
    }
    return Measurement(model=f"class-conditional MLP DDPM ({n / 1e3:.0f}k params), CFG on digits",
                       claim=CLAIM, data=data, steps=train_steps + clf_steps, packages=("scikit-learn",))
