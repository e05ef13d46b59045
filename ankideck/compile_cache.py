"""The compile cache: each card file's parsed cards, problems and sanitised HTML, stored as JSON.

JSON, not pickle: loading a cache file must never run code, whoever wrote it (a shared folder, a committed
``.cache/``). Anything in it of the wrong shape makes the whole cache count as empty: it is only a slower build.

Entries are keyed by a hash of the engine (``engine_version``: the source of this package and the versions of the
libraries that shape the HTML) and of the file's path, default deck and bytes, so an edit to the engine, like an
edit to a card, is never answered from the cache.
"""
from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path

from .errors import Problem
from .parse import Card, Section
from .render import Rendered

CACHE_FILE = "compiled.json"
FORMAT = 1


@lru_cache(maxsize=None)
def engine_version() -> str:
    from .render import renderer_version
    from .sanitize import nh3_version

    digest = hashlib.sha256()
    for path in sorted(Path(__file__).resolve().parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return f"{renderer_version()};nh3={nh3_version()};engine={digest.hexdigest()[:20]}"


def _card(raw) -> Card:
    id_, kind, path, line, deck, tags, guide, sections = raw
    card = Card(_str(id_), _str(kind), _str(path), _int(line), _str(deck), tuple(_str(t) for t in _list(tags)),
                None if guide is None else _str(guide))
    card.sections = {_str(name): Section(_str(text), _int(at)) for name, (text, at) in _dict(sections).items()}
    return card


def _rendered(raw) -> Rendered:
    html, refs, problems = raw
    return Rendered(_str(html), [_str(r) for r in _list(refs)], [(_str(n), _str(m)) for n, m in _list(problems)])


def _entry(raw) -> tuple[list[Card], list[Problem], list[dict]]:
    cards = [_card(c) for c in _list(raw["cards"])]
    problems = [Problem(_str(p), _int(l), _str(m)) for p, l, m in _list(raw["problems"])]
    rendered = [{_str(k): _rendered(v) for k, v in _dict(sections).items()} for sections in _list(raw["rendered"])]
    if len(rendered) != len(cards) or any(set(r) - set(c.sections) for c, r in zip(cards, rendered)):
        raise ValueError("rendered sections do not match the cards")
    return cards, problems, rendered


def _str(v) -> str:
    if type(v) is not str:
        raise TypeError
    return v


def _int(v) -> int:
    if type(v) is not int:
        raise TypeError
    return v


def _list(v) -> list:
    if type(v) is not list:
        raise TypeError
    return v


def _dict(v) -> dict:
    if type(v) is not dict:
        raise TypeError
    return v


def load(path: Path) -> dict:
    """file key -> (cards, problems, [{section: Rendered}]); empty when missing, unreadable or of the wrong shape."""
    try:
        data = json.loads(path.read_bytes())
        if data.get("format") != FORMAT or data.get("engine") != engine_version():
            return {}
        return {_str(key): _entry(entry) for key, entry in _dict(data["entries"]).items()}
    except Exception:  # noqa: BLE001 - any damage to a cache is only a slower build
        return {}


def dumps(cache: dict) -> bytes:
    entries = {}
    for key, (cards, problems, rendered) in cache.items():
        entries[key] = {
            "cards": [[c.id, c.kind, c.path, c.line, c.deck, list(c.tags), c.guide,
                       {name: [s.text, s.line] for name, s in c.sections.items()}] for c in cards],
            "problems": [[p.path, p.line, p.message] for p in problems],
            "rendered": [{name: [r.html, r.refs, [list(p) for p in r.problems]] for name, r in sections.items()}
                         for sections in rendered],
        }
    return json.dumps({"format": FORMAT, "engine": engine_version(), "entries": entries},
                      ensure_ascii=False, separators=(",", ":")).encode("utf-8")
