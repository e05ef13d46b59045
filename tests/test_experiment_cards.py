"""Experiment cards (``exp-*``) state only numbers that their committed data contains.

Every number a card writes (front, back, Extra; cloze text) is read from the card's source, with the unit written
after it, and must equal, at the precision written, a value of the data file(s) behind the card's measured figures
(``fig:run-*`` -> ``figures/data/<experiment>.json``): ``65.9 秒`` must be a timing in the data that rounds to 65.9
(``约 80 秒`` fails). A unit scales the data (``%`` x100, ``ms`` x1000, ``MiB`` /2**20, ``万`` /1e4, ``k`` /1000
or /1024); seconds match timings only. A few ratios and counts that a card states are derived from the data here,
explicitly (``DERIVED``). Not checked, because they are not measurements: formula constants inside math (but
``a\\times10^{b}`` and ``10^{b}`` are checked), citation years, names with digits (``GPT-2``, ``L1 H3``, ``fp16``),
layer ordinals (``第 2 层``), digit classes in quotes (``"5"``), inline code. Configuration or common-knowledge
numbers the data does not hold are allowed per card in ``ALLOWED``, each with its reason.

Also: every ``exp-*`` card shows a measured figure, and no front asks for a measured decimal (no decimal, percent or
timing on a front).
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from ankideck import Problems
from ankideck.cloze import DELETION_RE  # the one cloze grammar: the answer stays, markers and hint go
from ankideck.drawing import load_registry
from ankideck.parse import parse_file
from tests.conftest import ROOT

CARDS = ROOT / "cards" / "experiments"
DATA = ROOT / "figures" / "data"

# card id -> {number as written: why it may appear although the data does not hold it}
ALLOWED: dict[str, dict[str, str]] = {
    "exp-l1-sparsity": {"8": "digits images are 8×8 pixels"},
    "exp-postln-grad-init": {"8": "init_grad_norm is the mean over 8 batches (figures/experiments/gpt_warmup.py)"},
    "exp-isoflop-tokens-per-param": {"20": "Chinchilla's ~20 tokens per parameter (Hoffmann et al. 2022)"},
}

# Keys whose values are not results: provenance, not something a card may quote.
IGNORED_KEYS = {"date", "versions", "sha256", "command"}


def _ratios(a, b):
    return [x / y for x, y in zip(a, b) if y]


def _heads_over_half(shares):
    return sum(share > 0.5 for layer in shares for share in layer)


# experiment -> function(data) -> extra values a card may state (ratios, counts) computed from the data
DERIVED = {
    "attention_cost": lambda d: [
        *_ratios(d["attention"]["time_naive_s"], d["attention"]["time_sdpa_s"]),
        *_ratios(d["generation"]["time_nocache_s"], d["generation"]["time_cache_s"]),
    ],
    "gpt_warmup": lambda d: [
        *_ratios(d["init_grad_norm"]["post_ln"], d["init_grad_norm"]["pre_ln"]),
        len(d["runs"]),
    ],
    "bert_attention": lambda d: [
        d["layers"] * d["heads"],
        *(_heads_over_half(d["per_head"][c]) for c in d["categories"]),
        _heads_over_half(d["prev_token"]), _heads_over_half(d["next_token"]),
    ],
    "init_spread": lambda d: [
        # per-layer gain of the backward signal, geometric mean over the depth
        (g[0] / g[-1]) ** (1 / (len(g) - 1))
        for act in d["grad"].values() for g in act.values()
    ],
    "adaptive_softmax": lambda d: [c / v for cs, v in zip(d["cutoffs"], d["vocab"]) for c in cs],
    "moe_balance": lambda d: [min(r["load"]) for runs in d["runs"].values() for r in runs],
    "scaling_mini": lambda d: [len(d["sizes"]), len(d["budgets"]), len(d["runs"])],
}

NUMBER = r"\d+(?:\.\d+)?(?:e[-+]?\d+)?"
UNITS = r"%|ms|MiB|GiB|KiB|万|秒|s(?![A-Za-z])|k(?![A-Za-z])"
# A number (optionally a range a–b sharing one unit) not glued to a name: not after a letter, digit, '.', '-' or
# '_' (GPT-2, L6-v2, fp16, 64-256-10), not before a letter unless that letter starts its unit (7B, 3rd).
NUMBER_RE = re.compile(rf"(?<![A-Za-z0-9_.\-])({NUMBER})(?:\s*[–~]\s*({NUMBER}))?\s*({UNITS})?(?![A-Za-z0-9])")
MATH_RE = re.compile(r"\$\$.*?\$\$|\\\[.*?\\\]|\\\(.*?\\\)|(?<!\\)\$.*?(?<!\\)\$", re.S)
SCI_RE = re.compile(r"(\d+(?:\.\d+)?)\s*\\times\s*10\^\{?(-?\d+)\}?")
POW_RE = re.compile(r"(?<![\d.])10\^\{?(-?\d+)\}?")
IMAGE_RE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
CODE_RE = re.compile(r"```.*?```|`[^`\n]*`", re.S)
CITATION_RE = re.compile(r"(?:et al\.|[A-Z][a-z]+(?: & [A-Z][a-z]+)?),? (?:19|20)\d\d[a-z]?\b")
ORDINAL_RE = re.compile(rf"第\s*{NUMBER}(?:\s*[–~]\s*{NUMBER})?\s*(?=层|个|步)")
FIGURE_RE = re.compile(r"fig:(run-[\w-]+)")
# a digit in quotes names a class of the digits data set ("5", 「9」), it is not a measurement
QUOTED_RE = re.compile(r"[\"“「]\d[\"”」]")


# --- what the data holds -----------------------------------------------------------------------------------------


def leaves(obj, path=()):
    """(key path, number) for every number in the JSON, numbers written inside strings too ("Adam lr 1e-2")."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key not in IGNORED_KEYS:
                yield from leaves(value, (*path, key))
    elif isinstance(obj, list):
        for value in obj:
            yield from leaves(value, path)
    elif isinstance(obj, bool):
        return
    elif isinstance(obj, (int, float)):
        yield path, float(obj)
    elif isinstance(obj, str):
        for match in re.finditer(r"(?<![\d.])\d+(?:\.\d+)?(?:e[-+]?\d+)?", obj):
            yield path, float(match.group())


def is_timing(path) -> bool:
    return any("time" in key or key.endswith("_s") for key in path)


def pools(experiments: list[str]) -> tuple[list[float], list[float]]:
    """All numbers of the experiments' data (with the derived ones), and the timings among them (seconds)."""
    values, timings = [], []
    for name in experiments:
        data = json.loads((DATA / f"{name}.json").read_text("utf-8"))
        for path, value in leaves(data):
            values.append(value)
            if is_timing(path):
                timings.append(value)
        values += [float(v) for v in DERIVED.get(name, lambda d: [])(data)]
    return values, timings


# --- what the card says ------------------------------------------------------------------------------------------


def stated_numbers(text: str) -> list[tuple[str, str, str]]:
    """(kind, number as written, unit) for every number a card's text states. kind: "plain", "sci" (mantissa,
    exponent joined by 'e') or "pow" (an order of magnitude 10^b)."""
    text = IMAGE_RE.sub(" ", DELETION_RE.sub(lambda m: f" {m.group(2)} ", CODE_RE.sub(" ", text)))
    found = []
    for math_match in MATH_RE.finditer(text):
        tex = math_match.group()
        for m in SCI_RE.finditer(tex):
            found.append(("sci", f"{m.group(1)}e{m.group(2)}", ""))
        for m in POW_RE.finditer(SCI_RE.sub(" ", tex)):
            found.append(("pow", m.group(1), ""))
    text = MATH_RE.sub(" ", text)
    text = QUOTED_RE.sub(" ", ORDINAL_RE.sub(" ", CITATION_RE.sub(" ", text)))
    for m in NUMBER_RE.finditer(text):
        unit = m.group(3) or ""
        found.append(("plain", m.group(1), unit))
        if m.group(2):
            found.append(("plain", m.group(2), unit))
    return found


def _decimals(written: str) -> int:
    mantissa = written.split("e")[0]
    return len(mantissa.split(".")[1]) if "." in mantissa else 0


def _rounds_to(value: float, written: str) -> bool:
    """value, rounded to the precision written, is the written number (either way at an exact half)."""
    if "e" in written:   # 1.4e8: as many significant digits as the mantissa has
        mantissa, exponent = written.split("e")
        value, written = value / 10 ** int(exponent), mantissa
    half = 0.5 * 10 ** -_decimals(written)
    return abs(value - float(written)) <= half * (1 + 1e-9)


SCALES = {"%": (100,), "ms": (1000,), "MiB": (2 ** -20,), "GiB": (2 ** -30,), "KiB": (2 ** -10,), "万": (1e-4,),
          "k": (1e-3, 2 ** -10)}


def unmatched(kind: str, written: str, unit: str, values: list[float], timings: list[float]) -> bool:
    if kind == "pow":
        exponent = int(written)
        return not any(v > 0 and round(math.log10(v)) == exponent for v in values)
    pool = timings if unit in ("s", "秒", "ms") else values
    scales = SCALES.get(unit, (1,))
    return not any(_rounds_to(v * scale, written) for v in pool for scale in scales)


def problems(text: str, experiments: list[str], allowed: dict[str, str] | None = None) -> list[str]:
    values, timings = pools(experiments)
    allowed = allowed or {}
    return [f"{written}{unit}" if kind == "plain" else f"{written} ({kind})"
            for kind, written, unit in stated_numbers(text)
            if written not in allowed and unmatched(kind, written, unit, values, timings)]


# --- the cards -----------------------------------------------------------------------------------------------------


def experiment_cards():
    cards = []
    for path in sorted(CARDS.glob("*.md")):
        problems = Problems()
        file_cards = parse_file(path, str(path.relative_to(ROOT)), "Test", problems)
        assert not problems, list(problems)
        cards += [card for card in file_cards if card.id.startswith("exp-")]
    return cards


CARDS_LIST = experiment_cards()
REGISTRY = load_registry(ROOT)


def card_text(card) -> str:
    return "\n".join(section.text for section in card.sections.values())


def card_experiments(card) -> list[str]:
    names = FIGURE_RE.findall(card_text(card))
    return sorted({Path(f).stem for name in names for f in REGISTRY[name].data})


def test_there_are_experiment_cards():
    assert len(CARDS_LIST) >= 13


@pytest.mark.parametrize("card", CARDS_LIST, ids=lambda c: c.id)
def test_card_shows_its_measured_data(card):
    experiments = card_experiments(card)
    assert experiments, f"{card.id}: no fig:run-* figure, so no data file to check its numbers against"
    assert all((DATA / f"{name}.json").is_file() for name in experiments)


@pytest.mark.parametrize("card", CARDS_LIST, ids=lambda c: c.id)
def test_every_number_on_the_card_is_in_its_data(card):
    bad = problems(card_text(card), card_experiments(card), ALLOWED.get(card.id))
    assert not bad, f"{card.id} ({card.path}:{card.line}) states numbers its data does not hold: {bad}"


@pytest.mark.parametrize("card", [c for c in CARDS_LIST if c.kind == "basic"], ids=lambda c: c.id)
def test_front_asks_for_insight_not_a_measured_decimal(card):
    measured = [(w, u) for kind, w, u in stated_numbers(card.sections["Front"].text)
                if kind != "plain" or "." in w or u in ("%", "ms", "s", "秒")]
    assert not measured, f"{card.id}: the front states or asks for measured numbers {measured}"


def test_experiment_cards_are_basic_cards():
    """A cloze on an experiment card deletes measured numbers; the insight goes on a front."""
    assert [c.id for c in CARDS_LIST if c.kind != "basic"] == []


# --- the checker itself --------------------------------------------------------------------------------------------


def test_checker_catches_a_runtime_the_data_does_not_hold():
    """Issue #10: exp-gpt-prev-char-head said "约 80 秒" where its data says 65.9 s."""
    card = next(c for c in CARDS_LIST if c.id == "exp-gpt-prev-char-head")
    data = json.loads((DATA / "gpt_attention.json").read_text("utf-8"))
    assert data["wall_time_s"] == 65.9
    text = card_text(card)
    assert problems(text, ["gpt_attention"]) == []
    assert "80秒" in problems(text + "\n2 核 CPU 单线程约 80 秒。", ["gpt_attention"])
    assert "65.9秒" not in problems(text + "\n2 核 CPU 单线程 65.9 秒。", ["gpt_attention"])
    # a timing matches timings only: 1500 is a step count in this data, not seconds
    assert "1500秒" in problems("1500 秒", ["gpt_attention"])
    assert problems("1500 步", ["gpt_attention"]) == []


def test_postln_ratio_range_is_the_data_range():
    """Issue #10: the card said 1.9–2.3 倍; the data's Post-LN / Pre-LN ratios run from 1.86 to 2.40."""
    data = json.loads((DATA / "gpt_warmup.json").read_text("utf-8"))
    ratios = _ratios(data["init_grad_norm"]["post_ln"], data["init_grad_norm"]["pre_ln"])
    card = next(c for c in CARDS_LIST if c.id == "exp-postln-grad-init")
    assert f"{min(ratios):.2f}–{max(ratios):.2f}" in card_text(card)


def test_checker_reads_units_ranges_and_precision():
    assert stated_numbers("CV 平均 **0.34**，最忙 16–21%，×9.3") == [
        ("plain", "0.34", ""), ("plain", "16", "%"), ("plain", "21", "%"), ("plain", "9.3", "")]
    assert stated_numbers(r"激活 \(1.2\times10^{21}\)，差 \(10^{-6}\)，\(\sqrt{256/2}\)") == [
        ("sci", "1.2e21", ""), ("pow", "-6", "")]
    assert stated_numbers('GPT-2、L1 H3、fp16、第 2–5 层、Xiong et al. 2020、`lr=3e-3`、"9"') == []
    assert problems("1.86–2.40 倍", ["gpt_warmup"]) == []
    assert problems("2.5 倍", ["gpt_warmup"]) == ["2.5"]
    assert problems("8 MiB、0.5 GiB、64 MiB、4k", ["attention_cost"]) == []
    assert problems("0.978", ["distillation"]) == ["0.978"]
