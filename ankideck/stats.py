"""``build.py stats``: cards per deck and tag, and which guide questions have cards (no rendering, nothing written)."""
from __future__ import annotations

from collections import Counter

from .config import Config, load_deck_info
from .errors import Problems
from .sources import load_sources


def stats(config: Config) -> dict:
    """Cards per deck and tag, and which guide questions have cards (no rendering, nothing written)."""
    problems = Problems()
    info = load_deck_info(config, problems)
    problems.raise_if_any()
    cards = load_sources(config, info, problems)
    problems.raise_if_any()
    coverage = {qid: [c.id for c in cards if c.guide == qid] for qid in info.guide}

    def count(groups: Counter, key_cards) -> dict:
        return {key: {"notes": groups[key], "cards": key_cards[key]} for key in sorted(groups)}

    decks, deck_cards, tags, tag_cards = Counter(), Counter(), Counter(), Counter()
    for card in cards:
        decks[card.deck] += 1
        deck_cards[card.deck] += card.card_count
        for tag in card.tags:
            tags[tag] += 1
            tag_cards[tag] += card.card_count
    return {
        "notes": len(cards),
        "cards": sum(card.card_count for card in cards),
        "decks": count(decks, deck_cards),
        "tags": count(tags, tag_cards),
        "guide": {qid: {"question": info.guide[qid], "cards": ids} for qid, ids in coverage.items()},
    }
