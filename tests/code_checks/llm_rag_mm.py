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
