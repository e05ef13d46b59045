"""Checks for the code cards of guide sections 5.5 (RAG and agents) and 5.6 (multimodal).

Each check compares a card's snippet with an independent reference: hand-computed small cases, plain loops written
another way (term-document matrices, brute-force rank searches), or torch (cross-entropy, conv2d, autograd).
"""
from __future__ import annotations

import math

import numpy as np

from tests.code_checks import check


# =========================================================================== 5.5 retrieval

def _bm25_matrix(query, docs, k1, b):
    """Reference BM25: a term-document count matrix and vectorised numpy, independent of the card's Counter loop."""
    vocab = sorted({t for d in docs for t in d} | set(query))
    index = {t: i for i, t in enumerate(vocab)}
    counts = np.zeros((len(docs), len(vocab)))
    for row, d in enumerate(docs):
        for t in d:
            counts[row, index[t]] += 1
    N = len(docs)
    lengths = counts.sum(axis=1)
    n_t = (counts > 0).sum(axis=0)
    idf = np.log(1.0 + (N - n_t + 0.5) / (n_t + 0.5))
    K = k1 * (1.0 - b + b * lengths / lengths.mean())
    with np.errstate(invalid="ignore", divide="ignore"):   # k1 = 0 gives 0 / 0 for absent terms
        tf_part = np.where(counts > 0, counts * (k1 + 1.0) / (counts + K[:, None]), 0.0)
    q = np.zeros(len(vocab))
    for t in query:
        q[index[t]] += 1  # a repeated query term counts once per occurrence
    return (tf_part * idf) @ q


@check("bm25-code")
def check_bm25(ns):
    bm25 = ns["bm25_scores"]
    # ---- hand-computed example: three documents of equal length (so K_D = k1 for every b)
    docs = [["a", "b", "c"], ["a", "a", "d"], ["e", "f", "g"]]
    N, k1 = 3, 1.5
    idf_a = math.log(1 + (N - 2 + 0.5) / (2 + 0.5))    # 'a' is in 2 documents: ln(1 + 1.5/2.5) = ln 1.6
    idf_d = math.log(1 + (N - 1 + 0.5) / (1 + 0.5))    # 'd' is in 1 document:  ln(1 + 2.5/1.5) = ln(8/3)
    assert math.isclose(idf_a, math.log(1.6)) and math.isclose(idf_d, math.log(8 / 3))
    # tf = 1: the tf part is (k1 + 1) / (1 + k1) = 1; tf = 2: 2 (k1 + 1) / (2 + k1) = 5 / 3.5
    expected = [idf_a, idf_a * 2 * (k1 + 1) / (2 + k1) + idf_d, 0.0]
    for b in (0.0, 0.75, 1.0):
        got = bm25(["a", "d"], docs, k1=k1, b=b)
        assert len(got) == 3
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)
    # ---- length normalisation by hand: same tf, the longer document scores lower when b > 0
    docs2 = [["x", "y"], ["x", "y", "z", "z", "z", "z"]]     # avgdl = 4
    idf_x = math.log(1 + (2 - 2 + 0.5) / (2 + 0.5))        # ln 1.2
    k1, b = 1.2, 0.75
    K0 = k1 * (1 - b + b * 2 / 4)
    K1 = k1 * (1 - b + b * 6 / 4)
    exp2 = [idf_x * (k1 + 1) / (1 + K0), idf_x * (k1 + 1) / (1 + K1)]
    np.testing.assert_allclose(bm25(["x"], docs2, k1=k1, b=b), exp2, rtol=1e-12)
    assert exp2[0] > exp2[1]
    np.testing.assert_allclose(bm25(["x"], docs2, k1=k1, b=0.0), [idf_x, idf_x], rtol=1e-12)
    # ---- tf saturation: the score of one term is bounded by (k1 + 1) * IDF
    many = [["w"] * 500, ["v"]]
    s = bm25(["w"], many, k1=1.2, b=0.0)[0]
    bound = 2.2 * math.log(1 + 1.5 / 1.5)
    assert s < bound and s > 0.99 * bound
    # ---- random corpora against the matrix reference (several k1, b; unknown and repeated query terms)
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(12)]
    for trial in range(20):
        docs = [list(rng.choice(words, size=rng.integers(1, 15))) for _ in range(rng.integers(2, 9))]
        query = list(rng.choice(words + ["unseen"], size=rng.integers(1, 6)))
        k1, b = [(1.5, 0.75), (1.2, 0.75), (2.0, 0.3), (0.0, 0.5), (1.5, 1.0)][trial % 5]
        got = bm25(query, docs, k1=k1, b=b)
        np.testing.assert_allclose(got, _bm25_matrix(query, docs, k1, b), rtol=1e-12, atol=1e-15)
    # defaults are k1 = 1.5, b = 0.75
    np.testing.assert_allclose(bm25(query, docs), _bm25_matrix(query, docs, 1.5, 0.75), rtol=1e-12, atol=1e-15)


def _rrf_reference(rankings, k):
    """Brute force: for every document seen, look its rank up in every list with list.index."""
    docs = []
    for ranking in rankings:
        for d in ranking:
            if d not in docs:
                docs.append(d)
    scores = {}
    for d in docs:
        scores[d] = math.fsum(1.0 / (k + ranking.index(d) + 1) for ranking in rankings if d in ranking)
    return scores


@check("rrf-code")
def check_rrf(ns):
    rrf = ns["rrf"]
    # hand-made: BM25 says A, B, C; dense says B, C, D -> B and C appear in both and beat A
    bm25, dense = ["A", "B", "C"], ["B", "C", "D"]
    fused, scores = rrf([bm25, dense], k=60)
    expected = {"A": 1 / 61, "B": 1 / 62 + 1 / 61, "C": 1 / 63 + 1 / 62, "D": 1 / 63}
    assert set(scores) == set(expected)
    for d, v in expected.items():
        assert math.isclose(scores[d], v, rel_tol=1e-12), (d, scores[d], v)
    assert fused == ["B", "C", "A", "D"]
    # k = 0: the top of a single list dominates (1, 1/2, 1/3)
    fused0, scores0 = rrf([["A", "B", "C"], ["C", "A"]], k=0)
    assert math.isclose(scores0["A"], 1 + 1 / 2) and math.isclose(scores0["C"], 1 / 3 + 1)
    assert fused0[0] == "A"
    # default k is 60
    assert math.isclose(rrf([["x"]])[1]["x"], 1 / 61)
    # a single list keeps its order
    assert rrf([["p", "q", "r", "s"]])[0] == ["p", "q", "r", "s"]
    # random rankings against the brute-force reference; the fused list is sorted by score
    rng = np.random.default_rng(1)
    pool = [f"d{i}" for i in range(30)]
    for _ in range(30):
        rankings = [list(rng.choice(pool, size=rng.integers(1, 20), replace=False))
                    for _ in range(rng.integers(1, 5))]
        k = int(rng.choice([1, 10, 60]))
        fused, scores = rrf(rankings, k=k)
        ref = _rrf_reference(rankings, k)
        assert set(scores) == set(ref) and sorted(fused) == sorted(ref)
        for d in ref:
            assert math.isclose(scores[d], ref[d], rel_tol=1e-12)
        vals = [ref[d] for d in fused]
        assert all(a >= b - 1e-15 for a, b in zip(vals, vals[1:]))


def _first_rank(ranking, rel, k):
    """Brute force: the smallest 1-based position of any relevant document within the first k, or None."""
    limit = len(ranking) if k is None else min(k, len(ranking))
    positions = [ranking.index(d) + 1 for d in rel if d in ranking[:limit]]
    return min(positions) if positions else None


@check("retrieval-metrics-code")
def check_retrieval_metrics(ns):
    recall_at_k, mrr = ns["recall_at_k"], ns["mrr"]
    # hand-made cases
    ranked = [["a", "b", "c", "d"], ["x", "y", "z"], ["p", "q"]]
    relevant = [{"a", "c"}, {"z"}, {"r"}]
    assert math.isclose(recall_at_k(ranked, relevant, 1), (1 / 2 + 0 + 0) / 3)
    assert math.isclose(recall_at_k(ranked, relevant, 3), (2 / 2 + 1 + 0) / 3)
    assert math.isclose(mrr(ranked, relevant), (1 + 1 / 3 + 0) / 3)     # the card's 4/9 example
    assert math.isclose(mrr(ranked, relevant), 4 / 9)
    assert math.isclose(mrr(ranked, relevant, k=2), (1 + 0 + 0) / 3)   # MRR@2 drops the hit at rank 3
    # only the first relevant document counts for MRR
    assert math.isclose(mrr([["r1", "r2", "r3"]], [{"r1", "r2", "r3"}]), 1.0)
    assert math.isclose(mrr([["n", "r1", "r2"]], [{"r1", "r2"}]), 0.5)
    # recall divides by the number of relevant documents, not by k
    assert math.isclose(recall_at_k([["r1", "n1", "n2", "n3"]], [{"r1", "r2"}], 4), 0.5)
    # random cases against brute force
    rng = np.random.default_rng(2)
    pool = list(range(40))
    for _ in range(40):
        nq = int(rng.integers(1, 6))
        ranked = [list(rng.choice(pool, size=rng.integers(1, 25), replace=False)) for _ in range(nq)]
        relevant = [set(rng.choice(pool, size=rng.integers(1, 6), replace=False).tolist()) for _ in range(nq)]
        for k in (1, 3, 5, 10, 100):
            ref_recall = np.mean([sum(1 for d in rel if d in r[:k]) / len(rel) for r, rel in zip(ranked, relevant)])
            assert math.isclose(recall_at_k(ranked, relevant, k), ref_recall, rel_tol=1e-12, abs_tol=1e-15)
        for k in (None, 1, 3, 10):
            firsts = [_first_rank(r, rel, k) for r, rel in zip(ranked, relevant)]
            ref_mrr = np.mean([0.0 if f is None else 1.0 / f for f in firsts])
            assert math.isclose(mrr(ranked, relevant, k), ref_mrr, rel_tol=1e-12, abs_tol=1e-15)


# =========================================================================== 5.6 multimodal

@check("mm-clip-loss-code")
def check_clip_loss(ns):
    import torch
    import torch.nn.functional as F

    clip_loss = ns["clip_loss"]
    rng = np.random.default_rng(3)
    for B, d in [(1, 4), (5, 8), (16, 3)]:
        img, txt = rng.normal(size=(B, d)), rng.normal(size=(B, d))
        for scale in (1.0, 1 / 0.07, 50.0, 100.0, 1e4):
            loss, logits = clip_loss(img, txt, math.log(scale))
            s = min(scale, 100.0)   # the logit scale is clipped at 100
            it = F.normalize(torch.tensor(img), dim=-1)
            tt = F.normalize(torch.tensor(txt), dim=-1)
            ref_logits = s * it @ tt.T
            y = torch.arange(B)
            # image -> text over rows, text -> image over columns (= rows of the transpose)
            ref = 0.5 * (F.cross_entropy(ref_logits, y) + F.cross_entropy(ref_logits.T, y))
            np.testing.assert_allclose(logits, ref_logits.numpy(), rtol=1e-12, atol=1e-12)
            assert math.isclose(float(loss), ref.item(), rel_tol=1e-9, abs_tol=1e-12), (B, scale)
    # the two directions differ in general, so a one-directional loss fails the check above; show it here
    img, txt = rng.normal(size=(6, 4)), rng.normal(size=(6, 4))
    _, logits = clip_loss(img, txt, math.log(10.0))
    lt = torch.tensor(logits)
    y = torch.arange(6)
    assert abs(F.cross_entropy(lt, y).item() - F.cross_entropy(lt.T, y).item()) > 1e-3
    # invariance to the feature norms (cosine similarity); perfectly aligned pairs give a small loss
    a, _ = clip_loss(3 * img, 0.2 * txt, math.log(14.0))
    b, _ = clip_loss(img, txt, math.log(14.0))
    assert math.isclose(float(a), float(b), rel_tol=1e-10)
    eye = np.eye(6)
    low, _ = clip_loss(eye, eye, math.log(100.0))
    assert float(low) < 1e-6
    # uniform logits (scale -> tiny) give log B
    tiny, _ = clip_loss(img, txt, math.log(1e-9))
    assert math.isclose(float(tiny), math.log(6), rel_tol=1e-6)
    # large scale with random features: no overflow
    with np.errstate(over="raise", invalid="raise"):
        big, _ = clip_loss(rng.normal(size=(32, 16)), rng.normal(size=(32, 16)), math.log(100.0))
    assert np.isfinite(big)


@check("mm-siglip-loss-code")
def check_siglip_loss(ns):
    import torch
    import torch.nn.functional as F

    siglip_loss = ns["siglip_loss"]
    rng = np.random.default_rng(4)
    for N, d in [(1, 3), (4, 8), (12, 5)]:
        img = rng.normal(size=(N, d))
        txt = rng.normal(size=(N, d))
        img /= np.linalg.norm(img, axis=1, keepdims=True)
        txt /= np.linalg.norm(txt, axis=1, keepdims=True)
        for t_prime, b in [(math.log(10), -10.0), (0.0, 0.0), (math.log(300), 5.0)]:
            logits = torch.tensor(math.exp(t_prime) * img @ txt.T + b)
            ref = F.binary_cross_entropy_with_logits(logits, torch.eye(N, dtype=torch.float64),
                                                     reduction="sum") / N
            got = siglip_loss(img, txt, t_prime, b)
            assert math.isclose(float(got), ref.item(), rel_tol=1e-10, abs_tol=1e-12), (N, t_prime, b)
            # plain loop over all pairs with math.log1p(exp(.)) written differently
            loop = 0.0
            for i in range(N):
                for j in range(N):
                    zlab = 1.0 if i == j else -1.0
                    x = zlab * (math.exp(t_prime) * float(img[i] @ txt[j]) + b)
                    loop += max(-x, 0.0) + math.log1p(math.exp(-abs(x)))
            assert math.isclose(float(got), loop / N, rel_tol=1e-10, abs_tol=1e-12)
    # no overflow for huge logits
    with np.errstate(over="raise", invalid="raise"):
        assert np.isfinite(siglip_loss(img, txt, math.log(1e4), -10.0))


@check("mm-vit-patch-embed-code")
def check_patch_embed(ns):
    import torch
    import torch.nn.functional as F

    patch_embed = ns["patch_embed"]
    rng = np.random.default_rng(5)
    for B, C, H, W, p, D in [(2, 3, 8, 8, 4, 5), (1, 3, 12, 20, 4, 7), (3, 2, 6, 9, 3, 4), (1, 1, 4, 4, 1, 2)]:
        x = rng.normal(size=(B, C, H, W))
        Wt = rng.normal(size=(C * p * p, D))
        bias = rng.normal(size=D)
        got = patch_embed(x, Wt, bias, p)
        h, w = H // p, W // p
        assert got.shape == (B, h * w, D)
        kernel = torch.tensor(Wt.T.reshape(D, C, p, p))
        ref = F.conv2d(torch.tensor(x), kernel, torch.tensor(bias), stride=p)   # (B, D, h, w)
        ref = ref.flatten(2).transpose(1, 2).numpy()                            # (B, h*w, D), row-major
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-10)
        # token (r, c) is the flattened (C, p, p) patch at rows r*p.., columns c*p..
        r, c = h - 1, w // 2
        patch = x[0, :, r * p:(r + 1) * p, c * p:(c + 1) * p].reshape(-1)
        np.testing.assert_allclose(got[0, r * w + c], patch @ Wt + bias, rtol=1e-10, atol=1e-10)


@check("mm-vq-quantize-code")
def check_vq_quantize(ns):
    import torch

    vq_quantize = ns["vq_quantize"]
    rng = np.random.default_rng(6)
    for N, K, d, beta in [(7, 5, 3, 0.25), (20, 16, 4, 1.0), (1, 3, 2, 0.1)]:
        z0 = rng.normal(size=(N, d))
        cb0 = rng.normal(size=(K, d))
        z_e = torch.tensor(z0, requires_grad=True)
        cb = torch.tensor(cb0, requires_grad=True)
        z_q, idx, loss = vq_quantize(z_e, cb, beta=beta)
        # nearest code by brute force
        ref_idx = [min(range(K), key=lambda k: sum((z0[n, i] - cb0[k, i]) ** 2 for i in range(d)))
                   for n in range(N)]
        assert idx.tolist() == ref_idx
        e = cb0[ref_idx]
        np.testing.assert_allclose(z_q.detach().numpy(), e, rtol=1e-12, atol=1e-12)   # forward value = code
        mse = np.mean((z0 - e) ** 2)
        assert math.isclose(loss.item(), (1 + beta) * mse, rel_tol=1e-10)
        # gradients of a downstream loss sum(w * z_q) plus the VQ loss
        wgt = rng.normal(size=(N, d))
        ((torch.tensor(wgt) * z_q).sum() + loss).backward()
        # z_e: straight-through copy of w, plus only the commitment term
        np.testing.assert_allclose(z_e.grad.numpy(), wgt + beta * 2 * (z0 - e) / (N * d), rtol=1e-10,
                                   atol=1e-12)
        # codebook: only the codebook term, accumulated over the vectors that chose each code
        ref_cb = np.zeros((K, d))
        for n, k in enumerate(ref_idx):
            ref_cb[k] += 2 * (cb0[k] - z0[n]) / (N * d)
        np.testing.assert_allclose(cb.grad.numpy(), ref_cb, rtol=1e-10, atol=1e-12)
    # default beta is 0.25
    z0, cb0 = rng.normal(size=(4, 2)), rng.normal(size=(3, 2))
    _, idx, loss = vq_quantize(torch.tensor(z0), torch.tensor(cb0))
    e = cb0[idx.numpy()]
    assert math.isclose(loss.item(), 1.25 * np.mean((z0 - e) ** 2), rel_tol=1e-10)
