"""Measured figures of parts 5.4 and 5.5 on the deck's own text: byte-level BPE (bpe_deck) and retrieval over the
deck's notes (retrieval_deck). Same conventions as measured.py (theme colours only, provenance footer)."""

import numpy as np

from .measured import _footer, _log_ticks, _muted

LANG = {"zh": ("Chinese (CJK runs)", "C0"), "en": ("English/ASCII runs", "C1")}


def run_bpe_deck(axes, data):
    d = data["bpe_deck"]
    rows, wp = d["bpe"], d["wordpiece"]
    V = [r["vocab"] for r in rows]
    ax = axes[0]
    for k, (label, c) in LANG.items():
        ax.plot(V, [r["tokens_per_char"][k] for r in rows], marker="o", color=c, label=f"BPE, {label}")
        ax.plot([wp["vocab"]], [wp["tokens_per_char"][k]], marker="D", markersize=7, linestyle="none",
                markerfacecolor="none", markeredgewidth=1.6, color=c)
    ax.annotate(f"WordPiece\n[UNK] {wp['unk_share']['zh']:.0%}", (wp["vocab"], wp["tokens_per_char"]["zh"]),
                xytext=(0, 8), textcoords="offset points", ha="center", va="bottom", fontsize=8)
    ax.axhline(1.0, color=_muted(), linewidth=0.8, linestyle=":")
    ax.set(xscale="log", ylabel="tokens per character", ylim=(0, 3.25))
    ticks = [*V[::2], wp["vocab"]] if len(V) > 4 else [*V, wp["vocab"]]
    _log_ticks(ax, "x", ticks)
    ax.set_xticks(ticks, [f"{v / 1000:.3g}k" if v >= 1000 else str(v) for v in ticks])
    ax.set_title("held-out card text (last 10%)", fontsize=10)
    ax.legend(loc="upper right", fontsize=8)
    ax = axes[1]
    ax.plot(V, [r["cjk_char_coverage"] for r in rows], marker="o", color="C0",
            label="Chinese chars that are 1 token")
    ax.plot(V, [r["cjk_tokens"] / r["vocab"] for r in rows], marker="s", color="C2",
            label="vocab entries holding CJK")
    ax.set(xscale="log", xlabel="BPE vocabulary size (256 bytes + merges)", ylabel="share", ylim=(0, 1.05),
           xlim=axes[0].get_xlim())
    _log_ticks(ax, "x", V[::2] if len(V) > 4 else V)
    ax.set_xticks(V[::2] if len(V) > 4 else V,
                  [f"{v / 1000:.3g}k" if v >= 1000 else str(v) for v in (V[::2] if len(V) > 4 else V)])
    ax.legend(loc="lower right", fontsize=8)
    _footer(axes, d, f"byte-level BPE (tokenizers {d['versions'].get('tokenizers', '?')}) on the cards; "
                     f"WordPiece: MiniLM")


METHODS = {"bm25": ("BM25", "C0"), "dense": ("MiniLM dense", "C1"), "rrf": ("RRF k=60", "C2"),
           "minmax": ("min-max sum", "C3")}


def run_retrieval_deck(axes, data):
    d = data["retrieval_deck"]
    res = d["results"]
    metrics = ["recall@1", "recall@5", "recall@10", "mrr"]
    axes[0].get_gridspec().set_height_ratios([2.2, 1])  # the bars need the room, the one stacked bar does not
    ax = axes[0]
    w = 0.8 / len(METHODS)
    x = np.arange(len(metrics))
    for i, (m, (label, c)) in enumerate(METHODS.items()):
        ax.bar(x + (i - 1.5) * w, [res[m]["all"][k] for k in metrics], width=w, color=c, label=label)
    ax.plot(x, [d["random"][k] for k in metrics], linestyle="none", marker="_", markersize=14, color=_muted(),
            label="random")
    ax.set(xticks=x, xticklabels=["R@1", "R@5", "R@10", "MRR"], ylim=(0, 1.32), yticks=[0, 0.25, 0.5, 0.75, 1],
           ylabel="score")
    ax.grid(axis="x", visible=False)
    ax.legend(ncols=3, fontsize=7.5, loc="upper left", columnspacing=0.8, handlelength=1.2)
    n = d["notes"]
    ax.set_title(f"{n['used']} queries (Front) vs {n['used']} docs (Back)", fontsize=10)
    ax = axes[1]
    o = d["top10_overlap"]
    parts = [("both", "both", "C4"), ("bm25_only", "BM25 only", "C0"), ("dense_only", "dense only", "C1"),
             ("neither", "neither", _muted())]
    left = 0.0
    for key, label, c in parts:
        ax.barh([0], [o[key]], left=left, color=c, label=label, height=0.5, alpha=0.9 if key != "neither" else 0.4)
        if o[key] > 0.06:
            ax.text(left + o[key] / 2, 0, f"{o[key]:.0%}", ha="center", va="center", fontsize=8.5, color="white")
        left += o[key]
    ax.set(xlim=(0, 1), ylim=(-0.4, 0.4), yticks=[])
    ax.set_title("share of queries with the positive in the top 10 of", fontsize=10)
    ax.legend(ncols=4, fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.3), frameon=False)
    ax.grid(axis="y", visible=False)
    _footer(axes, d, "BM25 (zh bigrams + en words) and all-MiniLM-L6-v2 on the deck")


def run_infonce_temperature(axes, data):
    d = data["retrieval_deck"]
    temp = d["temperature"]
    taus = [r["tau"] for r in temp]
    ax = axes[0]
    ax.plot(taus, [r["entropy"] / d["uniform_entropy"] for r in temp], marker="o", color="C0",
            label="entropy / log N")
    ax.plot(taus, [r["hard_share"] for r in temp], marker="s", color="C3", label="top-10 negatives' share")
    ax.plot(taus, [r["p_pos"] for r in temp], marker="^", color="C2", label="p(positive)")
    ax.set(xscale="log", ylim=(0, 1.05), ylabel="mean over queries", xlabel="temperature τ")
    _log_ticks(ax, "x", taus)
    ax.set_title(f"softmax(cos / τ) over {d['notes']['used']} docs, frozen MiniLM", fontsize=10)
    ax.legend(fontsize=7.5, loc="center right")
    ax = axes[1]
    runs = d["adapter"]["runs"]
    trained = [r for k, r in runs.items() if k != "frozen"]
    tt = [r["tau"] for r in trained]
    for k, c, mk in (("recall@10", "C0", "o"), ("recall@1", "C1", "s")):
        ax.plot(tt, [r[k] for r in trained], marker=mk, color=c, label=f"adapter {k}")
        ax.axhline(runs["frozen"][k], color=c, linestyle=":", linewidth=1.2)
    ax.text(0.99, runs["frozen"]["recall@10"], "frozen", transform=ax.get_yaxis_transform(), ha="right",
            va="bottom", fontsize=8, color=_muted())
    ax.set(xscale="log", xlabel="training τ (in-batch InfoNCE)", ylabel="held-out recall",
           ylim=(0, max(r["recall@10"] for r in runs.values()) * 1.25))
    _log_ticks(ax, "x", tt)
    a = d["adapter"]
    ax.set_title(f"linear query adapter: {a['train']} train / {a['test']} held-out", fontsize=10)
    ax.legend(fontsize=7.5, loc="upper right")
    _footer(axes, d, "all-MiniLM-L6-v2 on the deck's Front -> Back notes")


PARTS = {1: "1 projects", 2: "2 DL basics", 3: "3 NLP / LLM", 4: "4 AIGC", 5: "5 LLM advanced"}


def run_retrieval_pca(axes, data):
    d = data["retrieval_deck"]
    p = d["pca"]
    x, y, part = np.asarray(p["x"]), np.asarray(p["y"]), np.asarray(p["part"])
    ev = p["explained"]
    ax = axes[0]
    for k, label in PARTS.items():
        m = part == k
        if m.any():
            ax.scatter(x[m], y[m], s=6, color=f"C{k - 1}", alpha=0.7, linewidths=0, label=f"{label} ({m.sum()})")
    ax.set_title("MiniLM Front embeddings, by deck part", fontsize=10)
    ax.legend(fontsize=7, markerscale=2, loc="upper center", bbox_to_anchor=(0.5, -0.04), ncols=2, frameon=False,
              columnspacing=0.6, handletextpad=0.2)
    ax = axes[1]
    sc = ax.scatter(x, y, s=6, c=p["unk_share"], cmap="viridis", vmin=0, vmax=1, alpha=0.85, linewidths=0)
    ax.figure.colorbar(sc, ax=list(axes), shrink=0.4, label="[UNK] share", anchor=(0, 0.1))
    ax.set_title(f"by [UNK] share (r with PC 1: {p['corr_unk'][0]:.2f})", fontsize=10)
    ax.set_xlabel(f"PC 1 ({ev[0]:.1%} of variance); PC 2 ({ev[1]:.1%}) up", fontsize=9)
    for ax in axes:
        ax.set(xticks=[], yticks=[])
    _footer(axes, d, f"all-MiniLM-L6-v2, {d['notes']['used']} notes, PCA")
