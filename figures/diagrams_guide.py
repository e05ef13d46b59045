"""Computed diagrams for the guide questions of parts 1-3 (issue 10): one ``name(axes, data)`` per figure in NAMES.md.

Same conventions as diagrams.py, whose drawing helpers are shared: theme colours only ("C0".."C7" and the rcParams
text and background colours), short labels for an image read about 380 px wide. Every curve, statistic, decision
boundary and attention matrix is computed here with NumPy from the formula the cards quote (seeded, so the bytes do
not change); the block diagrams follow the papers' definitions. Chinese labels use Noto Sans CJK through a font
fallback list (``CJK``), Latin glyphs and math stay DejaVu Sans like the other figures.
"""

import matplotlib as mpl
import numpy as np
from matplotlib.colors import LinearSegmentedColormap, ListedColormap
from matplotlib.patches import Patch, Rectangle

from .diagrams import _arrow, _box, _ink, _label_on_line, _schematic, _sigmoid, _softmax, _tint

CJK = ["DejaVu Sans", "Noto Sans CJK SC"]  # Latin and math from DejaVu, Chinese glyphs from Noto Sans CJK


def _background():
    return mpl.rcParams["axes.facecolor"]


def _zh_box(ax, x, y, text, **kw):
    """``_box`` whose text may contain Chinese."""
    patch, label = _box(ax, x, y, text, **kw)
    label.set_fontfamily(CJK)
    return patch, label


def _ramp(color, amount=1.0):
    """A colormap from the background to ``color`` (mixed in by ``amount``): reads in both themes."""
    return LinearSegmentedColormap.from_list("ramp", [_background(), _tint(color, amount)])


def _fit_logistic(X, y, steps=3000, learning_rate=0.5):
    """Binary logistic regression with a bias, by full-batch gradient descent on the mean BCE (the lr-grad card)."""
    w, b = np.zeros(X.shape[1]), 0.0
    for _ in range(steps):
        p = _sigmoid(X @ w + b)
        w -= learning_rate * X.T @ (p - y) / len(y)
        b -= learning_rate * np.mean(p - y)
    return w, b


def _fit_softmax(X, y, classes, steps=3000, learning_rate=0.5):
    """Softmax regression with a bias: gradient (P - Y)^T X / N (the lr-softmax-grad card)."""
    W, b = np.zeros((classes, X.shape[1])), np.zeros(classes)
    Y = np.eye(classes)[y]
    for _ in range(steps):
        P = _softmax(X @ W.T + b)
        W -= learning_rate * (P - Y).T @ X / len(y)
        b -= learning_rate * (P - Y).mean(axis=0)
    return W, b


# --- 2.1 formulas ----------------------------------------------------------------------------------------------


def bn_train_eval(axes, data):
    """One BatchNorm channel over training: each batch's own mean / variance (used to normalise in training) and the
    running averages PyTorch keeps (momentum 0.1, unbiased variance), which are the constants used in eval mode."""
    mean_ax, var_ax = axes
    steps, batch, momentum = 120, 16, 0.1
    mu, sigma = 1.5, 2.0  # the channel's population statistics
    x = np.random.default_rng(0).normal(mu, sigma, (steps, batch))
    batch_mean, batch_var = x.mean(axis=1), x.var(axis=1)  # biased variance, as BN normalises with
    running_mean, running_var = [0.0], [1.0]  # PyTorch's initial buffers
    for mean, var in zip(batch_mean, batch_var):
        running_mean.append((1 - momentum) * running_mean[-1] + momentum * mean)
        running_var.append((1 - momentum) * running_var[-1] + momentum * var * batch / (batch - 1))
    step = np.arange(1, steps + 1)
    panels = [
        (mean_ax, batch_mean, running_mean, mu, "\\mu_B", "\\hat\\mu", "mean"),
        (var_ax, batch_var, running_var, sigma**2, "\\sigma_B^2", "\\hat\\sigma^2", "variance"),
    ]
    for ax, per_batch, running, population, batch_sym, running_sym, ylabel in panels:
        ax.plot(step, per_batch, "o", markersize=3, color="C0", label=f"batch ${batch_sym}$ (train)")
        ax.plot(np.arange(steps + 1), running, color="C1", label=f"running ${running_sym}$ (eval)")
        ax.axhline(population, linestyle="--", color=_ink(), linewidth=1, label="population")
        ax.plot(steps, running[-1], "o", color="C1", markersize=7, zorder=3)
        ax.set(xlim=(0, steps + 2), ylabel=ylabel)
    mean_ax.set_ylim(-1.9, 3.4)
    mean_ax.legend(loc="lower right", ncols=2, fontsize=10, handlelength=1.2, columnspacing=0.8)
    mean_ax.set_title(f"one channel: batch $m = {batch}$, $\\rho = {momentum}$", fontsize=11.5)
    var_ax.set_ylim(0, 9.5)
    var_ax.set_xlabel("training step")
    var_ax.annotate("eval: these fixed\nvalues, any batch size", xy=(steps, running_var[-1]),
                    xytext=(62, 7.2), fontsize=10.5, arrowprops=dict(arrowstyle="-|>", color=_ink()))
    var_ax.text(3, 0.5, "$\\hat\\sigma^2 \\leftarrow (1-\\rho)\\,\\hat\\sigma^2"
                        " + \\rho\\,\\frac{m}{m-1}\\,\\sigma_B^2$", fontsize=10.5)


def label_targets(axes, data):
    """Three softmax targets for one image of a cat: one-hot, label smoothing (eps = 0.1) and a teacher's soft label
    softmax(z / T), whose wrong classes differ (the similar ones get more) while smoothing gives them all eps / K."""
    classes = ["cat", "dog", "fox", "car", "ship"]
    k, eps, temperature = len(classes), 0.1, 2.0
    one_hot = np.eye(k)[0]
    teacher_logits = np.array([5.0, 3.0, 2.5, -1.0, -1.5])
    targets = [
        ("one-hot: $y_c = 1$, the rest 0", one_hot, "C0"),
        (f"label smoothing: $(1-\\varepsilon)\\,y + \\varepsilon/K$, $\\varepsilon = {eps}$",
         (1 - eps) * one_hot + eps / k, "C2"),
        (f"soft label: teacher softmax$(z/T)$, $T = {temperature:g}$", _softmax(teacher_logits / temperature), "C4"),
    ]
    positions = np.arange(k)
    for ax, (title, target, color) in zip(axes, targets):
        bars = ax.bar(positions, target, 0.6, color=color)
        ax.bar_label(bars, [f"{v:.2f}".rstrip("0").rstrip(".") if v else "0" for v in target], fontsize=10,
                     padding=2)
        ax.set(ylim=(0, 1.25), yticks=[0, 0.5, 1])
        ax.set_xticks(positions, classes)
        ax.set_title(title, fontsize=11)
        ax.grid(axis="x", visible=False)
    axes[1].text(2.6, 0.42, f"every wrong class: $\\varepsilon/K = {eps / k:g}$", ha="center", fontsize=10.5)
    axes[2].text(2.9, 0.62, "dog, fox (similar)\nget more than car, ship", ha="center", fontsize=10.5)
    axes[2].text(4.45, 1.12, f"$z = ({', '.join(f'{z:g}' for z in teacher_logits)})$", ha="right",
                 fontsize=10)


def ce_gradient(axes, data):
    """Softmax + cross-entropy on one example whose true class is not the predicted one: p, y, and the gradient with
    respect to the logits p - y (negative only on the true class; the entries sum to 0)."""
    prob_ax, grad_ax = axes
    classes = ["A", "B", "C", "D"]
    true = 1
    logits = np.array([2.0, 1.0, 0.2, -1.0])
    p = _softmax(logits)
    y = np.eye(len(classes))[true]
    positions = np.arange(len(classes))
    prob_ax.bar(positions - 0.19, p, 0.38, color="C0", label="prediction $p$")
    prob_ax.bar(positions + 0.19, y, 0.38, color="C1", label="target $y$")
    prob_ax.set(ylim=(0, 1.3), yticks=[0, 0.5, 1], ylabel="probability")
    prob_ax.set_xticks(positions, [f"{c} (true)" if i == true else c for i, c in enumerate(classes)])
    prob_ax.set_title(f"$z = ({', '.join(f'{v:g}' for v in logits)})$,  $L = -\\log p_B = {-np.log(p[true]):.2f}$",
                      fontsize=11.5)
    prob_ax.legend(loc="upper right", ncols=2)
    prob_ax.grid(axis="x", visible=False)

    gradient = p - y
    colors = ["C3" if g < 0 else "C0" for g in gradient]
    bars = grad_ax.bar(positions, gradient, 0.55, color=colors)
    grad_ax.bar_label(bars, [f"{g:+.2f}" for g in gradient], fontsize=10, padding=2)
    grad_ax.axhline(0, color=_ink(), linewidth=0.8)
    grad_ax.set(ylim=(-1.05, 1.0), ylabel="$\\partial L/\\partial z_k$")
    grad_ax.set_xticks(positions, classes)
    grad_ax.set_title("$\\partial L / \\partial z = p - y$   (entries sum to 0)", fontsize=11.5)
    grad_ax.text(1.4, -0.55, "true class: $p_B - 1$,\na step raises $z_B$", ha="left", va="center", fontsize=10.5)
    grad_ax.text(2.5, 0.55, "others: $+p_k$, lowered", ha="center", va="center", fontsize=10.5)
    grad_ax.grid(axis="x", visible=False)


def neg_log(ax, data):
    """-log p against the true class's probability p: 0 at p = 1, unbounded as p -> 0; log p itself is <= 0, which
    is why the loss takes the negative. A bounded penalty (1 - p) for contrast."""
    p = np.linspace(1e-3, 1, 2000)
    ax.plot(p, -np.log(p), color="C0", label="$-\\log p$  (the loss)")
    ax.plot(p, np.log(p), "--", color="C1", label="$\\log p$  (log-likelihood)")
    ax.plot(p, 1 - p, ":", color="C2", label="$1 - p$  (bounded)")
    ax.axhline(0, color=_ink(), linewidth=0.8)
    for q in (0.5, 0.1, 0.02):
        ax.plot(q, -np.log(q), "o", color="C0", markersize=5, zorder=3)
        ax.annotate(f"{-np.log(q):.2f}", (q, -np.log(q)), xytext=(7, -3 if q < 0.05 else 5),
                    textcoords="offset points", va="top" if q < 0.05 else "bottom", fontsize=10)
    ax.annotate("$p \\to 0$: loss $\\to \\infty$", xy=(0.011, 4.5), xytext=(0.07, 5.5),
                fontsize=10.5, va="center", arrowprops=dict(arrowstyle="-|>", color=_ink()))
    ax.text(0.97, -3.1, "$\\log p \\leq 0$: maximise it\n$=$ minimise $-\\log p \\geq 0$", ha="right",
            fontsize=10.5)
    ax.set(xlim=(0, 1.02), ylim=(-4.2, 6.2), xlabel="probability of the true class $p$")
    ax.set_title("loss of the true class: $-\\log p$", fontsize=11.5)
    ax.legend(loc="upper right")


def sigmoid_softmax_boundaries(axes, data):
    """Logistic regressions fitted with NumPy on 2-D points. Top: two classes, sigmoid, a linear boundary p = 0.5.
    Middle: three exclusive classes, softmax: probabilities sum to 1 and every point gets exactly one class.
    Bottom: three independent one-vs-rest sigmoids on the same points: regions where no class or several pass 0.5."""
    binary_ax, softmax_ax, ovr_ax = axes
    rng = np.random.default_rng(4)
    per_class = 40
    xlim, ylim = (-4.2, 4.2), (-3.3, 3.3)
    grid_x, grid_y = np.meshgrid(np.linspace(*xlim, 400), np.linspace(*ylim, 320))
    grid = np.stack([grid_x.ravel(), grid_y.ravel()], axis=1)

    # Two classes.
    centres = np.array([[-1.2, -0.7], [1.2, 0.7]])
    X = np.concatenate([rng.normal(c, 0.95, (per_class, 2)) for c in centres])
    y = np.repeat([0, 1], per_class)
    w, b = _fit_logistic(X, y)
    p = _sigmoid(grid @ w + b).reshape(grid_x.shape)
    binary_ax.contourf(grid_x, grid_y, p, levels=np.linspace(0, 1, 11),
                       cmap=LinearSegmentedColormap.from_list(
                           "pair", [_tint("C0", 0.45), _background(), _tint("C1", 0.45)]))
    lines = binary_ax.contour(grid_x, grid_y, p, levels=[0.1, 0.5, 0.9], colors=_ink(),
                              linewidths=[1, 2, 1], linestyles=["--", "-", "--"])
    binary_ax.clabel(lines, fmt={0.1: "0.1", 0.5: "$p = 0.5$", 0.9: "0.9"}, fontsize=10)
    for label in range(2):
        binary_ax.scatter(*X[y == label].T, s=12, color=f"C{label}", edgecolors=_ink(), linewidths=0.4, zorder=3)
    binary_ax.set_title("2 classes: $p = \\sigma(w^\\top x + b)$, boundary: a line", fontsize=11)

    # Three classes, the same points for softmax and one-vs-rest.
    centres = np.array([[-2.0, -1.2], [2.0, -1.2], [0.0, 1.7]])
    X = np.concatenate([rng.normal(c, 0.8, (per_class, 2)) for c in centres])
    y = np.repeat([0, 1, 2], per_class)
    W, bias = _fit_softmax(X, y, 3)
    winner = np.argmax(grid @ W.T + bias, axis=1).reshape(grid_x.shape)
    softmax_ax.pcolormesh(grid_x, grid_y, winner, cmap=ListedColormap([_tint(f"C{k}", 0.35) for k in range(3)]),
                          vmin=-0.5, vmax=2.5, shading="auto", rasterized=True)
    softmax_ax.contour(grid_x, grid_y, winner, levels=[0.5, 1.5], colors=_ink(), linewidths=1.5)
    softmax_ax.set_title("3 exclusive classes: softmax, $p_1 + p_2 + p_3 = 1$", fontsize=11)

    fits = [_fit_logistic(X, (y == k).astype(float)) for k in range(3)]
    passing = np.stack([_sigmoid(grid @ w + b) > 0.5 for w, b in fits], axis=1)  # (points, classes)
    count = passing.sum(axis=1)
    region = np.where(count == 1, passing.argmax(axis=1), np.where(count == 0, 3, 4)).reshape(grid_x.shape)
    region_colors = [_tint(f"C{k}", 0.35) for k in range(3)] + [_background(), _tint(_ink(), 0.45)]
    ovr_ax.pcolormesh(grid_x, grid_y, region, cmap=ListedColormap(region_colors), vmin=-0.5, vmax=4.5,
                      shading="auto", rasterized=True)
    for w, b in fits:  # each classifier's own boundary p_k = 0.5
        ovr_ax.contour(grid_x, grid_y, (grid @ w + b).reshape(grid_x.shape), levels=[0], colors=_ink(),
                       linewidths=1, linestyles="--")
    handles = [Patch(facecolor=_background(), edgecolor=_ink(), label="no $p_k > 0.5$")]
    if (count >= 2).any():
        handles.append(Patch(color=_tint(_ink(), 0.45), label="two $p_k > 0.5$"))
    ovr_ax.legend(handles=handles, loc="lower center", ncols=2, fontsize=10, handlelength=1.2)
    ovr_ax.set_title("3 one-vs-rest sigmoids: the sum is not 1", fontsize=11)

    for ax in (softmax_ax, ovr_ax):
        for label in range(3):
            ax.scatter(*X[y == label].T, s=12, color=f"C{label}", edgecolors=_ink(), linewidths=0.4, zorder=3)
    for ax in axes:
        ax.set(xlim=xlim, ylim=ylim, aspect="equal", xticks=[], yticks=[])
        ax.grid(False)
        for spine in ax.spines.values():
            spine.set_visible(False)


def lr_loss_surface(ax, data):
    """Mean logistic loss over the two weights of a 2-D logistic regression (no bias) on overlapping classes: a convex
    bowl; gradient descent steps w <- w - eta X^T (p - y) / N cross the contours at right angles to the minimum."""
    rng = np.random.default_rng(2)
    per_class = 100
    X = np.concatenate([rng.normal([1.0, 0.5], 1.0, (per_class, 2)), rng.normal([-1.0, -0.5], 1.0, (per_class, 2))])
    y = np.repeat([1.0, 0.0], per_class)

    def loss(W):  # W: (..., 2) -> mean BCE, log(1 + e^z) - y z
        z = W @ X.T
        return (np.logaddexp(0, z) - y * z).mean(axis=-1)

    def gradient(w):
        return X.T @ (_sigmoid(X @ w) - y) / len(y)

    w1, w2 = np.meshgrid(np.linspace(-2.2, 3.2, 220), np.linspace(-1.6, 3.8, 220))
    surface = loss(np.stack([w1, w2], axis=-1))
    w_star = np.zeros(2)
    for _ in range(50):  # Newton's method (IRLS) for the minimum
        p = _sigmoid(X @ w_star)
        hessian = X.T @ (X * (p * (1 - p))[:, None]) / len(y)
        w_star -= np.linalg.solve(hessian, gradient(w_star))
    levels = loss(w_star) + np.array([0.02, 0.08, 0.2, 0.4, 0.7, 1.1, 1.6, 2.2])
    ax.contourf(w1, w2, surface, levels=np.concatenate([[surface.min()], levels, [surface.max()]]),
                cmap=_ramp("C0", 0.55).reversed())
    ax.contour(w1, w2, surface, levels=levels, colors=_tint(_ink(), 0.5), linewidths=0.8)

    learning_rate, w = 1.2, np.array([-1.6, 3.2])
    path = [w.copy()]
    for _ in range(12):
        w = w - learning_rate * gradient(w)
        path.append(w.copy())
    path = np.array(path)
    ax.plot(*path.T, "-o", color="C1", markersize=3.5, linewidth=1.5, zorder=3)
    for start, end in zip(path[:3], path[1:4]):
        _arrow(ax, start, end, color="C1", linewidth=1.8)
    ax.plot(*w_star, "*", color=_ink(), markersize=12, zorder=4)
    ax.annotate("$w^*$", w_star, xytext=(8, -12), textcoords="offset points")
    ax.annotate("$w_0$", path[0], xytext=(-4, 8), textcoords="offset points", ha="right")
    _label_on_line(ax, 0.5, -1.15, "step: $w \\leftarrow w - \\eta\\,\\frac{1}{N}X^\\top(p - y)$", fontsize=10.5)
    ax.set(xlim=(-2.2, 3.2), ylim=(-1.6, 3.8), aspect="equal", xlabel="$w_1$", ylabel="$w_2$")
    ax.set_title(f"mean BCE over $(w_1, w_2)$: convex, $\\eta = {learning_rate}$", fontsize=11.5)
    ax.grid(False)


# --- 3.1 and 3.2 ------------------------------------------------------------------------------------------------


def receptive_fields(ax, data):
    """How many steps the signal of token x_i needs to reach the output at position t, for a stack of width-3
    convolutions (|t - i| layers), a forward RNN (t - i + 1 recurrences, nothing from the right), a BiRNN and one
    self-attention layer (1 step for every token)."""
    n, t = 9, 4  # tokens x_1..x_9, output at x_5
    i = np.arange(n)
    encoders = {
        "CNN ($k = 3$)": (np.maximum(np.abs(t - i), 1), "layers"),
        "RNN →": (np.where(i <= t, t - i + 1, 0), "steps"),
        "BiRNN": (np.abs(t - i) + 1, "steps"),
        "Transformer": (np.ones(n, int), "layer"),
    }
    _schematic(ax, xlim=(-2.6, n + 0.1), ylim=(len(encoders) + 2.2, -0.75))
    for column in range(n):
        face = _tint("C1", 0.35) if column == t else _tint(_ink(), 0.08)
        ax.add_patch(Rectangle((column + 0.06, 0.06), 0.88, 0.88, facecolor=face,
                               edgecolor="C1" if column == t else _tint(_ink(), 0.4), linewidth=1.2))
        ax.text(column + 0.5, 0.5, f"$x_{column + 1}$", ha="center", va="center", fontsize=10.5)
    ax.text(t + 0.5, -0.35, "output position $t$", ha="center", va="center", fontsize=10.5, color="C1")
    for row, (label, (steps, unit)) in enumerate(encoders.items(), start=1):
        y = row + 0.15
        for column, s in enumerate(steps):
            face = _tint("C0", 0.45 / s) if s else _background()
            ax.add_patch(Rectangle((column + 0.06, y + 0.06), 0.88, 0.88, facecolor=face,
                                   edgecolor=_tint(_ink(), 0.4), linewidth=0.8))
            ax.text(column + 0.5, y + 0.5, f"{s}" if s else "–", ha="center", va="center", fontsize=10.5)
        ax.text(-0.15, y + 0.5, label, ha="right", va="center", fontsize=10.5)
    ax.text(n / 2 - 1.2, len(encoders) + 1.35, "longest path: CNN $O(n/k)$, RNN $O(n)$,\n"
            "attention $O(1)$;  –: not seen", ha="center", va="top", fontsize=10.5)
    ax.set_title("steps from token $x_i$ to the output at $t$", fontsize=11.5)


def word2vec_windows(axes, data):
    """word2vec on one window (c = 2): CBOW averages the context vectors and predicts the centre word (one prediction
    per position); skip-gram predicts each context word from the centre word (2c predictions per position)."""
    words = ["the", "quick", "brown", "fox", "jumps", "over", "the"]
    centre, window = 3, 2
    context = [j for j in range(centre - window, centre + window + 1) if j != centre]
    xs = np.linspace(0.07, 0.93, len(words))
    for ax, title in zip(axes, ("CBOW: context mean → centre (1 prediction)",
                                f"skip-gram: centre → $2c = {2 * window}$ predictions")):
        _schematic(ax, ylim=(0, 1))
        ax.set_title(title, fontsize=11.5)
        for j, (x, word) in enumerate(zip(xs, words)):
            in_window = abs(j - centre) <= window
            color = "C1" if j == centre else ("C0" if in_window else _tint(_ink(), 0.45))
            _box(ax, x, 0.84, word, color=color, width=0.125, height=0.2, fontsize=10)
        ax.add_patch(Rectangle((xs[centre - window] - 0.075, 0.7), xs[centre + window] - xs[centre - window] + 0.15,
                               0.28, fill=False, edgecolor=_tint(_ink(), 0.6), linestyle="--", linewidth=1))

    cbow_ax, skip_ax = axes
    _box(cbow_ax, 0.5, 0.45, "mean of $v_{\\mathrm{quick}}, \\dots, v_{\\mathrm{over}}$", color="C0", width=0.56,
         height=0.17, fontsize=10.5)
    for j in context:
        _arrow(cbow_ax, (xs[j], 0.73), (0.5 + 0.6 * (xs[j] - 0.5), 0.54), color="C0")
    _arrow(cbow_ax, (0.5, 0.36), (0.5, 0.22), color="C1")
    cbow_ax.text(0.5, 0.12, "softmax → predict “fox”", ha="center", va="center", fontsize=10.5, color="C1")

    _box(skip_ax, 0.5, 0.45, "$v_{\\mathrm{fox}}$", color="C1", width=0.16, height=0.17, fontsize=10.5)
    _arrow(skip_ax, (xs[centre], 0.73), (0.5, 0.54), color="C1")
    targets = np.linspace(0.14, 0.86, len(context))
    for x, j in zip(targets, context):
        _arrow(skip_ax, (0.5, 0.36), (x, 0.2), color="C0")
        skip_ax.text(x, 0.1, f"“{words[j]}”", ha="center", va="center", fontsize=10.5, color="C0")


def qkv_projections(axes, data):
    """Top: X is projected three ways; Q and K only decide the weights, V is what gets mixed. Bottom: softmax of the
    scores for the same random tokens with Q = K = X (symmetric, each token mostly attends to itself) and with
    separate random W_Q, W_K (asymmetric); the mean weight on the diagonal is printed."""
    figure = axes[0, 0].figure
    for ax in axes[0]:
        ax.remove()
    schematic = figure.add_subplot(axes[0, 0].get_gridspec()[0, :])
    _schematic(schematic, xlim=(0, 1), ylim=(0, 1))
    _box(schematic, 0.065, 0.5, "$X$", color=_ink(), width=0.1, height=0.22, fontsize=12)
    rows = [("Q", "C0", 0.83), ("K", "C2", 0.5), ("V", "C4", 0.17)]
    for name, color, y in rows:
        _arrow(schematic, (0.115, 0.5), (0.235, y), color=color)
        _label_on_line(schematic, 0.17, (0.5 + y) / 2, f"$W_{name}$", fontsize=10.5, color=color)
        _box(schematic, 0.325, y, f"${name} = XW_{name}$", color=color, width=0.18, height=0.2, fontsize=10)
    _box(schematic, 0.685, 0.7, "$A = \\mathrm{softmax}\\left(\\frac{QK^\\top}{\\sqrt{d_k}}\\right)$",
         color="C0", width=0.39, height=0.3, fontsize=10.5)
    _arrow(schematic, (0.415, 0.83), (0.49, 0.77), color="C0")
    _arrow(schematic, (0.415, 0.5), (0.49, 0.62), color="C2")
    _box(schematic, 0.915, 0.2, "$AV$", color="C4", width=0.14, height=0.2, fontsize=11)
    _arrow(schematic, (0.415, 0.17), (0.845, 0.19), color="C4")
    _arrow(schematic, (0.82, 0.55), (0.89, 0.3), color="C0")
    schematic.text(0.63, 0.44, "where to look", ha="center", va="center", fontsize=10.5, color="C0")
    schematic.text(0.63, 0.06, "what is read", ha="center", va="center", fontsize=10.5, color="C4")

    n, d, d_k = 6, 16, 8
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, d))
    W_q, W_k = rng.standard_normal((2, d, d_k)) / np.sqrt(d)
    weights = {
        "$Q = K = X$": _softmax(X @ X.T / np.sqrt(d)),
        "separate $W_Q, W_K$": _softmax((X @ W_q) @ (X @ W_k).T / np.sqrt(d_k)),
    }
    for ax, (title, A) in zip(axes[1], weights.items()):
        ax.imshow(A, cmap=_ramp("C0"), vmin=0, vmax=1)
        ax.set_xticks(range(n), [f"{j + 1}" for j in range(n)], fontsize=10)
        ax.set_yticks(range(n), [f"{j + 1}" for j in range(n)], fontsize=10)
        ax.tick_params(length=0)
        ax.grid(False)
        for spine in ax.spines.values():
            spine.set_visible(False)
        ax.set_title(f"{title}\nmean diagonal {np.trace(A) / n:.2f}", fontsize=10.5)
        ax.set_xlabel("key", fontsize=10.5)
    axes[1, 0].set_ylabel("query", fontsize=10.5)


# --- 3.3 large models -----------------------------------------------------------------------------------------


def icl_vs_finetune(ax, data):
    """What changes per task: in-context learning puts demonstrations in the prompt and keeps the weights; fine-tuning
    back-propagates the labelled examples into the weights and then answers from the query alone."""
    _schematic(ax, xlim=(0, 1), ylim=(0, 1))
    columns = {"in-context learning": 0.25, "fine-tuning": 0.75}
    for title, x in columns.items():
        ax.text(x, 0.97, title, ha="center", va="top", fontsize=12, fontweight="bold")
    ax.plot([0.5, 0.5], [0.04, 0.95], color=_tint(_ink(), 0.35), linewidth=1)

    x = columns["in-context learning"]
    _zh_box(ax, x, 0.76, "prompt:\ninstruction + $k$ demos\n+ query", color="C1", width=0.44, height=0.2,
            fontsize=10.5)
    _arrow(ax, (x, 0.66), (x, 0.56))
    _zh_box(ax, x, 0.47, "model $\\theta$\nfrozen", color=_ink(), width=0.3, height=0.16, fontsize=10.5)
    _arrow(ax, (x, 0.39), (x, 0.3))
    _zh_box(ax, x, 0.24, "answer", color="C0", width=0.22, height=0.1, fontsize=10.5)
    ax.text(x, 0.1, "no gradient; demos\nare paid on every call", ha="center", va="center", fontsize=10.5)

    x = columns["fine-tuning"]
    _zh_box(ax, x, 0.81, "labelled $(x, y)$ × $N$", color=_ink(), width=0.44, height=0.1, fontsize=10.5)
    _arrow(ax, (x, 0.76), (x, 0.655), color="C1")
    ax.text(x + 0.02, 0.705, "backprop $\\nabla_\\theta L$", ha="left", va="center", fontsize=10.5, color="C1")
    _zh_box(ax, x, 0.6, "model $\\theta \\to \\theta'$", color="C1", width=0.36, height=0.11, fontsize=10.5)
    _arrow(ax, (x, 0.545), (x, 0.465))
    _zh_box(ax, x, 0.42, "query only", color=_ink(), width=0.3, height=0.08, fontsize=10.5)
    _arrow(ax, (x, 0.38), (x, 0.3))
    _zh_box(ax, x, 0.24, "answer", color="C0", width=0.22, height=0.1, fontsize=10.5)
    ax.text(x, 0.1, "task lives in the weights:\none copy (or adapter) each", ha="center", va="center",
            fontsize=10.5)
    ax.legend(handles=[Patch(facecolor=_tint("C1", 0.22), edgecolor="C1", label="what changes per task")],
              loc="lower center", bbox_to_anchor=(0.5, -0.07), frameon=False, handlelength=1.2)


def prompt_vs_prefix(axes, data):
    """Where the trainable vectors go (the backbone stays frozen in both): prompt tuning prepends k soft-prompt
    embeddings to the input only; prefix tuning prepends trainable keys and values to the attention of every layer."""
    layers, tokens, prefix = 3, 4, 2  # k = 2 soft-prompt vectors; each prefix box holds L_p vectors
    panels = [("prompt tuning (Lester et al.)", False), ("prefix tuning (Li & Liang)", True)]
    for ax, (title, deep) in zip(axes, panels):
        _schematic(ax, xlim=(-0.3, 7.2), ylim=(-1.55, layers + 0.2))
        ax.set_title(title, fontsize=11.5)
        for layer in range(layers):
            y = layer + 0.25
            ax.add_patch(Rectangle((2.05, y), 5.0, 0.6, facecolor=_tint(_ink(), 0.1), edgecolor=_tint(_ink(), 0.55),
                                   linewidth=1))
            ax.text(4.55, y + 0.3, f"layer {layer + 1} (frozen)" if layer < layers - 1 else "layer $L$ (frozen)",
                    ha="center", va="center", fontsize=10)
            if deep:
                for j, name in enumerate(("K", "V")):
                    ax.add_patch(Rectangle((0.25 + j * 0.85, y + 0.05), 0.7, 0.5, facecolor=_tint("C1", 0.4),
                                           edgecolor="C1", linewidth=1.2))
                    ax.text(0.6 + j * 0.85, y + 0.3, f"$P_{name}$", ha="center", va="center", fontsize=10.5)
                _arrow(ax, (1.95, y + 0.3), (2.05, y + 0.3), color="C1")
        # the input row: soft prompt (prompt tuning only) and the real tokens' embeddings
        y = -0.75
        first = 2.05
        if not deep:
            for j in range(prefix):
                ax.add_patch(Rectangle((0.25 + j * 0.85, y), 0.7, 0.5, facecolor=_tint("C1", 0.4), edgecolor="C1",
                                       linewidth=1.2))
                ax.text(0.6 + j * 0.85, y + 0.25, f"$p_{j + 1}$", ha="center", va="center", fontsize=10.5)
        for j in range(tokens):
            ax.add_patch(Rectangle((first + j * 1.27, y), 1.1, 0.5, facecolor=_tint("C0", 0.25), edgecolor="C0",
                                   linewidth=1))
            ax.text(first + j * 1.27 + 0.55, y + 0.25, f"$e(x_{j + 1})$", ha="center", va="center", fontsize=10)
        _arrow(ax, (4.55, y + 0.52), (4.55, 0.23))
        count = ("trainable: $k \\cdot d$ (input only)" if not deep
                 else "trainable: $L_p \\cdot n_{\\mathrm{layers}} \\cdot 2 \\cdot d$")
        ax.text(3.45, -1.5, count, ha="center", va="bottom", fontsize=10.5, color="C1")


# --- 1 project introduction -----------------------------------------------------------------------------------


def project_story(ax, data):
    """The six-part skeleton of a project introduction (cards proj-skeleton*), with the guide's bonus points (1.2)
    attached to the part where they are told."""
    _schematic(ax, xlim=(0, 1), ylim=(-0.07, 1))
    stages = [
        ("背景与目标", "业务问题 · 你的角色"),
        ("数据", "规模 · 来源 · 标注 · 特征"),
        ("指标", "离线 + 线上 · baseline"),
        ("模型方法", "baseline → 迭代 → 方案"),
        ("难点", "现象 → 定位 → 方案 → 结果"),
        ("结果与反思", "量化收益 · 局限 · 下一步"),
    ]
    x, width, height = 0.3, 0.56, 0.118
    centres = np.linspace(0.92, 0.1, len(stages))
    for k, ((name, detail), y) in enumerate(zip(stages, centres)):
        color = "C0" if k < 3 else "C1"
        _zh_box(ax, x, y, f"{k + 1}  {name}\n{detail}", color=color, width=width, height=height, fontsize=10.5)
    for upper, lower in zip(centres[:-1], centres[1:]):
        _arrow(ax, (x, upper - height / 2), (x, lower + height / 2))
    bonus = [  # (text, the stage it is told in)
        ("亮点：一句话\n+ 消融证据", 3),
        ("够深：原理 ·\n替代方案 · 边界", 3),
        ("够广：延迟 · 成本\n· 数据闭环 · 风险", 5),
        ("成长：失败尝试\n· 重做会改什么", 5),
    ]
    tag_x, tag_ys = 0.81, np.linspace(centres[2] - 0.02, centres[5] - 0.03, len(bonus))
    for (text, stage), y in zip(bonus, tag_ys):
        _zh_box(ax, tag_x, y, text, color="C2", width=0.34, height=0.11, fontsize=10)
        _arrow(ax, (tag_x - 0.17, y), (x + width / 2, centres[stage]), color="C2")
    ax.text(tag_x, centres[2] + 0.09, "加分点（1.2）", ha="center", va="center", fontsize=10.5, color="C2",
            fontfamily=CJK)
    ax.text(tag_x, centres[0] - 0.04, "概要版 1–2 分钟：\n每段一两句，\n讲完等追问", ha="center", va="center",
            fontsize=10.5, fontfamily=CJK)
    ax.text(x, -0.065, "后三段（橙色）是技术追问的重点", ha="center", va="bottom", fontsize=10.5, color="C1",
            fontfamily=CJK)


def followup_ladder(ax, data):
    """The four layers every technical term on a CV must survive (card proj-terms-layers), with LoRA as the example
    (card proj-prepare-terms): each follow-up goes one layer deeper."""
    _schematic(ax, xlim=(0, 1), ylim=(0, 1))
    _zh_box(ax, 0.5, 0.93, "简历上写了：LoRA", color=_ink(), width=0.5, height=0.09, fontsize=11)
    layers = [
        ("原理", "冻结 W，只训练低秩增量"),
        ("公式", "$W + \\frac{\\alpha}{r}BA$,  $r \\ll \\min(d, k)$"),
        ("关键细节", "B = 0、A 高斯：起步时 ΔW = 0\nrank 与 α 怎么选、加在哪些矩阵"),
        ("为什么选它", "对比全参微调、prefix-tuning：\n显存、效果、部署代价"),
    ]
    centres = np.array([0.75, 0.59, 0.41, 0.21])
    heights = [0.1, 0.1, 0.14, 0.14]
    for (name, example), y, height in zip(layers, centres, heights):
        _zh_box(ax, 0.13, y, name, color="C1", width=0.22, height=height, fontsize=10.5)
        _zh_box(ax, 0.62, y, example, color="C0", width=0.7, height=height, fontsize=10)
    for upper, lower, h_upper, h_lower in zip(centres[:-1], centres[1:], heights[:-1], heights[1:]):
        _arrow(ax, (0.13, upper - h_upper / 2), (0.13, lower + h_lower / 2), color="C1")
    _arrow(ax, (0.5, 0.885), (0.5, centres[0] + heights[0] / 2))
    ax.text(0.5, 0.03, "面试官沿每个名词追问，一层比一层深", ha="center", va="bottom", fontsize=10.5,
            fontfamily=CJK)
