"""Checks for the code cards of guide question 5.1 (post-training: SFT, reward model, PPO, GRPO, DPO variants).

Each check compares a card's NumPy snippet with an independent reference: explicit Python loops with the ``math``
module, PyTorch's own ``cross_entropy(ignore_index=-100)``, exact enumeration over a small vocabulary, finite
differences, or closed-form special cases (GAE with lambda = 0 or 1, a policy equal to the reference...).
"""
from __future__ import annotations

import itertools
import math

import numpy as np

from tests.code_checks import check


def _log_sigmoid(z: float) -> float:
    """log(sigmoid(z)) with Python floats, stable on both sides."""
    return -math.log1p(math.exp(-z)) if z >= 0 else z - math.log1p(math.exp(z))


def _fd(f, x, i, h=1e-6):
    """Central difference of scalar f at array x along flat index i."""
    e = np.zeros_like(x, dtype=float)
    e.flat[i] = h
    return (f(x + e) - f(x - e)) / (2 * h)


# --------------------------------------------------------------------------- SFT loss masking
@check("sft-loss-mask-code")
def check_sft_loss_mask(ns):
    import torch
    import torch.nn.functional as F

    build_labels, sft_loss, ignore = ns["build_labels"], ns["sft_loss"], ns["IGNORE"]
    assert ignore == -100  # PyTorch's default ignore_index

    prompt, resp = np.array([11, 12, 13, 14]), np.array([21, 22, 2])  # 2 = EOS
    ids, labels = build_labels(prompt, resp)
    np.testing.assert_array_equal(ids, [11, 12, 13, 14, 21, 22, 2])
    np.testing.assert_array_equal(labels, [-100, -100, -100, -100, 21, 22, 2])
    assert np.issubdtype(labels.dtype, np.integer)
    np.testing.assert_array_equal(prompt, [11, 12, 13, 14])  # inputs not modified in place

    # a right-padded batch of samples built with build_labels
    rng = np.random.default_rng(51)
    V, T = 29, 12
    rows = []
    for P, R in [(3, 4), (5, 7), (2, 2)]:
        i, lab = build_labels(rng.integers(3, V, P), np.append(rng.integers(3, V, R - 1), 2))
        pad = T - len(i)
        rows.append((np.pad(i, (0, pad)), np.pad(lab, (0, pad), constant_values=-100), P))
    labels = np.stack([r[1] for r in rows])
    logits = rng.normal(size=(len(rows), T, V)) * 3

    # against PyTorch: logits shifted left, labels shifted right, ignore_index=-100, mean over kept tokens
    ref = F.cross_entropy(torch.tensor(logits[:, :-1]).reshape(-1, V), torch.tensor(labels[:, 1:]).reshape(-1),
                          ignore_index=-100).item()
    np.testing.assert_allclose(sft_loss(logits, labels), ref, rtol=1e-12)

    # against an explicit loop
    total, count = 0.0, 0
    for b in range(len(rows)):
        for t in range(T - 1):
            y = labels[b, t + 1]
            if y != -100:
                row = logits[b, t]
                m = max(row)
                total += m + math.log(math.fsum(math.exp(v - m) for v in row)) - row[y]
                count += 1
    assert count == sum(len(np.flatnonzero(r[1] != -100)) for r in rows)
    np.testing.assert_allclose(sft_loss(logits, labels), total / count, rtol=1e-12)

    # logits at prompt positions whose next token is still prompt do not matter; the last prompt position
    # (which predicts the first answer token) does
    base = sft_loss(logits, labels)
    P0 = rows[0][2]
    bumped = logits.copy()
    bumped[0, :P0 - 1] += rng.normal(size=(P0 - 1, V)) * 5
    np.testing.assert_allclose(sft_loss(bumped, labels), base, rtol=1e-13)
    bumped = logits.copy()
    bumped[0, P0 - 1] += rng.normal(size=V) * 5
    assert abs(sft_loss(bumped, labels) - base) > 1e-6
    # padding positions do not matter either
    bumped = logits.copy()
    bumped[2, -3:] += 7.0
    np.testing.assert_allclose(sft_loss(bumped, labels), base, rtol=1e-13)

    # huge logits: no overflow (the test runs with warnings as errors)
    assert np.isfinite(sft_loss(logits * 1000, labels))


# --------------------------------------------------------------------------- Bradley-Terry RM loss
@check("rm-bt-code")
def check_bt(ns):
    bt_pair_loss, bt_rank_loss = ns["bt_pair_loss"], ns["bt_rank_loss"]
    rng = np.random.default_rng(52)

    r_w, r_l = rng.normal(size=9) * 3, rng.normal(size=9) * 3
    ref = -np.mean([_log_sigmoid(a - b) for a, b in zip(r_w, r_l)])
    np.testing.assert_allclose(bt_pair_loss(r_w, r_l), ref, rtol=1e-12)
    np.testing.assert_allclose(bt_pair_loss(r_w, r_w), math.log(2.0), rtol=1e-12)
    # shift invariance: only score differences matter
    np.testing.assert_allclose(bt_pair_loss(r_w + 40.0, r_l + 40.0), ref, rtol=1e-10)
    # extreme margins stay finite and exact
    np.testing.assert_allclose(bt_pair_loss(np.array([0.0]), np.array([3000.0])), 3000.0, rtol=1e-12)
    np.testing.assert_allclose(bt_pair_loss(np.array([3000.0]), np.array([0.0])), 0.0, atol=1e-12)

    for K in (2, 4, 7):
        r = rng.normal(size=K) * 2
        rank = rng.permutation(K)
        pairs = [(i, j) if rank[i] < rank[j] else (j, i) for i, j in itertools.combinations(range(K), 2)]
        assert len(pairs) == math.comb(K, 2)
        ref = -np.mean([_log_sigmoid(r[w] - r[l]) for w, l in pairs])
        np.testing.assert_allclose(bt_rank_loss(r, rank), ref, rtol=1e-12)
        np.testing.assert_allclose(bt_rank_loss(r - 5.0, rank), ref, rtol=1e-10)
        # gradient: a winner gets -sigmoid(-(r_w - r_l)), a loser +sigmoid(-(r_w - r_l)), averaged over pairs
        grad = np.zeros(K)
        for w, l in pairs:
            s = 1.0 / (1.0 + math.exp(r[w] - r[l]))
            grad[w] -= s / len(pairs)
            grad[l] += s / len(pairs)
        for i in range(K):
            np.testing.assert_allclose(_fd(lambda x: bt_rank_loss(x, rank), r, i), grad[i], rtol=1e-5, atol=1e-9)
    # K = 2 is the pairwise loss
    r = np.array([0.3, -1.2])
    np.testing.assert_allclose(bt_rank_loss(r, np.array([1, 0])), bt_pair_loss(r[1:], r[:1]), rtol=1e-12)
    # ties make no pair
    r = np.array([1.0, 2.0, -0.5])
    rank = np.array([0, 1, 1])
    ref = -np.mean([_log_sigmoid(1.0 - 2.0), _log_sigmoid(1.0 + 0.5)])
    np.testing.assert_allclose(bt_rank_loss(r, rank), ref, rtol=1e-12)


# --------------------------------------------------------------------------- GAE
def _gae_naive(r, v, m, gamma, lam):
    B, T = r.shape
    adv = np.zeros((B, T))
    for b in range(B):
        L = int(m[b].sum())
        assert np.all(m[b, :L] == 1) and np.all(m[b, L:] == 0)
        delta = [r[b, k] + gamma * (v[b, k + 1] if k + 1 < L else 0.0) - v[b, k] for k in range(L)]
        for t in range(L):
            adv[b, t] = math.fsum((gamma * lam) ** l * delta[t + l] for l in range(L - t))
    return adv


@check("gae-code")
def check_gae(ns):
    gae = ns["gae"]
    rng = np.random.default_rng(53)
    B, T = 4, 9
    lengths = [9, 5, 1, 7]
    m = np.array([[1.0] * L + [0.0] * (T - L) for L in lengths])
    r = rng.normal(size=(B, T)) * m
    v = rng.normal(size=(B, T))  # garbage values on padding must not leak in
    for gamma, lam in [(1.0, 0.95), (0.9, 0.8), (0.99, 1.0), (1.0, 0.0)]:
        adv, ret = gae(r, v, m, gamma=gamma, lam=lam)
        ref = _gae_naive(r, v, m, gamma, lam)
        np.testing.assert_allclose(adv, ref, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(ret, (ref + v) * m, rtol=1e-10, atol=1e-12)
        assert np.all(adv[m == 0] == 0) and np.all(ret[m == 0] == 0)

    # lambda = 0: one-step TD error
    adv, _ = gae(r, v, m, gamma=0.9, lam=0.0)
    for b, L in enumerate(lengths):
        for t in range(L):
            nxt = v[b, t + 1] if t + 1 < L else 0.0
            np.testing.assert_allclose(adv[b, t], r[b, t] + 0.9 * nxt - v[b, t], rtol=1e-12, atol=1e-12)
    # lambda = 1: Monte-Carlo return minus the baseline; the returns are the discounted rewards-to-go
    adv, ret = gae(r, v, m, gamma=0.9, lam=1.0)
    for b, L in enumerate(lengths):
        for t in range(L):
            G = math.fsum(0.9 ** k * r[b, t + k] for k in range(L - t))
            np.testing.assert_allclose(ret[b, t], G, rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(adv[b, t], G - v[b, t], rtol=1e-10, atol=1e-12)
    # the RLHF case: reward only on the last token, gamma = lam = 1 -> A_t = r_T - V(s_t)
    r_last = np.zeros((1, 6))
    r_last[0, -1] = 2.5
    v1 = rng.normal(size=(1, 6))
    adv, _ = gae(r_last, v1, np.ones((1, 6)), gamma=1.0, lam=1.0)
    np.testing.assert_allclose(adv[0], 2.5 - v1[0], rtol=1e-12)


# --------------------------------------------------------------------------- PPO-clip
@check("ppo-clip-code")
def check_ppo_clip(ns):
    ppo_clip_loss = ns["ppo_clip_loss"]
    rng = np.random.default_rng(54)
    B, T, eps = 3, 8, 0.2
    logp_old = -rng.random((B, T)) * 4
    logp = logp_old + rng.normal(size=(B, T)) * 0.4
    adv = rng.normal(size=(B, T))
    mask = np.ones((B, T))
    mask[1, 5:] = 0
    mask[2, 2:] = 0

    def explicit(lp):
        num, den = 0.0, 0.0
        for b in range(B):
            for t in range(T):
                if mask[b, t]:
                    rho = math.exp(lp[b, t] - logp_old[b, t])
                    a = adv[b, t]
                    obj = min(rho, 1 + eps) * a if a >= 0 else max(rho, 1 - eps) * a
                    num += obj
                    den += 1
        return -num / den

    np.testing.assert_allclose(ppo_clip_loss(logp, logp_old, adv, mask, eps=eps), explicit(logp), rtol=1e-12)
    # first step of a rollout (policy == rollout policy): loss = -mean advantage over response tokens
    np.testing.assert_allclose(ppo_clip_loss(logp_old, logp_old, adv, mask, eps=eps),
                               -(adv * mask).sum() / mask.sum(), rtol=1e-12)

    # gradient w.r.t. the current log-probs: zero where clipping bites, -rho * A / n elsewhere
    n = mask.sum()
    f = lambda lp: ppo_clip_loss(lp, logp_old, adv, mask, eps=eps)  # noqa: E731
    seen = {"clipped": 0, "free": 0}
    for i in range(B * T):
        b, t = divmod(i, T)
        rho = math.exp(logp[b, t] - logp_old[b, t])
        if not mask[b, t] or abs(rho - (1 + eps)) < 1e-3 or abs(rho - (1 - eps)) < 1e-3:
            continue
        clipped = (adv[b, t] > 0 and rho > 1 + eps) or (adv[b, t] < 0 and rho < 1 - eps)
        expected = 0.0 if clipped else -rho * adv[b, t] / n
        np.testing.assert_allclose(_fd(f, logp, i), expected, rtol=1e-5, atol=1e-9)
        seen["clipped" if clipped else "free"] += 1
    assert seen["clipped"] >= 2 and seen["free"] >= 5, seen
    # the unclipped direction still gets a gradient: A > 0 but the ratio fell below 1 - eps
    lp = logp_old.copy()
    lp[0, 0] = logp_old[0, 0] + math.log(0.5)
    a = adv.copy()
    a[0, 0] = 1.0
    g = _fd(lambda x: ppo_clip_loss(x, logp_old, a, mask, eps=eps), lp, 0)
    np.testing.assert_allclose(g, -0.5 / n, rtol=1e-5)


# --------------------------------------------------------------------------- GRPO
@check("grpo-code")
def check_grpo(ns):
    grpo_advantages, grpo_loss = ns["grpo_advantages"], ns["grpo_loss"]
    rng = np.random.default_rng(55)

    # advantages: group mean 0, population std 1, against a loop
    Q, G = 3, 6
    rewards = rng.integers(0, 2, size=(Q, G)).astype(float)
    rewards[0] = [1, 0, 0, 1, 1, 0]
    rewards[1] = rng.normal(size=G)
    rewards[2] = 1.0  # every answer correct
    A = grpo_advantages(rewards)
    for q in range(Q):
        mu = math.fsum(rewards[q]) / G
        sd = math.sqrt(math.fsum((x - mu) ** 2 for x in rewards[q]) / G)
        for i in range(G):
            np.testing.assert_allclose(A[q, i], (rewards[q, i] - mu) / (sd + 1e-6), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(A[:2].mean(-1), 0.0, atol=1e-12)
    np.testing.assert_allclose(A[:2].std(-1), 1.0, rtol=1e-5)
    assert np.all(A[2] == 0)  # a group with one reward gives no signal (and no 0/0)

    # loss against an explicit loop
    N, T, eps, beta = Q * G, 7, 0.2, 0.04
    lengths = rng.integers(1, T + 1, size=N)
    mask = (np.arange(T)[None, :] < lengths[:, None]).astype(float)
    logp_old = -rng.random((N, T)) * 3 - 0.05
    logp = logp_old + rng.normal(size=(N, T)) * 0.3
    logp_ref = logp_old + rng.normal(size=(N, T)) * 0.3
    adv = A.reshape(-1)

    def explicit(lp):
        total = 0.0
        for i in range(N):
            s = 0.0
            for t in range(lengths[i]):
                rho = math.exp(lp[i, t] - logp_old[i, t])
                a = adv[i]
                pg = min(rho * a, min(max(rho, 1 - eps), 1 + eps) * a)
                q = math.exp(logp_ref[i, t] - lp[i, t])  # pi_ref / pi_theta
                s += pg - beta * (q - math.log(q) - 1)
            total += s / lengths[i]
        return -total / N

    np.testing.assert_allclose(grpo_loss(logp, logp_old, logp_ref, adv, mask, eps=eps, beta=beta),
                               explicit(logp), rtol=1e-11)
    # policy == rollout == reference: the loss is minus the mean advantage, and the KL term vanishes
    np.testing.assert_allclose(grpo_loss(logp_old, logp_old, logp_old, adv, mask, eps=eps, beta=beta),
                               -adv.mean(), rtol=1e-10, atol=1e-12)
    # the KL term alone is >= 0 for every answer
    for i in range(N):
        kl_only = grpo_loss(logp[i:i + 1], logp[i:i + 1], logp_ref[i:i + 1], np.zeros(1), mask[i:i + 1],
                            beta=1.0)
        assert kl_only >= 0.0

    # k3 is an unbiased estimate of KL(pi || ref): exact enumeration over a small vocabulary
    z_p, z_r = rng.normal(size=5), rng.normal(size=5)
    p = np.exp(z_p) / np.exp(z_p).sum()
    ref = np.exp(z_r) / np.exp(z_r).sum()
    expected = 0.0
    for x in range(5):
        lp, lr = np.array([[math.log(p[x])]]), np.array([[math.log(ref[x])]])
        # with adv = 0 and ratio 1 the loss is beta * k3
        expected += p[x] * grpo_loss(lp, lp, lr, np.zeros(1), np.ones((1, 1)), beta=1.0)
    kl = math.fsum(p[x] * math.log(p[x] / ref[x]) for x in range(5))
    np.testing.assert_allclose(expected, kl, rtol=1e-10)

    # per-answer token mean: repeating every token of an answer leaves its contribution unchanged
    one = slice(0, 1)
    L = int(lengths[0])
    lp2 = np.repeat(logp[one, :L], 2, axis=1)
    lo2 = np.repeat(logp_old[one, :L], 2, axis=1)
    lr2 = np.repeat(logp_ref[one, :L], 2, axis=1)
    np.testing.assert_allclose(grpo_loss(lp2, lo2, lr2, adv[one], np.ones((1, 2 * L)), eps=eps, beta=beta),
                               grpo_loss(logp[one, :L], logp_old[one, :L], logp_ref[one, :L], adv[one],
                                         np.ones((1, L)), eps=eps, beta=beta), rtol=1e-12)
    # padding does not matter
    bumped = logp.copy()
    bumped[mask == 0] += 3.0
    np.testing.assert_allclose(grpo_loss(bumped, logp_old, logp_ref, adv, mask, eps=eps, beta=beta),
                               grpo_loss(logp, logp_old, logp_ref, adv, mask, eps=eps, beta=beta), rtol=1e-12)


# --------------------------------------------------------------------------- SimPO / IPO
@check("simpo-code")
def check_simpo(ns):
    simpo_loss = ns["simpo_loss"]
    rng = np.random.default_rng(56)
    B, beta, gamma = 8, 2.0, 0.5
    len_w, len_l = rng.integers(5, 60, B).astype(float), rng.integers(5, 60, B).astype(float)
    logp_w, logp_l = -rng.random(B) * 2 * len_w, -rng.random(B) * 2 * len_l
    ref = -np.mean([_log_sigmoid(beta * a / la - beta * b / lb - gamma)
                    for a, la, b, lb in zip(logp_w, len_w, logp_l, len_l)])
    np.testing.assert_allclose(simpo_loss(logp_w, len_w, logp_l, len_l, beta=beta, gamma=gamma), ref, rtol=1e-12)
    # only the per-token average log-likelihood matters: scaling a sum and its length together changes nothing
    np.testing.assert_allclose(simpo_loss(3 * logp_w, 3 * len_w, logp_l, len_l, beta=beta, gamma=gamma), ref,
                               rtol=1e-12)
    # reward margin exactly gamma -> log 2; the margin makes equal answers cost more than log 2
    np.testing.assert_allclose(simpo_loss(np.array([-10.0 + gamma / beta * 20]), np.array([20.0]),
                                          np.array([-5.0]), np.array([10.0]), beta=beta, gamma=gamma),
                               math.log(2.0), rtol=1e-12)
    assert simpo_loss(logp_w, len_w, logp_w, len_w, beta=beta, gamma=gamma) > math.log(2.0)
    # raising the chosen log-prob lowers the loss
    assert simpo_loss(logp_w + 1, len_w, logp_l, len_l, beta=beta, gamma=gamma) < ref
    # stable for huge margins
    assert np.isfinite(simpo_loss(np.array([-1e5]), np.array([1.0]), np.array([0.0]), np.array([1.0])))


@check("ipo-code")
def check_ipo(ns):
    ipo_loss = ns["ipo_loss"]
    rng = np.random.default_rng(57)
    B, tau = 10, 0.1
    pw, pl, rw, rl = (rng.normal(size=B) * 5 - 30 for _ in range(4))
    h = (pw - rw) - (pl - rl)
    ref = math.fsum((x - 1 / (2 * tau)) ** 2 for x in h) / B
    np.testing.assert_allclose(ipo_loss(pw, pl, rw, rl, tau=tau), ref, rtol=1e-12)
    # zero exactly at the target margin 1 / (2 tau), and it grows on both sides (unlike DPO's -log sigmoid)
    target = 1 / (2 * tau)
    at = ipo_loss(rw + target, rl, rw, rl, tau=tau)
    np.testing.assert_allclose(at, 0.0, atol=1e-12)
    assert ipo_loss(rw + target + 3, rl, rw, rl, tau=tau) > 0
    assert ipo_loss(rw + target - 3, rl, rw, rl, tau=tau) > 0
    # policy == reference: loss = target^2
    np.testing.assert_allclose(ipo_loss(rw, rl, rw, rl, tau=tau), target ** 2, rtol=1e-12)
    # gradient w.r.t. a chosen log-prob: 2 (h_i - target) / B
    for i in (0, 3):
        np.testing.assert_allclose(_fd(lambda x: ipo_loss(x, pl, rw, rl, tau=tau), pw, i),
                                   2 * (h[i] - target) / B, rtol=1e-5)
