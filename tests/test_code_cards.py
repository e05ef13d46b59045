"""Run every code card's snippet and check it against its reference (tests/code_checks/*.py)."""
from __future__ import annotations

import importlib
import pkgutil
import re
import warnings

import numpy as np
import pytest

import tests.code_checks as code_checks
from ankideck.builder import load_cards
from ankideck.config import load_config, load_deck_info
from ankideck.render import CLOZE_RE
from tests.conftest import ROOT

FENCE_RE = re.compile(r"^(`{3,}|~{3,})[ \t]*python([^\n]*)\n(.*?)^\1[ \t]*$", re.M | re.S)

for module in pkgutil.iter_modules(code_checks.__path__):
    importlib.import_module(f"{code_checks.__name__}.{module.name}")


def snippets() -> dict[str, str]:
    """card id -> the card's runnable Python (its ```python fences in order, cloze markers removed)."""
    config = load_config(ROOT)
    cards, problems = load_cards(config, load_deck_info(config))
    assert not problems, problems
    found = {}
    for card in cards:
        blocks = [code for section in card.sections.values() for _, info, code in FENCE_RE.findall(section.text)
                  if "norun" not in info.split()]
        if blocks:
            found[card.id] = CLOZE_RE.sub(lambda m: m.group(2), "\n\n".join(blocks))
    return found


SNIPPETS = snippets()


def test_the_deck_has_code_cards():
    assert len(SNIPPETS) >= 20


def test_every_check_belongs_to_a_code_card():
    assert sorted(set(code_checks.CHECKS) - set(SNIPPETS)) == []


@pytest.mark.parametrize("card_id", sorted(SNIPPETS))
def test_code_card(card_id):
    assert card_id in code_checks.CHECKS, f"code card '{card_id}' has no check in tests/code_checks/"
    namespace: dict = {"__name__": f"card_{card_id.replace('-', '_')}"}
    np.random.seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # overflow or divide-by-zero in a card's code is a bug in the card
        exec(compile(SNIPPETS[card_id], f"<card {card_id}>", "exec"), namespace)
        code_checks.CHECKS[card_id](namespace)
