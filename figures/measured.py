"""Measured figures (``run-*``): plots of the data that ``figures/runs.py`` wrote to ``figures/data/``.

Each ``run_name(axes, data)`` draws the figure ``run-name`` (registered in figures/__init__.py); it gets ``{file stem:
loaded JSON}`` and draws with theme colours only ("C0".."C7" and the rcParams text colours, set per light/dark variant
by ankideck.drawing). A small footer names what was measured, where: the provenance travels with the picture. The
data files of full runs written before the SIZES tables (no ``config`` key, or one with the model's size) read the
same.
"""

import matplotlib as mpl
import numpy as np
from matplotlib.ticker import NullFormatter

# --- shared helpers -------------------------------------------------------------------------------------------


def _footer(axes, d, text=None):
    """Provenance in small muted type under the figure: what ran, on which device, with how many threads, when."""
    fig = _first(axes).figure
    if d.get("device") == "cuda":
        where = d.get("device_name") or "CUDA"
    else:
        n = d.get("cpu_threads")
        where = f"CPU, {n} thread{'s' if n != 1 else ''}" if n else "CPU"
    tail = f"{where} · {d.get('date', '')[:10]}" + (" · QUICK RUN" if d.get("quick") else "")
    what = text or d.get("model", "")
    line = f"{what} · {tail}" if len(what) + len(tail) <= 72 else f"{what}\n{tail}"
    fig.supxlabel(line, fontsize=7, color=mpl.rcParams["xtick.color"], linespacing=1.3)  # layout keeps room for it


def _log_ticks(ax, axis, values, fmt="{:g}"):
    """Log axis ticked at the measured values only (no crowded minor labels)."""
    a = ax.xaxis if axis == "x" else ax.yaxis
    (ax.set_xticks if axis == "x" else ax.set_yticks)(values, [fmt.format(v) for v in values])
    a.set_minor_formatter(NullFormatter())


def _first(axes):
    try:
        return axes.flat[0]
    except AttributeError:
        return axes


def _muted():
    return mpl.rcParams["xtick.color"]


def _heat(ax, M, title, labels=None, vmax=None):
    M = np.asarray(M)
    ax.imshow(M, cmap="viridis", vmin=0, vmax=vmax or max(M.max(), 1e-9), aspect="equal")
    ax.set_title(title, fontsize=10)
    ax.grid(False)
    if labels is not None:
        ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=5.5)
        ax.set_yticks(range(len(labels)), labels, fontsize=5.5)
        ax.tick_params(length=0, pad=1)
    else:
        ax.set_xticks([])
        ax.set_yticks([])


# --- 1. pretrained encoder attention --------------------------------------------------------------------------


def run_bert_heads(axes, data):
    d = data["bert_attention"]
    toks = d["example_tokens"]
    for ax, (label, (layer, head)) in zip(axes.flat, d["chosen_heads"].items()):
        _heat(ax, d["example_maps"][label], f"{label}: L{layer + 1} H{head + 1}", labels=toks)
    axes.flat[0].set_ylabel("query")
    axes.flat[2].set_ylabel("query")
    _footer(axes, d, "all-MiniLM-L6-v2; rows: query, columns: key")


def run_bert_targets(ax, data):
    d = data["bert_attention"]
    pl = d["per_layer"]
    layers = np.arange(1, d["layers"] + 1)
    names = {"cls": "[CLS]", "sep": "[SEP]", "self": "itself", "neighbour": "i ± 1", "punct": ". ,", "other": "rest"}
    bottom = np.zeros(len(layers))
    for i, c in enumerate(d["categories"]):
        v = np.asarray(pl[c])
        color = f"C{i}" if c != "other" else _muted()
        ax.bar(layers, v, bottom=bottom, color=color, alpha=0.9 if c != "other" else 0.35, label=names[c], width=0.75)
        bottom += v
    ax.set(xlabel="layer", ylabel="share of attention", ylim=(0, 1), xticks=layers)
    ax.legend(ncols=3, loc="upper center", bbox_to_anchor=(0.5, -0.2), frameon=False)
    ax.grid(axis="x", visible=False)
    ax.set_title(f"mean over {d['heads']} heads and {d['tokens']} tokens", fontsize=10)
    _footer(ax, d, f"all-MiniLM-L6-v2, {d['pairs']} sentence pairs")


# --- 2. tiny GPT: Post-LN vs Pre-LN, warmup ----------------------------------------------------------------------


def _run_style(run):
    color = "C0" if run["arch"] == "post_ln" else "C1"
    ls = "-" if run["warmup"] else "--"
    label = ("Post-LN" if run["arch"] == "post_ln" else "Pre-LN") + (" + warmup" if run["warmup"] else "")
    return dict(color=color, linestyle=ls, label=label)


def _lr(v):
    m, e = f"{v:.0e}".split("e")
    return f"{m}e{int(e)}"


def run_warmup(axes, data):
    d = data["gpt_warmup"]
    runs, lrs = d["runs"], d["config"]["lrs"]
    show = [lrs[len(lrs) // 2], lrs[-1]] if len(lrs) > 1 else [lrs[0], lrs[0]]
    for ax, lr in zip(axes[0], show):
        for r in runs:
            if r["lr"] == lr:
                ax.plot(r["curve_steps"], r["loss"], **_run_style(r), linewidth=1.5)
        ax.axhline(d["unigram_loss"], color=_muted(), linewidth=1, linestyle=":")
        ax.set_title(f"train loss, lr {_lr(lr)}", fontsize=10.5)
        ax.set_xlabel("step")
    axes[0, 0].set_ylabel("loss (nats/char)")
    axes[0, 0].text(0.98, d["unigram_loss"], "unigram", transform=axes[0, 0].get_yaxis_transform(), ha="right",
                    va="bottom", fontsize=8, color=_muted())
    lo = min(min(r["loss"]) for r in runs)
    for ax in axes[0]:
        ax.set_ylim(lo - 0.2, d["unigram_loss"] + 1.2)
    ax = axes[1, 0]
    for arch in ("post_ln", "pre_ln"):
        for w in (False, True):
            rs = [r for r in runs if r["arch"] == arch and r["warmup"] == w]
            ax.plot([r["lr"] for r in rs], [r["val_loss"] if r["val_loss"] is not None else np.nan for r in rs],
                    marker="o", **_run_style(rs[0]))
    ax.axhline(d["unigram_loss"], color=_muted(), linewidth=1, linestyle=":")
    ax.set(xscale="log", xlabel="peak learning rate", ylabel="val loss")
    _log_ticks(ax, "x", lrs, "{:.0e}")
    ax.set_xticks(lrs, [_lr(v) for v in lrs])
    ax.set_title(f"after {d['config']['steps']} steps", fontsize=10.5)
    ax = axes[1, 1]
    n = len(d["init_grad_norm"]["post_ln"])
    for arch, c in (("post_ln", "C0"), ("pre_ln", "C1")):
        ax.plot(range(1, n + 1), d["init_grad_norm"][arch], marker="o", color=c,
                label="Post-LN" if arch == "post_ln" else "Pre-LN")
    ax.set(xlabel="layer", ylabel=r"$\|\nabla W_{FFN}\|$", ylim=(0, None), xticks=range(1, n + 1))
    ax.set_title("at initialisation", fontsize=10.5)
    h, lab = axes[0, 0].get_legend_handles_labels()
    axes[0, 0].figure.legend(h, lab, loc="outside upper center", ncols=2, frameon=False, handlelength=2.4)
    c = d["config"]
    params = d["params"] if "params" in d else c["params"]  # in the config in data written before the SIZES tables
    _footer(axes, d, f"char GPT {c['n_layer']}x{c['n_embd']}, {params / 1e3:.0f}k params, "
                     f"{d['corpus']['chars'] / 1e3:.0f}k chars of cards")


def run_gpt_attention(axes, data):
    d = data["gpt_attention"]
    for ax, (label, (layer, head)) in zip(axes.flat, d["chosen"].items()):
        _heat(ax, d["maps"][label], f"{label}: L{layer + 1} H{head + 1}")
    axes[0, 0].set_ylabel("query position", fontsize=9)
    axes[1, 0].set_ylabel("query position", fontsize=9)
    axes[1, 0].set_xlabel("key position", fontsize=9)
    ax = axes[1, 1]
    P = np.asarray(d["trace_prev"])  # (probes, L, H)
    best = tuple(d["chosen"]["previous char"])
    for layer in range(P.shape[1]):
        for head in range(P.shape[2]):
            hit = (layer, head) == best
            ax.plot(d["trace_steps"], P[:, layer, head], color="C1" if hit else f"C{0 if layer == 0 else 2}",
                    linewidth=2.2 if hit else 1.0, alpha=1 if hit else 0.6, zorder=3 if hit else 2)
    ax.axhline(d["uniform_prev"], color=_muted(), linestyle=":", linewidth=1)
    ax.set(xlabel="step", ylim=(0, 1))
    ax.set_title("share on previous char", fontsize=10)
    ax.text(0.97, 0.95, f"orange: L{best[0] + 1} H{best[1] + 1}\nblue: layer 1\ngreen: layer 2", transform=ax.transAxes,
            ha="right", va="top", fontsize=7.5)
    c = d["config"]
    _footer(axes, d, f"char GPT {c['n_layer']}x{c['n_embd']}, {c['steps']} steps, held-out card text")


# --- 3. initialisation ------------------------------------------------------------------------------------------


def run_init(axes, data):
    d = data["init_spread"]
    depth = np.arange(1, d["depth"] + 1)
    for row, nonlin in enumerate(("tanh", "relu")):
        for col, key in enumerate(("act", "grad")):
            ax = axes[row, col]
            for i, init_name in enumerate(d["inits"]):
                ax.plot(depth, d[key][nonlin][init_name], color=f"C{i}", label=d["init_labels"][init_name])
            ax.set_yscale("log")
            what = "activations $h$" if key == "act" else r"grad $\partial L/\partial z$"
            ax.set_title(f"{'tanh' if nonlin == 'tanh' else 'ReLU'}: {what}", fontsize=10)
            if col == 0:
                ax.set_ylabel("std")
            if row == 1:
                ax.set_xlabel("layer")
    h, lab = axes[0, 0].get_legend_handles_labels()
    axes[0, 0].figure.legend(h, lab, loc="outside upper center", ncols=2, frameon=False)
    _footer(axes, d, f"MLP {d['depth']} layers x {d['width']}, batch {d['batch']}, float64")


# --- 4. distillation --------------------------------------------------------------------------------------------


def run_distillation(axes, data):
    d = data["distillation"]
    ax = axes[0]
    labels = {"hard": "hard labels", "soft_T1": "soft targets, T = 1", "soft_T4": "soft targets, T = 4"}
    for i, m in enumerate(d["methods"]):
        acc = np.asarray(d["acc"][m])  # (fractions, seeds)
        mu, sd = acc.mean(1), acc.std(1)
        ax.plot(d["n_train"], mu, marker="o", color=f"C{i}", label=labels.get(m, m))
        ax.fill_between(d["n_train"], mu - sd, mu + sd, color=f"C{i}", alpha=0.2, linewidth=0)
    ax.axhline(d["teacher"]["test_acc"], color=_muted(), linestyle=":", linewidth=1)
    ax.text(d["n_train"][0], d["teacher"]["test_acc"], " teacher", va="bottom", fontsize=8, color=_muted())
    ax.set(xscale="log", xlabel="training images the student sees", ylabel="student test accuracy")
    ax.legend(loc="lower right")
    ax = axes[1]
    ex = d["example"]
    x = np.arange(10)
    ax.bar(x - 0.2, ex["p_T1"], width=0.4, color="C1", label="T = 1")
    ax.bar(x + 0.2, ex["p_T4"], width=0.4, color="C2", label="T = 4")
    ax.set(xticks=x, xlabel="class", ylabel="teacher probability", yscale="log", ylim=(1e-4, 30))
    ax.set_title(f"teacher's output for a test image of a {ex['label']}", fontsize=10)
    ax.legend(loc="upper left", ncols=2, fontsize=9)
    ax.grid(axis="x", visible=False)
    s, t = d["student"]["sizes"], d["teacher"]["sizes"]
    _footer(axes, d, f"digits; MLP teacher {'-'.join(map(str, t))}, student {'-'.join(map(str, s))}")


# --- 5. class imbalance -----------------------------------------------------------------------------------------


def run_imbalance(axes, data):
    d = data["imbalance"]
    losses, summ = d["losses"], d["summary"]
    ax = axes[0]
    metrics = [("minority_recall", "rare-class\nrecall"), ("minority_pr_auc", "rare-class\nPR-AUC"),
               ("accuracy", "accuracy\n(all)")]
    x = np.arange(len(metrics))
    w = 0.8 / len(losses)
    for i, n in enumerate(losses):
        mu = [summ[n][m][0] for m, _ in metrics]
        sd = [summ[n][m][1] for m, _ in metrics]
        bars = ax.bar(x + (i - (len(losses) - 1) / 2) * w, mu, w, yerr=sd, color=f"C{i}", label=d["loss_labels"][n],
                      capsize=2, error_kw=dict(ecolor=_muted(), linewidth=1))
        ax.bar_label(bars, fmt="%.2f", fontsize=6, padding=1, rotation=90)
    ax.set(xticks=x, xticklabels=[t for _, t in metrics], ylim=(0, 1.12))
    ax.grid(axis="x", visible=False)
    ax.legend(loc="upper center", ncols=2, fontsize=8, bbox_to_anchor=(0.5, 1.28), frameon=False)
    ax = axes[1]
    cls = np.arange(10)
    for i, n in enumerate(losses):
        ax.plot(cls, summ[n]["per_class_recall"], marker="o", color=f"C{i}", label=d["loss_labels"][n])
    for c in d["minority_classes"]:
        ax.axvspan(c - 0.4, c + 0.4, color=_muted(), alpha=0.15, linewidth=0)
    ax.set(xticks=cls, xlabel="digit (shaded: rare in training)", ylabel="test recall", ylim=(0, 1.05))
    counts = d["train_counts"]
    rare = int(counts[d["minority_classes"][0]])
    common = int(np.median([c for i, c in enumerate(counts) if i not in d["minority_classes"]]))
    _footer(axes, d, f"digits: {rare} vs ~{common} images per class, MLP, {d['seeds']} seeds")


# --- 6. L1 vs L2 ------------------------------------------------------------------------------------------------


def run_l1_l2(axes, data):
    d = data["l1_l2"]
    lam = d["lambda"]
    ax = axes[0]
    for i, pen in enumerate(("l1", "l2")):
        ax.plot(lam, np.asarray(d["zero_frac"][pen]) * 100, marker="o", color=f"C{i}", label=pen.upper())
    ax.set(xscale="log", xlabel=r"penalty strength $1/C$", ylabel="weights exactly 0 (%)", ylim=(-3, 103))
    ax.legend(loc="upper left")
    ax2 = ax.twinx()
    for i, pen in enumerate(("l1", "l2")):
        ax2.plot(lam, d["test_acc"][pen], color=f"C{i}", linestyle=":", linewidth=1.3)
    ax2.set_ylabel("test accuracy (dotted)")
    ax2.set_ylim(0, 1.02)
    ax2.grid(False)
    ax2.spines["right"].set_visible(True)
    ax = axes[1]
    for i, pen in enumerate(("l1", "l2")):
        w = np.asarray(d["abs_weights"][pen])
        ax.hist(np.log10(np.maximum(w, 1e-6)), bins=40, range=(-6, 1), color=f"C{i}", alpha=0.6, label=pen.upper())
    ax.set(xlabel=r"$\log_{10}|w|$ at $C = 0.1$ (exact zeros at $-6$)", ylabel="weights")
    ax.legend(loc="upper left")
    _footer(axes, d, f"logistic regression on digits, {d['n_weights']} weights")


# --- 7. MoE load balancing --------------------------------------------------------------------------------------


def run_moe(axes, data):
    d = data["moe_balance"]
    E = d["experts"]
    ax = axes[0]
    labels = {"no_aux": "no balancing loss", "aux": rf"+ balancing loss ($\alpha$ = {d['alpha']:g})"}
    x = np.arange(1, E + 1)
    for i, name in enumerate(("no_aux", "aux")):
        loads = np.asarray([r["load"] for r in d["runs"][name]])  # (seeds, E)
        loads = -np.sort(-loads, axis=1)  # experts ranked by load, per seed
        ax.bar(x + (i - 0.5) * 0.4, loads.mean(0), 0.4, yerr=loads.std(0), color=f"C{i}", label=labels[name],
               capsize=2, error_kw=dict(ecolor=_muted(), linewidth=1))
    ax.axhline(d["uniform_share"], color=_muted(), linestyle=":", linewidth=1)
    ax.set(xticks=x, xlabel="expert (ranked by load)", ylabel="share of routed slots")
    ax.legend(loc="upper right", fontsize=9)
    ax.grid(axis="x", visible=False)
    ax = axes[1]
    for i, name in enumerate(("no_aux", "aux")):
        for j, r in enumerate(d["runs"][name]):
            L = np.asarray(r["trace_load"])  # (points, E), measured on the test images
            cv = L.std(1) / L.mean(1)
            ax.plot(r["trace_steps"], cv, color=f"C{i}", alpha=0.85, linewidth=1.3,
                    label=labels[name] if j == 0 else None)
    ax.set(xlabel="training step", ylabel="load CV (std / mean)", ylim=(0, None))
    _footer(axes, d, f"top-{d['top_k']} MoE, {E} experts, digits, {d['seeds']} seeds")


# --- 8. adaptive softmax ----------------------------------------------------------------------------------------


def run_adaptive_softmax(axes, data):
    d = data["adaptive_softmax"]
    V = np.asarray(d["vocab"])
    ax = axes[0]
    ax.plot(V, np.asarray(d["time_full_s"]) * 1e3, marker="o", color="C0", label="full softmax")
    ax.plot(V, np.asarray(d["time_adaptive_s"]) * 1e3, marker="o", color="C1", label="adaptive softmax")
    ax.set_title("one training step (forward + backward)", fontsize=10)
    ax.set(xscale="log", yscale="log", ylabel="ms per step")
    _log_ticks(ax, "x", list(V), "{:.0f}")
    ax.set_xticks(list(V), [f"{v / 1000:g}k" for v in V])
    ax.legend(loc="upper left")
    ax = axes[1]
    ax.bar(range(len(V)), d["speedup"], color="C2")
    for i, s in enumerate(d["speedup"]):
        ax.text(i, s, f"×{s:.1f}", ha="center", va="bottom", fontsize=9)
    ax.set(xticks=range(len(V)), xticklabels=[f"{v / 1000:g}k" for v in V], xlabel="vocabulary size",
           ylabel="speed-up", ylim=(0, max(d["speedup"]) * 1.2))
    ax.grid(axis="x", visible=False)
    _footer(axes, d, f"output layer d={d['d_model']}, {d['tokens_per_step']} Zipf targets/step")


# --- 9. attention cost ------------------------------------------------------------------------------------------


def run_attention_cost(axes, data):
    d = data["attention_cost"]
    a = d["attention"]
    ax = axes[0]
    ax.plot(a["lengths"], np.asarray(a["time_naive_s"]) * 1e3, marker="o", color="C0", label="naive softmax(QKᵀ)V")
    ax.plot(a["lengths"], np.asarray(a["time_sdpa_s"]) * 1e3, marker="o", color="C1", label="fused SDPA")
    ax.set(xscale="log", yscale="log", xlabel="sequence length", ylabel="ms (forward)")
    _log_ticks(ax, "x", a["lengths"])
    ax.set_title(f"causal attention, {a['batch']}×{a['heads']} heads of {a['head_dim']}", fontsize=10)
    ax.legend(loc="upper left", fontsize=9)
    g = d["generation"]
    ax = axes[1]
    ax.plot(g["new_tokens"], g["time_nocache_s"], marker="o", color="C0", label="recompute the prefix")
    ax.plot(g["new_tokens"], g["time_cache_s"], marker="o", color="C1", label="KV cache")
    ax.set(xscale="log", yscale="log", xlabel="generated tokens", ylabel="seconds")
    _log_ticks(ax, "x", g["new_tokens"])
    ax.set_title("greedy generation, tiny GPT 4×256", fontsize=10)
    ax.legend(loc="upper left", fontsize=9)
    k = d["kv_cache"]["big"]
    ax = axes[2]
    for i, name in enumerate(("MHA", "GQA", "MQA")):
        y = np.asarray(k["bytes"][name]) / 2**30
        ax.plot(k["contexts"], y, marker="o", color=f"C{i}", label=f"{name}: {k['kv_heads'][name]} KV heads")
    ax.set(xscale="log", yscale="log", xlabel="context length (tokens)", ylabel="KV cache (GiB)")
    _log_ticks(ax, "x", k["contexts"], "{:.0f}")
    ax.set_xticks(k["contexts"], [f"{c // 1024}k" for c in k["contexts"]])
    ax.set_title("KV cache of one sequence, 7B shape, fp16", fontsize=10)
    ax.set_ylim(top=ax.get_ylim()[1] * 30)
    ax.legend(loc="upper left", fontsize=8.5)
    for ax in axes:
        ax.yaxis.set_minor_formatter("")
    _footer(axes, d, "PyTorch timings")


# --- 10. diffusion on two moons: DDPM vs DDIM vs flow matching --------------------------------------------------

_SAMPLERS = {  # method -> (label, colour, marker)
    "ddim": ("DDIM, η = 0", "C0", "o"),
    "ancestral": ("ancestral, η = 1", "C1", "s"),
    "flow": ("rectified flow, Euler", "C2", "^"),
}


def _sampler_lines(ax, d, x_key):
    res = d["results"]
    for m, (label, c, mk) in _SAMPLERS.items():
        rows = sorted((r for r in res.values() if r["method"] == m), key=lambda r: r["nfe"])
        ax.plot([r[x_key] for r in rows], [r["swd_mean"] for r in rows], marker=mk, color=c, label=label,
                markersize=5)
    full = next(r for r in res.values() if r["method"] == "ddpm")
    ax.plot([full[x_key]], [full["swd_mean"]], marker="*", markersize=12, color="C1", linestyle="none",
            label=f"DDPM ancestral, {full['nfe']} steps")
    ax.axhline(d["floor"]["swd"], color=_muted(), linestyle=":", linewidth=1)
    ax.set(xscale="log", yscale="log")
    ax.yaxis.set_minor_formatter(NullFormatter())


def run_ddpm_2d_steps(axes, data):
    d = data["ddpm_2d"]
    ax = axes[0]
    _sampler_lines(ax, d, "nfe")
    nfes = sorted({r["nfe"] for r in d["results"].values()})
    _log_ticks(ax, "x", nfes)
    ax.set(xlabel="sampling steps (network calls)", ylabel="sliced W₁")
    ax.set_title("distance of the samples to held-out points", fontsize=10)
    ax.text(nfes[0], d["floor"]["swd"], "real vs real", va="bottom", fontsize=8, color=_muted())
    h, lab = ax.get_legend_handles_labels()
    ax.figure.legend(h, lab, loc="outside upper center", ncols=2, frameon=False, fontsize=8.5, handlelength=1.6)
    ax = axes[1]
    _sampler_lines(ax, d, "time_s")
    ax.set(xlabel=f"wall time for {d['data']['eval_points']} samples (s)", ylabel="sliced W₁")
    ax.xaxis.set_minor_formatter(NullFormatter())
    n = d["net"]
    _footer(axes, d, f"two moons; MLP {n['hidden']}×{n['blocks']} blocks, {n['params'] / 1e3:.0f}k params, "
                     f"T = {d['schedule']['T']}")


def _cloud(ax, pts, color, title):
    p = np.asarray(pts)
    ax.scatter(p[:, 0], p[:, 1], s=1.2, color=color, alpha=0.7, linewidths=0, rasterized=True)
    ax.set(xlim=(-3, 3), ylim=(-3, 3), xticks=[], yticks=[], aspect="equal")
    ax.set_title(title, fontsize=9)
    ax.grid(False)


def run_ddpm_2d_process(axes, data):
    d = data["ddpm_2d"]
    sn = d["snapshots"]
    T = d["schedule"]["T"]
    for ax, t in zip(axes[0], sn["ddpm_t"]):
        _cloud(ax, sn["points"]["ddpm"][str(t)], "C1", f"t = {T if t == T - 1 else t}")
    for ax, t in zip(axes[1], sn["flow_t"]):
        _cloud(ax, sn["points"]["flow"][f"{t:g}"], "C2", f"t = {t:g}")
    axes[0, 0].set_ylabel(f"DDPM\n{T} steps", fontsize=9)
    axes[1, 0].set_ylabel(f"flow\n{sn['flow_steps']} steps", fontsize=9)
    _footer(axes, d, "two moons: samples along the reverse process (DDPM) and the ODE (flow)")


def _log_y_plain(ax):
    """Log y axis labelled 0.1, 0.2, 0.5, 1, 2 ... (a loss spanning less than a decade gets readable ticks)."""
    from matplotlib.ticker import FuncFormatter, LogLocator

    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(subs=(1, 2, 3, 5)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def run_diffusion_loss(axes, data):
    d = data["ddpm_2d"]
    ax = axes[0]
    ax.plot(d["loss"]["steps"], d["loss"]["ddpm"], color="C1", label="DDPM: ε-MSE")
    ax.plot(d["loss"]["steps"], d["loss"]["flow"], color="C2", label="flow: (x₁ − x₀)-MSE")
    ax.set(xlabel="step", ylabel="train loss")
    _log_y_plain(ax)
    ax.set_title("two moons, same MLP", fontsize=10)
    ax.legend(loc="center right", fontsize=8.5)
    c = data["cfg_digits"]
    ax = axes[1]
    ax.plot(c["loss"]["steps"], c["loss"]["ddpm"], color="C0",
            label=f"ε-MSE, label dropped {c['train']['p_uncond']:.0%}")
    ax.set(xlabel="step", ylabel="train loss")
    _log_y_plain(ax)
    ax.set_title("8×8 digits, class-conditional", fontsize=10)
    ax.legend(loc="upper right", fontsize=8.5)
    _footer(axes, d, "running means of the minibatch loss")


# --- 11. classifier-free guidance on digits ---------------------------------------------------------------------


def run_cfg_digits(axes, data):
    d = data["cfg_digits"]
    sw, real = d["sweep"], d["real"]
    w = [s["w"] for s in sw]
    ax = axes[0]
    ax.plot(w, [s["acc"] for s in sw], marker="o", color="C0", label="classifier accuracy")
    ax.plot(w, [s["precision"] for s in sw], marker="s", color="C1", label="precision")
    ax.set(ylabel="fidelity", ylim=(0, 1.05), xticks=w)
    ax.set_title("ε̃ = ε_u + w (ε_c − ε_u)", fontsize=10)
    ax.legend(loc="lower right", fontsize=8.5)
    ax = axes[1]
    ax.plot(w, [s["recall"] for s in sw], marker="o", color="C2", label="recall (all classes)")
    ax.plot(w[1:], [s["recall_in_class"] for s in sw[1:]], marker="s", color="C3", label="recall within class")
    ax.axhline(real["recall_in_class"], color=_muted(), linestyle=":", linewidth=1)
    ax.text(w[-1], real["recall_in_class"], f"real test images ({real['images']})", ha="right", va="bottom",
            fontsize=7.5, color=_muted())
    ax.set(xlabel="w (0: unconditional, 1: conditional)", ylabel="diversity", ylim=(0, 1.05), xticks=w)
    ax.legend(loc="lower center", fontsize=8.5)
    _footer(axes, d, f"digits; {d['samples']} samples per w, DDIM {d['sampler']['steps']} steps; "
                     f"MLP classifier {d['classifier']['test_acc']:.0%} on real")


def _mosaic(images, rows, cols, pad=1):
    """(rows*cols) 8x8 images (row-major lists of 64 pixels) -> one array with ``pad`` blank pixels between."""
    M = np.full((rows * (8 + pad) - pad, cols * (8 + pad) - pad), np.nan)
    for i in range(rows):
        for j in range(cols):
            M[i * (8 + pad):i * (8 + pad) + 8, j * (8 + pad):j * (8 + pad) + 8] = np.reshape(images[i][j], (8, 8))
    return M


def _digits_panel(ax, images, row_labels, title):
    rows, cols = len(images), len(images[0])
    # ink on the page: dark strokes on white in the light variant, light strokes on black in the dark one, so that
    # a blank pixel and the gaps between the images have the background's tone (strokes keep their shape)
    light = np.mean(mpl.colors.to_rgb(mpl.rcParams["axes.facecolor"])) > 0.5
    cmap = mpl.colormaps["gray_r" if light else "gray"].with_extremes(bad=(0, 0, 0, 0))
    ax.imshow(_mosaic(images, rows, cols), cmap=cmap, vmin=0, vmax=16, interpolation="nearest")
    ax.set_yticks([i * 9 + 3.5 for i in range(rows)], row_labels, fontsize=8.5)
    ax.set_xticks([j * 9 + 3.5 for j in range(cols)], [str(j) for j in range(cols)], fontsize=8.5)
    ax.tick_params(length=0, pad=2)
    for s in ax.spines.values():
        s.set_visible(False)
    ax.grid(False)
    ax.set_title(title, fontsize=10)


def run_cfg_digits_samples(axes, data):
    d = data["cfg_digits"]
    g, p = d["grid"], d["process"]
    _digits_panel(axes[0], g["images"], [f"w = {w:g}" for w in g["w"]], "same noise; rows: w")
    rows = [i for i, t in enumerate(p["t"]) if t <= 300 or i == 0]  # the pure-noise start, then where digits form
    _digits_panel(axes[1], [p["x"][i] for i in rows], [f"t = {p['t'][i]}" for i in rows],
                  f"x_t along {d['sampler']['steps']} DDIM steps, w = {p['w']:g}")
    _footer(axes, d, f"class-conditional MLP DDPM on 8×8 digits, {d['net']['params'] / 1e3:.0f}k params")
