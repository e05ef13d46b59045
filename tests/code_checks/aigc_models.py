"""Checks for the code cards of guide sections 4.3-4.5 (conditioning, architectures, acceleration and evaluation).

Each check compares a card's NumPy snippet with an independent reference: separate model calls, explicit loops,
torch (``unfold``, ``conv2d``, ``layer_norm``) or scipy's general matrix square root.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from tests.code_checks import check


# --------------------------------------------------------------------------- 4.3 CFG
class _CountingModel:
    """A toy noise predictor eps(x, t, c): nonlinear in x, depends on t and on the condition c (B, L, D)."""

    def __init__(self, rng, shape, D):
        self.W = rng.normal(size=(D,) + shape) * 0.3
        self.calls = 0

    def __call__(self, x, t, c):
        self.calls += 1
        assert x.shape[0] == c.shape[0], "x and c must have the same batch size"
        pooled = c.mean(axis=1)  # (B, D)
        return np.tanh(x) * (1.0 + 0.1 * t) + np.tensordot(pooled, self.W, axes=1)


@check("cfg-code")
def check_cfg(ns):
    drop_cond, cfg_combine, cfg_eps = ns["drop_cond"], ns["cfg_combine"], ns["cfg_eps"]
    rng = np.random.default_rng(0)
    B, L, D, shape = 5, 3, 4, (2, 6, 6)
    model = _CountingModel(rng, shape, D)
    x = rng.normal(size=(B,) + shape)
    cond = rng.normal(size=(B, L, D))
    null = np.broadcast_to(rng.normal(size=(1, L, D)), (B, L, D)).copy()
    t = 0.7

    # reference: two separate calls, then the textbook formula
    e_c = model(x, t, cond)
    e_u = model(x, t, null)
    model.calls = 0
    for w in (0.0, 1.0, 3.0, 7.5):
        out = cfg_eps(model, x, t, cond, null, w)
        np.testing.assert_allclose(out, e_u + w * (e_c - e_u), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(cfg_combine(e_c, e_u, w), e_u + w * (e_c - e_u), rtol=1e-12, atol=1e-12)
    assert model.calls == 4, "cfg_eps must call the model once per step (both branches in one batch)"
    np.testing.assert_allclose(cfg_eps(model, x, t, cond, null, 1.0), e_c, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(cfg_eps(model, x, t, cond, null, 0.0), e_u, rtol=1e-12, atol=1e-12)
    # Ho & Salimans' convention (1 + w') eps_c - w' eps_u is w = 1 + w'
    wp = 2.0
    np.testing.assert_allclose(cfg_eps(model, x, t, cond, null, 1 + wp), (1 + wp) * e_c - wp * e_u,
                               rtol=1e-12, atol=1e-12)

    # condition dropout: rows are either the condition or the null one, at rate p
    Bn = 4000
    condn = rng.normal(size=(Bn, L, D))
    nulln = np.zeros((Bn, L, D))
    for p in (0.0, 0.1, 0.5, 1.0):
        got = drop_cond(condn, nulln, p, np.random.default_rng(1))
        assert got.shape == condn.shape
        is_null = np.all(got == nulln, axis=(1, 2))
        is_cond = np.all(got == condn, axis=(1, 2))
        assert np.all(is_null ^ is_cond), "each sample keeps its whole condition or drops it"
        frac = is_null.mean()
        assert abs(frac - p) < 0.03, (p, frac)
    # works for a (B, D) condition (e.g. class embeddings) too
    c2 = rng.normal(size=(6, D))
    got = drop_cond(c2, np.zeros_like(c2), 1.0, rng)
    np.testing.assert_array_equal(got, np.zeros_like(c2))
