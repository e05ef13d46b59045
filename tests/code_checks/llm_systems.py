"""Checks for the code cards of guide sections 5.2 (inference and serving) and 5.3 (training systems).

Each check compares a card's snippet with an independent reference: torch's scaled_dot_product_attention or a
dense softmax with Python floats for tiled attention, exact enumeration of output distributions for speculative
sampling, brute force over every sequence for beam search and over every token set for top-k / top-p, elementwise
loops for INT8 quantisation, and the worked examples of the ZeRO and Megatron papers for the memory estimator.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import torch

from tests.code_checks import check


def _dense_attention(Q, K, V, causal=False):
    """softmax(QK^T / sqrt(d)) V with the whole score matrix, row by row with Python floats."""
    d = Q.shape[1]
    out = np.zeros((Q.shape[0], V.shape[1]))
    for i, q in enumerate(Q):
        scores = [float(q @ k) / math.sqrt(d) for k in K]
        if causal:
            scores = scores[: i + 1]
        m = max(scores)
        w = [math.exp(s - m) for s in scores]
        total = math.fsum(w)
        out[i] = sum(wj / total * V[j] for j, wj in enumerate(w))
    return out


def _sdpa(Q, K, V, causal=False):
    t = [torch.tensor(x)[None] for x in (Q, K, V)]
    return torch.nn.functional.scaled_dot_product_attention(*t, is_causal=causal).numpy()[0]


# --------------------------------------------------------------------------- FlashAttention
@check("fa-code")
def check_flash_attention(ns):
    flash = ns["flash_attention"]
    rng = np.random.default_rng(0)
    for N, M, d, dv, Br, Bc in [(37, 53, 8, 5, 16, 16), (16, 16, 4, 4, 16, 16), (5, 70, 6, 3, 4, 7),
                                (64, 64, 16, 16, 1, 64), (33, 33, 8, 8, 7, 5)]:
        Q, K, V = rng.normal(size=(N, d)), rng.normal(size=(M, d)), rng.normal(size=(M, dv))
        out = flash(Q, K, V, Br=Br, Bc=Bc)
        assert out.shape == (N, dv)
        np.testing.assert_allclose(out, _dense_attention(Q, K, V), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(out, _sdpa(Q, K, V), rtol=1e-9, atol=1e-11)
        if N == M:
            out_c = flash(Q, K, V, Br=Br, Bc=Bc, causal=True)
            np.testing.assert_allclose(out_c, _dense_attention(Q, K, V, causal=True), rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(out_c, _sdpa(Q, K, V, causal=True), rtol=1e-9, atol=1e-11)
            np.testing.assert_allclose(out_c[0], V[0], rtol=1e-12)  # the first query sees only the first key
    # huge scores: the running max keeps every exponent <= 0, nothing overflows
    Q, K, V = rng.normal(size=(20, 4)) * 60, rng.normal(size=(40, 4)) * 60, rng.normal(size=(40, 3))
    with np.errstate(over="raise", invalid="raise"):
        out = flash(Q, K, V, Br=8, Bc=8)
        out_c = flash(Q, K[:20], V[:20], Br=8, Bc=8, causal=True)
    np.testing.assert_allclose(out, _dense_attention(Q, K, V), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(out_c, _dense_attention(Q, K[:20], V[:20], causal=True), rtol=1e-9, atol=1e-12)
    # block sizes do not change the result
    Q, K, V = rng.normal(size=(30, 8)), rng.normal(size=(30, 8)), rng.normal(size=(30, 8))
    base = flash(Q, K, V, Br=30, Bc=30, causal=True)
    for Br, Bc in [(1, 1), (3, 11), (16, 4)]:
        np.testing.assert_allclose(flash(Q, K, V, Br=Br, Bc=Bc, causal=True), base, rtol=1e-11, atol=1e-13)
