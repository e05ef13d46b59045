"""Claims of figures/experiments/llm_decoding.py (speculative sampling, temperature / top-p) on the --quick run, and
what cards/experiments/decoding.md states on the committed full run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import load_run

DATA = Path(__file__).resolve().parent.parent / "figures" / "data"


def _rows(d, kind):
    return [r for r in d["sweep"]["rows"] if r["kind"] == kind]


# --- the claims, shared by the quick and the full data ---------------------------------------------------------


def check_distribution_is_kept(d, noise_factor, against_draft=True):
    """The speculative rule's first token follows p: TV at the sampling-noise level, far below the draft's.

    ``against_draft``: also compare with the draft's own TV, which needs trained models (at --quick size the draft
    and the target have barely left the character frequencies, so q is as close to p as the noise is)."""
    pre = d["distribution"]["prefixes"]
    spec, direct, draft = (np.mean([p[k] for p in pre]) for k in ("tv_spec", "tv_direct", "tv_draft"))
    assert spec < noise_factor * direct, (spec, direct)
    if not against_draft:
        return
    assert spec < 0.5 * draft, (spec, draft)
    for p in pre:  # and per prefix: never as far from p as the draft is
        assert p["tv_spec"] < 0.7 * p["tv_draft"], p
    # the control: a sampler that ignores the rule (emits the draft's tokens) would sit at TV(q, p) > the noise
    assert draft > 2 * direct, (draft, direct)


def check_acceptance(d, bigger_draft_better=True):
    drafts = d["spec"]["drafts"]
    names = list(drafts)
    small, big = names[0], names[-1]
    if bigger_draft_better:  # trained models only: at --quick size both drafts are near the unigram model
        assert drafts[big]["alpha_mean"] > drafts[small]["alpha_mean"] + 0.03, {n: v["alpha_mean"] for n, v in
                                                                               drafts.items()}
    for name, v in drafts.items():
        rows = v["by_k"]
        tok = [r["tokens_per_target_forward"] for r in rows]
        assert tok[-1] > tok[0] + 0.4 and tok[len(tok) // 2] > tok[0], (name, tok)  # grows with k
        for r in rows:
            assert 1 <= r["tokens_per_target_forward"] <= r["k"] + 1
            # the measured tokens per round match (1 - a^(k+1)) / (1 - a) with the measured a, within noise
            assert abs(r["tokens_per_target_forward"] - r["tokens_theory"]) < 0.2 * r["tokens_theory"], (name, r)
            assert abs(r["alpha"] - r["accept_rate"]) < 0.1, (name, r)  # E[beta] vs the counted acceptances


def check_sweep(d):
    temps = sorted(_rows(d, "temperature"), key=lambda r: r["temperature"])
    lo, hi = temps[0], temps[-1]
    for key in ("distinct_1", "distinct_2", "distinct_3", "nll"):
        assert hi[key] > lo[key], (key, lo, hi)
    nll = [r["nll"] for r in temps]
    assert nll == sorted(nll), nll  # the hotter, the less likely the text under the model
    greedy = _rows(d, "greedy")[0]
    t1 = next(r for r in temps if r["temperature"] == 1.0)
    assert greedy["repeat_4"] > t1["repeat_4"] + 0.2, (greedy, t1)
    assert greedy["distinct_2"] < t1["distinct_2"], (greedy, t1)
    assert greedy["nll"] < t1["nll"], (greedy, t1)
    tops = sorted(_rows(d, "top_p"), key=lambda r: r["top_p"])
    assert tops[0]["nll"] < tops[-1]["nll"] and tops[0]["distinct_2"] < tops[-1]["distinct_2"], tops


# --- quick run -------------------------------------------------------------------------------------------------


def test_speculative_sampling_stays_at_the_noise_level_of_direct_sampling(quick):
    check_distribution_is_kept(load_run(quick[0], "llm_decoding"), noise_factor=1.5, against_draft=False)


def test_the_experiments_accept_resample_rule_gives_the_target_distribution_for_a_bad_draft():
    """The very function the experiment samples with, on a draft far from the target: the emitted tokens follow p
    (TV at the noise level of direct sampling), the draft's q does not, and the acceptance rate is sum(min(p, q))."""
    torch = pytest.importorskip("torch", reason="the experiments need the optional extra (pip install -e '.[runs]')")
    from figures.experiments.llm_decoding import accept_or_resample

    g = torch.Generator().manual_seed(0)
    p = torch.tensor([0.5, 0.2, 0.15, 0.1, 0.05, 0.0])
    q = torch.tensor([0.05, 0.05, 0.1, 0.2, 0.3, 0.3])  # puts mass where p has little or none
    n = 200_000
    x = torch.multinomial(q, n, replacement=True, generator=g)
    u = torch.rand(n, generator=g)
    accepted, token = accept_or_resample(p.expand(n, -1), q.expand(n, -1), x, u, g)
    emitted = torch.bincount(token, minlength=6).double() / n
    direct = torch.bincount(torch.multinomial(p, n, replacement=True, generator=g), minlength=6).double() / n
    tv = 0.5 * (emitted - p.double()).abs().sum().item()
    noise = 0.5 * (direct - p.double()).abs().sum().item()
    assert tv < max(3 * noise, 0.005), (tv, noise)
    assert 0.5 * (q - p).abs().sum().item() > 0.4  # the control: the draft alone is far off
    assert abs(accepted.double().mean().item() - torch.minimum(p, q).sum().item()) < 0.005
    assert emitted[5].item() == 0  # never a token the target gives probability 0


def test_longer_drafts_give_more_tokens_per_forward_as_the_formula_says(quick):
    check_acceptance(load_run(quick[0], "llm_decoding"), bigger_draft_better=False)


def test_temperature_trades_diversity_for_likelihood_and_greedy_repeats(quick):
    check_sweep(load_run(quick[0], "llm_decoding"))


# --- the committed full run: what cards/experiments/decoding.md says ---------------------------------------------


def test_committed_decoding_data_shows_what_the_cards_say():
    d = load_run(DATA, "llm_decoding")
    assert d["quick"] is False
    check_distribution_is_kept(d, noise_factor=1.3)
    check_acceptance(d)
    check_sweep(d)
    drafts = d["spec"]["drafts"]
    for name, v in drafts.items():
        assert v["c"] < 0.6, (name, v["c"])  # each draft forward clearly cheaper than the target's
        theory = [r["speedup_theory"] for r in v["by_k"]]
        best = int(np.argmax(theory))
        assert 0 < best < len(theory) - 1, (name, theory)  # the expected speed-up rises, then falls in k
    # wall clock: each round also pays Python overhead the formula leaves out, so it stays below the theory
    for name, v in drafts.items():
        assert np.median([r["speedup"] / r["speedup_theory"] for r in v["by_k"]]) < 1.0, (name, v["by_k"])
