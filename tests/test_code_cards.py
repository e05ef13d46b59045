"""Run every code card's snippet and check it against its reference (tests/code_checks/*.py)."""
from __future__ import annotations

import importlib
import pkgutil
import warnings

import numpy as np
import pytest

import tests.code_checks as code_checks
from ankideck import Problems, load_config
from ankideck.cloze import DELETION_RE
from ankideck.config import load_deck_info
from ankideck.fences import FENCE_OPEN_RE, closes
from ankideck.sources import load_sources
from tests.conftest import ROOT

for module in pkgutil.iter_modules(code_checks.__path__):
    importlib.import_module(f"{code_checks.__name__}.{module.name}")


def python_blocks(text: str) -> list[str]:
    """The bodies of a text's ```python fences (not ```python norun), by the engine's own fence grammar."""
    blocks, lines, index = [], text.split("\n"), 0
    while index < len(lines):
        opened = FENCE_OPEN_RE.match(lines[index])
        index += 1
        if not opened:
            continue
        body = []
        while index < len(lines) and not closes(lines[index], opened.group("fence")):
            body.append(lines[index])
            index += 1
        index += 1
        info = opened.group("info").split()
        if info[:1] == ["python"] and "norun" not in info:
            blocks.append("\n".join(body) + "\n")
    return blocks


def snippets() -> dict[str, str]:
    """card id -> the card's runnable Python (its ```python fences in order, cloze markers removed)."""
    config = load_config(ROOT)
    problems = Problems()
    cards = load_sources(config, load_deck_info(config, problems), problems)
    assert not problems, list(problems)
    found = {}
    for card in cards:
        blocks = [code for section in card.sections.values() for code in python_blocks(section.text)]
        if blocks:
            found[card.id] = DELETION_RE.sub(lambda m: m.group(2), "\n\n".join(blocks))
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
