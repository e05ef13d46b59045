"""Checks for the code cards of guide sections 3.1 (NLP问题) and 3.2 (Transformer细节)."""
from __future__ import annotations

import math

import numpy as np

from tests.code_checks import check


def _softmax_1d(x):
    e = np.exp(x - np.max(x))
    return e / e.sum()


@check("attn-sdpa-code")
def check_sdpa(ns):
    f = ns["scaled_dot_product_attention"]
    rng = np.random.default_rng(0)
    B, n, m, dk, dv = 3, 5, 7, 4, 6
    Q = rng.normal(size=(B, n, dk))
    K = rng.normal(size=(B, m, dk))
    V = rng.normal(size=(B, m, dv))
    mask = rng.random((B, n, m)) < 0.6
    mask[..., 0] = True  # every query sees at least one key

    for msk in (None, mask):
        out, w = f(Q, K, V, msk)
        assert out.shape == (B, n, dv) and w.shape == (B, n, m)
        for b in range(B):
            for i in range(n):
                keys = np.arange(m) if msk is None else np.flatnonzero(msk[b, i])
                s = np.array([Q[b, i] @ K[b, j] for j in keys]) / math.sqrt(dk)
                p = _softmax_1d(s)
                ref_w = np.zeros(m)
                ref_w[keys] = p
                ref_o = sum(p_j * V[b, j] for p_j, j in zip(p, keys))
                np.testing.assert_allclose(w[b, i], ref_w, rtol=1e-10, atol=1e-12)
                np.testing.assert_allclose(out[b, i], ref_o, rtol=1e-10, atol=1e-12)

    # a mask broadcast over the batch (causal, shape (n, n)) also works
    Kc, Vc = K[:, :n], V[:, :n]
    causal = np.tril(np.ones((n, n), dtype=bool))
    out, w = f(Q, Kc, Vc, causal)
    assert np.all(w[:, ~causal] == 0)
    np.testing.assert_allclose(out[:, 0], Vc[:, 0], rtol=1e-12)


@check("mha-forward-code")
def check_mha(ns):
    f = ns["multi_head_attention"]
    rng = np.random.default_rng(1)
    B, n, d, h = 2, 6, 12, 3
    dk = d // h
    X = rng.normal(size=(B, n, d))
    Wq, Wk, Wv, Wo = (rng.normal(size=(d, d)) / math.sqrt(d) for _ in range(4))
    out = f(X, Wq, Wk, Wv, Wo, h)
    assert out.shape == (B, n, d)

    ref = np.zeros((B, n, d))
    for b in range(B):
        heads = []
        for j in range(h):
            cols = slice(j * dk, (j + 1) * dk)
            q, k, v = X[b] @ Wq[:, cols], X[b] @ Wk[:, cols], X[b] @ Wv[:, cols]
            o = np.zeros((n, dk))
            for i in range(n):
                p = _softmax_1d(np.array([q[i] @ k[t] for t in range(n)]) / math.sqrt(dk))
                o[i] = p @ v
            heads.append(o)
        ref[b] = np.concatenate(heads, axis=1) @ Wo
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-12)

    # one head reduces to plain single-head attention with full width
    out1 = f(X, Wq, Wk, Wv, Wo, 1)
    S = (X @ Wq) @ (X @ Wk).transpose(0, 2, 1) / math.sqrt(d)
    A = np.exp(S - S.max(-1, keepdims=True))
    A /= A.sum(-1, keepdims=True)
    np.testing.assert_allclose(out1, A @ (X @ Wv) @ Wo, rtol=1e-10, atol=1e-12)


@check("emb-sinusoid-code")
def check_sinusoid(ns):
    f = ns["sinusoidal_pe"]
    L, d = 64, 16
    pe = f(L, d)
    assert pe.shape == (L, d)
    # element-wise against the paper's formula
    for pos in range(L):
        for i in range(d // 2):
            w = 10000.0 ** (-2 * i / d)
            assert math.isclose(pe[pos, 2 * i], math.sin(pos * w), abs_tol=1e-12)
            assert math.isclose(pe[pos, 2 * i + 1], math.cos(pos * w), abs_tol=1e-12)
    # PE(pos + k) is a rotation of PE(pos) in every (sin, cos) pair, independent of pos
    for k in (1, 5, 17):
        for i in range(d // 2):
            w = 10000.0 ** (-2 * i / d)
            R = np.array([[math.cos(k * w), math.sin(k * w)], [-math.sin(k * w), math.cos(k * w)]])
            pairs = pe[:, 2 * i:2 * i + 2]
            np.testing.assert_allclose(pairs[:-k] @ R.T, pairs[k:], atol=1e-10)
        # so the dot product depends only on the offset k
        dots = np.einsum("pd,pd->p", pe[:-k], pe[k:])
        np.testing.assert_allclose(dots, np.full_like(dots, dots[0]), atol=1e-10)
    # first pair has wavelength 2*pi: PE(pos, 0) = sin(pos)
    np.testing.assert_allclose(pe[:, 0], np.sin(np.arange(L)), atol=1e-12)


@check("mask-mlm-code")
def check_mlm(ns):
    f = ns["mlm_mask"]
    rng_data = np.random.default_rng(2)
    V, mask_id = 30000, 103
    shape = (400, 1000)
    ids = rng_data.integers(1000, V, size=shape)
    special = rng_data.random(shape) < 0.1
    special[:, 0] = True  # [CLS]
    ids_before = ids.copy()

    inputs, labels = f(ids, special, V, mask_id, np.random.default_rng(3))
    assert np.array_equal(ids, ids_before), "input ids must not be modified in place"
    assert inputs.shape == shape and labels.shape == shape

    chosen = labels != -100
    # special tokens are never chosen and never altered
    assert not np.any(chosen & special)
    assert np.array_equal(inputs[special], ids[special])
    # labels hold the original ids; positions not chosen are unchanged
    assert np.array_equal(labels[chosen], ids[chosen])
    assert np.array_equal(inputs[~chosen], ids[~chosen])

    n_cand = (~special).sum()
    n_ch = chosen.sum()
    assert abs(n_ch / n_cand - 0.15) < 0.005, n_ch / n_cand
    masked = chosen & (inputs == mask_id)
    same = chosen & (inputs == ids)
    rand = chosen & (inputs != mask_id) & (inputs != ids)
    assert abs(masked.sum() / n_ch - 0.8) < 0.01, masked.sum() / n_ch
    assert abs(same.sum() / n_ch - 0.1) < 0.01, same.sum() / n_ch
    assert abs(rand.sum() / n_ch - 0.1) < 0.01, rand.sum() / n_ch
    # random replacements are spread over the vocabulary
    r = inputs[rand]
    assert r.min() >= 0 and r.max() < V
    assert abs(r.mean() / (V - 1) - 0.5) < 0.02
    # the same seed gives the same draw
    again, _ = f(ids, special, V, mask_id, np.random.default_rng(3))
    assert np.array_equal(again, inputs)


@check("mask-padding-code")
def check_padding(ns):
    pm, am = ns["padding_mask"], ns["additive_attention_mask"]
    lengths = [3, 5, 1, 4]
    valid = pm(lengths)
    assert valid.shape == (4, 5) and valid.dtype == bool
    for b, n in enumerate(lengths):
        for t in range(5):
            assert valid[b, t] == (t < n)
    assert pm(lengths, max_len=8).shape == (4, 8)
    assert not pm(lengths, max_len=8)[:, 5:].any()

    add = am(valid)
    assert add.shape == (4, 1, 1, 5)
    rng = np.random.default_rng(4)
    h, T = 2, 5
    S = rng.normal(size=(4, h, T, T)) + add
    A = np.exp(S - S.max(-1, keepdims=True))
    A /= A.sum(-1, keepdims=True)
    S0 = S - add
    for b, n in enumerate(lengths):
        for hh in range(h):
            for i in range(T):
                ref = np.zeros(T)
                ref[:n] = _softmax_1d(S0[b, hh, i, :n])
                np.testing.assert_allclose(A[b, hh, i], ref, atol=1e-12)


@check("emb-tfidf-code")
def check_tfidf(ns):
    from sklearn.feature_extraction.text import TfidfTransformer

    tfidf = ns["tfidf"]
    rng = np.random.default_rng(5)
    counts = rng.poisson(0.7, size=(9, 13)).astype(float)
    counts[:, 3] = 0          # a term no document contains
    counts[:, 5] += 1         # a term every document contains
    counts[4] = 0             # an empty document
    got = tfidf(counts)
    ref = TfidfTransformer().fit_transform(counts).toarray()
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)
    assert np.all(got[4] == 0)
    # every non-empty row has unit L2 norm, so the dot product is the cosine similarity
    norms = np.linalg.norm(got, axis=1)
    np.testing.assert_allclose(norms[counts.sum(1) > 0], 1.0, rtol=1e-12)
    # a term in every document still gets weight (idf = 1 with smoothing), an absent term none
    assert np.all(got[counts[:, 5] > 0, 5] > 0) and np.all(got[:, 3] == 0)


@check("emb-infonce-code")
def check_info_nce(ns):
    import torch
    import torch.nn.functional as F

    info_nce = ns["info_nce"]
    rng = np.random.default_rng(6)
    B, M, d = 6, 4, 8
    q, k, neg = rng.normal(size=(B, d)), rng.normal(size=(B, d)), rng.normal(size=(M, d))
    for tau in (1.0, 0.05, 0.01):
        for extra in (None, neg):
            keys = k if extra is None else np.concatenate([k, extra])
            qt = F.normalize(torch.tensor(q), dim=-1)
            kt = F.normalize(torch.tensor(keys), dim=-1)
            ref = F.cross_entropy(qt @ kt.T / tau, torch.arange(B)).item()
            got = info_nce(q, k, extra, tau=tau) if extra is not None else info_nce(q, k, tau=tau)
            assert math.isclose(got, ref, rel_tol=1e-9, abs_tol=1e-12), (tau, got, ref)
    # scale invariance (cosine similarity) and the positive being the query itself lowers the loss
    assert math.isclose(info_nce(3 * q, 0.5 * k, tau=0.1), info_nce(q, k, tau=0.1), rel_tol=1e-9)
    assert info_nce(q, q + 0.01 * k, tau=0.05) < info_nce(q, k, tau=0.05)
    # a hard negative identical to the positive adds log 2 in the limit of a tiny temperature
    hard = info_nce(q, q, k_neg=q[:1], tau=1e-3)
    assert hard > 0.5 * math.log(2) / B
