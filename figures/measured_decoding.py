"""Measured figures of part 5.2 (decoding): speculative sampling and the temperature / top-p sweep, drawn from
figures/data/llm_decoding.json (figures/experiments/llm_decoding.py). Shared helpers come from measured.py."""

import numpy as np

from .measured import _footer, _muted


def _measured_and_theory(ax, drafts, measured, theory, label):
    """Per draft, ``measured`` against k as dots on a line and ``theory`` dashed in the same colour; returns the ks."""
    for i, (name, v) in enumerate(drafts.items()):
        ks = [r["k"] for r in v["by_k"]]
        ax.plot(ks, [r[measured] for r in v["by_k"]], marker="o", color=f"C{i}", label=label(name, v))
        ax.plot(ks, [r[theory] for r in v["by_k"]], color=f"C{i}", linestyle="--", linewidth=1)
    return ks


def run_spec_decoding(axes, data):
    """(1) tokens per target forward vs k, per draft, measured and expected; (2) measured vs expected speed-up."""
    d = data["llm_decoding"]
    s = d["spec"]
    ax = axes[0]
    ks = _measured_and_theory(ax, s["drafts"], "tokens_per_target_forward", "tokens_theory",
                              lambda name, v: f"draft {name}: α ≈ {v['alpha_mean']:.2f}")
    ax.plot(ks, [k + 1 for k in ks], color=_muted(), linestyle=":", linewidth=1, label="k + 1 (all accepted)")
    ax.set(ylabel="tokens / round", xticks=ks)
    ax.set_title("tokens per round: measured (dots), theory (dashed)", fontsize=9.5)
    ax.legend(fontsize=8, loc="upper left")

    ax = axes[1]
    _measured_and_theory(ax, s["drafts"], "speedup", "speedup_theory", lambda name, v: f"{name}, c = {v['c']:.2f}")
    ax.axhline(1, color=_muted(), linewidth=1, linestyle=":")
    ax.set(xlabel="draft length k", ylabel="speed-up", xticks=ks)
    ax.set_title("wall-clock speed-up (dots), theory (dashed)", fontsize=9.5)
    ax.legend(fontsize=8, loc="best")

    t = d["models"]["target"]
    _footer(axes, d, f"char GPTs, target {t['layers']}x{t['d_model']}, T = 1, batch 1")


def run_spec_tv(ax, data):
    """TV of the first emitted token to the target's p: speculative, direct samples, the draft itself."""
    d = data["llm_decoding"]
    dist = d["distribution"]
    pre = dist["prefixes"]
    x = np.arange(len(pre))
    w = 0.27
    ax.bar(x - w, [p["tv_spec"] for p in pre], w, color="C0", label="speculative vs p")
    ax.bar(x, [p["tv_direct"] for p in pre], w, color="C2", label="direct samples vs p")
    ax.bar(x + w, [p["tv_draft"] for p in pre], w, color="C1", label=f"draft q ({dist['draft']}) vs p")
    ax.set(ylabel="total variation", xticks=x, xticklabels=[f"prefix {i + 1}" for i in x])
    ax.set_title(f"first emitted token, {dist['samples']} samples per prefix", fontsize=9.5)
    ax.legend(fontsize=8, loc="upper left")
    ax.set_ylim(top=ax.get_ylim()[1] * 1.45)
    ax.grid(axis="x", visible=False)
    _footer(ax, d, f"char GPTs, target {d['models']['target']['layers']}x{d['models']['target']['d_model']}, T = 1")


def _sweep_lines(ax, rows, key):
    for kind, color, label, pkey, fmt in (("temperature", "C0", "temperature (top-p 1)", "temperature", "T {:g}"),
                                          ("top_p", "C1", "top-p (T 1)", "top_p", "p {:g}")):
        rs = [r for r in rows if r["kind"] == kind]
        x, y = [r["nll"] for r in rs], [r[key] for r in rs]
        ax.plot(x, y, marker="o", color=color, label=label, markersize=4.5)
        for r, xi, yi in zip(rs, x, y):
            ends = (rs[0][pkey], rs[-1][pkey])
            if r[pkey] in ends + (1.0 if kind == "temperature" else 0.9,) and not (kind == "top_p" and r[pkey] == 1.0):
                ax.annotate(fmt.format(r[pkey]), (xi, yi), textcoords="offset points", fontsize=7, color=color,
                            xytext=(4, -9 if kind == "top_p" else 4))
    for kind, marker, color, label in (("greedy", "*", "C3", "greedy"), ("human", "D", "C2", "held-out text")):
        r = next(r for r in rows if r["kind"] == kind)
        ax.plot([r["nll"]], [r[key]], marker=marker, color=color, linestyle="none", markersize=10 if marker == "*"
                else 6, label=label)


def run_decoding_sweep(axes, data):
    """distinct-2 and the repeated-4-gram share against the samples' NLL under the untempered target."""
    d = data["llm_decoding"]
    sw = d["sweep"]
    rows = sw["rows"]
    ax = axes[0]
    _sweep_lines(ax, rows, "distinct_2")
    ax.set(ylabel="distinct-2", ylim=(0, 1.05))
    ax.set_title(f"{sw['prompts']} held-out prompts × {sw['new_tokens']} chars", fontsize=9.5)
    ax.legend(fontsize=8, loc="lower right")
    ax = axes[1]
    _sweep_lines(ax, rows, "repeat_4")
    ax.set(xlabel="NLL of the samples (nats / char)", ylabel="repeated 4-grams",
           ylim=(-0.03, 1.0))
    t = d["models"]["target"]
    _footer(axes, d, f"char GPT {t['layers']}x{t['d_model']} trained on the cards")
