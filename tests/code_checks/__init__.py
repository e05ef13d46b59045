"""Reference checks for the deck's code cards.

Every ```python fence in a card is a snippet that a candidate may write by hand in an interview. The modules in
this package register one check per card id with ``@check("card-id")``; the check receives the namespace the
card's snippets were executed in and compares what they compute against a reference (a library function, brute
force or finite differences). ``tests/test_code_cards.py`` runs them all and fails for a snippet without a check.
"""
from __future__ import annotations

from typing import Callable

CHECKS: dict[str, Callable[[dict], None]] = {}


def check(card_id: str):
    def register(fn: Callable[[dict], None]):
        if card_id in CHECKS:
            raise ValueError(f"two checks for code card {card_id!r}")
        CHECKS[card_id] = fn
        return fn
    return register
