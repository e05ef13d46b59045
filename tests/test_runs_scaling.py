"""Claims of the scaling experiment (figures/experiments/scaling_mini.py): IsoFLOP profiles of tiny char GPTs.

At --quick size (two small budgets, three sizes each) only what is robust: the accounting (D = C / 6N, so smaller
models see more tokens), a larger budget reaching a lower best loss, the U's two arms at the larger budget (the
smallest model is not the best, and neither is the largest), finite fits with a decreasing frontier. On the committed
full run: what cards/experiments/scaling.md states.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tests.conftest import load_run

ROOT = Path(__file__).resolve().parent.parent
STEM = "scaling_mini"


def _by_budget(d):
    out = {}
    for r in d["runs"]:
        out.setdefault(r["budget"], []).append(r)
    return {C: sorted(rs, key=lambda r: r["N"]) for C, rs in sorted(out.items())}


def check_accounting(d):
    for C, rs in _by_budget(d).items():
        for r in rs:
            assert r["tokens"] == r["steps"] * d["tokens_per_step"]
            # D = C / 6N up to one step's rounding
            assert abs(6 * r["N"] * r["tokens"] - C) <= 6 * r["N"] * d["tokens_per_step"] / 2 + 1
            assert math.isclose(r["epochs"], r["tokens"] / d["corpus"]["train_chars"], rel_tol=1e-3)
        tokens = [r["tokens"] for r in rs]
        assert tokens == sorted(tokens, reverse=True), f"C={C}: smaller models must see more tokens"


def check_isoflop_claims(d, margin=0.02):
    bud = _by_budget(d)
    Cs = list(bud)
    assert len(Cs) >= 2
    best = {C: min(r["loss"] for r in rs) for C, rs in bud.items()}
    assert best[Cs[-1]] < best[Cs[0]] - 0.05, best  # more compute, lower best loss
    big = bud[Cs[-1]]
    assert big[0]["loss"] > best[Cs[-1]] + margin, "largest budget: the smallest model must not be the best"
    assert big[-1]["loss"] > best[Cs[-1]] + margin, "largest budget: the largest model must not be the best"
    for C, rs in bud.items():  # the right arm at every budget: the largest model saw too few tokens
        assert rs[-1]["loss"] > min(r["loss"] for r in rs) + margin, C


def check_fits(d):
    for f in d["fits"]:
        assert math.isfinite(f["n_opt"]) and math.isfinite(f["loss_opt"]) and f["n_opt"] > 0
        assert math.isfinite(f["tokens_per_param_opt"]) and f["tokens_per_param_opt"] > 0
        Ns = [r["N"] for r in d["runs"] if r["budget"] == f["budget"]]
        assert min(Ns) <= f["n_opt"] <= max(Ns)  # never extrapolated
    s = d["scaling"]["loss"]
    assert math.isfinite(s["A"]) and math.isfinite(s["b"])
    assert s["b"] > 0, "the frontier loss must fall with compute: L* = A C^-b with b > 0"


def test_quick_scaling_mini(quick):
    out, _, _ = quick
    d = load_run(out, STEM)
    check_accounting(d)
    check_isoflop_claims(d)
    check_fits(d)


# --- the committed full run: what the card states -------------------------------------------------------------


@pytest.fixture(scope="module")
def full():
    path = ROOT / "figures" / "data" / f"{STEM}.json"
    if not path.is_file():
        pytest.skip("no committed scaling_mini.json")
    return json.loads(path.read_text("utf-8"))


def test_full_run_is_a_full_run(full):
    assert full["quick"] is False
    assert len(full["budgets"]) >= 3
    check_accounting(full)
    check_isoflop_claims(full, margin=0.03)
    check_fits(full)


def test_full_every_budget_is_u_shaped_with_the_vertex_inside(full):
    """The card: at each fixed C the loss is U-shaped in N, with the minimum between the measured sizes."""
    for f in full["fits"]:
        assert f["convex"] and f["inside"], f
        rs = sorted((r for r in full["runs"] if r["budget"] == f["budget"]), key=lambda r: r["N"])
        i = min(range(len(rs)), key=lambda k: rs[k]["loss"])
        assert 0 < i < len(rs) - 1, f"C={f['budget']}: the best measured size is at an end"


def test_full_optimum_moves_to_larger_models_and_to_more_tokens(full):
    """The card: as C grows N* grows, and so does D* = C / 6N* (N* ∝ C^a with 0 < a < 1)."""
    fits = full["fits"]
    n = [f["n_opt"] for f in fits]
    dd = [f["d_opt"] for f in fits]
    assert n == sorted(n) and n[-1] > 1.5 * n[0]
    assert dd == sorted(dd) and dd[-1] > 1.5 * dd[0]
    a = full["scaling"]["n_opt"]["a"]
    assert 0.2 < a < 0.9, a


def test_full_optimum_trains_far_more_tokens_per_parameter_than_chinchilla(full):
    """The card: at these tiny sizes the optimum sees many more than ~20 tokens per non-embedding parameter."""
    for f in full["fits"]:
        assert f["tokens_per_param_opt"] > 60, f


def test_full_more_parameters_help_at_the_same_tokens(full):
    """Where two runs saw about the same tokens, the larger model has the lower loss (the compute differs)."""
    pairs = full["same_tokens"]
    if not pairs:
        pytest.skip("no two runs with about the same token count")
    wins = sum(p["loss"][1] < p["loss"][0] for p in pairs)
    assert wins == len(pairs), pairs
