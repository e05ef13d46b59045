"""Checks for the code cards of guide question 5.4 (数据、分词与 scaling).

Each check compares a card's snippet with an independent reference written differently: BPE training by
re-deriving every segmentation from the raw bytes and counting pairs over the expanded corpus, BPE encoding by
replaying the merges in the order they were learned, MinHash against exact Jaccard similarity and LSH against a
direct band-by-band comparison, the compute-optimal allocation against worked numbers and a grid search, and
pass@k against exact enumeration of subsets.
"""
from __future__ import annotations

import itertools
import math

import numpy as np

from tests.code_checks import check


# ------------------------------------------------------------------------------------------------ BPE references

def _replay(raw: list[int], merges) -> list[int]:
    """Apply the merges in the order they were learned, each to every occurrence, left to right."""
    seq = list(raw)
    for rank, pair in enumerate(merges):
        new_id, out, i = 256 + rank, [], 0
        while i < len(seq):
            if i + 1 < len(seq) and seq[i] == pair[0] and seq[i + 1] == pair[1]:
                out.append(new_id)
                i += 2
            else:
                out.append(seq[i])
                i += 1
        seq = out
    return seq


def _ref_train_bpe(word_freqs: dict[str, int], n_merges: int):
    """Brute force: the corpus expanded word by word (each word repeated `count` times), every segmentation
    re-derived from the raw bytes after each merge, pairs counted position by position."""
    corpus = [list(w.encode("utf-8")) for w, count in word_freqs.items() for _ in range(count)]
    merges, best_counts = [], []
    for _ in range(n_merges):
        counts: dict[tuple[int, int], int] = {}
        for raw in corpus:
            seq = _replay(raw, merges)
            for pos in range(len(seq) - 1):
                pair = (seq[pos], seq[pos + 1])
                counts[pair] = counts.get(pair, 0) + 1
        if not counts:
            break
        top = max(counts.values())
        best = sorted(p for p, c in counts.items() if c == top)[0]
        merges.append(best)
        best_counts.append(top)
    return merges, best_counts


_TOY = {"low": 5, "lower": 2, "newest": 6, "widest": 3}          # Sennrich et al. 2016's example
_MIXED = {
    "the": 40, " the": 35, " then": 12, " there": 9, " other": 7, " token": 11, " tokens": 8,
    " tokenizer": 5, "aaaa": 3, " 中文": 10, " 中国": 6, "分词": 9, " 分词器": 4, " 词表": 5, "😀": 2,
}


@check("tok-bpe-train-code")
def _bpe_train(ns):
    train_bpe, merge = ns["train_bpe"], ns["merge"]
    # merge(): left to right, non-overlapping
    assert merge([1, 1, 1], (1, 1), 9) == [9, 1]
    assert merge([1, 1, 1, 1], (1, 1), 9) == [9, 9]
    assert merge([1, 2, 3, 1, 2], (1, 2), 7) == [7, 3, 7]
    assert merge([5], (5, 5), 9) == [5]
    # Sennrich's toy corpus, worked by hand: "es" and "st" tie at 9 (smaller ids first), then "est",
    # then "lo" and "ow" tie at 7, then "low"
    toy = train_bpe(dict(_TOY), 4)
    e, s, t, l, o, w = (ord(ch) for ch in "estlow")
    assert [tuple(p) for p in toy] == [(e, s), (256, t), (l, o), (258, w)]
    for corpus, n in [(_TOY, 30), (_MIXED, 40), ({"abab": 3, "ba": 2, "aaa": 1}, 12)]:
        got = [tuple(p) for p in train_bpe(dict(corpus), n)]
        ref, counts = _ref_train_bpe(dict(corpus), n)
        assert got == ref, (corpus, got, ref)
        # the winning count never increases from one merge to the next
        assert all(a >= b for a, b in zip(counts, counts[1:]))
        # every merge refers to tokens that already exist
        for rank, (a, b) in enumerate(got):
            assert a < 256 + rank and b < 256 + rank
    # asking for more merges than possible stops when every word is one token
    few = train_bpe({"ab": 1, "c": 5}, 10)
    assert [tuple(p) for p in few] == [(ord("a"), ord("b"))]
    # the input dictionary is not modified
    corpus = dict(_MIXED)
    train_bpe(corpus, 5)
    assert corpus == _MIXED


@check("tok-bpe-encode-code")
def _bpe_encode(ns):
    encode, decode = ns["encode"], ns["decode"]
    merges, _ = _ref_train_bpe(dict(_MIXED), 40)
    # on the training words: the segmentation the training ended with (merges replayed in order)
    for word in _MIXED:
        raw = list(word.encode("utf-8"))
        assert encode(word, merges) == _replay(raw, merges), word
    # unseen text, Chinese, emoji, empty: same as the replay, and the round trip is lossless (no UNK)
    unseen = ["", "x", "thermometer", " tokenization", "中文分词器的词表", "😀😀 the", "naïve café", "\n\t "]
    for text in unseen:
        ids = encode(text, merges)
        assert ids == _replay(list(text.encode("utf-8")), merges), text
        assert all(0 <= t < 256 + len(merges) for t in ids)
        assert decode(ids, merges) == text
    # rank order matters: the earliest merge wins, whatever its position in the word
    merges2 = [(ord("b"), ord("c")), (ord("a"), ord("b"))]
    assert encode("abc", merges2) == [ord("a"), 256]
    merges3 = [(ord("a"), ord("b")), (ord("b"), ord("c"))]
    assert encode("abc", merges3) == [256, ord("c")]
    # no merges: raw UTF-8 bytes (a Chinese character is 3 bytes)
    assert encode("中", []) == list("中".encode("utf-8")) and len(encode("中", [])) == 3
    # decoding a token stream cut inside a character gives U+FFFD instead of raising
    assert decode(encode("中", [])[:2], []) == "\ufffd"
    # encoding is never longer than the bytes and the learned merges do compress the training words
    total_raw = sum(len(w.encode("utf-8")) * c for w, c in _MIXED.items())
    total_tok = sum(len(encode(w, merges)) * c for w, c in _MIXED.items())
    assert total_tok < 0.5 * total_raw


# ------------------------------------------------------------------------------------------------ MinHash + LSH

@check("data-minhash-lsh-code")
def _minhash_lsh(ns):
    signatures, jaccard_estimate, lsh_candidates = (
        ns["signatures"], ns["jaccard_estimate"], ns["lsh_candidates"])
    rng = np.random.default_rng(7)
    # pairs of sets with controlled overlap: |A ∩ B| = m, |A| = |B| = 200
    universe = rng.choice(10**9, size=200_000, replace=False)
    sets, exact = [], []
    pos = 0
    for m in [0, 10, 40, 80, 120, 160, 190, 200]:
        common = universe[pos:pos + m]
        a_only = universe[pos + m:pos + 200]
        b_only = universe[pos + 200:pos + 400 - m]
        pos += 400
        A, B = set(common) | set(a_only), set(common) | set(b_only)
        sets += [A, B]
        exact.append(len(A & B) / len(A | B))
    for k in [64, 256]:
        sig = signatures(sets, k, seed=1)
        assert sig.shape == (len(sets), k)
        errors = []
        for idx, J in enumerate(exact):
            est = jaccard_estimate(sig[2 * idx], sig[2 * idx + 1])
            if J in (0.0, 1.0):
                # disjoint sets never share a minimum (h is a bijection mod P); equal sets always do
                assert est == J
            sd = math.sqrt(J * (1 - J) / k)
            assert abs(est - J) <= 4 * sd + 1e-12, (k, J, est)
            errors.append(abs(est - J))
        # more hash functions: smaller error overall
        if k == 64:
            err64 = np.mean(errors)
        else:
            assert np.mean(errors) < err64
    # the signature of a set equals the min over the set of each hash, computed element by element
    small = [{3, 17, 2**40 + 5}, {17}]
    sig = signatures(small, 5, seed=3)
    r = np.random.default_rng(3)
    a, b = r.integers(1, 2**31 - 1, 5), r.integers(0, 2**31 - 1, 5)
    for d, s in enumerate(small):
        for j in range(5):
            ref = min((int(a[j]) * (x % (2**31 - 1)) + int(b[j])) % (2**31 - 1) for x in s)
            assert sig[d, j] == ref
    # LSH: a pair is a candidate iff some band of r rows agrees entirely (direct comparison)
    sig = signatures(sets, 128, seed=2)
    for bands in [8, 16, 32]:
        rows = 128 // bands
        got = lsh_candidates(sig, bands)
        want = set()
        for i, j in itertools.combinations(range(len(sets)), 2):
            eq = (sig[i] == sig[j])[:bands * rows].reshape(bands, rows)
            if eq.all(axis=1).any():
                want.add((i, j))
        assert got == want, bands
        # identical sets are always candidates, disjoint ones never
        assert (14, 15) in got and (0, 1) not in got
    # the S-curve: near-duplicates (J = 0.8) are caught, dissimilar pairs (J = 0.3) rarely
    base = rng.choice(10**9, size=50_000, replace=False)
    hi, lo = [], []
    for t in range(60):
        chunk = base[t * 800:(t + 1) * 800]
        # J = 180 / 220 ~ 0.82 and J = 100 / 500 = 0.2, each pair from fresh elements
        common, a_, b_ = chunk[:180], chunk[180:200], chunk[200:220]
        hi += [set(common) | set(a_), set(common) | set(b_)]
        common, a_, b_ = chunk[220:320], chunk[320:520], chunk[520:720]
        lo += [set(common) | set(a_), set(common) | set(b_)]
    bands = 16
    for group, expect_rate, cmp in [(hi, 1 - (1 - (180 / 220) ** 8) ** 16, "hi"),
                                    (lo, 1 - (1 - (100 / 500) ** 8) ** 16, "lo")]:
        sig = signatures(group, 128, seed=5)
        cands = lsh_candidates(sig, bands)
        rate = np.mean([(2 * t, 2 * t + 1) in cands for t in range(60)])
        if cmp == "hi":
            assert expect_rate > 0.95 and rate >= 0.85
        else:
            assert expect_rate < 0.01 and rate <= 0.05


# ------------------------------------------------------------------------------------------------ Chinchilla

@check("scale-chinchilla-calc-code")
def _chinchilla(ns):
    chinchilla_optimal, optimal_from_fit = ns["chinchilla_optimal"], ns["optimal_from_fit"]
    # Chinchilla itself: 70B parameters and 1.4T tokens, C = 6 N D = 5.88e23 FLOPs
    C = 6 * 70e9 * 1.4e12
    np.testing.assert_allclose(C, 5.88e23, rtol=1e-12)
    N, D = chinchilla_optimal(C)
    np.testing.assert_allclose([N, D], [70e9, 1.4e12], rtol=1e-12)
    # GPT-3's budget (175B x 300B tokens): about 51B parameters and 1.0T tokens
    N, D = chinchilla_optimal(6 * 175e9 * 300e9)
    np.testing.assert_allclose(N, math.sqrt(6 * 175e9 * 300e9 / 120), rtol=1e-12)
    assert 5.0e10 < N < 5.2e10 and 1.0e12 < D < 1.04e12
    # identities for any budget and ratio
    for C in [1e18, 3.3e21, 5.76e23, 2e25]:
        for r in [1, 20, 200]:
            N, D = chinchilla_optimal(C, r)
            np.testing.assert_allclose(6 * N * D, C, rtol=1e-12)
            np.testing.assert_allclose(D / N, r, rtol=1e-12)
    # 10x compute -> sqrt(10)x parameters and tokens
    n1, d1 = chinchilla_optimal(1e22)
    n2, d2 = chinchilla_optimal(1e23)
    np.testing.assert_allclose([n2 / n1, d2 / d1], [math.sqrt(10)] * 2, rtol=1e-12)

    # the parametric fit: compare with a dense grid search of L(N, C / 6N) over log N
    E, A, B, al, be = 1.69, 406.4, 410.7, 0.34, 0.28
    for C in [1e20, 1e22, 5.76e23, 1e25]:
        N, D = optimal_from_fit(C)
        np.testing.assert_allclose(6 * N * D, C, rtol=1e-12)
        logn = np.linspace(math.log(1e6), math.log(1e14), 400_001)
        n_grid = np.exp(logn)
        loss = E + A / n_grid ** al + B / (C / (6 * n_grid)) ** be
        n_best = n_grid[np.argmin(loss)]
        np.testing.assert_allclose(N, n_best, rtol=2e-4)
    # exponents: N_opt grows as C^(beta / (alpha + beta)) ~ C^0.45
    n1, _ = optimal_from_fit(1e21)
    n2, _ = optimal_from_fit(1e23)
    np.testing.assert_allclose(math.log10(n2 / n1) / 2, be / (al + be), rtol=1e-10)
    # other constants pass through (symmetric case alpha = beta, A = B: N = D = sqrt(C / 6))
    N, D = optimal_from_fit(6e20, A=100.0, B=100.0, al=0.3, be=0.3)
    np.testing.assert_allclose([N, D], [1e10, 1e10], rtol=1e-12)


# ------------------------------------------------------------------------------------------------ pass@k

@check("eval-passk-curve-code")
def _pass_at_k_curve(ns):
    curve, bench = ns["pass_at_k_curve"], ns["benchmark_pass_at_k"]
    # exact enumeration: over all k-subsets of the n samples, the share with at least one pass
    for n in range(1, 10):
        for c in range(n + 1):
            samples = [1] * c + [0] * (n - c)
            got = curve(n, c)
            assert got.shape == (n,)
            for k in range(1, n + 1):
                subsets = list(itertools.combinations(samples, k))
                frac = sum(any(s) for s in subsets) / len(subsets)
                np.testing.assert_allclose(got[k - 1], frac, rtol=1e-12, atol=1e-15)
    # against the closed form with big n (no overflow, monotone in k, ends at 1 when c > 0)
    n, c = 200, 7
    got = curve(n, c)
    for k in [1, 2, 10, 50, 100, 193, 194, 200]:
        np.testing.assert_allclose(got[k - 1], 1 - math.comb(n - c, k) / math.comb(n, k), rtol=1e-10, atol=1e-15)
    assert np.all(np.diff(got) >= -1e-15) and got[-1] == 1.0
    np.testing.assert_allclose(got[0], c / n, rtol=1e-12)
    assert np.all(curve(50, 0) == 0.0)
    # unbiased for every k: averaging over c ~ Binomial(n, p) gives 1 - (1 - p)^k exactly
    p, n = 0.23, 9
    expected = sum(math.comb(n, c) * p ** c * (1 - p) ** (n - c) * curve(n, c) for c in range(n + 1))
    np.testing.assert_allclose(expected, 1 - (1 - p) ** np.arange(1, n + 1), rtol=1e-12)
    # benchmark average with a different n per problem
    ns_, cs_ = [10, 20, 5], [1, 0, 5]
    want = np.mean([1 - math.comb(n - c, 3) / math.comb(n, 3) for n, c in zip(ns_, cs_)])
    np.testing.assert_allclose(bench(ns_, cs_, 3), want, rtol=1e-12)
