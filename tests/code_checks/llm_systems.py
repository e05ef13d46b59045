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


# --------------------------------------------------------------------------- speculative sampling
class _NeedDecision(Exception):
    def __init__(self, options):
        self.options = options  # [(value, probability), ...]


class _Uniform:
    """A U(0, 1) draw that is only ever compared with a threshold: the comparison is the branch."""

    def __init__(self, rng):
        self.rng = rng

    def __lt__(self, a):
        return self.rng.decide([(True, min(max(float(a), 0.0), 1.0)), (False, 1.0 - min(max(float(a), 0.0), 1.0))])

    def __ge__(self, a):
        return not self.__lt__(a)

    def __gt__(self, a):  # u > a has the probability of u >= a
        return not self.__lt__(a)

    def __le__(self, a):
        return self.__lt__(a)


class _ScriptedRng:
    """Replays a list of decisions; at the first decision beyond the script it raises the options."""

    def __init__(self, script):
        self.script, self.pos, self.weight = script, 0, 1.0

    def decide(self, options):
        if self.pos == len(self.script):
            raise _NeedDecision([(v, w) for v, w in options if w > 0])
        value, w = self.script[self.pos]
        self.pos += 1
        self.weight *= w
        return value

    def random(self):
        return _Uniform(self)

    def choice(self, a, p=None):
        n = a if isinstance(a, (int, np.integer)) else len(a)
        probs = np.full(n, 1.0 / n) if p is None else np.asarray(p, dtype=float)
        assert probs.shape == (n,) and abs(probs.sum() - 1.0) < 1e-9 and (probs >= 0).all()
        return self.decide([(t, float(probs[t])) for t in range(n)])


def _enumerate(run):
    """Exact output distribution of run(rng) over every sequence of decisions."""
    dist, stack = {}, [[]]
    while stack:
        script = stack.pop()
        rng = _ScriptedRng(script)
        try:
            out = run(rng)
        except _NeedDecision as need:
            stack.extend(script + [option] for option in need.options)
            continue
        assert rng.pos == len(script)
        dist[out] = dist.get(out, 0.0) + rng.weight
    return dist


def _toy_lm(seed, V, zeros):
    """A deterministic next-token distribution for every prefix (a 'model' over a V-token vocabulary)."""
    def probs(prefix):
        r = np.random.default_rng([seed, len(prefix), *prefix])
        w = r.gamma(0.7, size=V)
        if zeros:  # some tokens impossible under this model (differently for draft and target)
            w[r.integers(V)] = 0.0
        return w / w.sum()
    return probs


@check("spec-code")
def check_speculative(ns):
    accept_prob, residual, verify = ns["accept_prob"], ns["residual"], ns["verify"]
    rng = np.random.default_rng(0)
    # 1) one step, exact enumeration over the draft token: accept with min(1, p/q), else resample from the residual
    for trial in range(200):
        V = int(rng.integers(2, 7))
        p, q = rng.dirichlet(np.ones(V) * 0.5), rng.dirichlet(np.ones(V) * 0.5)
        if trial % 3 == 0:
            p[rng.integers(V)] = 0.0
            p /= p.sum()
        if trial % 4 == 0:
            q[rng.integers(V)] = 0.0
            q /= q.sum()
        out = np.zeros(V)
        for x in range(V):
            if q[x] == 0:
                continue
            a = accept_prob(p, q, x)
            assert 0.0 <= a <= 1.0 and math.isclose(a, min(1.0, p[x] / q[x]), rel_tol=1e-12)
            out[x] += q[x] * a
            if a < 1.0:
                r = residual(p, q)
                np.testing.assert_allclose(r.sum(), 1.0, rtol=1e-12)
                assert (r >= 0).all() and (r[p <= q] == 0).all()
                out += q[x] * (1.0 - a) * r
        np.testing.assert_allclose(out, p, rtol=1e-10, atol=1e-14)
        # acceptance probability is 1 - TV(p, q)
        beta = sum(q[x] * accept_prob(p, q, x) for x in range(V) if q[x] > 0)
        np.testing.assert_allclose(beta, 1.0 - 0.5 * np.abs(p - q).sum(), rtol=1e-10, atol=1e-14)
    # the draft equals the target: always accepted
    p = np.array([0.2, 0.5, 0.3])
    assert accept_prob(p, p, 1) == 1.0

    # 2) the verify loop, exactly: one or two rounds of speculative sampling followed by plain sampling from the
    #    target give every length-L continuation exactly the target's probability
    for V, gamma, L, rounds, zeros in [(3, 2, 3, 1, False), (3, 3, 4, 1, True), (4, 1, 3, 1, True),
                                       (2, 2, 4, 2, False), (2, 4, 5, 1, True), (3, 1, 3, 2, True)]:
        target, draft = _toy_lm(1, V, zeros), _toy_lm(2, V, zeros)
        prompt = [1, 0]

        def run(r):
            ctx = list(prompt)
            for _ in range(rounds):
                xs, qs = [], []
                for _ in range(gamma):
                    qk = draft(ctx + xs)
                    qs.append(qk)
                    xs.append(int(r.choice(V, p=qk)))
                ps = np.array([target(ctx + xs[:k]) for k in range(gamma + 1)])
                emitted = verify(ps, np.array(qs), xs, r)
                assert 1 <= len(emitted) <= gamma + 1
                assert list(emitted[:-1]) == xs[:len(emitted) - 1]  # an accepted prefix, then one new token
                ctx += [int(t) for t in emitted]
            return tuple(ctx[len(prompt):len(prompt) + L])

        dist = _enumerate(run)
        np.testing.assert_allclose(sum(dist.values()), 1.0, rtol=1e-10)
        full = {}
        for head, w in dist.items():  # continue every outcome with plain target sampling up to length L
            for tail in itertools.product(range(V), repeat=L - len(head)):
                seq = head + tail
                cont = math.prod(target(prompt + list(seq[:k]))[seq[k]] for k in range(len(head), L))
                full[seq] = full.get(seq, 0.0) + w * cont
        for seq in itertools.product(range(V), repeat=L):
            exact = math.prod(target(prompt + list(seq[:k]))[seq[k]] for k in range(L))
            np.testing.assert_allclose(full.get(seq, 0.0), exact, rtol=1e-9, atol=1e-13)

    # 3) it runs with a real Generator, and all-accepted rounds emit gamma + 1 tokens
    g = np.random.default_rng(1)
    p = np.tile([0.1, 0.6, 0.3], (4, 1))
    lengths = {len(verify(p, p[:3], [int(g.choice(3, p=p[0])) for _ in range(3)], g)) for _ in range(50)}
    assert lengths == {4}


# --------------------------------------------------------------------------- INT8 quantisation
def _quantize_loop(W, per_channel):
    """Element by element with Python's round (half to even, as np.round)."""
    rows = [list(map(float, r)) for r in np.asarray(W, dtype=float)]
    if per_channel:
        amax = [max(abs(v) for v in r) for r in rows]
    else:
        amax = [max(abs(v) for r in rows for v in r)] * len(rows)
    scales = [a / 127.0 if a > 0 else 1.0 for a in amax]
    q = [[max(-127, min(127, round(v / s))) for v in r] for r, s in zip(rows, scales)]
    return np.array(q), np.array(scales)


@check("quant-int8-code")
def check_int8(ns):
    quantize, dequantize, quant_mse = ns["quantize"], ns["dequantize"], ns["quant_mse"]
    rng = np.random.default_rng(0)
    for trial in range(20):
        out, inp = int(rng.integers(1, 12)), int(rng.integers(1, 20))
        # rows of very different magnitudes, as in real weight matrices
        W = rng.normal(size=(out, inp)) * np.exp(rng.normal(scale=1.5, size=(out, 1)))
        for per_channel in (False, True):
            q, s = quantize(W, per_channel)
            assert q.dtype == np.int8 and q.shape == W.shape
            assert q.min() >= -127 and q.max() <= 127
            q_ref, s_ref = _quantize_loop(W, per_channel)
            np.testing.assert_array_equal(q.astype(int), q_ref)
            s_b = np.broadcast_to(np.asarray(s, dtype=float), (out, 1)) if per_channel else np.full((out, 1), float(s))
            np.testing.assert_allclose(s_b[:, 0], s_ref, rtol=1e-15)
            W_hat = dequantize(q, s)
            assert W_hat.shape == W.shape
            # every element within half a step of its own scale; the largest |w| of each group is exact
            assert (np.abs(W - W_hat) <= s_b / 2 * (1 + 1e-12)).all()
            if per_channel:
                idx = np.abs(W).argmax(axis=1)
                np.testing.assert_allclose(W_hat[np.arange(out), idx], W[np.arange(out), idx], rtol=1e-12)
                assert (np.abs(q[np.arange(out), idx].astype(int)) == 127).all()
            np.testing.assert_allclose(quant_mse(W, per_channel), np.mean((W - W_hat) ** 2), rtol=1e-12)
        # per-channel scales are never larger than the per-tensor one, and here the error is smaller
        _, s_t = quantize(W, False)
        _, s_c = quantize(W, True)
        assert (np.asarray(s_c) <= float(s_t) * (1 + 1e-15)).all()
        if out > 1:
            assert quant_mse(W, True) <= quant_mse(W, False)
    # one outlier ruins per-tensor quantisation of every other row; per-channel confines the damage to its row
    W = rng.normal(size=(16, 64))
    W[3, 5] = 500.0
    others = np.arange(16) != 3
    err_c = (W - dequantize(*quantize(W, True)))[others]
    err_t = (W - dequantize(*quantize(W, False)))[others]
    assert np.mean(err_c ** 2) * 100 < np.mean(err_t ** 2)
    assert quant_mse(W, True) * 5 < quant_mse(W, False)
    # an all-zero row: no division by zero, reconstructed exactly
    W[7] = 0.0
    q, s = quantize(W, True)
    np.testing.assert_array_equal(dequantize(q, s)[7], 0.0)
    q, s = quantize(np.zeros((2, 3)), False)
    np.testing.assert_array_equal(dequantize(q, s), 0.0)


# --------------------------------------------------------------------------- beam search
def _toy_log_probs(seed, V, eos_boost=0.0):
    def log_probs(seq):
        r = np.random.default_rng([seed, len(seq), *seq])
        z = r.normal(scale=2.0, size=V)
        z[0] += eos_boost  # token 0 is EOS in these tests
        z = z - z.max()
        return z - np.log(np.exp(z).sum())
    return log_probs


def _all_hypotheses(log_probs, bos, eos, V, max_len):
    """Every finished or max-length sequence with its log-probability."""
    out = []
    for n in range(1, max_len + 1):
        for gen in itertools.product(range(V), repeat=n):
            if eos in gen[:-1] or (n < max_len and gen[-1] != eos):
                continue
            seq = [bos, *gen]
            score = math.fsum(float(log_probs(seq[:k])[seq[k]]) for k in range(1, len(seq)))
            out.append((seq, score))
    return out


@check("dec-beam-code")
def check_beam(ns):
    beam_search = ns["beam_search"]
    bos, eos = 9, 0
    for seed, V, max_len, boost in [(0, 3, 4, 0.0), (1, 4, 3, 1.0), (2, 2, 6, -1.0), (3, 5, 3, 0.5), (4, 3, 5, 2.0)]:
        lp = _toy_log_probs(seed, V, boost)
        hyps = _all_hypotheses(lp, bos, eos, V, max_len)
        # no pruning (B at least the number of hypotheses): the exhaustive optimum, with and without normalisation
        for alpha in (0.0, 1.0, 0.6):
            best = max(hyps, key=lambda h: h[1] / (len(h[0]) - 1) ** alpha)
            seq, score = beam_search(lp, bos, eos, V ** max_len, max_len, alpha=alpha)
            assert list(seq) == best[0], (seed, alpha)
            np.testing.assert_allclose(score, best[1], rtol=1e-10)
        # B = 1 is greedy decoding
        seq = [bos]
        for _ in range(max_len):
            seq.append(int(np.argmax(lp(seq))))
            if seq[-1] == eos:
                break
        got, score = beam_search(lp, bos, eos, 1, max_len)
        assert list(got) == seq
        # any beam width: a valid hypothesis whose score is its own log-probability, never above the optimum
        best0 = max(h[1] for h in hyps)
        for B in (2, 3):
            got, score = beam_search(lp, bos, eos, B, max_len)
            got = list(got)
            assert got[0] == bos and 2 <= len(got) <= max_len + 1
            assert got[-1] == eos or len(got) == max_len + 1
            assert eos not in got[1:-1]
            own = math.fsum(float(lp(got[:k])[got[k]]) for k in range(1, len(got)))
            np.testing.assert_allclose(score, own, rtol=1e-10)
            assert score <= best0 + 1e-12
    # length normalisation divides by the number of generated tokens (EOS included, BOS not)
    for seed in range(10, 40):
        lp = _toy_log_probs(seed, 3, 0.5)
        hyps = _all_hypotheses(lp, bos, eos, 3, 4)
        for alpha in (1.0, 2.0):
            best = max(hyps, key=lambda h: h[1] / (len(h[0]) - 1) ** alpha)
            seq, score = beam_search(lp, bos, eos, 3 ** 4, 4, alpha=alpha)
            assert list(seq) == best[0], (seed, alpha)


# --------------------------------------------------------------------------- temperature / top-k / top-p
def _softmax_list(z, T):
    m = max(v / T for v in z)
    e = [math.exp(v / T - m) for v in z]
    total = math.fsum(e)
    return [x / total for x in e]


def _filter_reference(logits, T, top_k, top_p):
    """Brute force: top-k keeps the k most probable tokens; top-p keeps the smallest token set whose
    (renormalised) mass reaches p, found by trying every subset."""
    probs = _softmax_list(list(logits), T)
    V = len(probs)
    keep = set(range(V))
    if top_k is not None:
        keep = set(sorted(range(V), key=lambda i: -probs[i])[:top_k])
    mass = math.fsum(probs[i] for i in keep)
    probs = [probs[i] / mass if i in keep else 0.0 for i in range(V)]
    if top_p is not None:
        found = None
        for size in range(1, V + 1):
            sets = [s for s in itertools.combinations(range(V), size)
                    if math.fsum(probs[i] for i in s) >= top_p - 1e-12]
            if sets:
                found = set(max(sets, key=lambda s: math.fsum(probs[i] for i in s)))
                break
        keep = found
        mass = math.fsum(probs[i] for i in keep)
        probs = [probs[i] / mass if i in keep else 0.0 for i in range(V)]
    return np.array(probs)


@check("dec-sampling-code")
def check_sampling(ns):
    filter_probs, sample = ns["filter_probs"], ns["sample"]
    rng = np.random.default_rng(0)
    for trial in range(150):
        V = int(rng.integers(2, 9))
        logits = rng.normal(scale=2.0, size=V)
        T = float(rng.choice([0.3, 0.7, 1.0, 1.8]))
        top_k = [None, 1, 2, V, V + 3][trial % 5]
        top_p = [None, 0.05, 0.5, 0.9, 1.0][(trial // 5) % 5]
        got = filter_probs(logits.copy(), T=T, top_k=top_k, top_p=top_p)
        ref = _filter_reference(logits, T, top_k, top_p)
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-15)
        np.testing.assert_allclose(got.sum(), 1.0, rtol=1e-12)
    # k = 1 and tiny p are greedy; no filter is the plain softmax
    z = np.array([0.3, 2.0, -1.0, 1.9])
    for kw in ({"top_k": 1}, {"top_p": 1e-6}):
        np.testing.assert_allclose(filter_probs(z.copy(), **kw), [0, 1, 0, 0], atol=1e-15)
    np.testing.assert_allclose(filter_probs(z.copy()), _softmax_list(list(z), 1.0), rtol=1e-12)
    # the token that crosses p is kept: p = mass of the top token + a bit keeps two tokens
    p_full = np.array(_softmax_list(list(z), 1.0))
    kept = filter_probs(z.copy(), top_p=float(p_full.max()) + 1e-3) > 0
    assert kept.sum() == 2 and kept[1] and kept[3]
    # huge logits do not overflow
    with np.errstate(over="raise", invalid="raise"):
        out = filter_probs(np.array([1000.0, 999.0, -1000.0]), T=0.5, top_p=0.9)
    assert np.isfinite(out).all()
    # sampling follows the filtered distribution
    g = np.random.default_rng(3)
    z = np.array([1.0, 0.5, 0.0, -0.5, -3.0])
    target = filter_probs(z.copy(), T=0.8, top_k=4, top_p=0.8)
    draws = np.bincount([sample(z.copy(), g, T=0.8, top_k=4, top_p=0.8) for _ in range(20000)], minlength=5)
    np.testing.assert_allclose(draws / draws.sum(), target, atol=0.015)
    assert draws[target == 0].sum() == 0


# --------------------------------------------------------------------------- training memory estimator
def _activation_reference(s, b, h, a, t, sp, recompute):
    """One layer, tensor by tensor as listed by Korthikanti et al. 2022 (16-bit values, 1-byte dropout masks)."""
    if recompute == "full":
        return 2 * s * b * h / (t if sp else 1)  # only the layer input
    # (bytes, kind): "rep" is replicated across the tensor-parallel group unless sequence parallel splits it,
    # "tp" is split by tensor parallelism, "quad" are the s x s attention tensors (split by tensor parallelism)
    tensors = [
        (2 * s * b * h, "rep"),  # QKV projection input
        (4 * s * b * h, "tp"),  # Q and K
        (2 * a * s * s * b, "quad"),  # softmax output
        (a * s * s * b, "quad"),  # attention dropout mask
        (2 * a * s * s * b, "quad"),  # attention dropout output
        (2 * s * b * h, "tp"),  # V
        (2 * s * b * h, "tp"),  # output projection input
        (s * b * h, "rep"),  # attention-block dropout mask
        (2 * s * b * h, "rep"),  # first MLP linear input
        (8 * s * b * h, "tp"),  # GeLU input (4h wide)
        (8 * s * b * h, "tp"),  # second MLP linear input
        (s * b * h, "rep"),  # MLP dropout mask
        (2 * s * b * h, "rep"),  # LayerNorm 1 input
        (2 * s * b * h, "rep"),  # LayerNorm 2 input
    ]
    total = 0.0
    for size, kind in tensors:
        if kind == "quad" and recompute == "selective":
            continue
        total += size / t if (kind != "rep" or sp) else size
    return total


@check("mem-estimator-code")
def check_memory_estimator(ns):
    model_state_bytes, activation_bytes = ns["model_state_bytes"], ns["activation_bytes"]
    # the ZeRO paper's Figure 1: 7.5B parameters on 64 data-parallel GPUs
    totals = [sum(model_state_bytes(7.5e9, zero=z, dp=64)) / 1e9 for z in range(4)]
    np.testing.assert_allclose([round(x, 1) for x in totals], [120.0, 31.4, 16.6, 1.9])
    np.testing.assert_allclose(totals, [120.0, 31.40625, 16.640625, 1.875], rtol=1e-12)
    # 16 bytes per parameter: 7B -> 112 GB; one GPU or stage 0 shards nothing
    p, g, o = model_state_bytes(7e9)
    np.testing.assert_allclose((p, g, o), (14e9, 14e9, 84e9), rtol=1e-12)
    for z in range(4):
        np.testing.assert_allclose(sum(model_state_bytes(7e9, zero=z, dp=1)), 112e9, rtol=1e-12)
    p, g, o = model_state_bytes(1e9, zero=3, dp=8)
    np.testing.assert_allclose((p, g, o), (2e9 / 8, 2e9 / 8, 12e9 / 8), rtol=1e-12)
    p, g, o = model_state_bytes(1e9, zero=1, dp=8)
    np.testing.assert_allclose((p, g, o), (2e9, 2e9, 12e9 / 8), rtol=1e-12)
    # activations against the tensor-by-tensor sum
    for s, b, h, a, L in [(2048, 1, 12288, 96, 96), (4096, 2, 4096, 32, 32), (512, 8, 1024, 16, 24)]:
        for t in (1, 2, 8):
            for sp in (False, True):
                for recompute in (None, "selective", "full"):
                    got = activation_bytes(s, b, h, a, L, t=t, sp=sp, recompute=recompute)
                    ref = L * _activation_reference(s, b, h, a, t, sp, recompute)
                    np.testing.assert_allclose(got, ref, rtol=1e-12)
    # GPT-3 175B, s = 2048, b = 1: 5as/h = 80, about 2.9 GB a layer and 275 GB for 96 layers
    one = activation_bytes(2048, 1, 12288, 96, 1)
    np.testing.assert_allclose(one, 2048 * 12288 * 114, rtol=1e-12)
    np.testing.assert_allclose(activation_bytes(2048, 1, 12288, 96, 96) / 1e9, 275.4, rtol=1e-3)
