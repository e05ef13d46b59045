"""Experiment 5: class imbalance on digits (Lin et al. 2017, focal loss).

Three digits are made rare in the training split (a few examples each, the other seven keep all theirs); the
test split stays balanced. One MLP is trained with plain cross-entropy, class-weighted cross-entropy (weights
inversely proportional to class frequency, normalised to mean 1), focal loss (gamma = 2) and focal loss with the
same class weights as alpha (the alpha-balanced form Lin et al. use).
"""

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import average_precision_score, recall_score

from .common import Measurement
from .digits import Ensemble, load

CPU_THREADS = 1  # small models: single-threaded on the CPU (see runs.py)
SIZES = {"quick": {"seeds": 3, "steps": 150}, "full": {"seeds": 10, "steps": 300}}

CLAIM = (
    "Focal loss (Lin et al. 2017) and class weighting are the standard answers to class imbalance; here they are "
    "compared on the rare classes' recall and PR-AUC against plain cross-entropy."
)


def focal_loss(z, y, gamma: float = 2.0, alpha=None):
    """FL(p_t) = -alpha_t (1 - p_t)^gamma log p_t (Lin et al. 2017); alpha: per-class weights or None."""
    logp = F.log_softmax(z, -1).gather(-1, y.unsqueeze(-1)).squeeze(-1)  # log p_t
    loss = -((1 - logp.exp()) ** gamma) * logp
    if alpha is not None:  # weighted mean, as F.cross_entropy(weight=...) does
        a = alpha[y]
        return (a * loss).sum() / a.sum()
    return loss.mean()


def run(ctx, seeds: int, steps: int) -> Measurement:
    dev = ctx.torch_device()
    Xtr, ytr, Xte, yte = load(ctx.seed, dev)
    minority = [3, 5, 8]
    keep = 5  # training examples kept per rare class (the others keep ~135)
    sizes = [64, 32, 10]
    losses = ["ce", "weighted_ce", "focal", "focal_alpha"]
    labels = {"ce": "cross-entropy", "weighted_ce": "class-weighted CE", "focal": "focal (γ = 2)",
              "focal_alpha": "focal + class weights"}

    res = {k: {"minority_recall": [], "minority_pr_auc": [], "accuracy": [], "per_class_recall": []} for k in losses}
    counts = None
    for s in range(seeds):
        g = torch.Generator().manual_seed(ctx.seed + s)
        idx = []
        for c in range(10):
            ic = torch.nonzero(ytr.cpu() == c).squeeze(1)
            ic = ic[torch.randperm(len(ic), generator=g)]
            idx.append(ic[:keep] if c in minority else ic)
        idx = torch.cat(idx).to(dev)
        X, y = Xtr[idx], ytr[idx]
        cnt = torch.bincount(y, minlength=10).float()
        counts = cnt.tolist()
        w = (1.0 / cnt) / (1.0 / cnt).mean()  # inverse frequency, mean 1
        # the losses train side by side from the same init (an ensemble of one model per loss)
        g0 = torch.Generator().manual_seed(ctx.seed + 50 + s)
        base = Ensemble(1, sizes, "cpu", g0)
        net = Ensemble(len(losses), sizes, dev)
        with torch.no_grad():
            for p, q in zip(net.params, base.params):
                p.copy_(q.expand_as(p).to(dev))
        opt = torch.optim.Adam(net.params, lr=1e-2)
        Xb = X.expand(len(losses), -1, -1)  # (4, N, 64): one model per loss
        for _ in range(steps):
            z = net(Xb)  # (4, N, 10)
            loss = (F.cross_entropy(z[0], y) + F.cross_entropy(z[1], y, weight=w) + focal_loss(z[2], y)
                    + focal_loss(z[3], y, alpha=w))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        with torch.no_grad():
            P = net(Xte.expand(len(losses), -1, -1)).softmax(-1).cpu().numpy()  # (4, n_test, 10)
        yt = yte.cpu().numpy()
        for k, name in enumerate(losses):
            pred = P[k].argmax(-1)
            rec = recall_score(yt, pred, labels=list(range(10)), average=None, zero_division=0)
            ap = [average_precision_score(yt == c, P[k][:, c]) for c in minority]
            r = res[name]
            r["minority_recall"].append(float(np.mean(rec[minority])))
            r["minority_pr_auc"].append(float(np.mean(ap)))
            r["accuracy"].append(float((pred == yt).mean()))
            r["per_class_recall"].append(rec.tolist())
        if ctx.every(s, seeds, 3):
            ctx.log(f"seed {s + 1}/{seeds}: " + "  ".join(
                f"{n} rec {np.mean(res[n]['minority_recall']):.3f} ap {np.mean(res[n]['minority_pr_auc']):.3f}"
                for n in losses))

    summary = {
        n: {m: [float(np.mean(res[n][m])), float(np.std(res[n][m]))]
            for m in ("minority_recall", "minority_pr_auc", "accuracy")}
        for n in losses
    }
    for n in losses:
        summary[n]["per_class_recall"] = np.mean(res[n]["per_class_recall"], axis=0).tolist()
    data = {
        "minority_classes": minority,
        "train_counts": counts,
        "n_test": int(len(yte)),
        "seeds": seeds,
        "losses": losses,
        "loss_labels": labels,
        "focal_gamma": 2.0,
        "summary": summary,  # loss -> metric -> [mean, std over seeds]
        "runs": {n: {m: res[n][m] for m in ("minority_recall", "minority_pr_auc", "accuracy")} for n in losses},
    }
    return Measurement(model=f"MLP {sizes}, Adam lr 1e-2, full batch", claim=CLAIM, data=data, steps=steps,
                       packages=("scikit-learn",))
