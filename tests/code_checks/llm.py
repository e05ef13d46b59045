"""Checks for the code cards of guide section 3.3 (大模型问题)."""
from __future__ import annotations

import numpy as np

from tests.code_checks import check


def _softmax(z, axis=-1):
    z = z - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


# --------------------------------------------------------------------------- RoPE
@check("pos-rope-code")
def check_rope(ns):
    apply_rope = ns["apply_rope"]
    rng = np.random.default_rng(0)
    d = 16
    theta = 10000.0 ** (-2.0 * np.arange(d // 2) / d)

    # complex-number reference: pair (x[2i], x[2i+1]) -> complex, multiplied by exp(i * m * theta_i)
    x = rng.normal(size=(5, 7, d))
    pos = np.array([0, 1, 2, 5, 17, 100, 2047])
    zc = (x[..., 0::2] + 1j * x[..., 1::2]) * np.exp(1j * pos[:, None] * theta)
    ref = np.empty_like(x)
    ref[..., 0::2], ref[..., 1::2] = zc.real, zc.imag
    np.testing.assert_allclose(apply_rope(x, pos), ref, rtol=1e-10, atol=1e-10)

    # position 0 is the identity; norms are preserved
    np.testing.assert_allclose(apply_rope(x[:, :1], [0]), x[:, :1], atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(apply_rope(x, pos), axis=-1), np.linalg.norm(x, axis=-1), rtol=1e-10)

    # <R_m q, R_n k> depends only on m - n
    q, k = rng.normal(size=d), rng.normal(size=d)

    def score(m, n):
        return float(apply_rope(q[None], [m])[0] @ apply_rope(k[None], [n])[0])

    for delta in (0, 1, 3, -4, 37):
        base = score(50 + delta, 50)
        for n in (0, 7, 123, 999):
            np.testing.assert_allclose(score(n + delta, n), base, rtol=1e-9, atol=1e-9)
    # and it does depend on the offset
    assert abs(score(3, 0) - score(0, 0)) > 1e-6

    # works on a (T, d) matrix of queries as in the usage line: scores[m, n] depends only on m - n
    T = 9
    Q = np.tile(q, (T, 1))
    K = np.tile(k, (T, 1))
    S = apply_rope(Q, np.arange(T)) @ apply_rope(K, np.arange(T)).T
    for off in range(-T + 1, T):
        diag = np.diagonal(S, offset=-off)
        np.testing.assert_allclose(diag, diag[0], rtol=1e-9, atol=1e-9)


def _rope_interleaved_ref(x, pos, base=10000.0):
    """Complex-number RoPE on adjacent pairs (x[2i], x[2i+1]), as in RoFormer / Meta's Llama code."""
    d = x.shape[-1]
    theta = base ** (-2.0 * np.arange(d // 2) / d)
    zc = (x[..., 0::2] + 1j * x[..., 1::2]) * np.exp(1j * np.asarray(pos)[:, None] * theta)
    out = np.empty(x.shape)
    out[..., 0::2], out[..., 1::2] = zc.real, zc.imag
    return out


@check("pos-rope-half-code")
def check_rope_half(ns):
    rope_half, rotate_half, to_half = ns["rope_half"], ns["rotate_half"], ns["interleaved_to_half"]
    rng = np.random.default_rng(10)
    d = 8
    # reference for the half-split pairing: pair (x[i], x[i + d/2]) is the complex number x[i] + i x[i + d/2]
    x = rng.normal(size=(3, 6, d))
    pos = np.array([0, 1, 2, 7, 100, 4095])
    theta = 10000.0 ** (-2.0 * np.arange(d // 2) / d)
    zc = (x[..., : d // 2] + 1j * x[..., d // 2:]) * np.exp(1j * pos[:, None] * theta)
    ref = np.concatenate([zc.real, zc.imag], axis=-1)
    np.testing.assert_allclose(rope_half(x, pos), ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(rotate_half(np.arange(4.0)), [-2.0, -3.0, 0.0, 1.0])
    np.testing.assert_allclose(rope_half(x, pos, base=500000.0)[:, :1], x[:, :1], atol=1e-12)  # position 0

    # the reordering matches Hugging Face's `permute` in convert_llama_weights_to_hf.py
    n_heads, dh, d_in = 3, 8, 5
    d_out = n_heads * dh
    W = rng.normal(size=(d_out, d_in))
    hf = W.reshape(n_heads, dh // 2, 2, d_in).transpose(0, 2, 1, 3).reshape(d_out, d_in)
    np.testing.assert_allclose(to_half(W, n_heads), hf, atol=0)

    # interleaved weights + interleaved RoPE give the same attention scores as reordered weights + rotate_half
    T = 7
    X = rng.normal(size=(T, d_in))
    Wq, Wk = rng.normal(size=(d_out, d_in)), rng.normal(size=(d_out, d_in))
    p = np.arange(T)

    def heads(M):
        return M.reshape(T, n_heads, dh).transpose(1, 0, 2)   # (H, T, dh)

    qi, ki = _rope_interleaved_ref(heads(X @ Wq.T), p), _rope_interleaved_ref(heads(X @ Wk.T), p)
    qh, kh = rope_half(heads(X @ to_half(Wq, n_heads).T), p), rope_half(heads(X @ to_half(Wk, n_heads).T), p)
    np.testing.assert_allclose(qh @ kh.transpose(0, 2, 1), qi @ ki.transpose(0, 2, 1), rtol=1e-9, atol=1e-9)
    # ...while mixing the conventions (no reordering) changes the scores
    qm, km = rope_half(heads(X @ Wq.T), p), rope_half(heads(X @ Wk.T), p)
    assert not np.allclose(qm @ km.transpose(0, 2, 1), qi @ ki.transpose(0, 2, 1), atol=1e-3)


# --------------------------------------------------------------------------- KV cache
@check("kv-decode-code")
def check_kv_decode(ns):
    decode_step, empty_cache = ns["decode_step"], ns["empty_cache"]
    rng = np.random.default_rng(1)
    T, d, H = 7, 12, 3
    dh = d // H
    X = rng.normal(size=(T, d))
    Wq, Wk, Wv, Wo = (rng.normal(size=(d, d)) / np.sqrt(d) for _ in range(4))

    # reference: full multi-head causal self-attention over the whole sequence
    Q = (X @ Wq).reshape(T, H, dh).transpose(1, 0, 2)
    K = (X @ Wk).reshape(T, H, dh).transpose(1, 0, 2)
    V = (X @ Wv).reshape(T, H, dh).transpose(1, 0, 2)
    s = Q @ K.transpose(0, 2, 1) / np.sqrt(dh)
    s = np.where(np.tril(np.ones((T, T), dtype=bool)), s, -np.inf)
    ref = (_softmax(s) @ V).transpose(1, 0, 2).reshape(T, d) @ Wo

    cache = empty_cache(H, dh)
    outs = []
    for t in range(T):
        out, cache = decode_step(X[t], Wq, Wk, Wv, Wo, cache, H)
        assert cache["k"].shape == (H, t + 1, dh) and cache["v"].shape == (H, t + 1, dh)
        outs.append(out)
    np.testing.assert_allclose(np.stack(outs), ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(cache["k"], K, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(cache["v"], V, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- LoRA
@check("peft-lora-code")
def check_lora(ns):
    lora_init, lora_forward, lora_merge = ns["lora_init"], ns["lora_forward"], ns["lora_merge"]
    rng = np.random.default_rng(2)
    d_out, d_in, r, alpha, n = 10, 8, 3, 16.0, 6
    W0 = rng.normal(size=(d_out, d_in))
    x = rng.normal(size=(n, d_in))

    A, B = lora_init(d_out, d_in, r, rng)
    assert A.shape == (r, d_in) and B.shape == (d_out, r)
    assert np.all(B == 0) and np.any(A != 0)
    # zero-initialised B leaves the pretrained layer unchanged
    np.testing.assert_allclose(lora_forward(x, W0, A, B, alpha), x @ W0.T, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(lora_merge(W0, A, B, alpha), W0, atol=0)

    # after "training": merged weight gives the same output, and equals the explicit formula
    B = rng.normal(size=(d_out, r))
    h = lora_forward(x, W0, A, B, alpha)
    W = lora_merge(W0, A, B, alpha)
    np.testing.assert_allclose(x @ W.T, h, rtol=1e-10, atol=1e-10)
    ref = np.stack([W0 @ xi + (alpha / r) * (B @ (A @ xi)) for xi in x])
    np.testing.assert_allclose(h, ref, rtol=1e-10, atol=1e-10)
    # the update has rank <= r
    assert np.linalg.matrix_rank(W - W0) <= r


# --------------------------------------------------------------------------- DPO
@check("train-dpo-code")
def check_dpo(ns):
    seq_logprob, dpo_loss = ns["seq_logprob"], ns["dpo_loss"]
    rng = np.random.default_rng(3)

    # seq_logprob against an explicit loop
    Bsz, T, Vocab = 3, 5, 7
    logits = rng.normal(size=(Bsz, T, Vocab)) * 3
    labels = rng.integers(0, Vocab, size=(Bsz, T))
    mask = (rng.random((Bsz, T)) < 0.6).astype(float)
    ref = np.zeros(Bsz)
    for b in range(Bsz):
        for t in range(T):
            if mask[b, t]:
                ref[b] += logits[b, t, labels[b, t]] - np.log(np.sum(np.exp(logits[b, t])))
    np.testing.assert_allclose(seq_logprob(logits, labels, mask), ref, rtol=1e-10, atol=1e-12)
    # large logits do not overflow
    assert np.all(np.isfinite(seq_logprob(logits * 1000, labels, mask)))

    # DPO loss against the direct formula
    n, beta = 16, 0.3
    pw, pl, rw, rl = (rng.normal(size=n) * 5 - 20 for _ in range(4))
    z = beta * (pw - rw) - beta * (pl - rl)
    direct = np.mean(-np.log(1.0 / (1.0 + np.exp(-z))))
    np.testing.assert_allclose(dpo_loss(pw, pl, rw, rl, beta=beta), direct, rtol=1e-10)

    # policy == reference -> log 2
    np.testing.assert_allclose(dpo_loss(rw, rl, rw, rl, beta=beta), np.log(2.0), rtol=1e-12)
    # sign behaviour: raising chosen log-prob lowers the loss, raising rejected log-prob raises it
    base = dpo_loss(pw, pl, rw, rl, beta=beta)
    assert dpo_loss(pw + 1.0, pl, rw, rl, beta=beta) < base
    assert dpo_loss(pw, pl + 1.0, rw, rl, beta=beta) > base
    # the finite-difference gradient w.r.t. chosen log-prob matches -beta * sigmoid(-z) / n
    eps = 1e-6
    i = 4
    e = np.zeros(n)
    e[i] = eps
    fd = (dpo_loss(pw + e, pl, rw, rl, beta=beta) - dpo_loss(pw - e, pl, rw, rl, beta=beta)) / (2 * eps)
    np.testing.assert_allclose(fd, -beta / (1.0 + np.exp(z[i])) / n, rtol=1e-5)
    # stable for huge margins
    big = np.array([4000.0])
    zero = np.zeros(1)
    np.testing.assert_allclose(dpo_loss(zero, big, zero, zero, beta=1.0), 4000.0, rtol=1e-12)
    np.testing.assert_allclose(dpo_loss(big, zero, zero, zero, beta=1.0), 0.0, atol=1e-12)


# --------------------------------------------------------------------------- MoE routing
@check("moe-routing-code")
def check_moe_routing(ns):
    moe_forward = ns["moe_forward"]
    rng = np.random.default_rng(4)
    T, d, E, h = 11, 6, 5, 9
    x = rng.normal(size=(T, d))
    W_g = rng.normal(size=(d, E))
    params = [(rng.normal(size=(d, h)), rng.normal(size=(h, d))) for _ in range(E)]
    experts = [lambda z, W1=W1, W2=W2: np.maximum(z @ W1, 0.0) @ W2 for W1, W2 in params]

    for k in (1, 2, 3):
        y, idx, gates = moe_forward(x, W_g, experts, k=k)
        assert idx.shape == (T, k) and gates.shape == (T, k)
        np.testing.assert_allclose(gates.sum(axis=-1), 1.0, rtol=1e-12)
        ref = np.zeros((T, d))
        for t in range(T):
            logits = x[t] @ W_g
            top = sorted(range(E), key=lambda e: -logits[e])[:k]
            # softmax over the kept logits == softmax of logits with the others set to -inf
            masked = np.full(E, -np.inf)
            masked[top] = logits[top]
            g = np.exp(masked - logits[top].max())
            g /= g.sum()
            assert set(idx[t].tolist()) == set(top)
            for e in top:
                ref[t] += g[e] * experts[e](x[t][None])[0]
            np.testing.assert_allclose(np.sort(gates[t]), np.sort(g[top]), rtol=1e-12)
        np.testing.assert_allclose(y, ref, rtol=1e-10, atol=1e-12)

    # k = number of experts is a dense softmax mixture
    y, _, _ = moe_forward(x, W_g, experts, k=E)
    p = _softmax(x @ W_g)
    dense = sum(p[:, [e]] * experts[e](x) for e in range(E))
    np.testing.assert_allclose(y, dense, rtol=1e-10, atol=1e-12)


# --------------------------------------------------------------------------- Switch balancing loss
@check("moe-balance-code")
def check_switch_balance(ns):
    loss = ns["switch_balance_loss"]
    rng = np.random.default_rng(5)
    N, per = 4, 6
    T = N * per

    # perfectly uniform routing: tokens split evenly and mean router probability 1/N per expert
    logits = np.tile(np.eye(N) * 3.0, (per, 1))
    np.testing.assert_allclose(loss(logits), 1.0, rtol=1e-12)
    np.testing.assert_allclose(loss(np.zeros((T, N))), 1.0, rtol=1e-12)  # p uniform even though argmax ties
    np.testing.assert_allclose(loss(logits, alpha=0.01), 0.01, rtol=1e-12)

    # collapsed routing: every token to expert 0 with probability ~1 -> loss ~ N
    collapsed = np.zeros((T, N))
    collapsed[:, 0] = 50.0
    np.testing.assert_allclose(loss(collapsed), N, rtol=1e-12)
    assert loss(collapsed) > loss(logits)
    # partially collapsed routing sits in between
    partial = np.tile(np.eye(N) * 3.0, (per, 1))
    partial[: T // 2, 0] += 10.0
    assert 1.0 < loss(partial) < N

    # against an explicit loop over tokens
    z = rng.normal(size=(37, 8)) * 2
    p = _softmax(z)
    f = np.zeros(8)
    P = np.zeros(8)
    for t in range(z.shape[0]):
        f[int(np.argmax(p[t]))] += 1.0 / z.shape[0]
        P += p[t] / z.shape[0]
    np.testing.assert_allclose(loss(z, alpha=0.5), 0.5 * 8 * float(f @ P), rtol=1e-12)


# --------------------------------------------------------------------------- MinHash
@check("pt-minhash-code")
def check_minhash(ns):
    import zlib

    shingles, minhash, jaccard_estimate, P = ns["shingles"], ns["minhash"], ns["jaccard_estimate"], ns["P"]
    # shingles: the exact set of hashed character n-grams
    text = "the cat sat on the mat"
    ref = {zlib.crc32(text[i:i + 5].encode()) for i in range(len(text) - 4)}
    assert shingles(text) == ref and shingles(text, n=3) != ref
    assert shingles("abcd", n=5) == set()

    rng = np.random.default_rng(11)
    k = 2000
    a = rng.integers(1, P, size=k)
    b = rng.integers(0, P, size=k)
    # the signature is the explicit per-hash minimum over the set
    s = {5, 17, 2**31 + 3, 123456789}
    sig = minhash(s, a, b)
    explicit = [min((int(ai) * (x % P) + int(bi)) % P for x in s) for ai, bi in zip(a, b)]
    assert sig.shape == (k,) and list(sig) == explicit
    # identical sets -> 1; order and duplicates do not matter
    assert jaccard_estimate(minhash({1, 2, 3}, a, b), minhash({3, 2, 1, 1}, a, b)) == 1.0
    # the estimate tracks the exact Jaccard similarity (within 5 standard errors)
    universe = rng.choice(10**9, size=3000, replace=False)
    for n_common, n_a, n_b in ((400, 600, 500), (50, 300, 300), (0, 200, 200), (900, 950, 1000)):
        common = set(universe[:n_common])
        A = common | set(universe[1000:1000 + n_a - n_common])
        B = common | set(universe[2000:2000 + n_b - n_common])
        J = len(A & B) / len(A | B)
        est = jaccard_estimate(minhash(A, a, b), minhash(B, a, b))
        se = max(np.sqrt(J * (1 - J) / k), 1e-3)
        assert abs(est - J) < 5 * se + 0.01, (J, est)
    # near-duplicate documents score high, unrelated ones low
    doc = "Large language models are trained on trillions of tokens of web text. " * 3
    near = doc.replace("trillions", "billions")
    other = "Diffusion models denoise images step by step from Gaussian noise."
    sd, sn, so = (minhash(shingles(t), a, b) for t in (doc, near, other))
    assert jaccard_estimate(sd, sn) > 0.6 > 0.1 > jaccard_estimate(sd, so)


# --------------------------------------------------------------------------- DeepSeek-V3 routing
@check("moe-aux-free-code")
def check_aux_free(ns):
    route, update_bias = ns["route"], ns["update_bias"]
    rng = np.random.default_rng(12)
    T, E, k = 64, 16, 4
    scores = 1 / (1 + np.exp(-rng.normal(size=(T, E))))
    bias = rng.normal(scale=0.3, size=E)

    idx, gates = route(scores, bias, k)
    assert idx.shape == (T, k) and gates.shape == (T, k)
    for t in range(T):
        # selection: the k largest biased scores (as a set) ...
        ref = set(np.argsort(-(scores[t] + bias))[:k])
        assert set(idx[t]) == ref and len(set(idx[t])) == k
        # ... gates: the raw affinities of those experts, normalised among them
        raw = scores[t, idx[t]]
        np.testing.assert_allclose(gates[t], raw / raw.sum(), rtol=1e-12)
    # zero bias is plain top-k; the bias changes who is selected, never the gate formula
    idx0, _ = route(scores, np.zeros(E), k)
    for t in range(T):
        assert set(idx0[t]) == set(np.argsort(-scores[t])[:k])

    # the update: -gamma for overloaded, +gamma for underloaded, 0 exactly at the mean
    sel = np.array([[0, 1], [0, 2], [0, 3], [1, 2]])      # loads 3, 2, 2, 1; mean 2
    new = update_bias(np.zeros(4), sel, gamma=0.5)
    np.testing.assert_allclose(new, [-0.5, 0.0, 0.0, 0.5])

    # closed loop: experts with systematically higher affinity get balanced by the bias alone
    skew = np.linspace(-2.0, 2.0, E)
    bias = np.zeros(E)

    def imbalance(b):
        logits = rng.normal(size=(4 * T, E)) + skew
        i, _ = route(1 / (1 + np.exp(-logits)), b, k)
        load = np.bincount(i.ravel(), minlength=E)
        return load.max() / (i.size / E), i

    before, _ = imbalance(bias)
    for _ in range(400):
        _, i = imbalance(bias)
        bias = update_bias(bias, i, gamma=0.01)
    after = np.mean([imbalance(bias)[0] for _ in range(5)])
    assert before > 3.0 and after < 1.6, (before, after)
    assert bias[0] > 0 > bias[-1]     # low-affinity experts were pushed up, high ones down
