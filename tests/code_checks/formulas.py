"""Checks for the code cards of guide section 2.1 (公式理解类).

Each check compares a card's NumPy snippet with an independent reference: plain Python loops with the ``math``
module, brute-force enumeration, finite differences or known identities.
"""
from __future__ import annotations

import itertools
import math

import numpy as np

from tests.code_checks import check


def _softmax_loop(row):
    """Reference softmax of one 1-D row with Python floats (moderate values only)."""
    exps = [math.exp(v) for v in row]
    total = math.fsum(exps)
    return [e / total for e in exps]


def _lse_loop(row):
    m = max(row)
    return m + math.log(math.fsum(math.exp(v - m) for v in row))


def _numgrad(f, x, h=1e-6):
    """Central finite differences of a scalar function f at array x."""
    x = np.array(x, dtype=float)
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + h
        fp = f(x)
        x[idx] = old - h
        fm = f(x)
        x[idx] = old
        g[idx] = (fp - fm) / (2 * h)
    return g


# ---------------------------------------------------------------- 2.1.1 softmax

@check("softmax-code")
def _softmax(ns):
    softmax, logsumexp, log_softmax = ns["softmax"], ns["logsumexp"], ns["log_softmax"]
    rng = np.random.default_rng(0)
    z = rng.normal(scale=3.0, size=(6, 7))
    ref_p = np.array([_softmax_loop(r) for r in z])
    ref_lse = np.array([_lse_loop(r) for r in z])
    np.testing.assert_allclose(softmax(z), ref_p, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(logsumexp(z), ref_lse, rtol=1e-12)
    np.testing.assert_allclose(log_softmax(z), np.log(ref_p), rtol=1e-10, atol=1e-12)
    # a 1-D input works too
    np.testing.assert_allclose(softmax(z[0]), ref_p[0], rtol=1e-12)
    np.testing.assert_allclose(logsumexp(z[0]), ref_lse[0], rtol=1e-12)
    # huge logits: no overflow, shift invariance, identities stay exact
    big = z * 100 + 1000.0
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        p_big = softmax(big)
        lse_big = logsumexp(big)
        lsm_big = log_softmax(big)
    assert np.all(np.isfinite(p_big)) and np.all(np.isfinite(lse_big)) and np.all(np.isfinite(lsm_big))
    np.testing.assert_allclose(p_big.sum(axis=-1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(softmax(z + 500.0), softmax(z), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(logsumexp(z + 500.0), logsumexp(z) + 500.0, rtol=1e-12)
    np.testing.assert_allclose(lsm_big, big - lse_big[:, None], rtol=1e-12, atol=1e-9)
    # very negative log-probabilities stay finite (np.log(softmax) would give -inf)
    assert np.all(np.isfinite(log_softmax(np.array([0.0, -1000.0]))))
    np.testing.assert_allclose(log_softmax(np.array([0.0, -1000.0]))[1], -1000.0, rtol=1e-12)


@check("softmax-backward-code")
def _softmax_backward(ns):
    softmax, softmax_backward = ns["softmax"], ns["softmax_backward"]
    import torch
    rng = np.random.default_rng(3)
    for shape in [(5,), (4, 6), (2, 3, 7)]:
        z = rng.normal(scale=2.0, size=shape)
        w = rng.normal(size=shape)  # L = sum(w * softmax(z)), so dL/dp = w
        p = softmax(z)
        dz = softmax_backward(p, w)
        assert dz.shape == z.shape
        # finite differences of the scalar loss
        np.testing.assert_allclose(dz, _numgrad(lambda zz: float(np.sum(w * softmax(zz))), z), rtol=1e-6,
                                   atol=1e-9)
        # torch.autograd
        zt = torch.tensor(z, requires_grad=True)
        torch.softmax(zt, dim=-1).backward(torch.tensor(w))
        np.testing.assert_allclose(dz, zt.grad.numpy(), rtol=1e-10, atol=1e-13)
        # the explicit Jacobian diag(p) - p p^T, row by row (plain loops)
        for idx in np.ndindex(shape[:-1]):
            row, g = p[idx], w[idx]
            K = len(row)
            ref = [sum(g[i] * row[i] * ((i == j) - row[j]) for i in range(K)) for j in range(K)]
            np.testing.assert_allclose(dz[idx], ref, rtol=1e-10, atol=1e-13)
        # components sum to zero (shift invariance)
        np.testing.assert_allclose(dz.sum(axis=-1), 0.0, atol=1e-12)
    # with the cross-entropy gradient dL/dp = -y / p the result is p - y
    z = rng.normal(size=(3, 5))
    y = np.eye(5)[[0, 3, 4]]
    p = softmax(z)
    np.testing.assert_allclose(softmax_backward(p, -y / p), p - y, rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------- 2.1.2 BatchNorm

def _bn_reference(x, gamma, beta, mean0, var0, momentum, eps):
    """Per-channel loop with the PyTorch conventions."""
    C = x.shape[1]
    y = np.empty_like(x)
    new_mean, new_var = mean0.copy(), var0.copy()
    for c in range(C):
        v = np.moveaxis(x, 1, 0)[c].ravel().tolist()
        n = len(v)
        mu = math.fsum(v) / n
        var = math.fsum((a - mu) ** 2 for a in v) / n
        new_mean[c] = (1 - momentum) * mean0[c] + momentum * mu
        new_var[c] = (1 - momentum) * var0[c] + momentum * var * n / (n - 1)
        y[:, c] = gamma[c] * (x[:, c] - mu) / math.sqrt(var + eps) + beta[c]
    return y, new_mean, new_var


@check("bn-code")
def _batchnorm(ns):
    bn = ns["batchnorm"]
    rng = np.random.default_rng(1)
    for shape in [(16, 5), (4, 3, 6, 5)]:
        C = shape[1]
        x = rng.normal(loc=2.0, scale=3.0, size=shape)
        gamma = rng.uniform(0.5, 2.0, size=C)
        beta = rng.normal(size=C)
        mean0, var0 = rng.normal(size=C), rng.uniform(0.5, 2.0, size=C)
        state = {"mean": mean0.copy(), "var": var0.copy()}
        y = bn(x, gamma, beta, state, training=True, momentum=0.1, eps=1e-5)
        y_ref, m_ref, v_ref = _bn_reference(x, gamma, beta, mean0, var0, 0.1, 1e-5)
        assert y.shape == x.shape
        np.testing.assert_allclose(y, y_ref, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(state["mean"], m_ref, rtol=1e-12)
        np.testing.assert_allclose(state["var"], v_ref, rtol=1e-12)
        # with gamma = 1, beta = 0 each channel of the output has mean 0 and (nearly) unit variance
        y01 = bn(x, np.ones(C), np.zeros(C), {"mean": np.zeros(C), "var": np.ones(C)}, training=True)
        axes = (0,) + tuple(range(2, x.ndim))
        np.testing.assert_allclose(y01.mean(axis=axes), 0.0, atol=1e-12)
        np.testing.assert_allclose(y01.var(axis=axes), 1.0, rtol=1e-4)
        # inference: uses the running statistics, leaves them unchanged, and is a per-channel affine map
        frozen = {"mean": state["mean"].copy(), "var": state["var"].copy()}
        x2 = rng.normal(size=shape)
        y_inf = bn(x2, gamma, beta, frozen, training=False, eps=1e-5)
        np.testing.assert_array_equal(frozen["mean"], state["mean"])
        np.testing.assert_array_equal(frozen["var"], state["var"])
        scale = gamma / np.sqrt(state["var"] + 1e-5)
        shift = beta - scale * state["mean"]
        bshape = (1, C) + (1,) * (x.ndim - 2)
        np.testing.assert_allclose(y_inf, x2 * scale.reshape(bshape) + shift.reshape(bshape), rtol=1e-10,
                                   atol=1e-12)
        # inference on a single sample gives the same result as in the batch
        np.testing.assert_allclose(bn(x2[:1], gamma, beta, frozen, training=False, eps=1e-5), y_inf[:1],
                                   rtol=1e-12)
    # running statistics converge to the population statistics (unbiased variance)
    C = 3
    state = {"mean": np.zeros(C), "var": np.ones(C)}
    mu, sd = np.array([1.0, -2.0, 0.5]), np.array([2.0, 0.5, 1.0])
    for _ in range(400):
        bn(rng.normal(size=(64, C)) * sd + mu, np.ones(C), np.zeros(C), state, training=True)
    np.testing.assert_allclose(state["mean"], mu, atol=0.1)
    np.testing.assert_allclose(state["var"], sd ** 2, rtol=0.15)
    # one value per channel in training: a ValueError like PyTorch's, and the running statistics stay untouched
    for shape in [(1, C), (1, C, 1, 1)]:
        before = {"mean": state["mean"].copy(), "var": state["var"].copy()}
        try:
            bn(rng.normal(size=shape), np.ones(C), np.zeros(C), state, training=True)
        except ValueError as err:
            assert "Expected more than 1 value per channel when training" in str(err)
        else:
            raise AssertionError(f"a {shape} batch in training mode must raise ValueError")
        np.testing.assert_array_equal(state["mean"], before["mean"])
        np.testing.assert_array_equal(state["var"], before["var"])
        assert np.all(np.isfinite(state["var"]))
    # ... but one sample with H*W > 1 values per channel is fine (statistics over H, W), and so is inference
    x1 = rng.normal(size=(1, C, 3, 2))
    g1, b1 = rng.uniform(0.5, 2.0, size=C), rng.normal(size=C)
    m0, v0 = state["mean"].copy(), state["var"].copy()
    y1 = bn(x1, g1, b1, state, training=True, momentum=0.1, eps=1e-5)
    y1_ref, m1_ref, v1_ref = _bn_reference(x1, g1, b1, m0, v0, 0.1, 1e-5)
    np.testing.assert_allclose(y1, y1_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(state["var"], v1_ref, rtol=1e-12)
    y_eval = bn(rng.normal(size=(1, C)), g1, b1, {"mean": m0.copy(), "var": v0.copy()}, training=False)
    assert y_eval.shape == (1, C) and np.all(np.isfinite(y_eval))
    # the same behaviour as torch.nn.BatchNorm1d in training mode
    import torch
    with torch.no_grad():
        tbn = torch.nn.BatchNorm1d(C).double().train()
        xt = rng.normal(size=(8, C))
        ref_t = tbn(torch.from_numpy(xt)).numpy()
        st = {"mean": np.zeros(C), "var": np.ones(C)}
        np.testing.assert_allclose(bn(xt, np.ones(C), np.zeros(C), st, training=True), ref_t, rtol=1e-9,
                                   atol=1e-12)
        np.testing.assert_allclose(st["mean"], tbn.running_mean.numpy(), rtol=1e-12)
        np.testing.assert_allclose(st["var"], tbn.running_var.numpy(), rtol=1e-12)
        try:
            tbn(torch.zeros(1, C, dtype=torch.float64))
        except ValueError as err:
            assert "Expected more than 1 value per channel when training" in str(err)


def _bn_forward_train(x, gamma, beta, eps):
    mu = x.mean(axis=0)
    var = ((x - mu) ** 2).mean(axis=0)
    return gamma * (x - mu) / np.sqrt(var + eps) + beta


@check("bn-backward-code")
def _bn_backward(ns):
    bn_backward = ns["bn_backward"]
    rng = np.random.default_rng(11)
    import torch
    for m, C in [(7, 3), (16, 5), (2, 2)]:
        x = rng.normal(loc=1.5, scale=2.0, size=(m, C))
        gamma = rng.uniform(0.5, 2.0, size=C)
        beta = rng.normal(size=C)
        dy = rng.normal(size=(m, C))
        dx, dgamma, dbeta = bn_backward(dy, x, gamma, eps=1e-5)
        # finite differences of L = sum(dy * y)
        f = lambda xx: float(np.sum(dy * _bn_forward_train(xx, gamma, beta, 1e-5)))
        np.testing.assert_allclose(dx, _numgrad(f, x), rtol=1e-5, atol=1e-7)
        fg = lambda gg: float(np.sum(dy * _bn_forward_train(x, gg, beta, 1e-5)))
        np.testing.assert_allclose(dgamma, _numgrad(fg, gamma), rtol=1e-6, atol=1e-8)
        fb = lambda bb: float(np.sum(dy * _bn_forward_train(x, gamma, bb, 1e-5)))
        np.testing.assert_allclose(dbeta, _numgrad(fb, beta), rtol=1e-6, atol=1e-8)
        # torch.autograd through F.batch_norm in training mode
        xt = torch.tensor(x, requires_grad=True)
        gt = torch.tensor(gamma, requires_grad=True)
        bt = torch.tensor(beta, requires_grad=True)
        yt = torch.nn.functional.batch_norm(xt, None, None, gt, bt, training=True, eps=1e-5)
        yt.backward(torch.tensor(dy))
        np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(dgamma, gt.grad.numpy(), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(dbeta, bt.grad.numpy(), rtol=1e-9, atol=1e-12)
        # the gradient sums to zero over the batch
        np.testing.assert_allclose(dx.sum(axis=0), 0.0, atol=1e-10)


@check("bn-fold-code")
def _bn_fold(ns):
    fold_bn = ns["fold_bn"]
    import torch
    rng = np.random.default_rng(12)
    eps = 1e-5
    # a linear layer followed by BN in eval mode
    W, b = rng.normal(size=(4, 6)), rng.normal(size=4)
    gamma, beta = rng.uniform(0.5, 2.0, size=4), rng.normal(size=4)
    mean, var = rng.normal(size=4), rng.uniform(0.2, 3.0, size=4)
    x = rng.normal(size=(9, 6))
    ref = gamma * (x @ W.T + b - mean) / np.sqrt(var + eps) + beta
    W2, b2 = fold_bn(W, b, gamma, beta, mean, var, eps=eps)
    assert W2.shape == W.shape and b2.shape == b.shape
    np.testing.assert_allclose(x @ W2.T + b2, ref, rtol=1e-10, atol=1e-12)
    # a conv layer followed by BatchNorm2d in eval mode, checked with torch
    conv = torch.nn.Conv2d(3, 5, 3, padding=1).double()
    bn = torch.nn.BatchNorm2d(5).double().eval()
    with torch.no_grad():
        bn.weight.copy_(torch.tensor(rng.uniform(0.5, 2.0, size=5)))
        bn.bias.copy_(torch.tensor(rng.normal(size=5)))
        bn.running_mean.copy_(torch.tensor(rng.normal(size=5)))
        bn.running_var.copy_(torch.tensor(rng.uniform(0.2, 3.0, size=5)))
        xt = torch.tensor(rng.normal(size=(2, 3, 7, 6)))
        ref_t = bn(conv(xt)).numpy()
        Wc, bc = fold_bn(conv.weight.numpy(), conv.bias.numpy(), bn.weight.numpy(), bn.bias.numpy(),
                         bn.running_mean.numpy(), bn.running_var.numpy(), eps=bn.eps)
        out = torch.nn.functional.conv2d(xt, torch.tensor(Wc), torch.tensor(bc), padding=1).numpy()
    np.testing.assert_allclose(out, ref_t, rtol=1e-9, atol=1e-11)


# ---------------------------------------------------------------- 2.1.4 cross-entropy

@check("ce-code")
def _cross_entropy(ns):
    ce = ns["cross_entropy"]
    rng = np.random.default_rng(2)
    N, K = 8, 5
    logits = rng.normal(scale=2.0, size=(N, K))
    y = rng.integers(0, K, size=N)
    ref = math.fsum(-math.log(_softmax_loop(logits[n])[y[n]]) for n in range(N)) / N
    np.testing.assert_allclose(ce(logits, y), ref, rtol=1e-12)
    # the one-hot distribution gives the same loss as the class indices
    np.testing.assert_allclose(ce(logits, np.eye(K)[y]), ref, rtol=1e-12)
    # soft labels
    q = rng.dirichlet(np.ones(K), size=N)
    ref_soft = math.fsum(-math.fsum(q[n, k] * math.log(_softmax_loop(logits[n])[k]) for k in range(K))
                         for n in range(N)) / N
    np.testing.assert_allclose(ce(logits, q), ref_soft, rtol=1e-12)
    # identity H(q, p) = H(q) + KL(q || p) >= H(q)
    entropy = -(q * np.log(q)).sum(axis=1).mean()
    assert ce(logits, q) >= entropy
    # gradient with respect to the logits is (p - y) / N
    p = np.array([_softmax_loop(r) for r in logits])
    np.testing.assert_allclose(_numgrad(lambda z: ce(z, y), logits), (p - np.eye(K)[y]) / N, atol=1e-7)
    np.testing.assert_allclose(_numgrad(lambda z: ce(z, q), logits), (p - q) / N, atol=1e-7)
    # huge logits stay finite: the correct class far below the others costs about the gap
    z = np.array([[1000.0, 0.0, -1000.0]])
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        loss = ce(z, np.array([2]))
    np.testing.assert_allclose(loss, 2000.0, rtol=1e-12)


# ---------------------------------------------------------------- 2.1.6 distillation

def _kd_reference(s, t, y, T, alpha):
    N, K = s.shape
    total = []
    for n in range(N):
        ps = _softmax_loop(s[n] / T)
        pt = _softmax_loop(t[n] / T)
        kl = math.fsum(pt[k] * math.log(pt[k] / ps[k]) for k in range(K))
        hard = -math.log(_softmax_loop(s[n])[y[n]])
        total.append(alpha * T * T * kl + (1 - alpha) * hard)
    return math.fsum(total) / N


@check("kd-code")
def _distillation(ns):
    kd = ns["kd_loss"]
    rng = np.random.default_rng(3)
    N, K = 6, 10
    s = rng.normal(scale=2.0, size=(N, K))
    t = rng.normal(scale=3.0, size=(N, K))
    y = rng.integers(0, K, size=N)
    for T, alpha in [(1.0, 0.5), (4.0, 0.9), (10.0, 0.3)]:
        np.testing.assert_allclose(kd(s, t, y, T=T, alpha=alpha), _kd_reference(s, t, y, T, alpha), rtol=1e-10)
    # alpha = 0 is plain cross-entropy with the labels
    ce = math.fsum(-math.log(_softmax_loop(s[n])[y[n]]) for n in range(N)) / N
    np.testing.assert_allclose(kd(s, t, y, T=3.0, alpha=0.0), ce, rtol=1e-12)
    # the soft term vanishes when the student copies the teacher, and is positive otherwise
    np.testing.assert_allclose(kd(t, t, y, T=5.0, alpha=1.0), 0.0, atol=1e-12)
    assert kd(s, t, y, T=5.0, alpha=1.0) > 0
    # what T^2 is for: the soft-term gradient equals T (p_s - p_t) / N, and at high temperature tends to
    # (z_s - z_t) / (K N) for zero-mean logits, independent of T
    sc = s - s.mean(axis=1, keepdims=True)
    tc = t - t.mean(axis=1, keepdims=True)
    for T in [2.0, 50.0]:
        g = _numgrad(lambda z: kd(z, tc, y, T=T, alpha=1.0), sc, h=1e-5)
        ps = np.array([_softmax_loop(r / T) for r in sc])
        pt = np.array([_softmax_loop(r / T) for r in tc])
        np.testing.assert_allclose(g, T * (ps - pt) / N, atol=1e-7)
    target = (sc - tc) / (K * N)
    g_hot = _numgrad(lambda z: kd(z, tc, y, T=200.0, alpha=1.0), sc, h=1e-4)
    assert np.linalg.norm(g_hot - target) < 0.02 * np.linalg.norm(target)


# ---------------------------------------------------------------- 2.1.7 CRF

def _crf_instance(seed, n=5, K=4):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, K)), rng.normal(size=(K, K)), rng.normal(size=K), rng.normal(size=K),
            rng.integers(0, K, size=n))


def _path_score(E, A, start, end, path):
    s = start[path[0]] + end[path[-1]]
    s += math.fsum(E[i, k] for i, k in enumerate(path))
    s += math.fsum(A[path[i - 1], path[i]] for i in range(1, len(path)))
    return s


@check("crf-nll-code")
def _crf_nll(ns):
    crf_nll = ns["crf_nll"]
    for seed, (n, K) in enumerate([(5, 4), (1, 3), (2, 5), (6, 3)]):
        E, A, start, end, y = _crf_instance(10 + seed, n, K)
        scores = [_path_score(E, A, start, end, p) for p in itertools.product(range(K), repeat=n)]
        log_z = _lse_loop(scores)
        ref = log_z - _path_score(E, A, start, end, list(y))
        np.testing.assert_allclose(crf_nll(E, A, start, end, y), ref, rtol=1e-10, atol=1e-12)
    # the probabilities of all paths sum to 1
    E, A, start, end, _ = _crf_instance(20, 4, 3)
    total = math.fsum(math.exp(-crf_nll(E, A, start, end, np.array(p)))
                      for p in itertools.product(range(3), repeat=4))
    np.testing.assert_allclose(total, 1.0, rtol=1e-10)
    # large scores do not overflow (log space)
    E, A, start, end, y = _crf_instance(21, 6, 4)
    with np.errstate(over="raise"):
        big = crf_nll(E * 500, A * 500, start * 500, end * 500, y)
    assert np.isfinite(big) and big >= -1e-9


@check("crf-viterbi-code")
def _crf_viterbi(ns):
    viterbi = ns["viterbi"]
    for seed, (n, K) in enumerate([(5, 4), (1, 3), (2, 5), (7, 3)]):
        E, A, start, end, _ = _crf_instance(30 + seed, n, K)
        paths = list(itertools.product(range(K), repeat=n))
        scores = [_path_score(E, A, start, end, p) for p in paths]
        best = int(np.argmax(scores))
        path, score = viterbi(E, A, start, end)
        assert len(path) == n
        assert [int(k) for k in path] == list(paths[best])
        np.testing.assert_allclose(score, scores[best], rtol=1e-10)
        np.testing.assert_allclose(_path_score(E, A, start, end, path), scores[best], rtol=1e-10)


def _conll_chunks_counts(gold_seqs, pred_seqs):
    """conlleval's streaming algorithm (chunk start / end from the previous and current tag), on BIO tags.

    Returns (correct chunks, predicted chunks, gold chunks). Sentences are separated by an 'O' boundary, as the
    Perl script does for blank lines. Written as a token-by-token state machine, unlike the card's set of spans.
    """
    def split(tag):
        return ("O", "") if tag == "O" else (tag[0], tag[2:])

    def end_of_chunk(prev_tag, tag, prev_type, typ):
        return ((prev_tag in "BI" and tag in "BO") or
                (prev_tag != "O" and prev_type != typ))

    def start_of_chunk(prev_tag, tag, prev_type, typ):
        return ((tag == "B") or (prev_tag == "O" and tag == "I") or
                (tag != "O" and prev_type != typ))

    correct = found_gold = found_pred = 0
    in_correct = False
    last_g, last_gt, last_p, last_pt = "O", "", "O", ""
    stream = []
    for g, p in zip(gold_seqs, pred_seqs):
        assert len(g) == len(p)
        stream.extend(zip(g, p))
        stream.append(("O", "O"))
    for g_tag, p_tag in stream:
        g, gt = split(g_tag)
        p, pt = split(p_tag)
        g_end = end_of_chunk(last_g, g, last_gt, gt)
        p_end = end_of_chunk(last_p, p, last_pt, pt)
        g_start = start_of_chunk(last_g, g, last_gt, gt)
        p_start = start_of_chunk(last_p, p, last_pt, pt)
        if in_correct:
            if g_end and p_end and last_gt == last_pt:
                in_correct = False
                correct += 1
            elif g_end != p_end or gt != pt:
                in_correct = False
        if g_start and p_start and gt == pt:
            in_correct = True
        found_gold += g_start
        found_pred += p_start
        last_g, last_gt, last_p, last_pt = g, gt, p, pt
    if in_correct:
        correct += 1
    return correct, found_pred, found_gold


def _prf(tp, n_pred, n_gold):
    prec = tp / n_pred if n_pred else 0.0
    rec = tp / n_gold if n_gold else 0.0
    return prec, rec, (2 * prec * rec / (prec + rec) if prec + rec else 0.0)


@check("ner-entity-f1-code")
def _ner_entity_f1(ns):
    bio_spans, entity_prf = ns["bio_spans"], ns["entity_prf"]
    # hand-made sentences with their entities written out
    cases = [
        (["B-PER", "I-PER", "O", "B-LOC"], {("PER", 0, 2), ("LOC", 3, 4)}),
        (["O", "O", "O"], set()),
        (["B-PER", "B-PER"], {("PER", 0, 1), ("PER", 1, 2)}),
        (["O", "I-LOC", "I-LOC"], {("LOC", 1, 3)}),  # a dangling I- starts an entity (conlleval)
        (["B-PER", "I-ORG", "I-ORG"], {("PER", 0, 1), ("ORG", 1, 3)}),
        (["B-ORG", "I-ORG", "I-ORG", "I-ORG"], {("ORG", 0, 4)}),
        (["I-MISC"], {("MISC", 0, 1)}),
        (["B-LOC", "O", "I-LOC", "B-LOC", "I-LOC"], {("LOC", 0, 1), ("LOC", 2, 3), ("LOC", 3, 5)}),
        ([], set()),
    ]
    for tags, spans in cases:
        assert bio_spans(tags) == spans, (tags, bio_spans(tags))
    # hand-made scores
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "I-ORG", "I-ORG", "I-ORG"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "I-ORG", "O", "O"]]
    # one of three predicted entities is right; one of three gold entities is found
    np.testing.assert_allclose(entity_prf(gold, pred), (1 / 3, 1 / 3, 1 / 3), rtol=1e-12)
    np.testing.assert_allclose(entity_prf(gold, gold), (1.0, 1.0, 1.0))
    assert entity_prf(gold, [["O"] * 4, ["O"] * 4]) == (0.0, 0.0, 0.0)
    # precision 1, recall 1/3
    np.testing.assert_allclose(entity_prf(gold, [["B-PER", "I-PER", "O", "O"], ["O"] * 4]), (1.0, 1 / 3, 0.5),
                               rtol=1e-12)
    # an entity at the end of one sentence does not merge with an I- at the start of the next
    # (merged, the gold side would be one two-token entity and nothing would match)
    np.testing.assert_allclose(entity_prf([["B-PER"], ["I-PER"]], [["B-PER"], ["B-PER"]]), (1.0, 1.0, 1.0))
    assert _conll_chunks_counts([["B-PER"], ["I-PER"]], [["B-PER"], ["B-PER"]]) == (2, 2, 2)
    # the state machine itself on the hand-made cases
    for tags_, spans in cases:
        assert _conll_chunks_counts([tags_], [tags_]) == (len(spans),) * 3
    # random sequences (valid and corrupted) against the conlleval state machine
    rng = np.random.default_rng(7)
    tags = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]
    for _ in range(300):
        n_sent = int(rng.integers(1, 5))
        gold, pred = [], []
        for _ in range(n_sent):
            n = int(rng.integers(0, 9))
            g = [tags[i] for i in rng.integers(0, len(tags), size=n)]
            p = [t if rng.random() < 0.7 else tags[int(rng.integers(0, len(tags)))] for t in g]
            gold.append(g)
            pred.append(p)
        ref = _prf(*_conll_chunks_counts(gold, pred))
        np.testing.assert_allclose(entity_prf(gold, pred), ref, rtol=1e-12, atol=0)
        # span counts agree with the state machine's chunk counts
        _, n_pred, n_gold = _conll_chunks_counts(gold, pred)
        assert sum(len(bio_spans(p)) for p in pred) == n_pred
        assert sum(len(bio_spans(g)) for g in gold) == n_gold


# ---------------------------------------------------------------- 2.1.9 logistic regression

@check("lr-code")
def _logistic_regression(ns):
    f = ns["lr_loss_grad"]
    rng = np.random.default_rng(4)
    N, d = 20, 4
    X = rng.normal(size=(N, d))
    y = rng.integers(0, 2, size=N).astype(float)
    w, b = rng.normal(size=d), 0.3
    loss, gw, gb = f(w, b, X, y)
    ref = 0.0
    for n in range(N):
        p = 1.0 / (1.0 + math.exp(-(float(X[n] @ w) + b)))
        ref -= y[n] * math.log(p) + (1 - y[n]) * math.log(1 - p)
    np.testing.assert_allclose(loss, ref / N, rtol=1e-12)
    np.testing.assert_allclose(gw, _numgrad(lambda v: f(v, b, X, y)[0], w), atol=1e-8)
    np.testing.assert_allclose(gb, _numgrad(lambda v: f(w, v[0], X, y)[0], np.array([b]))[0], atol=1e-8)
    # extreme logits: the loss stays finite and exact
    with np.errstate(over="ignore"):
        loss_big, gw_big, _ = f(np.array([1000.0]), 0.0, np.array([[1.0], [-1.0]]), np.array([0.0, 1.0]))
    np.testing.assert_allclose(loss_big, 1000.0, rtol=1e-12)
    np.testing.assert_allclose(gw_big, [1.0], rtol=1e-12)


@check("lr-softmax-grad-code")
def _softmax_regression(ns):
    f = ns["softmax_reg_loss_grad"]
    rng = np.random.default_rng(5)
    N, d, K = 12, 4, 3
    X = rng.normal(size=(N, d))
    y = rng.integers(0, K, size=N)
    W = rng.normal(size=(K, d))
    loss, grad = f(W, X, y)
    ref = math.fsum(-math.log(_softmax_loop(W @ X[n])[y[n]]) for n in range(N)) / N
    np.testing.assert_allclose(loss, ref, rtol=1e-12)
    assert grad.shape == W.shape
    np.testing.assert_allclose(grad, _numgrad(lambda V: f(V, X, y)[0], W), atol=1e-8)
    # the loop form of the same gradient: mean over samples of (p - y) x^T
    outer = sum(np.outer(np.array(_softmax_loop(W @ X[n])) - np.eye(K)[y[n]], X[n]) for n in range(N)) / N
    np.testing.assert_allclose(grad, outer, rtol=1e-10, atol=1e-12)
    # K = 2 reduces to logistic regression on w = w_1 - w_0
    W2 = rng.normal(size=(2, d))
    _, g2 = f(W2, X, (y % 2))
    p1 = 1.0 / (1.0 + np.exp(-(X @ (W2[1] - W2[0]))))
    np.testing.assert_allclose(g2[1], X.T @ (p1 - (y % 2)) / N, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(g2[0], -g2[1], rtol=1e-10, atol=1e-12)


@check("lr-fm-code")
def _fm_forward(ns):
    fm_forward = ns["fm_forward"]
    rng = np.random.default_rng(21)
    for N, n, k in [(5, 6, 3), (1, 4, 1), (8, 10, 4)]:
        X = rng.normal(size=(N, n))
        X[rng.random(size=X.shape) < 0.4] = 0.0  # sparse-ish input
        w0, w, V = float(rng.normal()), rng.normal(size=n), rng.normal(size=(n, k))
        out = fm_forward(X, w0, w, V)
        assert out.shape == (N,)
        # the O(k n^2) double loop over feature pairs, with plain floats
        ref = []
        for r in range(N):
            x = X[r].tolist()
            total = w0 + math.fsum(w[i] * x[i] for i in range(n))
            total += math.fsum(float(V[i] @ V[j]) * x[i] * x[j] for i in range(n) for j in range(i + 1, n))
            ref.append(total)
        np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-10)
    # with a single non-zero feature there is no pair: FM reduces to the linear model
    X = np.zeros((1, 5))
    X[0, 2] = 3.0
    w = rng.normal(size=5)
    np.testing.assert_allclose(fm_forward(X, 0.5, w, rng.normal(size=(5, 3))), [0.5 + 3.0 * w[2]], rtol=1e-12)


# ---------------------------------------------------------------- 1.x project evaluation (significance, pass@k)

@check("proj-mcnemar-code")
def _mcnemar(ns):
    mcnemar = ns["mcnemar"]

    def reference(a, b):
        # counts of the discordant pairs, exact two-sided binomial p by summing probabilities as floats
        n01 = sum(1 for x, y in zip(a, b) if x and not y)
        n10 = sum(1 for x, y in zip(a, b) if y and not x)
        n = n01 + n10
        if n == 0:
            return 0.0, 1.0
        chi2 = (abs(n01 - n10) - 1) ** 2 / n
        pmf = [math.exp(math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) - n * math.log(2))
               for i in range(n + 1)]
        obs = pmf[n01]
        # two-sided: all outcomes at most as likely as the observed one (equal to 2 * tail for p = 1/2)
        p = min(1.0, math.fsum(q for q in pmf if q <= obs * (1 + 1e-12)))
        return chi2, p

    # the card's worked example: b = 30, c = 50 among 2000
    a = [True] * 1900 + [True] * 30 + [False] * 50 + [False] * 20
    b = [True] * 1900 + [False] * 30 + [True] * 50 + [False] * 20
    chi2, p = mcnemar(a, b)
    np.testing.assert_allclose(chi2, 361 / 80, rtol=1e-12)
    np.testing.assert_allclose(p, reference(a, b)[1], rtol=1e-9)
    assert 0.03 < p < 0.04
    # chi-square with one degree of freedom: P(X > x) = erfc(sqrt(x / 2)); the corrected statistic's p is close
    assert abs(math.erfc(math.sqrt(chi2 / 2)) - p) < 0.01
    try:
        from scipy import stats
    except ImportError:
        stats = None
    if stats is not None:
        np.testing.assert_allclose(p, stats.binomtest(30, 80, 0.5).pvalue, rtol=1e-9)
    rng = np.random.default_rng(5)
    for _ in range(200):
        n = int(rng.integers(0, 300))
        xa = (rng.random(n) < rng.uniform(0.3, 0.95)).tolist()
        flip = rng.random(n) < rng.uniform(0.0, 0.3)
        xb = [(not x) if f else x for x, f in zip(xa, flip)]
        chi2, p = mcnemar(xa, xb)
        r_chi2, r_p = reference(xa, xb)
        np.testing.assert_allclose(chi2, r_chi2, rtol=1e-12)
        np.testing.assert_allclose(p, r_p, rtol=1e-9, atol=1e-300)
        assert 0.0 <= p <= 1.0
        # symmetric in the two models
        np.testing.assert_allclose(mcnemar(xb, xa)[1], p, rtol=1e-12)
    # identical models: no evidence
    assert mcnemar([True, False], [True, False]) == (0.0, 1.0)
    # large n stays exact (integer arithmetic)
    big_a = [True] * 3000 + [False] * 2000
    big_b = [False] * 3000 + [True] * 2000
    assert mcnemar(big_a, big_b)[1] < 1e-40


@check("proj-metric-passk-code")
def _pass_at_k(ns):
    pass_at_k = ns["pass_at_k"]
    for n in range(1, 13):
        for c in range(n + 1):
            for k in range(1, n + 1):
                exact = 1 - math.comb(n - c, k) / math.comb(n, k)
                np.testing.assert_allclose(pass_at_k(n, c, k), exact, rtol=1e-12, atol=1e-15)
    # brute force over all k-subsets of a small sample: fraction of subsets with at least one pass
    samples = [1, 0, 0, 1, 0, 0, 0]
    for k in range(1, len(samples) + 1):
        subsets = list(itertools.combinations(samples, k))
        frac = sum(any(s) for s in subsets) / len(subsets)
        np.testing.assert_allclose(pass_at_k(len(samples), sum(samples), k), frac, rtol=1e-12)
    # pass@1 is c / n; large n does not overflow
    np.testing.assert_allclose(pass_at_k(200, 37, 1), 37 / 200, rtol=1e-12)
    assert pass_at_k(200, 0, 100) == 0.0 and pass_at_k(200, 150, 100) == 1.0
    np.testing.assert_allclose(pass_at_k(200, 3, 100), 1 - math.comb(197, 100) / math.comb(200, 100), rtol=1e-10)
    # unbiased: averaging over all ways of drawing n samples from a problem with true pass rate p
    p_true, n, k = 0.3, 8, 3
    expected = math.fsum(math.comb(n, c) * p_true ** c * (1 - p_true) ** (n - c) * pass_at_k(n, c, k)
                         for c in range(n + 1))
    np.testing.assert_allclose(expected, 1 - (1 - p_true) ** k, rtol=1e-12)

