"""Experiment 7: a tiny top-2 mixture-of-experts layer with and without the load-balancing loss.

Shazeer et al. 2017 (top-k gating; uneven expert use reinforces itself), Fedus et al. 2021 (Switch Transformer
auxiliary loss  L_aux = alpha * E * sum_i f_i * P_i,  f_i = share of routed slots that go to expert i,
P_i = mean router probability of expert i). Tokens are digits images; the MoE sits in a residual block.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

from .common import Measurement
from .digits import load

CPU_THREADS = 1  # small models: single-threaded on the CPU (see runs.py)
SIZES = {"quick": {"steps": 400, "seeds": 2}, "full": {"steps": 1500, "seeds": 3}}

CLAIM = (
    "Without an auxiliary load-balancing loss a top-2 router sends most tokens to a few experts; with the "
    "Switch-style loss alpha * E * sum f_i P_i the expert load stays close to uniform "
    "(Shazeer et al. 2017; Fedus et al. 2021)."
)


class MoE(nn.Module):
    """Top-k routing over E expert MLPs (d -> hidden -> d), computed densely (E is tiny), with the Switch loss."""

    def __init__(self, E: int, d: int, hidden: int, k: int):
        super().__init__()
        self.E, self.k = E, k
        self.router = nn.Linear(d, E, bias=False)
        self.w1 = nn.Parameter(torch.randn(E, d, hidden) / d**0.5)  # experts as batched weights (E, d, h)
        self.b1 = nn.Parameter(torch.zeros(E, 1, hidden))
        self.w2 = nn.Parameter(torch.randn(E, hidden, d) / hidden**0.5)

    def forward(self, x):  # x: (N, d)
        E, k = self.E, self.k
        logits = self.router(x)  # (N, E)
        probs = logits.softmax(-1)
        topv, topi = logits.topk(k, dim=-1)  # (N, k)
        gates = topv.softmax(-1)  # renormalised over the chosen k
        # dense compute of every expert (E is tiny), then keep the chosen k: (E, N, d)
        h = torch.relu(torch.baddbmm(self.b1, x.expand(E, -1, -1), self.w1))
        out_all = torch.bmm(h, self.w2)  # (E, N, d)
        combine = torch.zeros_like(probs).scatter(-1, topi, gates)  # (N, E) gate weights, 0 for unchosen
        y = torch.einsum("ne,end->nd", combine, out_all)
        f = torch.zeros_like(probs).scatter(-1, topi, 1.0).mean(0) / k  # (E,) share of routed slots
        P = probs.mean(0)  # (E,)
        aux = E * (f * P).sum()  # 1.0 when both are uniform
        return y, aux, f


class Net(nn.Module):
    """Digits in, a residual block around the MoE, logits out."""

    def __init__(self, E: int, d: int, hidden: int, k: int, n_in: int = 64, n_out: int = 10):
        super().__init__()
        self.inp = nn.Linear(n_in, d)
        self.ln = nn.LayerNorm(d)
        self.moe = MoE(E, d, hidden, k)
        self.out = nn.Linear(d, n_out)

    def forward(self, x):  # x: (N, n_in) -> logits (N, n_out), aux loss, (E,) load
        h = self.inp(x)
        y, aux, f = self.moe(self.ln(h))
        return self.out(h + y), aux, f


def run(ctx, steps: int, seeds: int) -> Measurement:
    dev = ctx.torch_device()
    Xtr, ytr, Xte, yte = load(ctx.seed, dev)
    E, k, d, hidden = 8, 2, 32, 64
    bs, alpha, lr = 128, 0.01, 3e-3
    log_every = max(1, steps // 50)
    runs = {}
    for name, a in (("no_aux", 0.0), ("aux", alpha)):
        per_seed = []
        for s in range(seeds):
            ctx.seed_all(s)
            net = Net(E, d, hidden, k).to(dev)
            opt = torch.optim.Adam(net.parameters(), lr=lr)
            g = torch.Generator().manual_seed(ctx.seed + s)
            trace_steps, trace_load, trace_aux = [], [], []
            for step in range(steps):
                idx = torch.randint(len(ytr), (bs,), generator=g).to(dev)
                z, aux, f = net(Xtr[idx])
                loss = F.cross_entropy(z, ytr[idx]) + a * aux
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if step % log_every == 0 or step == steps - 1:  # load on the (fixed) test images
                    with torch.no_grad():
                        _, aux_te, f_te = net(Xte)
                    trace_steps.append(step)
                    trace_load.append(f_te.tolist())
                    trace_aux.append(aux_te.item())
            with torch.no_grad():
                z, aux, f = net(Xte)
                acc = (z.argmax(1) == yte).float().mean().item()
            shares = f.tolist()
            cv = (f.std(unbiased=False) / f.mean()).item()
            per_seed.append({"load": shares, "cv": cv, "max_share": max(shares), "acc": acc, "aux": aux.item(),
                             "trace_steps": trace_steps, "trace_load": trace_load, "trace_aux": trace_aux})
            ctx.log(f"{name:6s} seed {s}: test load {' '.join(f'{v:.2f}' for v in shares)}  CV {cv:.2f}  acc {acc:.3f}")
        runs[name] = per_seed

    data = {
        "experts": E, "top_k": k, "d_model": d, "expert_hidden": hidden, "batch": bs, "alpha": alpha, "lr": lr,
        "seeds": seeds, "uniform_share": 1 / E,
        "aux_loss": "alpha * E * sum_i f_i * P_i (Switch Transformer), 1.0 at uniform",
        "runs": runs,
        "mean_cv": {n: sum(r["cv"] for r in v) / len(v) for n, v in runs.items()},
        "mean_acc": {n: sum(r["acc"] for r in v) / len(v) for n, v in runs.items()},
    }
    return Measurement(model=f"top-{k} MoE, {E} experts ({d}->{hidden}->{d}), digits tokens", claim=CLAIM,
                       data=data, steps=steps, packages=("scikit-learn",))
