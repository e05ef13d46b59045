"""Checks for the code cards of 2.2 模型训练通识 (regularisation, activations, imbalance, LR schedules,
initialisation, normalisation). NumPy and the standard library only."""
from __future__ import annotations

import math

import numpy as np

from tests.code_checks import check


# --------------------------------------------------------------------------- regularisation

@check("reg-l1-prox-code")
def _reg_l1_prox(ns):
    soft_threshold, ista_step = ns["soft_threshold"], ns["ista_step"]
    rng = np.random.default_rng(0)

    # 1. brute force: minimise 0.5*(w - z)^2 + lam*|w| on a fine grid, one z at a time
    grid = np.linspace(-6.0, 6.0, 240001)            # spacing 5e-5
    for _ in range(200):
        z, lam = rng.uniform(-4, 4), rng.uniform(0, 2)
        w_best = grid[np.argmin(0.5 * (grid - z) ** 2 + lam * np.abs(grid))]
        assert abs(float(soft_threshold(np.array(z), lam)) - w_best) <= 1e-4

    # 2. exact zeros on the whole dead zone |z| <= lam, shrink by exactly lam outside it
    z = rng.uniform(-3, 3, size=1000)
    out = soft_threshold(z, 1.0)
    assert np.all(out[np.abs(z) <= 1.0] == 0.0)
    np.testing.assert_allclose(np.abs(out[np.abs(z) > 1.0]), np.abs(z[np.abs(z) > 1.0]) - 1.0, atol=1e-12)
    assert np.all(np.sign(out[np.abs(z) > 1.0]) == np.sign(z[np.abs(z) > 1.0]))

    # 3. ISTA on a lasso problem reaches a point that satisfies the KKT conditions
    A = rng.normal(size=(50, 20))
    b = A @ np.where(rng.random(20) < 0.3, rng.normal(size=20), 0.0) + 0.1 * rng.normal(size=50)
    lam = 2.0
    lr = 1.0 / np.linalg.norm(A, 2) ** 2               # 1 / Lipschitz constant of the smooth part
    w = np.zeros(20)
    for _ in range(20000):
        w = ista_step(w, A.T @ (A @ w - b), lr, lam)
    g = A.T @ (A @ w - b)                              # gradient of 0.5*||Aw - b||^2
    nz = w != 0
    assert nz.any() and (~nz).any(), "expected a sparse, non-trivial solution"
    np.testing.assert_allclose(g[nz], -lam * np.sign(w[nz]), atol=1e-6)
    assert np.all(np.abs(g[~nz]) <= lam + 1e-6)


# --------------------------------------------------------------------------- activations

def _normal_cdf_by_quadrature(x: np.ndarray) -> np.ndarray:
    """Phi(x) by integrating the standard normal density (trapezoid rule), independent of erf."""
    t = np.linspace(-12.0, 12.0, 480001)
    pdf = np.exp(-0.5 * t * t) / math.sqrt(2.0 * math.pi)
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (pdf[1:] + pdf[:-1]) * np.diff(t))])
    return np.interp(x, t, cdf)


@check("act-gelu-code")
def _act_gelu(ns):
    gelu, gelu_tanh, gelu_grad = ns["gelu"], ns["gelu_tanh"], ns["gelu_grad"]
    x = np.linspace(-8.0, 8.0, 4001)

    # exact GELU = x * Phi(x), with Phi from numerical integration
    np.testing.assert_allclose(gelu(x), x * _normal_cdf_by_quadrature(x), atol=1e-8)
    assert float(gelu(np.array(0.0))) == 0.0
    np.testing.assert_allclose(gelu(np.array([10.0, -10.0])), [10.0, 0.0], atol=1e-12)

    # tanh approximation: max abs error about 4.7e-4 (at |x| ~ 2.7), the card says ~5e-4
    xw = np.linspace(-12.0, 12.0, 240001)
    err = np.abs(gelu(xw) - gelu_tanh(xw))
    assert 3e-4 < err.max() < 5e-4, err.max()

    # derivative against central finite differences
    h = 1e-5
    fd = (gelu(x + h) - gelu(x - h)) / (2 * h)
    np.testing.assert_allclose(gelu_grad(x), fd, atol=1e-7)

    # minimum of GELU ~ -0.17 near x ~ -0.75 (stated on act-gelu-nonmonotonic)
    i = int(np.argmin(gelu(xw)))
    assert abs(xw[i] + 0.75) < 0.01 and abs(gelu(xw)[i] + 0.17) < 0.001


# --------------------------------------------------------------------------- imbalance

def _log_softmax_loop(row: np.ndarray) -> np.ndarray:
    m = max(row)
    s = sum(math.exp(v - m) for v in row)
    return np.array([v - m - math.log(s) for v in row])


@check("imb-focal-code")
def _imb_focal(ns):
    bfl, sfl = ns["binary_focal_loss"], ns["softmax_focal_loss"]
    rng = np.random.default_rng(1)

    # softmax version, per-sample reference written directly from FL = -alpha_y (1 - p_t)^gamma log p_t
    N, K = 64, 5
    logits = rng.normal(scale=3.0, size=(N, K))
    y = rng.integers(0, K, size=N)
    alpha = rng.uniform(0.1, 1.0, size=K)
    for gamma in (0.0, 0.5, 2.0, 5.0):
        for a in (None, alpha):
            ref = []
            for i in range(N):
                p = np.exp(logits[i] - logits[i].max())
                p = p / p.sum()
                pt = p[y[i]]
                ref.append((1.0 if a is None else a[y[i]]) * -((1 - pt) ** gamma) * math.log(pt))
            np.testing.assert_allclose(sfl(logits, y, gamma=gamma, alpha=a), np.mean(ref), rtol=1e-10)

    # gamma = 0, no alpha: plain cross-entropy (reference via a loop log-softmax)
    ce = -np.mean([_log_softmax_loop(logits[i])[y[i]] for i in range(N)])
    np.testing.assert_allclose(sfl(logits, y, gamma=0.0, alpha=None), ce, rtol=1e-12)

    # binary version: per-sample reference with p = 1 / (1 + e^-z)
    z = rng.normal(scale=3.0, size=200)
    yb = rng.integers(0, 2, size=200)
    for gamma in (0.0, 1.0, 2.0):
        for al in (0.25, 0.5, 0.9):
            ref = []
            for zi, yi in zip(z, yb):
                p = 1.0 / (1.0 + math.exp(-zi))
                pt, at = (p, al) if yi == 1 else (1 - p, 1 - al)
                ref.append(-at * (1 - pt) ** gamma * math.log(pt))
            np.testing.assert_allclose(bfl(z, yb, gamma=gamma, alpha=al), np.mean(ref), rtol=1e-9)

    # gamma = 0, alpha = 0.5: half the binary cross-entropy
    p = 1.0 / (1.0 + np.exp(-z))
    bce = -np.mean(yb * np.log(p) + (1 - yb) * np.log(1 - p))
    np.testing.assert_allclose(bfl(z, yb, gamma=0.0, alpha=0.5), 0.5 * bce, rtol=1e-10)

    # numerically stable for huge logits, and easy examples are down-weighted
    big = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 0.0]])
    assert np.isfinite(sfl(big, np.array([1, 0]), gamma=2.0))
    assert np.isfinite(bfl(np.array([800.0, -800.0]), np.array([0, 1]), gamma=2.0, alpha=0.25))
    easy = np.array([[4.0, 0.0]])
    assert sfl(easy, np.array([0]), gamma=2.0) < 0.01 * sfl(easy, np.array([0]), gamma=0.0)


# --------------------------------------------------------------------------- learning-rate schedule

@check("lrs-warmup-cosine-code")
def _lrs_warmup_cosine(ns):
    lr_at = ns["lr_at"]
    max_lr, min_lr, warm, total = 3e-4, 3e-5, 100, 1000
    lrs = np.array([lr_at(s, max_lr, warm, total, min_lr) for s in range(total + 51)])

    # endpoints and the middle of the decay
    assert lrs[0] == 0.0
    np.testing.assert_allclose(lrs[warm], max_lr, rtol=1e-12)
    np.testing.assert_allclose(lrs[total], min_lr, rtol=1e-12)
    np.testing.assert_allclose(lrs[total + 1:], min_lr, rtol=1e-12)
    np.testing.assert_allclose(lrs[(warm + total) // 2], (max_lr + min_lr) / 2, rtol=1e-12)

    # linear warmup, monotone up then down, continuous at the junction
    np.testing.assert_allclose(lrs[:warm + 1], max_lr * np.arange(warm + 1) / warm, rtol=1e-12)
    assert np.all(np.diff(lrs[:warm + 1]) > 0)
    assert np.all(np.diff(lrs[warm:total + 1]) < 0)
    assert abs(lrs[warm] - lrs[warm - 1]) <= max_lr / warm + 1e-15

    # independent closed form: cosine decay = min + (max - min) * cos^2(pi p / 2)
    s = np.arange(warm, total + 1)
    p = (s - warm) / (total - warm)
    np.testing.assert_allclose(lrs[warm:total + 1], min_lr + (max_lr - min_lr) * np.cos(np.pi * p / 2) ** 2,
                               rtol=1e-10, atol=1e-18)

    # min_lr defaults to 0; no warmup also works
    np.testing.assert_allclose(lr_at(500, 1.0, 0, 1000), 0.5, rtol=1e-12)
    assert lr_at(1000, 1.0, 0, 1000) < 1e-15


# --------------------------------------------------------------------------- initialisation

@check("init-kaiming-code")
def _init_kaiming(ns):
    kaiming_normal = ns["kaiming_normal"]
    rng = np.random.default_rng(2)

    # shape (fan_out, fan_in) and empirical std sqrt(2 / fan_in), also with a leaky slope
    W = kaiming_normal(400, 600, rng)
    assert W.shape == (600, 400)
    assert abs(W.mean()) < 0.003
    np.testing.assert_allclose(W.std(), math.sqrt(2 / 400), rtol=0.01)
    W = kaiming_normal(300, 500, rng, a=0.2)
    np.testing.assert_allclose(W.std(), math.sqrt(2 / (1.04 * 300)), rtol=0.01)

    # a 20-layer ReLU MLP keeps the mean square of its activations; N(0, 1/fan_in) halves it per layer
    width, depth = 1024, 20
    x0 = np.random.default_rng(3).normal(size=(256, width))

    def final_mean_square(init, act):
        r = np.random.default_rng(4)
        h = x0
        for _ in range(depth):
            h = act(h @ init(r).T)
        return float(np.mean(h ** 2))

    relu = lambda v: np.maximum(v, 0.0)
    ms0 = float(np.mean(x0 ** 2))
    ms_he = final_mean_square(lambda r: kaiming_normal(width, width, r), relu)
    ms_lecun = final_mean_square(lambda r: r.normal(0, math.sqrt(1 / width), (width, width)), relu)
    # after the first ReLU the mean square is half the pre-activation's (= ms0 under He), then stays put
    assert 0.25 < ms_he / ms0 < 2.0, ms_he / ms0
    np.testing.assert_allclose(ms_lecun / ms_he, 2.0 ** -depth, rtol=0.5)

    # leaky ReLU with its matching gain also keeps the scale
    leaky = lambda v: np.where(v > 0, v, 0.2 * v)
    ms_leaky = final_mean_square(lambda r: kaiming_normal(width, width, r, a=0.2), leaky)
    assert 0.25 < ms_leaky / ms0 < 2.0, ms_leaky / ms0


# --------------------------------------------------------------------------- normalisation

def _ln_loop(x2d: np.ndarray, gamma, beta, eps):
    out = np.empty_like(x2d)
    d = x2d.shape[1]
    for i in range(x2d.shape[0]):
        mu = sum(x2d[i]) / d
        var = sum((v - mu) ** 2 for v in x2d[i]) / d
        for j in range(d):
            out[i, j] = gamma[j] * (x2d[i, j] - mu) / math.sqrt(var + eps) + beta[j]
    return out


@check("norm-ln-code")
def _norm_ln(ns):
    layer_norm = ns["layer_norm"]
    rng = np.random.default_rng(5)
    x = rng.normal(2.0, 3.0, size=(4, 6, 16))
    gamma, beta = rng.normal(size=16), rng.normal(size=16)

    # against an explicit loop, for a 3-D input (normalise over the last axis only)
    ref = _ln_loop(x.reshape(-1, 16), gamma, beta, 1e-5).reshape(x.shape)
    np.testing.assert_allclose(layer_norm(x, gamma, beta, eps=1e-5), ref, rtol=1e-10, atol=1e-12)

    # with gamma = 1, beta = 0: zero mean and variance var / (var + eps) per row
    y = layer_norm(x, np.ones(16), np.zeros(16), eps=1e-5)
    np.testing.assert_allclose(y.mean(-1), 0.0, atol=1e-12)
    v = x.var(-1)
    np.testing.assert_allclose(y.var(-1), v / (v + 1e-5), rtol=1e-10)

    # invariance to a per-row shift and a positive scale (eps = 0)
    a = rng.uniform(0.1, 10.0, size=(4, 6, 1))
    b = rng.normal(size=(4, 6, 1))
    np.testing.assert_allclose(layer_norm(a * x + b, gamma, beta, eps=0.0), layer_norm(x, gamma, beta, eps=0.0),
                               rtol=1e-9, atol=1e-9)


@check("norm-rmsnorm-code")
def _norm_rms(ns):
    rms_norm = ns["rms_norm"]
    rng = np.random.default_rng(6)
    x = rng.normal(1.0, 2.0, size=(3, 5, 32))
    g = rng.normal(size=32)

    # against an explicit loop
    ref = np.empty_like(x)
    for idx in np.ndindex(*x.shape[:-1]):
        r = math.sqrt(sum(v * v for v in x[idx]) / 32 + 1e-6)
        ref[idx] = [g[j] * x[idx][j] / r for j in range(32)]
    np.testing.assert_allclose(rms_norm(x, g, eps=1e-6), ref, rtol=1e-10, atol=1e-12)

    # unit RMS output with g = 1; scale invariance; not shift invariant
    y = rms_norm(x, np.ones(32), eps=0.0)
    np.testing.assert_allclose(np.sqrt(np.mean(y ** 2, axis=-1)), 1.0, rtol=1e-12)
    a = rng.uniform(0.1, 10.0, size=(3, 5, 1))
    np.testing.assert_allclose(rms_norm(a * x, g, eps=0.0), rms_norm(x, g, eps=0.0), rtol=1e-9, atol=1e-12)
    assert not np.allclose(rms_norm(x + 1.0, g, eps=0.0), rms_norm(x, g, eps=0.0))

    # zero-mean input: equals LayerNorm with gamma = g, beta = 0
    xc = x - x.mean(-1, keepdims=True)
    ln = g * (xc - xc.mean(-1, keepdims=True)) / np.sqrt(xc.var(-1, keepdims=True) + 1e-6)
    np.testing.assert_allclose(rms_norm(xc, g, eps=1e-6), ln, rtol=1e-9, atol=1e-12)


@check("norm-gn-code")
def _norm_gn(ns):
    group_norm = ns["group_norm"]
    rng = np.random.default_rng(7)
    N, C, H, W = 3, 8, 5, 4
    x = rng.normal(0.5, 2.0, size=(N, C, H, W))
    gamma, beta = rng.normal(size=C), rng.normal(size=C)
    eps = 1e-5
    gb = lambda t: t.reshape(1, C, 1, 1)

    # G = 1: LayerNorm over (C, H, W) of each sample, per-channel affine
    mu = x.mean(axis=(1, 2, 3), keepdims=True)
    var = x.var(axis=(1, 2, 3), keepdims=True)
    np.testing.assert_allclose(group_norm(x, 1, gamma, beta, eps), gb(gamma) * (x - mu) / np.sqrt(var + eps) + gb(beta),
                               rtol=1e-10, atol=1e-12)

    # G = C: InstanceNorm over (H, W) of each sample and channel
    mu = x.mean(axis=(2, 3), keepdims=True)
    var = x.var(axis=(2, 3), keepdims=True)
    np.testing.assert_allclose(group_norm(x, C, gamma, beta, eps), gb(gamma) * (x - mu) / np.sqrt(var + eps) + gb(beta),
                               rtol=1e-10, atol=1e-12)

    # G = 4: explicit loop over samples and groups
    G, cg = 4, C // 4
    ref = np.empty_like(x)
    for n in range(N):
        for grp in range(G):
            block = x[n, grp * cg:(grp + 1) * cg]
            vals = block.ravel().tolist()
            m = sum(vals) / len(vals)
            v = sum((t - m) ** 2 for t in vals) / len(vals)
            for c in range(grp * cg, (grp + 1) * cg):
                ref[n, c] = gamma[c] * (x[n, c] - m) / math.sqrt(v + eps) + beta[c]
    np.testing.assert_allclose(group_norm(x, G, gamma, beta, eps), ref, rtol=1e-10, atol=1e-12)


# --------------------------------------------------------------------------- dropout

@check("dropout-code")
def _dropout(ns):
    import torch

    fwd, bwd = ns["dropout_forward"], ns["dropout_backward"]
    rng = np.random.default_rng(8)
    x = rng.normal(size=(200, 300))

    # eval mode and p = 0: exact identity, no mask
    for p, training in ((0.3, False), (0.0, True)):
        out, mask = fwd(x, p, training, rng)
        assert mask is None and np.array_equal(out, x)
        assert np.array_equal(bwd(np.ones_like(x), mask), np.ones_like(x))

    for p in (0.1, 0.5, 0.8):
        out, mask = fwd(x, p, True, rng)
        assert out.shape == x.shape
        dropped = out == 0.0
        # drop rate ~ p: 60000 Bernoulli draws, 5 standard deviations
        sd = math.sqrt(p * (1 - p) / x.size)
        assert abs(dropped.mean() - p) < 5 * sd, (dropped.mean(), p)
        # kept entries are exactly x / (1 - p), the PyTorch convention
        np.testing.assert_allclose(out[~dropped], x[~dropped] / (1 - p), rtol=1e-12)
        t = torch.nn.functional.dropout(torch.from_numpy(x), p=p, training=True).numpy()
        kept_t = t != 0.0
        np.testing.assert_allclose(t[kept_t], x[kept_t] / (1 - p), rtol=1e-6)
        # backward: the same mask, equal to the gradient of sum(out * dout) w.r.t. x
        dout = rng.normal(size=x.shape)
        np.testing.assert_allclose(bwd(dout, mask), dout * out / np.where(x == 0, 1.0, x), rtol=1e-10)
        assert np.all(bwd(dout, mask)[dropped] == 0.0)

    # expectation preserved: the mean of many dropout draws of a fixed vector tends to x
    v = rng.normal(size=50)
    p, n = 0.4, 20000
    draws = np.stack([fwd(v, p, True, rng)[0] for _ in range(n)])
    sd = np.abs(v) * math.sqrt(p / (1 - p)) / math.sqrt(n)   # std of the mean of x*m/(1-p)
    assert np.all(np.abs(draws.mean(0) - v) < 5 * sd + 1e-12)
    # and a fresh mask on every call
    assert not np.array_equal(fwd(x, 0.5, True, rng)[1], fwd(x, 0.5, True, rng)[1])


# --------------------------------------------------------------------------- gradient clipping

@check("clip-code")
def _clip(ns):
    import torch

    clip_grad_norm, clip_grad_value = ns["clip_grad_norm"], ns["clip_grad_value"]
    rng = np.random.default_rng(9)
    shapes = [(3, 4), (5,), (2, 3, 2), (1,)]

    def torch_params(grads):
        ps = []
        for g in grads:
            t = torch.zeros(g.shape, dtype=torch.float64, requires_grad=True)
            t.grad = torch.from_numpy(g.copy())
            ps.append(t)
        return ps

    for scale, max_norm in ((10.0, 1.0), (0.01, 1.0), (3.0, 0.5), (1.0, 100.0)):
        grads = [scale * rng.normal(size=s) for s in shapes]
        ps = torch_params(grads)
        ref_total = float(torch.nn.utils.clip_grad_norm_(ps, max_norm))
        out, total = clip_grad_norm([g.copy() for g in grads], max_norm)
        # same pre-clipping norm and same clipped gradients as PyTorch
        np.testing.assert_allclose(float(total), ref_total, rtol=1e-12)
        assert len(out) == len(grads)
        for o, p_ in zip(out, ps):
            np.testing.assert_allclose(o, p_.grad.numpy(), rtol=1e-10, atol=1e-15)
        # direction kept; new global norm is min(total, max_norm) (up to eps)
        flat_in = np.concatenate([g.ravel() for g in grads])
        flat_out = np.concatenate([o.ravel() for o in out])
        new_norm = np.linalg.norm(flat_out)
        np.testing.assert_allclose(new_norm, min(np.linalg.norm(flat_in), max_norm), rtol=1e-5)
        cos = flat_in @ flat_out / (np.linalg.norm(flat_in) * new_norm)
        np.testing.assert_allclose(cos, 1.0, rtol=1e-12)

    # global, not per-tensor: a tiny tensor next to a huge one is scaled by the same factor
    grads = [np.full(4, 1000.0), np.full(4, 1e-3)]
    out, _ = clip_grad_norm([g.copy() for g in grads], 1.0)
    np.testing.assert_allclose(out[1] / grads[1], out[0] / grads[0], rtol=1e-12)
    # all-zero gradients: no division by zero, returned unchanged
    out, total = clip_grad_norm([np.zeros(3), np.zeros((2, 2))], 1.0)
    assert float(total) == 0.0 and all(np.all(o == 0) for o in out)

    # clip by value against torch.nn.utils.clip_grad_value_
    grads = [3.0 * rng.normal(size=s) for s in shapes]
    ps = torch_params(grads)
    torch.nn.utils.clip_grad_value_(ps, 1.5)
    for o, p_ in zip(clip_grad_value(grads, 1.5), ps):
        np.testing.assert_allclose(o, p_.grad.numpy(), rtol=0, atol=0)
