"""Experiment: DDPM vs DDIM vs flow matching on 2-D two moons, trained from scratch.

Two MLPs of the same size (diffusion.DenoiseMLP) learn the standardised two-moons distribution: one predicts ε
(DDPM, linear schedule, T = 1000), the other the rectified-flow velocity x_1 − x_0. Samples from each sampler are
compared with held-out points by an RBF-kernel MMD² and a sliced Wasserstein distance, against the number of
network evaluations (NFE) and the wall time; the floor is the distance between two held-out sets of real points.
"""

import time

import numpy as np
import torch
from sklearn.datasets import make_moons

from .common import Measurement
from .diffusion import (
    DenoiseMLP,
    Schedule,
    ddim,
    ddpm_ancestral,
    ddpm_loss,
    flow_euler,
    flow_loss,
    mmd2_rbf,
    n_params,
    sliced_wasserstein,
    train,
)

CPU_THREADS = 1  # small models: single-threaded on the CPU (see runs.py)
SIZES = {
    "quick": {"hidden": 64, "blocks": 2, "train_steps": 1000, "batch": 256, "lr": 2e-3, "train_points": 8000,
              "eval_points": 800, "sample_seeds": 1, "T": 1000, "ddim_steps": [5, 10, 20, 50],
              "ancestral_steps": [10], "flow_steps": [1, 2, 5, 10, 20], "ref_steps": 100},
    "full": {"hidden": 128, "blocks": 2, "train_steps": 4000, "batch": 512, "lr": 2e-3, "train_points": 20000,
             "eval_points": 2000, "sample_seeds": 2, "T": 1000, "ddim_steps": [5, 10, 20, 50],
             "ancestral_steps": [10, 20, 50], "flow_steps": [1, 2, 5, 10, 20, 50], "ref_steps": 200},
}

CLAIM = (
    "DDIM (η = 0) with tens of steps samples nearly as well as 1000-step DDPM ancestral sampling from the same "
    "ε-network, because its deterministic update follows the probability-flow ODE, which tolerates large steps "
    "(Song et al. 2021); a rectified-flow model of the same size needs still fewer Euler steps, because its paths "
    "are straighter (Liu et al. 2022)."
)

NOISE = 0.05        # make_moons noise
SNAP_DDPM = (999, 400, 150, 0)      # x_t shown at these t (t = 999 is pure noise; "0" = after the last step)
SNAP_FLOW = (0.0, 0.4, 0.7, 1.0)    # x_t shown at these t of a 20-step Euler run
SNAP_POINTS = 300


def moons(n, seed):
    X, _ = make_moons(n, noise=NOISE, random_state=seed)
    return X.astype(np.float32)


def run(ctx, hidden, blocks, train_steps, batch, lr, train_points, eval_points, sample_seeds, T, ddim_steps,
        ancestral_steps, flow_steps, ref_steps) -> Measurement:
    dev = ctx.torch_device()
    raw = moons(train_points, ctx.seed)
    mu, sd = raw.mean(0), raw.std(0)

    def std(a):
        return torch.as_tensor((a - mu) / sd, device=dev)

    Xtr = std(raw)
    Xev = std(moons(eval_points, ctx.seed + 1))       # held-out: every sampler is compared with these points
    Xfloor = std(moons(eval_points, ctx.seed + 2))    # a second held-out set: the real-vs-real floor
    sched = Schedule(T, "linear", dev)

    def dist(Y):
        return {"mmd2": mmd2_rbf(Y, Xev), "swd": sliced_wasserstein(Y, Xev, seed=ctx.seed)}

    # -- training: the same net, data order, optimiser and steps for both ----------------------------------------
    curves, models, train_time = {}, {}, {}
    for kind in ("ddpm", "flow"):
        ctx.seed_all(10)
        net = DenoiseMLP(2, hidden, blocks, temb=32).to(dev)
        g = torch.Generator(device="cpu").manual_seed(ctx.seed + 20)

        def batch_loss(step, net=net, g=g, kind=kind):
            x = Xtr[torch.randint(0, len(Xtr), (batch,), generator=g).to(dev)]
            return ddpm_loss(net, sched, x) if kind == "ddpm" else flow_loss(net, x)

        models[kind], curves[kind], every, train_time[kind] = train(net, batch_loss, train_steps, lr, 0.995, ctx,
                                                                    name=f"{kind} ")
    curve_steps = [every * (i + 1) for i in range(len(curves["ddpm"]))]

    eps_net, v_net = models["ddpm"], models["flow"]

    def eps_fn(x, t):
        return eps_net(x, torch.full((x.shape[0],), t * 1000 / T, device=dev))

    def v_fn(x, t):
        return v_net(x, torch.full((x.shape[0],), t * 1000, device=dev))

    # -- sampling: every method from the same starting noise per seed --------------------------------------------
    methods = [("ddpm", T)] + [("ancestral", k) for k in ancestral_steps] + [("ddim", k) for k in ddim_steps] \
        + [("flow", k) for k in flow_steps]
    results = {f"{m}_{k}": {"method": m, "nfe": k, "mmd2": [], "swd": [], "time_s": None} for m, k in methods}
    snaps, outputs = {}, {}
    for s in range(sample_seeds):
        g = torch.Generator(device=dev).manual_seed(ctx.seed + 100 + s)
        z = torch.randn(eval_points, 2, device=dev, generator=g)
        for m, k in methods:
            key = f"{m}_{k}"
            ctx.sync()
            t0 = time.perf_counter()
            if m == "ddpm":
                y, sn = ddpm_ancestral(eps_fn, sched, z, snap_at=SNAP_DDPM if s == 0 else (), generator=g)
            elif m == "ancestral":
                y, _ = ddim(eps_fn, sched, z, k, eta=1.0, generator=g)
            elif m == "ddim":
                y, _ = ddim(eps_fn, sched, z, k, eta=0.0)
            else:
                fs = {int(round(f * k)) for f in SNAP_FLOW} if (s == 0 and k == 20) else ()
                y, sn = flow_euler(v_fn, z, k, snap_at=fs)
            ctx.sync()
            dt = time.perf_counter() - t0
            results[key]["time_s"] = min(dt, results[key]["time_s"] or dt)  # the fastest of the seeds' runs
            if s == 0:
                outputs[key] = y
                if m == "ddpm":
                    snaps["ddpm"] = {str(t): sn[t][:SNAP_POINTS].cpu().numpy() for t in SNAP_DDPM[:-1]}
                    snaps["ddpm"]["0"] = y[:SNAP_POINTS].cpu().numpy()
                if m == "flow" and k == 20:
                    snaps["flow"] = {f"{f:g}": sn[int(round(f * k))][:SNAP_POINTS].cpu().numpy() for f in SNAP_FLOW}
            dd = dist(y)
            results[key]["mmd2"].append(dd["mmd2"])
            results[key]["swd"].append(dd["swd"])
        ctx.log(f"sampling seed {s + 1}/{sample_seeds}: " + "  ".join(
            f"{k} {v['swd'][-1]:.3f}|{v['mmd2'][-1]*1e3:.1f}" for k, v in results.items()))
    for v in results.values():
        v["mmd2_mean"] = float(np.mean(v["mmd2"]))
        v["swd_mean"] = float(np.mean(v["swd"]))

    # wall time: the fast samplers again, median of 5 runs (single runs of 10-300 ms jitter when the cores are
    # shared); the 1000-step chain keeps the fastest of its runs above
    def sampler(m, k):
        if m == "ancestral":
            return lambda: ddim(eps_fn, sched, z, k, eta=1.0, generator=torch.Generator(device=dev).manual_seed(0))
        if m == "ddim":
            return lambda: ddim(eps_fn, sched, z, k, eta=0.0)
        return lambda: flow_euler(v_fn, z, k)

    for m, k in methods:
        if m != "ddpm":
            results[f"{m}_{k}"]["time_s"] = ctx.time_fn(sampler(m, k), reps=5, warmup=1)
    # the deterministic samplers' discretisation error alone: distance of each K-step endpoint to the endpoint of a
    # ref_steps run of the same sampler from the same noise (seed 0), mean over points, standardised units
    z = torch.randn(eval_points, 2, device=dev, generator=torch.Generator(device=dev).manual_seed(ctx.seed + 100))
    ref = {"ddim": ddim(eps_fn, sched, z, ref_steps, eta=0.0)[0], "flow": flow_euler(v_fn, z, ref_steps)[0]}
    for key, v in results.items():
        if v["method"] in ref:
            v["endpoint_gap"] = float((outputs[key] - ref[v["method"]]).norm(dim=1).mean())
    floor = dist(Xfloor)
    ctx.log(f"floor (real vs real): swd {floor['swd']:.4f} mmd2 {floor['mmd2']:.2e}")

    n = n_params(eps_net)
    data = {
        "data": {"name": "two moons (sklearn make_moons)", "noise": NOISE, "train_points": train_points,
                 "eval_points": eval_points, "standardised": True},
        "net": {"params": n, "hidden": hidden, "blocks": blocks, "time_embedding": 32,
                "same_net_for_both": True, "ema_decay": 0.995},
        "schedule": {"kind": "linear", "T": T, "beta_1": 1e-4, "beta_T": 0.02},
        "train": {"steps": train_steps, "batch": batch, "optimizer": f"Adam lr {lr:g}, cosine to 5%",
                  "time_s": train_time},
        "targets": {"ddpm": "eps (L_simple)", "flow": "x1 - x0 (rectified flow)"},
        "loss": {"steps": curve_steps, **curves},
        "samplers": {
            "ddpm": "ancestral, all T steps, sigma^2 = beta_t (Ho et al. 2020, Alg. 2)",
            "ancestral": "DDIM update with eta = 1 on an evenly spaced sub-sequence (sigma^2 = beta-tilde)",
            "ddim": "DDIM eta = 0 on an evenly spaced sub-sequence (Song et al. 2021)",
            "flow": "Euler from t = 0 (noise) to 1 (data)",
        },
        "distance": {"mmd2": "unbiased MMD^2, sum of RBF kernels, bandwidths 0.1 0.2 0.5 1 (standardised units)",
                     "swd": "sliced W1, 256 random directions"},
        "sample_seeds": sample_seeds,
        "endpoint_gap": f"mean distance of a K-step endpoint to the {ref_steps}-step one (same sampler, same noise)",
        "results": results,
        "floor": floor,
        "snapshots": {"ddpm_t": list(SNAP_DDPM), "flow_t": list(SNAP_FLOW), "flow_steps": 20,
                      "points": {k: {t: np.round(a, 2).tolist() for t, a in v.items()} for k, v in snaps.items()}},
    }
    return Measurement(model=f"MLP {hidden}x{blocks} res-blocks ({n / 1e3:.0f}k params), DDPM vs rectified flow",
                       claim=CLAIM, data=data, steps=2 * train_steps, packages=("scikit-learn",))
