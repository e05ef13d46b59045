"""Computed diagrams (no measured data): one ``name(axes, data)`` per figure in NAMES.md.

Each function draws on the Axes it is given (matplotlib gallery style) and uses only theme colours: "C0".."C7" and
the rcParams text and background colours, which ankideck.drawing sets for the light and the dark variant. Labels stay
short because the image is read about 380 px wide on a phone.
"""

import math

import matplotlib as mpl
import numpy as np
from matplotlib.colors import ListedColormap, to_rgb
from matplotlib.patches import FancyBboxPatch, Patch

# --- shared drawing idioms -------------------------------------------------------------------------------------


def _ink():
    return mpl.rcParams["text.color"]


def _tint(color, amount):
    """``color`` mixed into the background: an opaque pale (light theme) or dim (dark theme) shade."""
    background = np.array(to_rgb(mpl.rcParams["axes.facecolor"]))
    return tuple(amount * np.array(to_rgb(color)) + (1 - amount) * background)


def _schematic(ax, xlim=(0, 1), ylim=(0, 1)):
    """Axes for a drawing in data coordinates, without ticks, spines or grid."""
    ax.set(xlim=xlim, ylim=ylim)
    ax.set_axis_off()


def _box(ax, x, y, text, color="C0", width=0.5, height=0.12, fontsize=None):
    """A rounded box centred at (x, y) with centred text; returns (patch, text)."""
    patch = FancyBboxPatch(
        (x - width / 2, y - height / 2),
        width,
        height,
        boxstyle="round,pad=0,rounding_size=0.02",
        facecolor=_tint(color, 0.22),
        edgecolor=color,
        linewidth=1.5,
    )
    ax.add_patch(patch)
    label = ax.text(x, y, text, ha="center", va="center", fontsize=fontsize)
    return patch, label


def _arrow(ax, start, end, color=None, text=None, linewidth=1.5, connectionstyle="arc3", **text_kw):
    """An arrow from ``start`` to ``end`` (data coordinates), optionally labelled at its start side."""
    return ax.annotate(
        text or "",
        xy=end,
        xytext=start,
        arrowprops=dict(
            arrowstyle="-|>",
            color=color or _ink(),
            linewidth=linewidth,
            shrinkA=0,
            shrinkB=0,
            mutation_scale=14,
            connectionstyle=connectionstyle,
        ),
        **text_kw,
    )


def _label_on_line(ax, x, y, text, **kw):
    """Text centred on a line, on a background-coloured pad so that the line does not cross it."""
    pad = dict(boxstyle="round,pad=0.15", facecolor=mpl.rcParams["axes.facecolor"], edgecolor="none")
    return ax.text(x, y, text, ha="center", va="center", bbox=pad, **kw)


def _binary_matrix(ax, allowed, title, caption, on_color="C0", off_amount=0.13):
    """A boolean matrix as coloured cells: ``on_color`` where True, a faint neutral shade where False."""
    cmap = ListedColormap([_tint(_ink(), off_amount), to_rgb(on_color)])
    rows, cols = allowed.shape
    mesh = ax.pcolormesh(
        allowed.astype(float),
        cmap=cmap,
        vmin=0,
        vmax=1,
        edgecolors=mpl.rcParams["axes.facecolor"],
        linewidth=1.5,
    )
    ax.set(xlim=(0, cols), ylim=(rows, 0), aspect="equal", xticks=[], yticks=[])
    ax.set_title(title, fontsize=11.5)
    ax.set_xlabel(caption, fontsize=10.5)
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    return mesh


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _softmax(logits, axis=-1):
    shifted = np.exp(logits - logits.max(axis=axis, keepdims=True))
    return shifted / shifted.sum(axis=axis, keepdims=True)


# --- activations and losses ------------------------------------------------------------------------------------


def activations(axes, data):
    """Five activations (top) and their derivatives (bottom); sigmoid's maximum slope 0.25 at x = 0."""
    values, slopes = axes
    x = np.linspace(-4, 4, 801)
    sigmoid = _sigmoid(x)
    normal_cdf = 0.5 * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))
    normal_pdf = np.exp(-(x**2) / 2) / math.sqrt(2 * math.pi)
    curves = {
        "sigmoid": (sigmoid, sigmoid * (1 - sigmoid)),
        "tanh": (np.tanh(x), 1 - np.tanh(x) ** 2),
        "ReLU": (np.maximum(x, 0), (x > 0).astype(float)),
        "GELU": (x * normal_cdf, normal_cdf + x * normal_pdf),  # exact x·Φ(x), not the tanh approximation
        "SiLU": (x * sigmoid, sigmoid * (1 + x * (1 - sigmoid))),
    }
    for label, (value, slope) in curves.items():
        values.plot(x, value, label=label)
        slopes.plot(x, slope, label=label)
    values.set(ylim=(-1.3, 3.2), xlim=(-4, 4), ylabel="$f(x)$")
    values.legend(loc="upper left")
    slopes.set(ylim=(-0.2, 1.25), xlim=(-4, 4), xlabel="$x$", ylabel="$f'(x)$")
    slopes.plot(0, 0.25, "o", color="C0", markersize=7, zorder=3)
    slopes.annotate(
        "$\\sigma'(0) = 0.25$\nsigmoid's max",
        xy=(0, 0.25),
        xytext=(1.3, 0.3),
        arrowprops=dict(arrowstyle="-|>", color=_ink()),
    )


def ce_vs_mse(axes, data):
    """Cross-entropy vs squared error on a sigmoid output with target 1: loss and gradient against the logit."""
    loss_ax, grad_ax = axes
    z = np.linspace(-6, 6, 601)
    p = _sigmoid(z)
    cross_entropy = np.logaddexp(0, -z)  # -log σ(z), computed without overflow
    squared_error = 0.5 * (1 - p) ** 2
    loss_ax.plot(z, cross_entropy, label="CE  $-\\log\\sigma(z)$")
    loss_ax.plot(z, squared_error, label="MSE  $\\frac{1}{2}(1-\\sigma(z))^2$")
    loss_ax.set(ylabel="loss", xlim=(-6, 6), ylim=(0, 6.3), title="target $y = 1$, output $\\sigma(z)$")
    loss_ax.legend(loc="upper right")

    grad_ax.plot(z, np.abs(p - 1), label="CE")  # ∂CE/∂z = σ(z) − 1
    grad_ax.plot(z, np.abs((p - 1) * p * (1 - p)), label="MSE")  # ∂MSE/∂z = (σ − 1)·σ(1 − σ)
    grad_ax.set(xlabel="logit $z$", ylabel="$|\\partial L / \\partial z|$", xlim=(-6, 6), ylim=(0, 1.1))
    grad_ax.annotate(
        "wrong and saturated:\nMSE gradient → 0",
        xy=(-4.5, 0.01),
        xytext=(-3.2, 0.45),
        arrowprops=dict(arrowstyle="-|>", color=_ink()),
    )


def softmax_temperature(ax, data):
    """softmax(z / T) of one logit vector at several temperatures: higher T gives softer targets."""
    logits = np.array([3.0, 2.0, 1.0, 0.5, -1.0])
    temperatures = (0.5, 1, 2, 4)
    bar_width = 0.8 / len(temperatures)
    classes = np.arange(len(logits))
    for i, temperature in enumerate(temperatures):
        offset = (i - (len(temperatures) - 1) / 2) * bar_width
        ax.bar(classes + offset, _softmax(logits / temperature), bar_width, label=f"$T = {temperature}$")
    ax.set_xticks(classes, [f"{z:g}" for z in logits])
    ax.set(xlabel="logit $z_i$", ylabel="probability", ylim=(0, 1), title="$\\mathrm{softmax}(z / T)$")
    ax.grid(axis="x", visible=False)
    ax.legend(loc="upper right")


def l1_l2_geometry(axes, data):
    """Top: loss contours meet the L1 diamond at a corner (sparse) and the L2 circle off the axes.
    Bottom: the 1-D solutions, soft-thresholding (L1) and proportional shrinkage (L2)."""
    w_unregularised = np.array([0.35, 1.75])
    curvature = np.array([[1.0, 0.4], [0.4, 1.5]])

    def loss(w):  # quadratic loss around the unregularised optimum; w has shape (..., 2)
        d = w - w_unregularised
        return np.einsum("...i,ij,...j->...", d, curvature, d)

    angle = np.linspace(0, 2 * np.pi, 7201)  # contains the diamond's corners exactly
    circle = np.stack([np.cos(angle), np.sin(angle)], axis=-1)
    balls = {
        "L1: $|w_1| + |w_2| \\leq t$": circle / np.abs(circle).sum(axis=-1, keepdims=True),
        "L2: $\\|w\\|_2 \\leq t$": circle,
    }
    grid_w1, grid_w2 = np.meshgrid(np.linspace(-1.6, 2.2, 300), np.linspace(-1.4, 3.4, 300))
    grid_loss = loss(np.stack([grid_w1, grid_w2], axis=-1))
    for ax, (title, boundary) in zip(axes[0], balls.items()):
        # The optimum lies outside the ball, so the constrained solution is on its boundary.
        solution = boundary[np.argmin(loss(boundary))]
        tangent_level = loss(solution)
        ax.fill(*boundary.T, color=_tint("C0", 0.3), edgecolor="C0", linewidth=1.5)
        ax.contour(grid_w1, grid_w2, grid_loss, levels=tangent_level * np.array([0.15, 0.5]), colors="C1",
                   linewidths=1.0, alpha=0.7)
        ax.contour(grid_w1, grid_w2, grid_loss, levels=[tangent_level], colors="C1", linewidths=2)
        ax.axhline(0, color=_ink(), linewidth=0.8)
        ax.axvline(0, color=_ink(), linewidth=0.8)
        ax.plot(*w_unregularised, "+", color="C1", markersize=10, markeredgewidth=2)
        _label_on_line(ax, *(w_unregularised + [0.45, 0.3]), "$\\hat w$", color="C1")
        ax.plot(*solution, "o", color=_ink(), markersize=6, zorder=3)
        ax.annotate("$w^*$", solution, xytext=(6, -14), textcoords="offset points")
        ax.set(aspect="equal", xlim=(-1.4, 1.9), ylim=(-1.3, 3.0), xticks=[], yticks=[])
        ax.set_title(title, fontsize=11)
        ax.grid(False)
        for spine in ax.spines.values():
            spine.set_visible(False)
        ax.set_xlabel("$w_1$", labelpad=2)
        ax.set_ylabel("$w_2$", labelpad=2)

    estimate = np.linspace(-3, 3, 601)  # unregularised coefficient (orthonormal design)
    strength = 1.0
    solutions = {
        "soft-threshold": np.sign(estimate) * np.maximum(np.abs(estimate) - strength, 0),
        "shrinkage": estimate / (1 + strength),
    }
    for ax, (title, solved) in zip(axes[1], solutions.items()):
        ax.plot(estimate, estimate, "--", color=_tint(_ink(), 0.5), linewidth=1.2)
        ax.plot(estimate, solved, color="C0")
        ax.set(xlim=(-3, 3), ylim=(-3, 3), aspect="equal", xlabel="$\\hat w$", xticks=[-2, 0, 2], yticks=[-2, 0, 2])
        ax.set_title(title, fontsize=11)
    axes[1, 0].set_ylabel("$w^*$")
    axes[1, 0].axvspan(-strength, strength, color=_tint("C1", 0.25), linewidth=0, zorder=0)
    axes[1, 0].text(0, -2.4, "exactly 0", ha="center", fontsize=10)


def focal_loss(ax, data):
    """Focal loss -(1 - p_t)^γ log p_t: larger γ silences the easy, well-classified examples."""
    p = np.linspace(0.001, 1, 1000)
    for gamma in (0, 0.5, 1, 2, 5):
        label = "$\\gamma = 0$ (CE)" if gamma == 0 else f"$\\gamma = {gamma}$"
        ax.plot(p, -((1 - p) ** gamma) * np.log(p), label=label)
    ax.axvspan(0.6, 1, color=_tint("C2", 0.18), linewidth=0, zorder=0)
    ax.text(0.8, 1.0, "easy examples:\ndown-weighted", ha="center", fontsize=10.5)
    ax.set(xlim=(0, 1), ylim=(0, 5), xlabel="probability of the true class $p_t$", ylabel="loss")
    ax.set_title("$\\mathrm{FL} = -(1-p_t)^{\\gamma}\\,\\log p_t$")
    ax.legend(loc="upper right")


# --- training dynamics -----------------------------------------------------------------------------------------


def lr_schedules(axes, data):
    """Top: step, cosine and BERT's warmup + linear decay, relative to the peak rate.
    Middle: LLM pre-training: warmup + cosine to 10 % of the peak (GPT-3, LLaMA) and WSD (MiniCPM: warmup, a
    constant stable phase, exponential decay in the last 10 %), which can also decay from any stable checkpoint.
    Bottom: the Transformer's inverse square root schedule with warmup."""
    relative_ax, llm_ax, transformer_ax = axes
    total, warmup = 10_000, 1_000
    step = np.arange(total + 1)
    schedules = {
        "step (×0.1)": 0.1 ** ((step >= total * 0.5).astype(int) + (step >= total * 0.75)),
        "cosine": 0.5 * (1 + np.cos(np.pi * step / total)),
        "linear (BERT)": np.where(step < warmup, step / warmup, (total - step) / (total - warmup)),
    }
    for label, rate in schedules.items():
        relative_ax.plot(step, rate, label=label)
    relative_ax.set(xlim=(0, total), ylim=(0, 1.05), ylabel="lr / peak")
    relative_ax.legend(loc="upper right")
    relative_ax.xaxis.set_major_formatter(lambda value, _: f"{value / 1000:g}k")

    def warmup_cosine(s, floor=0.1):
        progress = np.clip((s - warmup) / (total - warmup), 0, 1)
        return np.where(s < warmup, s / warmup, floor + (1 - floor) * 0.5 * (1 + np.cos(np.pi * progress)))

    def wsd(s, end, decay_fraction=0.1, halvings=5):
        decay_start = end - decay_fraction * end  # stable until here, then 0.5^((s - T_s) / half-life)
        half_life = (end - decay_start) / halvings
        decayed = 0.5 ** ((s - decay_start) / half_life)
        return np.where(s < warmup, s / warmup, np.where(s < decay_start, 1.0, decayed))

    llm_ax.plot(step, warmup_cosine(step), color="C4", label="warmup + cosine to 10%")
    llm_ax.plot(step, wsd(step, total), color="C5", label="WSD: stable, decay last 10%")
    early = step[step <= total // 2]
    branch = early >= 0.9 * (total // 2)
    llm_ax.plot(early[branch], wsd(early, total // 2)[branch], "--", color="C5", linewidth=1.5)
    llm_ax.text(2450, 0.26, "decay from any\nstable checkpoint", fontsize=10.5, ha="center", va="center")
    _arrow(llm_ax, (4350, 0.3), (4590, 0.53))
    llm_ax.set(xlim=(0, total), ylim=(0, 1.6), yticks=[0, 0.5, 1], ylabel="lr / peak")
    llm_ax.set_title("LLM pre-training", fontsize=11.5)
    llm_ax.legend(loc="upper center", fontsize=10)
    llm_ax.xaxis.set_major_formatter(lambda value, _: f"{value / 1000:g}k")

    d_model, warmup_steps = 512, 4000
    step = np.arange(1, 40_001)
    rate = d_model**-0.5 * np.minimum(step**-0.5, step * warmup_steps**-1.5)
    transformer_ax.plot(step, rate * 1e3, color="C3")
    peak = d_model**-0.5 * warmup_steps**-0.5
    transformer_ax.plot(warmup_steps, peak * 1e3, "o", color="C3")
    transformer_ax.annotate(
        "peak at\nstep = warmup", (warmup_steps, peak * 1e3), xytext=(9000, 0.55), textcoords="data",
        arrowprops=dict(arrowstyle="-|>", color=_ink()),
    )
    transformer_ax.text(39_000, 0.45, f"$d = {d_model}$, $w = {warmup_steps}$", ha="right", fontsize=10.5)
    transformer_ax.text(26_000, 0.3, "$\\propto 1/\\sqrt{s}$", ha="center")
    transformer_ax.set(xlim=(0, 40_000), ylim=(0, 0.8), xlabel="step $s$", ylabel="lr ($10^{-3}$)")
    transformer_ax.set_title("Transformer: $d^{-0.5}\\,\\min(s^{-0.5},\\ s\\,w^{-1.5})$", fontsize=11.5)
    transformer_ax.xaxis.set_major_formatter(lambda value, _: f"{value / 1000:g}k")


def init_spread(axes, data):
    """Per-layer activation std through 10 tanh / ReLU layers under four weight initialisations (NumPy, seeded)."""
    width, depth, batch = 256, 10, 256
    inputs = np.random.default_rng(0).standard_normal((batch, width))
    weight_std = {
        "$N(0, 1)$": 1.0,
        "$N(0, 0.01^2)$": 0.01,
        "Xavier": math.sqrt(2 / (width + width)),
        "Kaiming": math.sqrt(2 / width),
    }
    nonlinearities = {"tanh": np.tanh, "ReLU": lambda h: np.maximum(h, 0)}
    for ax, (act_name, act) in zip(axes, nonlinearities.items()):
        for label, std in weight_std.items():
            # Same random draws for every init, scaled: only the scale differs between the curves.
            weights = np.random.default_rng(1)
            h, stds = inputs, [inputs.std()]
            for _ in range(depth):
                h = act(h @ (weights.standard_normal((width, width)) * std))
                stds.append(h.std())
            ax.semilogy(range(depth + 1), stds, marker="o", markersize=4, label=label)
        ax.set(xlim=(0, depth), ylabel="activation std", xticks=range(0, depth + 1, 2))
        ax.set_title(act_name, fontsize=11.5)
        ax.yaxis.set_major_locator(mpl.ticker.LogLocator(numticks=5))
        ax.yaxis.set_minor_locator(mpl.ticker.NullLocator())
    axes[0].set_ylim(1e-9, 10)
    axes[1].set_ylim(1e-11, 1e12)
    axes[1].set_xlabel("layer")
    axes[0].legend(loc="lower left", ncols=2, fontsize=10)


def norm_axes(axes, data):
    """Which entries of an (N, C, H, W) batch one normalisation statistic covers, for four normalisations."""
    samples, channels, channels_per_group = 4, 6, 3
    n, c = np.mgrid[0:samples, 0:channels]
    panels = {
        "BatchNorm": (c == 1, "over N, H, W"),
        "LayerNorm": (n == 1, "over C, H, W"),
        "InstanceNorm": ((n == 1) & (c == 1), "over H, W"),
        "GroupNorm": ((n == 1) & (c < channels_per_group), "over C/G, H, W"),
    }
    for ax, (title, (shared, caption)) in zip(axes.flat, panels.items()):
        _binary_matrix(ax, shared, title, caption)
    ax.figure.supxlabel("rows: samples N, columns: channels C\ncell: one H×W map; blue: one mean, var", fontsize=10.5)


# --- attention and sequence models -----------------------------------------------------------------------------


def attention_masks(axes, data):
    """Which keys (columns) each query (row) may attend to, for five attention patterns."""
    tokens, prefix, padding = 6, 3, 2
    query, key = np.mgrid[0:tokens, 0:tokens]
    masks = {
        "bidirectional (BERT)": (np.ones((tokens, tokens), bool), "sees all tokens"),
        "causal (GPT)": (key <= query, "sees the past"),
        "prefix-LM": ((key < prefix) | (key <= query), f"first {prefix} bidirectional"),
        "cross (enc-dec)": (np.ones((4, tokens), bool), "decoder × encoder"),
        "padding (BERT)": (np.broadcast_to(key < tokens - padding, (tokens, tokens)), "last 2 are [PAD]"),
    }
    for ax, (title, (allowed, caption)) in zip(axes.flat, masks.items()):
        _binary_matrix(ax, allowed, title, caption)
    key_ax = axes.flat[-1]
    key_ax.set_axis_off()
    key_ax.legend(
        handles=[Patch(color="C0", label="allowed"), Patch(color=_tint(_ink(), 0.13), label="blocked ($-\\infty$)")],
        loc="center",
        title="row = query\ncolumn = key",
        frameon=False,
    )


def mha_gqa_mqa(axes, data):
    """Top: which query heads share a K/V head. Bottom: KV-cache size against context length."""
    sharing_ax, cache_ax = axes
    query_heads = 8
    kv_heads = {"MHA": 8, "GQA": 2, "MQA": 1}
    _schematic(sharing_ax, xlim=(-2.3, query_heads - 0.4), ylim=(-0.5, 3 * len(kv_heads) - 0.7))
    for row, (label, n_kv) in enumerate(kv_heads.items()):
        top = 3 * (len(kv_heads) - 1 - row) + 1.2
        group = query_heads // n_kv
        query_x = np.arange(query_heads)
        kv_x = np.arange(n_kv) * group + (group - 1) / 2  # each K/V head sits under the middle of its group
        for q in query_x:
            kv = kv_x[q // group]
            sharing_ax.plot([q, kv], [top, top - 1.2], color=_tint(_ink(), 0.45), linewidth=1, zorder=1)
        sharing_ax.scatter(query_x, np.full(query_heads, top), marker="s", s=110, color="C0", zorder=2)
        sharing_ax.scatter(kv_x, np.full(n_kv, top - 1.2), marker="s", s=110, color="C1", zorder=2)
        sharing_ax.text(-0.7, top - 0.6, label, ha="right", va="center")
    sharing_ax.legend(
        handles=[Patch(color="C0", label="query head"), Patch(color="C1", label="K/V head")],
        loc="lower center", bbox_to_anchor=(0.55, 1.0), ncols=2, frameon=False, handlelength=1,
    )

    layers, head_dim, bytes_per_value, total_heads = 32, 128, 2, 32  # a 7B-class model in fp16
    context = np.linspace(0, 32_768, 200)
    for label, n_kv in {"MHA": 32, "GQA": 8, "MQA": 1}.items():
        cache_bytes = 2 * layers * n_kv * head_dim * context * bytes_per_value  # K and V, every layer
        cache_ax.plot(context, cache_bytes / 2**30, label=f"{label} ({n_kv} KV of {total_heads})")
    cache_ax.set(xlim=(0, 32_768), ylim=(0, 17), xlabel="context length $T$", ylabel="KV cache (GiB)")
    cache_ax.set_xticks(np.arange(0, 32_769, 8192), ["0", "8k", "16k", "24k", "32k"])
    cache_ax.set_title("$2 \\cdot L \\cdot h_{kv} \\cdot d_h \\cdot T \\cdot 2$ bytes", fontsize=11.5)
    cache_ax.text(500, 7.2, "$L = 32$, $d_h = 128$, fp16", fontsize=10.5)
    cache_ax.legend(loc="upper left", fontsize=10)


def crf_trellis(ax, data):
    """Linear-chain CRF trellis: emission scores on the nodes, transition scores on the Viterbi path's edges."""
    words = ["Alice", "lives", "in", "Paris"]
    tags = ["B-PER", "I-PER", "B-LOC", "O"]
    emission = np.array(  # (tags, words)
        [[2.5, 0.2, 0.1, 0.7], [0.3, 0.9, 0.4, 0.8], [0.6, 0.1, 0.2, 2.2], [0.4, 1.8, 2.0, 0.5]]
    )
    transition = np.array(  # (from tag, to tag); I-PER may only follow a PER tag
        [[-0.5, 1.0, -0.2, 0.5], [-0.5, 0.4, -0.2, 0.5], [-0.2, -2.0, -0.5, 0.5], [0.3, -2.0, 0.4, 0.3]]
    )
    path = _viterbi(emission, transition)

    columns, rows = np.meshgrid(np.arange(len(words)), np.arange(len(tags)))
    for t in range(len(words) - 1):
        for a in range(len(tags)):
            for b in range(len(tags)):
                ax.plot([t, t + 1], [a, b], color=_tint(_ink(), 0.22), linewidth=0.8, zorder=1)
    ax.plot(range(len(words)), path, color="C1", linewidth=3, zorder=2)
    for t in range(1, len(words)):
        a, b = path[t - 1], path[t]
        _label_on_line(ax, t - 0.5, (a + b) / 2, f"{transition[a, b]:+.1f}", fontsize=10, color="C1", zorder=4)
    on_path = rows == np.array(path)[columns]
    ax.scatter(columns, rows, s=720, zorder=3, linewidths=1.5,
               facecolors=np.where(on_path[..., None], _tint("C1", 0.35), _tint(_ink(), 0.06)).reshape(-1, 3),
               edgecolors=np.where(on_path[..., None], to_rgb("C1"), _tint(_ink(), 0.5)).reshape(-1, 3))
    for (row, column), score in np.ndenumerate(emission):
        ax.text(column, row, f"{score:.1f}", ha="center", va="center", fontsize=10, zorder=4)
    ax.set_xticks(range(len(words)), words)
    ax.set_yticks(range(len(tags)), tags)
    ax.xaxis.tick_top()
    ax.tick_params(length=0)
    ax.set(xlim=(-0.5, len(words) - 0.5), ylim=(len(tags) - 0.5, -0.5))
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_xlabel("node: emission $E_t(y)$   edge: transition $A_{y',y}$\n"
                  "score $= \\sum_t E_t(y_t) + \\sum_t A_{y_{t-1},y_t}$", fontsize=10.5)


def _viterbi(emission, transition):
    """Best tag sequence (list of tag indices) for emission (tags, words) and transition (from, to) scores."""
    best = emission[:, 0].copy()
    back = []
    for t in range(1, emission.shape[1]):
        candidates = best[:, None] + transition  # (from, to)
        back.append(candidates.argmax(axis=0))
        best = candidates.max(axis=0) + emission[:, t]
    path = [int(best.argmax())]
    for pointers in reversed(back):
        path.append(int(pointers[path[-1]]))
    return path[::-1]


def rope(axes, data):
    """RoPE: a 2-D pair rotated by its position, the per-pair frequencies, and the long-range decay bound."""
    rotation_ax, spectrum_ax, decay_ax = axes
    theta = np.pi / 7
    query = np.array([1.0, 0.35])
    query /= np.linalg.norm(query)
    unit = np.linspace(0, 2 * np.pi, 200)
    rotation_ax.plot(np.cos(unit), np.sin(unit), "--", color=_tint(_ink(), 0.35), linewidth=1)
    for m in range(5):
        angle = m * theta
        rotated = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]) @ query
        color = "C0" if m == 0 else "C1"
        rotation_ax.annotate("", rotated, (0, 0), arrowprops=dict(arrowstyle="-|>", color=color, linewidth=1.8))
        rotation_ax.text(*(rotated * 1.22), f"$m={m}$", ha="center", va="center", fontsize=10)
    rotation_ax.set(aspect="equal", xlim=(-1.1, 1.4), ylim=(-0.1, 1.35), xticks=[], yticks=[])
    rotation_ax.grid(False)
    for spine in rotation_ax.spines.values():
        spine.set_visible(False)
    rotation_ax.set_title("position $m$ rotates pair $i$ by $m\\,\\theta_i$", fontsize=11.5)

    head_dim, base = 128, 10_000
    pair = np.arange(head_dim // 2)
    frequencies = base ** (-2 * pair / head_dim)
    spectrum_ax.semilogy(pair, frequencies, "o", markersize=3)
    spectrum_ax.set(xlim=(-1, head_dim // 2), ylim=(1e-5, 5), xlabel="pair $i$", ylabel="$\\theta_i$")
    spectrum_ax.set_title(f"$\\theta_i = {base}^{{-2i/d}}$, $d = {head_dim}$", fontsize=11.5)
    spectrum_ax.text(4, 1.2, "fast: local order", fontsize=10.5)
    spectrum_ax.text(62, 2e-5, "slow: long range", fontsize=10.5, ha="right")

    # RoFormer's bound: |q·k| <= max|h| · (1/(d/2)) Σ_j |S_j|, with S_j = Σ_{k<j} exp(i r θ_k).
    distance = np.arange(0, 257)
    partial_sums = np.cumsum(np.exp(1j * distance[:, None] * frequencies[None, :]), axis=1)  # (r, j)
    bound = np.abs(partial_sums).mean(axis=1)
    decay_ax.plot(distance, bound)
    decay_ax.set(xlim=(0, 256), ylim=(0, None), xlabel="relative distance $m - n$", ylabel="bound")
    decay_ax.set_title("long-range decay of the bound", fontsize=11.5)


# --- systems and training pipelines ----------------------------------------------------------------------------


def gpt_pipeline(ax, data):
    """Pre-training -> SFT -> reward model -> PPO, with DPO going from SFT straight to the aligned model."""
    _schematic(ax)
    stages = [
        ("Pre-training\nnext token, web text", "C0"),
        ("SFT\nprompt → demo answer", "C0"),
        ("Reward model\nranked pairs $y_w \\succ y_l$", "C2"),
        ("RLHF: PPO\nreward $- \\beta\\,$KL to SFT", "C2"),
        ("Aligned chat model", "C1"),
    ]
    x, width, height = 0.34, 0.64, 0.13
    tops = np.linspace(0.93, 0.07 + height, len(stages))
    for (text, color), top in zip(stages, tops):
        _box(ax, x, top - height / 2, text, color=color, width=width, height=height, fontsize=10.5)
    for upper, lower in zip(tops[:-1], tops[1:]):
        _arrow(ax, (x, upper - height), (x, lower))
    sft_y, final_y = tops[1] - height / 2, tops[-1] - height / 2
    _arrow(ax, (x + width / 2, sft_y), (x + width / 2, final_y), color="C1", linewidth=2,
           connectionstyle="arc,angleA=0,angleB=0,armA=45,armB=45,rad=12")
    ax.text(0.985, (sft_y + final_y) / 2, "DPO:\nsame pairs,\nno RM,\nno RL", ha="right", va="center",
            color="C1", fontsize=10.5)


def moe_routing(axes, data):
    """Top: a router sends each token to its top-2 of 6 experts. Bottom: expert load without and with the
    load-balancing loss (a simulated router, NumPy)."""
    routing_ax, load_ax = axes
    experts, top_k = 6, 2
    rng = np.random.default_rng(3)
    tokens = ["The", "cat", "sat", "down"]
    gates = _softmax(rng.normal(0, 1.2, (len(tokens), experts)))
    _schematic(routing_ax, xlim=(0, 1), ylim=(-0.5, experts - 0.1))
    token_y = np.linspace(experts - 1.2, 0.2, len(tokens))
    token_colors = ["C1", "C4", "C3", "C5"]
    for y, token in zip(token_y, tokens):
        _box(routing_ax, 0.1, y, token, color="C0", width=0.17, height=0.75, fontsize=10.5)
    for e in range(experts):
        _box(routing_ax, 0.9, experts - 1 - e, f"E{e + 1}", color="C2", width=0.15, height=0.75, fontsize=10.5)
    for t, (y, gate) in enumerate(zip(token_y, gates)):
        chosen = np.argsort(gate)[::-1][:top_k]
        weights = gate[chosen] / gate[chosen].sum()  # renormalised over the chosen experts
        for e, weight in zip(chosen, weights):
            _arrow(routing_ax, (0.19, y), (0.825, experts - 1 - e), color=token_colors[t],
                   linewidth=0.8 + 4 * weight)
    routing_ax.text(0.5, experts - 0.35, "router: top-2 of softmax($W_r x$)\nline width = gate weight",
                    ha="center", va="center", fontsize=10.5)

    loads = _simulated_expert_load(experts, top_k)
    positions = np.arange(experts)
    load_ax.bar(positions - 0.2, loads["no balancing loss"], 0.4, color="C3", label="no balancing loss")
    load_ax.bar(positions + 0.2, loads["with balancing loss"], 0.4, color="C2", label="with balancing loss")
    load_ax.axhline(1 / experts, linestyle="--", color=_ink(), linewidth=1.2)
    load_ax.text(experts - 0.5, 1 / experts + 0.01, "uniform", ha="right", va="bottom", fontsize=10.5)
    load_ax.set_xticks(positions, [f"E{e + 1}" for e in positions])
    load_ax.set(ylabel="share of tokens", ylim=(0, 0.5))
    load_ax.grid(axis="x", visible=False)
    load_ax.legend(loc="upper right", fontsize=10)


def _simulated_expert_load(experts, top_k, n_tokens=4096, features=16, steps=100, learning_rate=2.0):
    """Share of top-k assignments per expert for a router with skewed biases, before and after minimising the
    Switch-Transformer balancing loss E·Σ f_e·P_e over the biases (f: routed share, P: mean router probability)."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((n_tokens, features))
    router = rng.standard_normal((features, experts)) / math.sqrt(features)
    bias = np.linspace(1.5, -1.0, experts)  # a router that drifted towards the first experts

    def routed_share(bias):
        chosen = np.argsort(x @ router + bias, axis=1)[:, -top_k:]
        return np.bincount(chosen.ravel(), minlength=experts) / chosen.size

    before = routed_share(bias)
    for _ in range(steps):
        probs = _softmax(x @ router + bias)  # (tokens, experts)
        share = routed_share(bias)  # f is a constant in the loss; the gradient flows through P
        grad_logits = experts / n_tokens * probs * (share[None, :] - (probs @ share)[:, None])
        bias -= learning_rate * grad_logits.sum(axis=0)
    return {"no balancing loss": before, "with balancing loss": routed_share(bias)}


def large_vocab_softmax(axes, data):
    """Top: hierarchical softmax, a word's probability as a product of binary decisions along its tree path.
    Bottom: adaptive softmax, frequency clusters with smaller projections for rarer words (Zipf's law)."""
    tree_ax, adaptive_ax = axes
    words = ["the", "cat", "sat", "on", "a", "mat", "dog", "ran"]
    target = 1  # "cat"
    depth = int(math.log2(len(words)))
    _schematic(tree_ax, xlim=(0, 1), ylim=(-0.22, 1.0))
    level_y = np.linspace(0.9, 0.22, depth + 1)
    path_factors = []
    for level in range(depth):
        on_path_node = target >> (depth - level)
        for node in range(2**level):
            parent = ((node + 0.5) / 2**level, level_y[level])
            for side in (0, 1):  # left child: σ(v·h), right child: 1 − σ(v·h) = σ(−v·h)
                child_index = 2 * node + side
                child = ((child_index + 0.5) / 2 ** (level + 1), level_y[level + 1])
                on_path = child_index == target >> (depth - level - 1)
                tree_ax.plot(*zip(parent, child), color="C1" if on_path else _tint(_ink(), 0.45),
                             linewidth=3 if on_path else 1.2, zorder=1)
                if on_path:
                    path_factors.append(f"\\sigma({'-' if side else ''}v_{level + 1}^\\top h)")
            if node == on_path_node:
                tree_ax.scatter(*parent, s=260, color=_tint("C1", 0.35), edgecolors="C1", linewidths=1.5, zorder=2)
                tree_ax.text(*parent, f"{level + 1}", ha="center", va="center", fontsize=10, zorder=3)
            else:
                tree_ax.scatter(*parent, s=90, color=_tint(_ink(), 0.6), zorder=2)
    for i, word in enumerate(words):
        tree_ax.text((i + 0.5) / len(words), level_y[-1] - 0.02, word, ha="center", va="top",
                     color="C1" if i == target else _ink(), fontweight="bold" if i == target else "normal")
    product = "\\,".join(path_factors)
    tree_ax.text(0.5, -0.2, f"$P(\\mathrm{{{words[target]}}}) = {product}$", ha="center", va="bottom")
    tree_ax.set_title(f"hierarchical softmax: $\\log_2 |V| = {depth}$ steps", fontsize=11.5)

    vocabulary, head_size, tail_size = 200_000, 2_000, 20_000
    rank = np.arange(1, vocabulary + 1)
    zipf = 1 / rank
    covered = np.cumsum(zipf) / zipf.sum()  # share of running text covered by the first r words
    clusters = [  # (label, first rank, last rank, colour); rarer clusters get smaller projections
        ("head\n$d$", 1, head_size, "C0"),
        ("tail 1\n$d/4$", head_size, tail_size, "C2"),
        ("tail 2\n$d/16$", tail_size, vocabulary, "C4"),
    ]
    for label, start, end, color in clusters:
        adaptive_ax.axvspan(start, end, color=_tint(color, 0.25), linewidth=0)
        share = covered[end - 1] - (covered[start - 2] if start > 1 else 0)
        adaptive_ax.text(math.sqrt(start * end), 3e-2, f"{label}\n{share:.0%}", ha="center", va="center",
                         fontsize=10.5)
    adaptive_ax.loglog(rank, zipf / zipf.sum(), color=_ink(), linewidth=1.8)
    adaptive_ax.set(xlim=(1, vocabulary), ylim=(1e-7, 0.5), xlabel="word rank (by frequency)", ylabel="frequency")
    adaptive_ax.yaxis.set_major_locator(mpl.ticker.LogLocator(numticks=4))
    adaptive_ax.yaxis.set_minor_locator(mpl.ticker.NullLocator())
    adaptive_ax.grid(False)
    adaptive_ax.text(1.5, 2e-6, "% = share of running text", fontsize=10.5)
    adaptive_ax.set_title("adaptive softmax: clusters by frequency", fontsize=11.5)
