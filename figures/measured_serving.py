"""Measured figures of part 5.2 (serving): quantisation of all-MiniLM-L6-v2 and prefill vs decode timing, drawn
from figures/data/quantization.json and prefill_decode.json (figures/experiments/). Shared helpers: measured.py."""

import numpy as np

from .measured import _footer, _muted

_WEIGHT_LABELS = {"int8_tensor": "INT8\ntensor", "int8_channel": "INT8\nchannel", "int4_tensor": "INT4\ntensor",
                  "int4_channel": "INT4\nchannel", "int4_group": "INT4\ngroup"}


def _bars(ax, labels, values, colors, fmt):
    x = np.arange(len(values))
    ax.bar(x, values, color=colors, width=0.65)
    ax.set_xticks(x, labels, fontsize=9)
    for xi, v in zip(x, values):
        ax.annotate(fmt.format(v), (xi, v), xytext=(0, 2), textcoords="offset points", ha="center", va="bottom",
                    fontsize=8.5)
    ax.grid(axis="x", visible=False)


def run_quantization(axes, data):
    """(1) relative weight error per scheme; (2) 1 - cosine of the sentence embeddings against fp32 (log)."""
    d = data["quantization"]
    schemes = [s for s in _WEIGHT_LABELS if s in d["weight"]]
    labels = [_WEIGHT_LABELS[s] for s in schemes]
    # one colour per granularity: per tensor C3, per channel C0, per group C2
    colors = [{"tensor": "C3", "channel": "C0", "group": "C2"}[d["weight"][s]["granularity"]] for s in schemes]
    err = [d["weight"][s]["rel_weight_error"] for s in schemes]
    _bars(axes[0], labels, err, colors, "{:.3f}")
    axes[0].set(ylabel="‖W − Ŵ‖ / ‖W‖", ylim=(0, max(err) * 1.25))
    axes[0].set_title("relative weight error, all 36 Linear layers", fontsize=10)
    gap = [d["weight"][s]["one_minus_cos_mean"] for s in schemes]
    _bars(axes[1], labels, gap, colors, "{:.2g}")
    axes[1].set_yscale("log")
    axes[1].set(ylabel="1 − cos vs fp32", ylim=(min(gap) / 3, max(gap) * 6))
    axes[1].set_title(f"sentence embeddings of {d['sentences']} card fronts", fontsize=10)
    _footer(axes, d, "all-MiniLM-L6-v2, weight-only, round to nearest")


def run_quant_outliers(axes, data):
    """(1) per-input-channel max |x|, sorted, of a LayerNorm output vs an attention output; (2) W8A8: 1 - cosine with
    activations per tensor, with LLM.int8()'s fp columns and with SmoothQuant."""
    d = data["quantization"]
    o = d["outliers"]
    ax = axes[0]
    for key, color, label in (("shown", "C3", "LayerNorm output"), ("control", "C0", "attention output")):
        c = o[key]
        ax.semilogy(np.asarray(c["rank"]) + 1, c["sorted_amax"], color=color,
                    label=f"{label} (max/median {c['ratio']:.0f})")
    ax.set_xscale("log")
    ax.set(xlabel="input channel, by max |x| (rank)", ylabel="max |x|")
    ax.set_title(f"activation outliers, {o['shown']['width']} channels", fontsize=10)
    top = max(max(o[k]["sorted_amax"]) for k in ("shown", "control"))
    low = min(min(o[k]["sorted_amax"]) for k in ("shown", "control"))
    ax.set_ylim(low / 1.5, top * 30)  # room for the legend above the curves
    ax.legend(fontsize=8.5, loc="upper right")

    ax = axes[1]
    act = d["activation"]
    sites = [("ln_inputs", "LayerNorm-fed"), ("all_inputs", "all 36")]
    schemes = [("per_tensor", "per tensor", "C3"), ("int8_decomp", "LLM.int8() fp cols", "C2"),
               ("smoothquant", "SmoothQuant", "C0")]
    width = 0.26
    for j, (scheme, label, color) in enumerate(schemes):
        ys = [act[site][scheme]["one_minus_cos_mean"] for site, _ in sites]
        ax.bar(np.arange(len(sites)) + (j - 1) * width, ys, width, color=color, label=label)
    ax.axhline(act["w8_only"]["one_minus_cos_mean"], color=_muted(), linestyle=":", linewidth=1.2,
               label="weights INT8 only")
    ax.set_yscale("log")
    ax.set_xticks(range(len(sites)), [f"activations INT8:\n{name} inputs" for _, name in sites], fontsize=9)
    ax.set(ylabel="1 − cos vs fp32")
    ax.set_title("W8A8 (weights per channel)", fontsize=10)
    ax.grid(axis="x", visible=False)
    ax.legend(fontsize=8, loc="upper left", ncols=2)
    values = [act[site][s]["one_minus_cos_mean"] for site, _ in sites for s, _, _ in schemes]
    low, high = min(values + [act["w8_only"]["one_minus_cos_mean"]]) / 2, max(values) * 60  # legend room on top
    ax.set_ylim(low, high)
    ax.set_yticks([10.0**e for e in range(-6, 3) if low <= 10.0**e <= high])
    _footer(axes, d, "all-MiniLM-L6-v2, fake quantisation")


def run_prefill_decode(ax, data):
    """Time per token against batch size: prefill (B prompts at once) and decode (one token per sequence)."""
    d = data["prefill_decode"]
    rows = d["rows"]
    b = [r["batch"] for r in rows]
    ax.loglog(b, [r["decode_per_token_s"] * 1e3 for r in rows], marker="o", color="C3", label="decode, per token")
    ax.loglog(b, [r["decode_step_s"] * 1e3 for r in rows], marker="o", color="C3", linestyle="--", linewidth=1.2,
              markersize=4, label="decode, per step")
    ax.loglog(b, [r["prefill_per_token_s"] * 1e3 for r in rows], marker="s", color="C0",
              label=f"prefill, per token (L = {d['prompt']})")
    ideal = [rows[0]["decode_per_token_s"] * 1e3 / x for x in b]
    ax.loglog(b, ideal, color=_muted(), linestyle=":", linewidth=1, label="∝ 1/B")
    ax.set_xticks(b, [str(x) for x in b])
    ax.set(xlabel="batch size B", ylabel="milliseconds")
    ax.figure.legend(loc="outside upper center", ncols=2, fontsize=8.5, frameon=False)
    g = d["gpt"]
    _footer(ax, d, f"GPT {g['n_layer']}x{g['n_embd']}, {g['parameters'] / 1e6:.1f} M params, KV cache")
