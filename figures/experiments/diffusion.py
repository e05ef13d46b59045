"""Shared by ddpm_2d.py and cfg_digits.py: the noise schedule, the denoising MLP, the training losses (DDPM
ε-prediction, rectified-flow velocity) and the samplers (DDPM ancestral, DDIM with η, flow-matching Euler).

Conventions. DDPM (Ho et al. 2020): t = 0..T-1 is the paper's t = 1..T; ᾱ_t = ∏_{s≤t}(1 − β_s);
x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε. Rectified flow (Liu et al. 2022; Lipman et al. 2023): x_t = t x_1 + (1 − t) x_0
with x_0 ~ N(0, I) noise and x_1 data, velocity target x_1 − x_0, sampled from t = 0 to t = 1. The network gets
t as 1000·t/T (DDPM) or 1000·t (flow), through the same sinusoidal embedding.
"""

import math
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def linear_betas(T: int, beta_1: float = 1e-4, beta_T: float = 0.02):
    """Ho et al. 2020: β linear from 1e-4 to 0.02 over T = 1000 steps (rescaled by 1000/T for other T)."""
    s = 1000 / T
    return torch.linspace(beta_1 * s, beta_T * s, T, dtype=torch.float64)


def cosine_betas(T: int, s: float = 0.008):
    """Nichol & Dhariwal 2021: ᾱ(t) = cos²((t/T + s)/(1 + s)·π/2), β clipped at 0.999."""
    t = torch.arange(T + 1, dtype=torch.float64) / T
    f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    return (1 - f[1:] / f[:-1]).clamp(max=0.999)


class Schedule:
    def __init__(self, T: int, kind: str = "linear", device="cpu"):
        betas = linear_betas(T) if kind == "linear" else cosine_betas(T)
        self.T, self.kind = T, kind
        self.betas64 = betas
        self.abar64 = torch.cumprod(1 - betas, 0)
        self.betas = betas.float().to(device)
        self.abar = self.abar64.float().to(device)


def timestep_embedding(t, dim: int):
    """Sinusoidal embedding of t (a float tensor (N,), on the 0..1000 scale): [sin(t f_i), cos(t f_i)]."""
    half = dim // 2
    f = torch.exp(-math.log(10000) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    a = t.float()[:, None] * f[None]
    return torch.cat([a.sin(), a.cos()], 1)


class DenoiseMLP(nn.Module):
    """x (N, dim), t (N,) on the 0..1000 scale[, class labels (N,), ``n_classes`` = the null label] -> (N, dim).

    Input and the time (and class) embeddings are summed into the first hidden layer; then ``blocks`` residual
    blocks h + Linear(SiLU(Linear(SiLU(h)))); a linear read-out. ε-prediction, velocity prediction: the same net.
    """

    def __init__(self, dim: int, hidden: int, blocks: int, temb: int = 64, n_classes: int = 0):
        super().__init__()
        self.temb = temb
        self.inp = nn.Linear(dim, hidden)
        self.t_mlp = nn.Sequential(nn.Linear(temb, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.cls = nn.Embedding(n_classes + 1, hidden) if n_classes else None  # the last row is "no label"
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
            for _ in range(blocks)
        )
        self.out = nn.Sequential(nn.SiLU(), nn.Linear(hidden, dim))

    def forward(self, x, t, y=None):
        h = self.inp(x) + self.t_mlp(timestep_embedding(t, self.temb))
        if self.cls is not None:
            h = h + self.cls(y)
        for b in self.blocks:
            h = h + b(h)
        return self.out(h)


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


class EMA:
    """Exponential moving average of the weights (used for sampling, as in DDPM's and every later codebase)."""

    def __init__(self, model, decay: float):
        import copy

        self.decay = decay
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model):
        for e, p in zip(self.model.parameters(), model.parameters()):
            e.lerp_(p, 1 - self.decay)


def train(net, batch_loss, steps: int, lr: float, ema_decay: float, ctx, name: str = ""):
    """Adam with a cosine decay to 5% of ``lr`` and an EMA of the weights; ``batch_loss(step)`` draws one batch and
    returns its loss. Returns (the EMA model, the loss averaged over each 1/50 of the run, the steps per average, the
    training seconds)."""
    ema = EMA(net, ema_decay)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    decay = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=lr * 0.05)
    every = max(1, steps // 50)
    losses, window = [], []
    ctx.sync()
    t0 = time.perf_counter()
    for step in range(steps):
        loss = batch_loss(step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        decay.step()
        ema.update(net)
        window.append(loss.item())
        if (step + 1) % every == 0:
            losses.append(sum(window) / len(window))
            window = []
        if ctx.every(step, steps):
            ctx.log(f"{name}step {step + 1}/{steps} loss {losses[-1] if losses else loss.item():.4f}")
    ctx.sync()
    return ema.model, losses, every, time.perf_counter() - t0


# --- losses -----------------------------------------------------------------------------------------------------


def ddpm_loss(model, sched: Schedule, x0, y=None):
    """L_simple (Ho et al. 2020): ‖ε − ε_θ(√ᾱ_t x_0 + √(1−ᾱ_t) ε, t)‖², t uniform."""
    t = torch.randint(0, sched.T, (x0.shape[0],), device=x0.device)
    eps = torch.randn_like(x0)
    ab = sched.abar[t][:, None]
    xt = ab.sqrt() * x0 + (1 - ab).sqrt() * eps
    return F.mse_loss(model(xt, t * (1000 / sched.T), *(() if y is None else (y,))), eps)


def flow_loss(model, x1):
    """Rectified flow / conditional flow matching: ‖(x_1 − x_0) − v_θ(t x_1 + (1−t) x_0, t)‖², t ~ U(0, 1)."""
    x0 = torch.randn_like(x1)
    t = torch.rand(x1.shape[0], device=x1.device)
    xt = t[:, None] * x1 + (1 - t[:, None]) * x0
    return F.mse_loss(model(xt, t * 1000), x1 - x0)


# --- samplers (all take eps_fn(x, t_index) -> ε̂, so that CFG can wrap the network) -------------------------------


@torch.no_grad()
def ddpm_ancestral(eps_fn, sched: Schedule, xT, snap_at=(), generator=None):
    """Ho et al. 2020, Algorithm 2, all T steps: x_{t-1} = (x_t − β_t/√(1−ᾱ_t) ε̂)/√α_t + σ_t z with σ_t² = β_t
    (no noise at the last step). Returns (x_0, {t: x_t before the step at t} for t in snap_at)."""
    x, snaps = xT, {}
    for t in range(sched.T - 1, -1, -1):
        if t in snap_at:
            snaps[t] = x.clone()
        b, ab = sched.betas[t], sched.abar[t]
        eps = eps_fn(x, t)
        x = (x - b / (1 - ab).sqrt() * eps) / (1 - b).sqrt()
        if t > 0:
            x = x + b.sqrt() * torch.randn(x.shape, device=x.device, generator=generator)
    return x, snaps


def ddim_timesteps(T: int, steps: int) -> list[int]:
    """``steps`` timesteps evenly spaced from T−1 down to 0 (both ends included): the sub-sequence τ."""
    return sorted({int(round(v)) for v in np.linspace(0, T - 1, steps)}, reverse=True)


@torch.no_grad()
def ddim(eps_fn, sched: Schedule, xT, steps: int, eta: float = 0.0, clip_x0: float | None = None, snap_at=(),
         generator=None):
    """Song et al. 2021, eq. 12 on the sub-sequence τ: x_prev = √ᾱ_prev x̂_0 + √(1−ᾱ_prev−σ²) ε̂ + σ z with
    x̂_0 = (x − √(1−ᾱ) ε̂)/√ᾱ and σ = η √((1−ᾱ_prev)/(1−ᾱ)) √(1−ᾱ/ᾱ_prev). η = 0: deterministic (DDIM); η = 1:
    ancestral sampling with σ² = β̃ on the sub-sequence. ``clip_x0`` clamps x̂_0 (pixels in [−1, 1])."""
    x, snaps = xT, {}
    ts = ddim_timesteps(sched.T, steps)
    for i, t in enumerate(ts):
        if i in snap_at:
            snaps[i] = x.clone()
        ab = sched.abar[t]
        ab_prev = sched.abar[ts[i + 1]] if i + 1 < len(ts) else torch.ones((), device=x.device)
        eps = eps_fn(x, t)
        x0 = (x - (1 - ab).sqrt() * eps) / ab.sqrt()
        if clip_x0 is not None:
            x0 = x0.clamp(-clip_x0, clip_x0)
            eps = (x - ab.sqrt() * x0) / (1 - ab).sqrt()  # the ε consistent with the clipped x̂_0
        sigma = eta * ((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev)).clamp(min=0).sqrt()
        x = ab_prev.sqrt() * x0 + (1 - ab_prev - sigma**2).clamp(min=0).sqrt() * eps
        if eta > 0 and i + 1 < len(ts):
            x = x + sigma * torch.randn(x.shape, device=x.device, generator=generator)
    if len(ts) in snap_at:
        snaps[len(ts)] = x.clone()
    return x, snaps


@torch.no_grad()
def flow_euler(v_fn, x0, steps: int, snap_at=()):
    """Euler from t = 0 (noise) to t = 1 (data): x ← x + v_θ(x, t)/steps. Returns (x_1, {i: x at t = i/steps})."""
    x, snaps, dt = x0, {}, 1.0 / steps
    for i in range(steps):
        if i in snap_at:
            snaps[i] = x.clone()
        x = x + dt * v_fn(x, i * dt)
    if steps in snap_at:
        snaps[steps] = x.clone()
    return x, snaps


# --- distances between point clouds ---------------------------------------------------------------------------


def mmd2_rbf(X, Y, bandwidths=(0.1, 0.2, 0.5, 1.0)) -> float:
    """Unbiased MMD² (Gretton et al. 2012) with a sum of RBF kernels exp(−‖x−y‖²/(2h²)) over ``bandwidths``."""
    X, Y = X.double(), Y.double()
    n, m = len(X), len(Y)

    def k(A, B):
        d2 = torch.cdist(A, B).pow(2)
        return sum(torch.exp(-d2 / (2 * h * h)) for h in bandwidths)

    kxx, kyy, kxy = k(X, X), k(Y, Y), k(X, Y)
    return float((kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
                 + (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1)) - 2 * kxy.mean())


def sliced_wasserstein(X, Y, projections: int = 256, seed: int = 0) -> float:
    """Sliced 1-Wasserstein: mean over random unit directions θ of W1 between the 1-D projections (equal sizes)."""
    g = torch.Generator().manual_seed(seed)
    th = torch.randn(X.shape[1], projections, generator=g, dtype=torch.float64)
    th = (th / th.norm(dim=0, keepdim=True)).to(X.device)
    px, _ = (X.double() @ th).sort(0)
    py, _ = (Y.double() @ th).sort(0)
    return float((px - py).abs().mean())
