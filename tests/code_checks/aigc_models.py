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


# --------------------------------------------------------------------------- 4.4 DiT patchify
def _patchify_loop(x, p):
    """token i*w + j, feature (a*p + b)*C + c  <-  x[n, c, i*p + a, j*p + b]."""
    N, C, H, W = x.shape
    h, w = H // p, W // p
    out = np.empty((N, h * w, p * p * C))
    for n in range(N):
        for i in range(h):
            for j in range(w):
                for a in range(p):
                    for b in range(p):
                        for c in range(C):
                            out[n, i * w + j, (a * p + b) * C + c] = x[n, c, i * p + a, j * p + b]
    return out


@check("dit-patchify-code")
def check_patchify(ns):
    patchify, unpatchify = ns["patchify"], ns["unpatchify"]
    rng = np.random.default_rng(0)
    for (N, C, H, W, p) in [(2, 4, 8, 8, 2), (1, 3, 12, 8, 4), (2, 4, 6, 10, 1), (1, 2, 8, 8, 8)]:
        x = rng.normal(size=(N, C, H, W))
        tok = patchify(x, p)
        h, w = H // p, W // p
        assert tok.shape == (N, h * w, p * p * C)
        np.testing.assert_array_equal(tok, _patchify_loop(x, p))
        # a token is exactly one spatially contiguous p x p patch
        i, j = h - 1, 0
        patch = x[:, :, i * p:(i + 1) * p, j * p:(j + 1) * p]  # (N, C, p, p)
        np.testing.assert_array_equal(tok[:, i * w + j], patch.transpose(0, 2, 3, 1).reshape(N, -1))
        # round trips, both ways
        np.testing.assert_array_equal(unpatchify(tok, p, C, h, w), x)
        t2 = rng.normal(size=tok.shape)
        np.testing.assert_array_equal(patchify(unpatchify(t2, p, C, h, w), p), t2)
        # same patches as torch's unfold (which orders features channel-major: (c, a, b))
        ref = F.unfold(torch.from_numpy(x), kernel_size=p, stride=p).numpy()  # (N, C*p*p, h*w)
        ref = ref.reshape(N, C, p, p, h * w).transpose(0, 4, 2, 3, 1).reshape(N, h * w, p * p * C)
        np.testing.assert_array_equal(tok, ref)
        # patchify + linear == conv2d with kernel = stride = p (the ViT / DiT patch embedding)
        D = 5
        Wc = rng.normal(size=(D, C, p, p))
        conv = F.conv2d(torch.from_numpy(x), torch.from_numpy(Wc), stride=p).numpy()  # (N, D, h, w)
        lin = tok @ Wc.transpose(2, 3, 1, 0).reshape(p * p * C, D)  # features ordered (a, b, c)
        np.testing.assert_allclose(lin, conv.reshape(N, D, h * w).transpose(0, 2, 1), rtol=1e-10, atol=1e-10)


# --------------------------------------------------------------------------- 4.4 adaLN-Zero
@check("dit-adaln-zero-code")
def check_adaln_zero(ns):
    layer_norm, adaln_zero_init, dit_block = ns["layer_norm"], ns["adaln_zero_init"], ns["dit_block"]
    rng = np.random.default_rng(0)
    N, T, d, d_c = 3, 7, 8, 6
    x = rng.normal(size=(N, T, d)) * 2 + 1
    c = rng.normal(size=(N, d_c))
    Wa, Wf = rng.normal(size=(d, d)) / np.sqrt(d), rng.normal(size=(d, d)) / np.sqrt(d)

    def attn(h):  # a token-mixing stand-in: softmax self-attention with one head
        s = h @ h.transpose(0, 2, 1) / np.sqrt(d)
        s = np.exp(s - s.max(-1, keepdims=True))
        return (s / s.sum(-1, keepdims=True)) @ h @ Wa

    def ffn(h):
        return np.tanh(h @ Wf)

    # LayerNorm without affine == torch's
    np.testing.assert_allclose(layer_norm(x), F.layer_norm(torch.from_numpy(x), (d,), eps=1e-6).numpy(),
                               rtol=1e-10, atol=1e-10)

    # zero init: every block is the identity, whatever attn / ffn compute
    W0, b0 = adaln_zero_init(d_c, d)
    assert W0.shape == (d_c, 6 * d) and b0.shape == (6 * d,)
    assert not W0.any() and not b0.any()
    np.testing.assert_array_equal(dit_block(x, c, W0, b0, attn, ffn), x)

    # trained parameters: compare with a per-sample torch reference in DiT's chunk order
    W = rng.normal(size=(d_c, 6 * d)) * 0.5
    b = rng.normal(size=6 * d) * 0.5
    got = dit_block(x, c, W, b, attn, ffn)
    for n in range(N):
        mod = (F.silu(torch.from_numpy(c[n])) @ torch.from_numpy(W) + torch.from_numpy(b)).numpy()
        shift1, scale1, gate1, shift2, scale2, gate2 = np.split(mod, 6)
        xn = x[n:n + 1]
        ln = F.layer_norm(torch.from_numpy(xn), (d,), eps=1e-6).numpy()
        xn = xn + gate1 * attn(ln * (1 + scale1) + shift1)
        ln = F.layer_norm(torch.from_numpy(xn), (d,), eps=1e-6).numpy()
        xn = xn + gate2 * ffn(ln * (1 + scale2) + shift2)
        np.testing.assert_allclose(got[n], xn[0], rtol=1e-9, atol=1e-9)

    # only the gates being zero is enough for the identity (shift / scale may be anything)
    Wg, bg = W.copy(), b.copy()
    for k in (2, 5):
        Wg[:, k * d:(k + 1) * d] = 0
        bg[k * d:(k + 1) * d] = 0
    np.testing.assert_allclose(dit_block(x, c, Wg, bg, attn, ffn), x, atol=0)
    # the condition is global: modulation is the same for every token of a sample
    x_perm = x[:, ::-1]
    y_perm = dit_block(x_perm, c, W, b, lambda h: h @ Wa, ffn)  # a token-wise attn stand-in
    np.testing.assert_allclose(y_perm, dit_block(x, c, W, b, lambda h: h @ Wa, ffn)[:, ::-1],
                               rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- 4.5 FID
def _fid_reference(mu1, S1, mu2, S2):
    """pytorch-fid's recipe: scipy's general matrix square root of S1 @ S2, real part (eigenvalues if no scipy)."""
    try:
        from scipy import linalg
        covmean = linalg.sqrtm(S1 @ S2)
        tr = np.trace(covmean).real
    except ImportError:  # eigenvalues of S1 S2 are real and >= 0: Tr sqrt = sum of their square roots
        tr = np.sqrt(np.clip(np.linalg.eigvals(S1 @ S2).real, 0, None)).sum()
    d = mu1 - mu2
    return float(d @ d + np.trace(S1) + np.trace(S2) - 2 * tr)


@check("fid-code")
def check_fid(ns):
    gaussian_fit, sqrtm_psd, fid = ns["gaussian_fit"], ns["sqrtm_psd"], ns["fid"]
    rng = np.random.default_rng(0)
    n, d = 400, 6
    A = rng.normal(size=(d, d))
    f1 = rng.normal(size=(n, d)) @ A + 1.0
    f2 = rng.normal(size=(n, d)) @ (A + 0.5 * rng.normal(size=(d, d))) - 0.3

    # the Gaussian fit: mean and unbiased covariance over the feature axis
    mu1, S1 = gaussian_fit(f1)
    mu2, S2 = gaussian_fit(f2)
    assert mu1.shape == (d,) and S1.shape == (d, d)
    c = f1 - f1.mean(0)
    np.testing.assert_allclose(mu1, f1.sum(0) / n, rtol=1e-12)
    np.testing.assert_allclose(S1, c.T @ c / (n - 1), rtol=1e-10, atol=1e-12)

    # the matrix square root of a PSD matrix, against scipy (or its defining identity)
    R = sqrtm_psd(S1)
    np.testing.assert_allclose(R @ R, S1, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(R, R.T, atol=1e-12)
    assert np.all(np.linalg.eigvalsh(R) >= -1e-12)
    try:
        from scipy import linalg
        np.testing.assert_allclose(R, linalg.sqrtm(S1).real, rtol=1e-8, atol=1e-10)
    except ImportError:
        pass

    # FID against the general (non-symmetric) matrix square root
    np.testing.assert_allclose(fid(mu1, S1, mu2, S2), _fid_reference(mu1, S1, mu2, S2), rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(fid(mu1, S1, mu2, S2), fid(mu2, S2, mu1, S1), rtol=1e-8)  # symmetric
    np.testing.assert_allclose(fid(mu1, S1, mu1, S1), 0.0, atol=1e-9)
    # 1-D: (m1 - m2)^2 + (s1 - s2)^2
    got = fid(np.array([0.5]), np.array([[4.0]]), np.array([-1.0]), np.array([[0.25]]))
    np.testing.assert_allclose(got, 1.5 ** 2 + (2.0 - 0.5) ** 2, rtol=1e-12)
    # commuting (diagonal) covariances: ||mu1 - mu2||^2 + sum (sqrt a - sqrt b)^2
    a, b = rng.uniform(0.1, 3, size=d), rng.uniform(0.1, 3, size=d)
    m1, m2 = rng.normal(size=d), rng.normal(size=d)
    np.testing.assert_allclose(fid(m1, np.diag(a), m2, np.diag(b)),
                               np.sum((m1 - m2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2), rtol=1e-10)
    # rank-deficient covariance (fewer samples than dimensions), as with small sample sets: still finite, >= 0
    mu3, S3 = gaussian_fit(rng.normal(size=(4, d)))
    got = fid(mu1, S1, mu3, S3)
    assert np.isfinite(got) and got >= -1e-9
    ref = float((mu1 - mu3) @ (mu1 - mu3) + np.trace(S1) + np.trace(S3)
                - 2 * np.sqrt(np.clip(np.linalg.eigvals(S1 @ S3).real, 0, None)).sum())
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-6)
    # the finite-sample bias: two sample sets from one distribution give FID > 0, shrinking with n
    small = [fid(*gaussian_fit(rng.normal(size=(50, d))), *gaussian_fit(rng.normal(size=(50, d)))) for _ in range(20)]
    large = [fid(*gaussian_fit(rng.normal(size=(2000, d))), *gaussian_fit(rng.normal(size=(2000, d))))
             for _ in range(20)]
    assert min(small) > 0 and np.mean(large) < np.mean(small) / 5
