"""Experiment 4: knowledge distillation on digits (Hinton, Vinyals & Dean 2015).

A teacher MLP is trained on the whole training split. A small student sees only a fraction of the training
images and learns either from their hard labels or from the teacher's soft targets softmax(z_t / T) at T = 1 or
T = 4, with the loss T^2 * KL(p_t^T || p_s^T) (soft targets only, no hard-label term).
"""

import torch
import torch.nn.functional as F

from .common import Measurement
from .digits import Ensemble, load, mlp

CPU_THREADS = 1  # small models: single-threaded on the CPU (see runs.py)
SIZES = {
    "quick": {"fractions": [0.05, 0.2], "seeds": 3, "teacher_steps": 100, "student_steps": 150},
    "full": {"fractions": [0.03, 0.05, 0.1, 0.2, 0.5, 1.0], "seeds": 8, "teacher_steps": 300, "student_steps": 300},
}

CLAIM = (
    "A student trained on the teacher's soft targets (T = 4) generalises better than one trained on hard labels "
    "when it sees few examples, because soft targets carry the teacher's similarity structure (Hinton et al. 2015)."
)


def run(ctx, fractions: list[float], seeds: int, teacher_steps: int, student_steps: int) -> Measurement:
    dev = ctx.torch_device()
    Xtr, ytr, Xte, yte = load(ctx.seed, dev)
    fracs = fractions
    t_steps, s_steps = teacher_steps, student_steps
    temps = [1.0, 4.0]
    teacher_sizes, student_sizes = [64, 256, 256, 10], [64, 16, 10]

    # teacher: full batch Adam on the whole training split, dropout 0.2
    ctx.seed_all()
    teacher = mlp(teacher_sizes, dropout=0.2).to(dev)
    opt = torch.optim.Adam(teacher.parameters(), lr=1e-3, weight_decay=1e-4)
    for _ in range(t_steps):
        loss = F.cross_entropy(teacher(Xtr), ytr)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    teacher.eval()
    with torch.no_grad():
        t_logits = teacher(Xtr)  # (N, 10)
        zt_te = teacher(Xte)
        t_acc = (zt_te.argmax(1) == yte).float().mean().item()
    ctx.log(f"teacher {teacher_sizes} test acc {t_acc:.4f}")

    methods = ["hard"] + [f"soft_T{int(T)}" for T in temps]
    M = len(methods) * seeds  # students trained together: model m*seeds + s = method m, seed s
    acc = {m: [] for m in methods}  # method -> per fraction: list over seeds
    n_train = []
    for fi, frac in enumerate(fracs):
        n = max(10, int(round(frac * len(ytr))))
        g = torch.Generator().manual_seed(ctx.seed + 100 * fi)
        subsets = torch.stack([torch.randperm(len(ytr), generator=g)[:n] for _ in range(seeds)]).to(dev)  # (seeds, n)
        idx = subsets.repeat(len(methods), 1)  # (M, n): every method sees the same subsets
        X, y, zt = Xtr[idx], ytr[idx], t_logits[idx]  # (M, n, 64), (M, n), (M, n, 10)
        # the same initial weights for every method (seed s -> one init)
        g0 = torch.Generator().manual_seed(ctx.seed + 7)
        base = Ensemble(seeds, student_sizes, "cpu", g0)
        st = Ensemble(M, student_sizes, dev)
        with torch.no_grad():
            for p, q in zip(st.params, base.params):
                p.copy_(q.repeat(len(methods), 1, 1).to(dev))
        opt = torch.optim.Adam(st.params, lr=1e-2)
        for _ in range(s_steps):  # full batch
            z = st(X)  # (M, n, 10)
            losses = []
            for mi, m in enumerate(methods):
                zm, sl = z[mi * seeds:(mi + 1) * seeds], slice(mi * seeds, (mi + 1) * seeds)
                if m == "hard":
                    losses.append(F.cross_entropy(zm.reshape(-1, 10), y[sl].reshape(-1)) * seeds)
                else:  # T^2 keeps the gradient scale comparable across T
                    T = float(m.split("T")[1])
                    pt = (zt[sl] / T).softmax(-1)
                    kl = F.kl_div((zm / T).log_softmax(-1), pt, reduction="none").sum(-1).mean(-1)  # (seeds,)
                    losses.append(kl.sum() * T * T)
            loss = sum(losses)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        with torch.no_grad():
            pred = st(Xte.expand(M, -1, -1)).argmax(-1)  # (M, n_test)
            a = (pred == yte).float().mean(-1).tolist()  # (M,)
        for mi, m in enumerate(methods):
            acc[m].append(a[mi * seeds:(mi + 1) * seeds])
        n_train.append(n)
        ctx.log(f"frac {frac:<4} n={n:4d} " + "  ".join(f"{m} {sum(acc[m][-1]) / seeds:.3f}" for m in methods))

    # one test image's teacher distribution at T = 1 and T = 4 (the "dark knowledge")
    p1 = zt_te.softmax(-1)
    ok = (zt_te.argmax(1) == yte) & (p1.max(-1).values < 0.99)  # right, with visible second choices
    i = int(torch.nonzero(ok)[0]) if ok.any() else 0
    example = {
        "label": int(yte[i]),
        "p_T1": zt_te[i].softmax(-1).tolist(),
        "p_T4": (zt_te[i] / 4).softmax(-1).tolist(),
    }

    data = {
        "teacher": {"sizes": teacher_sizes, "test_acc": t_acc, "steps": t_steps, "dropout": 0.2},
        "student": {"sizes": student_sizes, "steps": s_steps, "optimizer": "Adam lr 1e-2, full batch"},
        "loss": "hard: CE(z_s, y); soft_T: T^2 * KL(softmax(z_t/T) || softmax(z_s/T))",
        "fractions": fracs,
        "n_train": n_train,
        "n_test": int(len(yte)),
        "seeds": seeds,
        "methods": methods,
        "acc": acc,
        "acc_mean": {m: [sum(v) / len(v) for v in acc[m]] for m in methods},
        "example": example,
    }
    return Measurement(model=f"MLP teacher {teacher_sizes} -> student {student_sizes}", claim=CLAIM, data=data,
                       steps=t_steps + s_steps, packages=("scikit-learn",))
