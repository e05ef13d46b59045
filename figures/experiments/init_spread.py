"""Experiment 3: per-layer activation and gradient spread in a deep MLP under four initialisations.

Glorot & Bengio 2010 (Xavier: Var(W) = 2 / (fan_in + fan_out)); He et al. 2015 (Kaiming: Var(W) = 2 / fan_in for ReLU).
"""

import torch

from .common import Measurement

CPU_THREADS = 1  # small models: single-threaded on the CPU (see runs.py)
SIZES = {"quick": {"depth": 10, "width": 128, "batch": 256}, "full": {"depth": 20, "width": 256, "batch": 1024}}

CLAIM = (
    "In a deep MLP, N(0,1) weights make ReLU activations explode and a small constant scale makes them vanish, "
    "while Kaiming (ReLU) and Xavier (tanh) keep the per-layer spread roughly constant "
    "(Glorot & Bengio 2010; He et al. 2015)."
)

INITS = ("normal", "small", "xavier", "kaiming")
INIT_LABELS = {"normal": "N(0,1)", "small": "N(0, 0.01²)", "xavier": "Xavier", "kaiming": "Kaiming"}


def run(ctx, depth: int, width: int, batch: int) -> Measurement:
    """One forward and backward pass per non-linearity and initialisation: no training, so no steps."""
    dev = ctx.torch_device()
    out = {"depth": depth, "width": width, "batch": batch, "inits": list(INITS), "init_labels": INIT_LABELS,
           "dtype": "float64", "act": {}, "grad": {}, "wgrad": {}, "act_ratio": {},
           "grad_meaning": "std of dL/dz_l (back-propagated, per example), z_l = h_(l-1) W_l",
           "wgrad_meaning": "std of dL/dW_l"}

    for nonlin in ("tanh", "relu"):
        f = torch.tanh if nonlin == "tanh" else torch.relu
        out["act"][nonlin], out["grad"][nonlin], out["wgrad"][nonlin], out["act_ratio"][nonlin] = {}, {}, {}, {}
        for init in INITS:
            ctx.seed_all()
            # float64: N(0,1) with ReLU grows ~sqrt(width/2) per layer, 1e20+ after 20 layers; float32 would overflow
            Ws = []
            for _ in range(depth):
                W = torch.empty(width, width, dtype=torch.float64, device=dev)  # (in, out)
                if init == "normal":
                    torch.nn.init.normal_(W, 0.0, 1.0)
                elif init == "small":
                    torch.nn.init.normal_(W, 0.0, 0.01)
                elif init == "xavier":
                    torch.nn.init.xavier_normal_(W)  # std = sqrt(2 / (fan_in + fan_out))
                else:
                    torch.nn.init.kaiming_normal_(W, nonlinearity="relu")  # std = sqrt(2 / fan_in)
                Ws.append(W.requires_grad_())
            h = torch.randn(batch, width, dtype=torch.float64, device=dev)  # (B, width) inputs ~ N(0, 1)
            acts, pre = [], []
            for W in Ws:
                z = h @ W  # (B, width) pre-activation
                z.retain_grad()
                h = f(z)
                pre.append(z)
                acts.append(h)
            r = torch.randn_like(h)  # loss = <r, h_L> / B: the top gradient is O(1) whatever the output scale
            loss = (h * r).sum() / batch
            loss.backward()
            a_std = [a.std().item() for a in acts]
            g_std = [z.grad.std().item() * batch for z in pre]  # back-propagated dL/dz per layer (per example)
            w_std = [W.grad.std().item() for W in Ws]  # dL/dW: for ReLU the same at every depth (see Extra)
            out["act"][nonlin][init] = a_std
            out["grad"][nonlin][init] = g_std
            out["wgrad"][nonlin][init] = w_std
            out["act_ratio"][nonlin][init] = max(a_std) / max(min(a_std), 1e-300)
            ctx.log(f"{nonlin:4s} {init:8s} act std layer 1 {a_std[0]:.3g} -> {depth} {a_std[-1]:.3g}; "
                    f"dL/dz std layer {depth} {g_std[-1]:.3g} -> 1 {g_std[0]:.3g}")

    return Measurement(model=f"MLP {depth}x{width}, no bias, tanh/ReLU", claim=CLAIM, data=out)
