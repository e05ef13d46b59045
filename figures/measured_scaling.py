"""Measured scaling figures (``run-*`` of part 5.4): IsoFLOP profiles of tiny character GPTs (figures/data/
scaling_mini.json, written by figures/experiments/scaling_mini.py). Shared helpers come from measured.py."""

import numpy as np

from .measured import _footer, _muted


def _sci(c):
    """3e9 -> '3·10⁹' (a compute budget in FLOPs)."""
    e = int(np.floor(np.log10(c) + 1e-9))
    m = c / 10 ** e
    sup = str(e).translate(str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹"))
    return f"10{sup}" if abs(m - 1) < 1e-6 else f"{m:g}·10{sup}"


def _k(n):
    return f"{n / 1000:.1f}k" if n < 10_000 else f"{n / 1000:.0f}k"


def run_scaling_mini(axes, data):
    d = data["scaling_mini"]
    runs, fits = d["runs"], d["fits"]
    ax = axes[0]
    for j, f in enumerate(fits):
        C, col = f["budget"], f"C{j}"
        rs = [r for r in runs if r["budget"] == C]
        N = np.asarray([r["N"] for r in rs], float)
        L = [r["loss"] for r in rs]
        ax.plot(N, L, "o", color=col, markersize=5)
        ax.annotate(_sci(C), (N[-1], L[-1]), textcoords="offset points", xytext=(0, 6), ha="center",
                    va="bottom", fontsize=8.5, color=col)
        x = np.linspace(np.log10(N.min()), np.log10(N.max()), 60)
        ax.plot(10 ** x, np.polyval(f["coef"], x), color=col, linewidth=1.4)
        if f["inside"]:
            ax.plot(f["n_opt"], f["loss_opt"], marker="*", markersize=13, color=col, markeredgecolor=_muted(),
                    markeredgewidth=0.6, linestyle="none")
    opt = [(f["n_opt"], f["loss_opt"]) for f in fits if f["inside"]]
    if len(opt) > 1:
        ax.plot(*zip(*opt), color=_muted(), linestyle=":", linewidth=1)
    top = max(r["loss"] for r in runs)
    ax.set_ylim(top=top + 0.22 * (top - min(r["loss"] for r in runs)))
    ax.set(xscale="log", xlabel="non-embedding parameters N", ylabel="held-out loss")
    ax.set_title("fixed compute C (FLOPs), D = C / 6N tokens", fontsize=10)

    ax = axes[1]
    Cs = np.asarray([f["budget"] for f in fits], float)
    Ns = np.asarray([f["n_opt"] for f in fits], float)
    inside = np.asarray([f["inside"] for f in fits])
    for j in range(len(fits)):
        ax.plot(Cs[j], Ns[j], marker="*" if inside[j] else "o", markersize=13 if inside[j] else 7,
                color=f"C{j}", markeredgecolor=_muted(), markeredgewidth=0.6, linestyle="none")
    cc = np.geomspace(Cs.min() / 1.6, Cs.max() * 1.6, 20)
    s = d["scaling"]
    if "n_opt" in s:
        ax.plot(cc, s["n_opt"]["G"] * cc ** s["n_opt"]["a"], color="C0",
                label=f"fit: N* ∝ C^{s['n_opt']['a']:.2f}")
    ax.plot(cc, np.sqrt(cc / 120), color=_muted(), linestyle="--", linewidth=1,
            label="D = 20 N (Chinchilla's ratio)")
    for j, f in enumerate(fits):
        ax.annotate(f"{f['tokens_per_param_opt']:.0f}", (Cs[j], Ns[j]), textcoords="offset points",
                    xytext=(0, -16), ha="center", fontsize=8.5)
    ax.set(xscale="log", yscale="log", xlabel="compute C = 6ND (FLOPs)", ylabel="optimal N*")
    ax.set_ylim(Ns.min() / 2.2, None)
    ax.set_title(f"N* and tokens per parameter; L* ∝ C^−{s['loss']['b']:.3f}", fontsize=10)
    ax.legend(loc="upper left", fontsize=8)
    _footer(axes, d, f"char GPTs, {len(runs)} runs, {d['tokens_per_step']} tokens/step, cards text")
