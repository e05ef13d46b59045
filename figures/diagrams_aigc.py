"""Computed diagrams of part 4 (diffusion and AIGC models): one ``name(axes, data)`` per figure in NAMES.md.

Same conventions as diagrams.py, whose drawing helpers are shared: theme colours only ("C0".."C7" and the rcParams
text and background colours), short labels for an image read about 380 px wide. Curves, point clouds and vector
fields are computed from the formulas the cards quote (DDPM, improved DDPM, CFG); the block diagrams follow the
papers' architecture figures.
"""

import matplotlib as mpl
import numpy as np
from matplotlib.colors import to_rgb
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from .diagrams import _arrow, _box, _ink, _label_on_line, _schematic, _tint


def _background():
    return mpl.rcParams["axes.facecolor"]


# --- noise schedules and the forward process -------------------------------------------------------------------

STEPS = 1000  # T of DDPM and improved DDPM


def _linear_alpha_bar(beta_1=1e-4, beta_T=0.02, steps=STEPS):
    """ᾱ_t = Π_{s≤t} (1 − β_s) for DDPM's linear β schedule, t = 1..T."""
    return np.cumprod(1 - np.linspace(beta_1, beta_T, steps))


def _scaled_linear_alpha_bar(beta_1=0.00085, beta_T=0.012, steps=STEPS):
    """Stable Diffusion's "scaled linear": √β linear in t, then squared."""
    return np.cumprod(1 - np.linspace(beta_1**0.5, beta_T**0.5, steps) ** 2)


def _cosine_alpha_bar(s=0.008, max_beta=0.999, steps=STEPS):
    """Nichol & Dhariwal 2021: ᾱ_t = f(t)/f(0), f(t) = cos²((t/T + s)/(1 + s) · π/2), β_t clipped to 0.999."""
    t = np.arange(steps + 1) / steps

    def f(u):
        return np.cos((u + s) / (1 + s) * np.pi / 2) ** 2

    alpha_bar = f(t) / f(0)
    betas = np.minimum(1 - alpha_bar[1:] / alpha_bar[:-1], max_beta)
    return np.cumprod(1 - betas)


def noise_schedules(axes, data):
    """Top: ᾱ_t of the linear, cosine and scaled-linear schedules (T = 1000). Bottom: log SNR = log ᾱ/(1-ᾱ)."""
    alpha_ax, snr_ax = axes
    fraction = np.arange(1, STEPS + 1) / STEPS
    schedules = {
        "linear (DDPM)": _linear_alpha_bar(),
        "cosine (iDDPM)": _cosine_alpha_bar(),
        "scaled linear (SD)": _scaled_linear_alpha_bar(),
    }
    for label, alpha_bar in schedules.items():
        alpha_ax.plot(fraction, alpha_bar, label=label)
        snr_ax.plot(fraction, np.log(alpha_bar / (1 - alpha_bar)), label=label)

    # Where the linear schedule has already destroyed 99 % of the signal power.
    nearly_noise = fraction[np.argmax(schedules["linear (DDPM)"] < 0.01)]
    alpha_ax.axvspan(nearly_noise, 1, color=_tint("C0", 0.16), linewidth=0, zorder=0)
    alpha_ax.text((nearly_noise + 1) / 2, 0.55, "linear:\n$\\bar\\alpha_t < 0.01$", ha="center", fontsize=10,
                  color="C0")
    alpha_ax.set(xlim=(0, 1), ylim=(0, 1.02), ylabel="$\\bar\\alpha_t$")
    alpha_ax.set_title("$x_t = \\sqrt{\\bar\\alpha_t}\\,x_0 + \\sqrt{1-\\bar\\alpha_t}\\,\\epsilon$, $T = 1000$",
                       fontsize=11.5)

    snr_ax.axhline(0, color=_tint(_ink(), 0.5), linewidth=1, linestyle="--")
    snr_ax.text(0.98, 0.5, "SNR = 1", fontsize=10, ha="right", va="bottom")
    snr_ax.legend(loc="lower left", fontsize=10)
    snr_ax.set(xlim=(0, 1), ylim=(-14, 11), xlabel="$t / T$",
               ylabel="$\\log \\mathrm{SNR} = \\log\\frac{\\bar\\alpha_t}{1-\\bar\\alpha_t}$")
    snr_ax.text(0.95, -13, "cosine: $\\bar\\alpha_T \\approx 0$", ha="right", va="bottom", fontsize=10, color="C1")


def _two_moons(n, noise, rng):
    """Two interleaving half circles (the sklearn layout), returned with each point's moon index."""
    upper = n // 2
    angle = rng.uniform(0, np.pi, n)
    moon = (np.arange(n) >= upper).astype(int)
    x = np.where(moon == 0, np.cos(angle), 1 - np.cos(angle))
    y = np.where(moon == 0, np.sin(angle), 0.5 - np.sin(angle))
    points = np.stack([x, y], axis=1) + noise * rng.standard_normal((n, 2))
    return points, moon


def forward_process(ax, data):
    """Samples of q(x_t | x_0) = N(√ᾱ_t x_0, (1 − ᾱ_t) I) for two-moons data under DDPM's linear schedule,
    at t = 0, T/4, T/2, T: four snapshots of the same points, laid out 2 × 2 in one frame."""
    rng = np.random.default_rng(0)
    x0, moon = _two_moons(600, 0.06, rng)
    x0 = (x0 - x0.mean(axis=0)) / x0.std()  # unit variance, the scale the schedule assumes
    noise = rng.standard_normal(x0.shape)
    alpha_bar = np.concatenate([[1.0], _linear_alpha_bar()])  # index t = 0..T
    steps = {"$t = 0$": 0, "$t = T/4$": STEPS // 4, "$t = T/2$": STEPS // 2, "$t = T$": STEPS}

    half = 3.0  # each snapshot shows [-half, half]^2
    step_x, step_y = 2 * half + 0.4, 2 * half + 1.3  # room for the titles between the rows
    _schematic(ax, xlim=(-half - 0.1, half + step_x + 0.1), ylim=(-half - step_y - 1.1, half + 1.0))
    ax.set_aspect("equal")
    colors = np.where(moon[:, None] == 0, np.array([to_rgb("C0")]), np.array([to_rgb("C1")]))
    for i, (label, t) in enumerate(steps.items()):
        dx, dy = (i % 2) * step_x, -(i // 2) * step_y
        xt = np.sqrt(alpha_bar[t]) * x0 + np.sqrt(1 - alpha_bar[t]) * noise
        inside = np.all(np.abs(xt) < half, axis=1)
        ax.add_patch(_frame(dx - half, dy - half, 2 * half))
        ax.scatter(xt[inside, 0] + dx, xt[inside, 1] + dy, s=5, c=colors[inside], linewidths=0)
        ax.text(dx, dy + half + 0.2, f"{label}:  $\\bar\\alpha_t = {_short(alpha_bar[t])}$", ha="center",
                va="bottom", fontsize=10.5)
    caption = ("$x_t = \\sqrt{\\bar\\alpha_t}\\,x_0 + \\sqrt{1-\\bar\\alpha_t}\\,\\epsilon$"
               "  (DDPM linear $\\beta_t$, same $\\epsilon$)")
    ax.text(step_x / 2, -half - step_y - 0.35, caption, ha="center", va="top", fontsize=10.5)


def _frame(x, y, size):
    return Rectangle((x, y), size, size, facecolor="none", edgecolor=_tint(_ink(), 0.35), linewidth=1)


def _short(value):
    """1.0, 0.52, 0.079, 4e-05 written briefly for a title."""
    if value == 1:
        return "1"
    if value >= 0.1:
        return f"{value:.2f}"
    if value >= 0.01:
        return f"{value:.3f}"
    mantissa, exponent = f"{value:.0e}".split("e")
    return f"{mantissa}\\times 10^{{{int(exponent)}}}"


# --- scores and guidance ---------------------------------------------------------------------------------------


def _mixture_score(points, means, covariances, weights):
    """Density and score ∇ log p of a Gaussian mixture at ``points`` (..., 2)."""
    densities, scores = [], []
    for mean, cov, weight in zip(means, covariances, weights):
        precision = np.linalg.inv(cov)
        d = points - mean
        exponent = -0.5 * np.einsum("...i,ij,...j->...", d, precision, d)
        densities.append(weight * np.exp(exponent) / (2 * np.pi * np.sqrt(np.linalg.det(cov))))
        scores.append(-d @ precision)  # ∇ log N(x; μ, Σ) = −Σ⁻¹ (x − μ)
    densities = np.stack(densities)  # (K, ...)
    density = densities.sum(axis=0)
    responsibility = densities / density  # posterior over components
    score = np.einsum("k...,k...i->...i", responsibility, np.stack(scores))
    return density, score


MIXTURE = dict(
    means=np.array([[-1.6, -0.8], [1.5, -1.0], [0.2, 1.6]]),
    covariances=np.array([[[0.45, 0.15], [0.15, 0.35]], [[0.3, 0.0], [0.0, 0.5]], [[0.6, -0.2], [-0.2, 0.3]]]),
    weights=np.array([0.4, 0.3, 0.3]),
)


def score_field(ax, data):
    """Arrows: the direction of ∇ₓ log p(x) of a three-component 2-D Gaussian mixture, over its density."""
    grid_x, grid_y = np.meshgrid(np.linspace(-3.5, 3.5, 300), np.linspace(-3, 3.3, 300))
    density, _ = _mixture_score(np.stack([grid_x, grid_y], axis=-1), **MIXTURE)
    levels = density.max() * np.array([0.02, 0.1, 0.3, 0.6, 1.01])
    ax.contourf(grid_x, grid_y, density, levels=levels,
                colors=[_tint("C0", a) for a in (0.1, 0.2, 0.32, 0.45)])
    ax.contour(grid_x, grid_y, density, levels=levels[:-1], colors=[_tint("C0", 0.6)], linewidths=0.8)

    arrow_x, arrow_y = np.meshgrid(np.linspace(-3.2, 3.2, 15), np.linspace(-2.7, 3.0, 13))
    _, score = _mixture_score(np.stack([arrow_x, arrow_y], axis=-1), **MIXTURE)
    norm = np.linalg.norm(score, axis=-1)
    direction = score / np.maximum(norm, 1e-12)[..., None]
    # Length grows with |∇ log p| but saturates, so that the arrows far out stay inside their cell.
    length = norm / (1 + norm)
    ax.quiver(arrow_x, arrow_y, direction[..., 0] * length, direction[..., 1] * length, color=_ink(),
              angles="xy", scale_units="xy", scale=2.2, width=0.006, headwidth=4, headlength=4.5)
    ax.plot(*MIXTURE["means"].T, "o", color="C3", markersize=6)
    ax.set(xlim=(-3.5, 3.5), ylim=(-3, 3.3), aspect="equal", xticks=[], yticks=[])
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_title("score $\\nabla_x \\log p(x)$ of a Gaussian mixture", fontsize=11.5)
    ax.set_xlabel("shading: density $p(x)$;  red: means\narrows point uphill, towards the modes", fontsize=10.5)


def cfg_geometry(ax, data):
    """CFG on a 2-D toy: two classes, the unconditional and the conditional score at a noisy point, and the
    guided score s_∅ + w (s_c − s_∅) for w = 0..3, all computed from the Gaussian mixture's exact scores."""
    means = np.array([[-1.2, 0.5], [1.2, 0.5]])  # class c (left) and the other class, equally likely
    covariances = np.array([np.eye(2), np.eye(2)])  # broad: the classes as seen at a fairly noisy t
    point = np.array([0.6, -1.3])
    _, s_uncond = _mixture_score(point, means, covariances, np.array([0.5, 0.5]))
    _, s_cond = _mixture_score(point, means[:1], covariances[:1], np.ones(1))
    guidance = 3
    scale = 0.7  # one length unit for every arrow: the geometry is exact, only the units are shrunk

    def tip(w):
        return point + scale * (s_uncond + w * (s_cond - s_uncond))

    grid_x, grid_y = np.meshgrid(np.linspace(-3.9, 3.1, 300), np.linspace(-1.5, 2.25, 200))
    for mean, cov, color, label in zip(means, covariances, ("C0", "C7"), ("class $c$", "other class")):
        d = np.stack([grid_x, grid_y], axis=-1) - mean
        density = np.exp(-0.5 * np.einsum("...i,ij,...j->...", d, np.linalg.inv(cov), d))
        ax.contourf(grid_x, grid_y, density, levels=[0.6, 1.01], colors=[_tint(color, 0.16)])
        ax.contour(grid_x, grid_y, density, levels=[0.25, 0.6], colors=[_tint(color, 0.7)], linewidths=1)
        ax.text(mean[0], mean[1] + 0.3, label, ha="center", va="center", color=color, fontsize=10.5)

    # Every guided score lies on one line through the two predictions: w = 0 is s(x_t), w = 1 is s(x_t | c).
    line = np.stack([tip(-0.3), tip(guidance + 0.3)])
    ax.plot(*line.T, "--", color=_tint(_ink(), 0.55), linewidth=1.2, zorder=1)
    for w in range(guidance + 1):
        ax.plot(*tip(w), "o", color=_tint(_ink(), 0.55), markersize=4, zorder=2)
        ax.annotate(f"$w = {w}$", tip(w), xytext=(0, 7), textcoords="offset points", ha="center", fontsize=10)
    arrows = {
        "$s(x_t)$: unconditional, $w = 0$": (tip(0), "C7"),
        "$s(x_t \\mid c)$: conditional, $w = 1$": (tip(1), "C0"),
        f"guided, $w = {guidance}$": (tip(guidance), "C3"),
    }
    for end, color in arrows.values():
        _arrow(ax, point, end, color=color, linewidth=2.4)
    ax.plot(*point, "o", color=_ink(), markersize=6, zorder=3)
    ax.annotate("$x_t$", point, xytext=(7, -4), textcoords="offset points", va="top")
    ax.legend(handles=[Line2D([], [], color=color, linewidth=2.4, label=label)
                       for label, (_, color) in arrows.items()],
              loc="lower left", fontsize=10, frameon=False, handlelength=1.4, borderaxespad=0)
    ax.set(xlim=(-3.9, 3.1), ylim=(-3.3, 2.25), aspect="equal", xticks=[], yticks=[])
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_title("$\\tilde s = s(x_t) + w\\,[\\,s(x_t\\mid c) - s(x_t)\\,]$", fontsize=12)
    ax.set_xlabel("$w > 1$ overshoots, away from the other class\n"
                  "(for $\\epsilon$ the same, since $\\epsilon = -\\sigma_t\\, s$)", fontsize=10.5)


# --- architectures ---------------------------------------------------------------------------------------------


def latent_diffusion(ax, data):
    """Stable Diffusion v1: VAE encoder → 4×64×64 latent → UNet with cross-attention to the CLIP text features,
    iterated over the sampler's steps → VAE decoder. Text-to-image sampling starts from noise, not the encoder."""
    _schematic(ax, xlim=(0, 1), ylim=(0, 1))
    left, right = 0.29, 0.8
    left_width, right_width, height = 0.44, 0.36, 0.075
    y_image, y_encoder, y_latent, y_unet, y_latent0, y_decoder = 0.94, 0.82, 0.68, 0.47, 0.27, 0.15
    unet_height = 0.15

    def box(x, y, text, color, width, h=height):
        _box(ax, x, y, text, color=color, width=width, height=h, fontsize=10.5)

    box(left, y_image, "image $x$: 3×512×512", "C7", left_width)
    box(left, y_encoder, "VAE encoder $\\mathcal{E}$ (÷8)", "C2", left_width)
    box(left, y_latent, "latent $z_t$: 4×64×64", "C4", left_width)
    box(left, y_unet, "UNet $\\epsilon_\\theta(z_t, t, c)$\nResBlocks, self-attn,\ncross-attn to $c$", "C0",
        left_width, unet_height)
    box(left, y_latent0, "$z_0$: 4×64×64", "C4", left_width)
    box(left, y_decoder, "VAE decoder $\\mathcal{D}$ (×8)", "C2", left_width)
    ax.text(left, 0.045, "image 3×512×512", ha="center", va="center", fontsize=10.5)
    box(right, y_encoder, "$z_T \\sim \\mathcal{N}(0, I)$", "C7", right_width)
    box(right, 0.62, "prompt → CLIP\ntext encoder", "C1", right_width, 0.1)
    box(right, y_unet, "$c$: 77×768", "C1", right_width)

    gap = height / 2
    _arrow(ax, (left, y_image - gap), (left, y_encoder + gap))
    _arrow(ax, (left, y_encoder - gap), (left, y_latent + gap))
    ax.text(left + 0.02, (y_encoder + y_latent) / 2, "train: + noise", ha="left", va="center", fontsize=10)
    _arrow(ax, (right, y_encoder - gap), (left + left_width / 2, y_latent), color="C7", linewidth=1.8,
           connectionstyle="angle,angleA=-90,angleB=180,rad=8")
    ax.text(right + 0.02, (y_encoder + y_latent) / 2 + 0.01, "sample", ha="left", va="center", fontsize=10)
    _arrow(ax, (left, y_latent - gap), (left, y_unet + unet_height / 2))
    _arrow(ax, (right, 0.62 - 0.05), (right, y_unet + gap))
    _arrow(ax, (right - right_width / 2, y_unet), (left + left_width / 2, y_unet), color="C1", linewidth=2)
    ax.text((right - right_width / 2 + left + left_width / 2) / 2, y_unet + 0.012, "$K, V$", ha="center",
            va="bottom", fontsize=10.5, color="C1")
    _arrow(ax, (left, y_unet - unet_height / 2), (left, y_latent0 + gap))
    _arrow(ax, (left, y_latent0 - gap), (left, y_decoder + gap))
    _arrow(ax, (left, y_decoder - gap), (left, 0.07))
    # The sampler's loop: each UNet prediction updates z_t, T times.
    _arrow(ax, (left - left_width / 2, y_unet), (left - left_width / 2, y_latent), color="C0", linewidth=2,
           connectionstyle="arc,angleA=180,angleB=180,armA=18,armB=18,rad=6")
    ax.text(left - 0.03, (y_unet + unet_height / 2 + y_latent - gap) / 2, "×$T$ steps", ha="right", va="center",
            fontsize=10, color="C0")


def _step(ax, start, end, color=None, linewidth=1.5):
    """A short arrow between two stacked boxes (a smaller head than _arrow's)."""
    ax.annotate("", xy=end, xytext=start, arrowprops=dict(arrowstyle="-|>", color=color or _ink(),
                linewidth=linewidth, shrinkA=0, shrinkB=0, mutation_scale=10))


def _plus(ax, x, y):
    """A summation node: a circled plus sign."""
    ax.text(x, y, "+", ha="center", va="center", fontsize=14, fontweight="bold",
            bbox=dict(boxstyle="circle,pad=0.15", facecolor=_background(), edgecolor=_ink()))


def dit_adaln_zero(ax, data):
    """A DiT block with adaLN-Zero: the conditioning MLP regresses γ, β, α for the attention and the FFN branch;
    its last layer starts at zero, so α = 0 and the block starts as the identity."""
    _schematic(ax, xlim=(0, 1), ylim=(0, 1))
    x, width, height, pitch = 0.36, 0.5, 0.046, 0.075
    rows = [  # bottom to top: (label, colour, modulation it receives)
        ("LayerNorm", "C7", None),
        ("scale, shift", "C4", "$\\gamma_1, \\beta_1$"),
        ("multi-head self-attn", "C0", None),
        ("scale", "C4", "$\\alpha_1$"),
        ("LayerNorm", "C7", None),
        ("scale, shift", "C4", "$\\gamma_2, \\beta_2$"),
        ("pointwise FFN", "C0", None),
        ("scale", "C4", "$\\alpha_2$"),
    ]
    plus_y = (0.5, 0.895)
    ys = [0.19 + pitch * i for i in range(4)] + [plus_y[0] + 0.085 + pitch * i for i in range(4)]
    ax.text(x, 0.012, "input tokens $x$", ha="center", va="bottom", fontsize=10.5)
    ax.text(x, 0.995, "output tokens", ha="center", va="top", fontsize=10.5)
    _step(ax, (x, 0.055), (x, ys[0] - height / 2))
    for i, (label, color, _) in enumerate(rows):
        _box(ax, x, ys[i], label, color=color, width=width, height=height, fontsize=10)
        if i not in (3, 7):
            _step(ax, (x, ys[i] + height / 2), (x, ys[i + 1] - height / 2))
    radius = 0.022
    for branch_top, plus, branch_start in ((ys[3], plus_y[0], 0.1), (ys[7], plus_y[1], plus_y[0] + 0.042)):
        _step(ax, (x, branch_top + height / 2), (x, plus - radius))
        _plus(ax, x, plus)
        # The residual path skips the branch and joins at the sum.
        skip_x = x - width / 2 - 0.06
        ax.plot([x, skip_x, skip_x], [branch_start, branch_start, plus], color=_ink(), linewidth=1.5)
        _step(ax, (skip_x, plus), (x - radius * 1.1, plus))
    _step(ax, (x, plus_y[0] + radius), (x, ys[4] - height / 2))
    _step(ax, (x, plus_y[1] + radius), (x, 0.955))

    mlp_x, mlp_width = 0.845, 0.29
    _box(ax, mlp_x, 0.045, "$c = e(t) + e(y)$", color="C1", width=mlp_width, height=0.05, fontsize=10)
    _box(ax, mlp_x, 0.15, "MLP: SiLU,\nLinear\n(zero init)", color="C1", width=mlp_width, height=0.1, fontsize=10)
    _step(ax, (mlp_x, 0.07), (mlp_x, 0.1))
    ax.plot([mlp_x, mlp_x], [0.2, ys[7]], color="C1", linewidth=2)
    for i, (_, _, modulation) in enumerate(rows):
        if modulation is not None:
            _step(ax, (mlp_x, ys[i]), (x + width / 2, ys[i]), color="C1", linewidth=1.6)
            _label_on_line(ax, (mlp_x + x + width / 2) / 2 + 0.02, ys[i], modulation, fontsize=10.5, color="C1")
    ax.text(0.99, 0.93, "zero init: $\\alpha_1 = \\alpha_2 = 0$\n⇒ block = identity", ha="right", va="center",
            fontsize=10)


def controlnet(ax, data):
    """ControlNet around one block: the locked SD block, its trainable copy fed x + Z₁(c), and zero convolutions
    (1×1, weights and bias 0) on the way in and out, so that at initialisation y_c = F(x; Θ)."""
    _schematic(ax, xlim=(0, 1), ylim=(0, 1))
    locked_x, copy_x = 0.25, 0.72
    y_z1, y_in_plus, y_copy, y_z2, y_out_plus = 0.25, 0.38, 0.52, 0.7, 0.87
    locked = dict(y=0.47, h=0.19)
    z_height, copy_height, radius = 0.11, 0.13, 0.025
    ax.text(locked_x, 0.035, "input $x$", ha="center", va="center", fontsize=10.5)
    ax.text(copy_x, 0.06, "condition $c$\n(encoded edge /\ndepth / pose map)", ha="center", va="center",
            fontsize=10)
    _box(ax, locked_x, locked["y"], "SD block\n$F(\\cdot\\,; \\Theta)$\nlocked (frozen)", color="C7", width=0.4,
         height=locked["h"], fontsize=10.5)
    _box(ax, copy_x, y_z1, "zero conv $Z_1$\n1×1, $W = b = 0$", color="C3", width=0.44, height=z_height,
         fontsize=10.5)
    _box(ax, copy_x, y_copy, "trainable copy\n$F(\\cdot\\,; \\Theta_c)$", color="C0", width=0.44,
         height=copy_height, fontsize=10.5)
    _box(ax, copy_x, y_z2, "zero conv $Z_2$\n1×1, $W = b = 0$", color="C3", width=0.44, height=z_height,
         fontsize=10.5)
    _plus(ax, copy_x, y_in_plus)
    _plus(ax, locked_x, y_out_plus)

    # x goes up into the locked block and, branching off, into the copy's input sum.
    _arrow(ax, (locked_x, 0.065), (locked_x, locked["y"] - locked["h"] / 2))
    branch_x, branch_y = 0.475, 0.13
    ax.plot([locked_x, branch_x, branch_x], [branch_y, branch_y, y_in_plus], color=_ink(), linewidth=1.5)
    _arrow(ax, (branch_x, y_in_plus), (copy_x - radius * 1.2, y_in_plus))
    _arrow(ax, (copy_x, 0.125), (copy_x, y_z1 - z_height / 2))
    _arrow(ax, (copy_x, y_z1 + z_height / 2), (copy_x, y_in_plus - radius))
    _arrow(ax, (copy_x, y_in_plus + radius), (copy_x, y_copy - copy_height / 2))
    _arrow(ax, (copy_x, y_copy + copy_height / 2), (copy_x, y_z2 - z_height / 2))
    _arrow(ax, (copy_x, y_z2 + z_height / 2), (locked_x + radius * 1.2, y_out_plus), color="C3", linewidth=2,
           connectionstyle="angle,angleA=90,angleB=0,rad=8")
    _arrow(ax, (locked_x, locked["y"] + locked["h"] / 2), (locked_x, y_out_plus - radius))
    _arrow(ax, (locked_x, y_out_plus + radius), (locked_x, 0.955))
    ax.text(locked_x + 0.03, 0.975, "$y_c$", ha="left", va="center", fontsize=11)
    ax.text(0.99, 0.955, "at init $Z_2(\\cdot) = 0$\n⇒ $y_c = F(x; \\Theta)$", ha="right", va="center", fontsize=10)
