"""The literal strings without which a regular expression cannot match: a cheap test that skips a costly search.

``needed_literals(pattern)`` returns a tuple of strings such that the pattern can find a match in a text only if the
text contains at least one of them (``r"\\*|_"`` needs ``("*", "_")``, ``r"  \\n"`` needs ``("  \\n",)``), or None
where no such promise can be made (``r"\\w+"``, or a construct this does not know). It reads the pattern the way
``re`` compiles it (``re._parser``, the standard library's own parser); anything it does not understand, and any
case-insensitive part, gives None, never a wrong answer: None only means "always search".
"""
from __future__ import annotations

import re
from functools import lru_cache

try:
    from re import _constants as _c
    from re import _parser
except ImportError:  # another Python's internals: no promises, every search runs
    _parser = _c = None

MAX_CHOICES = 8  # a character class or alternation of more choices than this is not worth checking for

Needs = frozenset[str] | None


@lru_cache(maxsize=None)
def needed_literals(pattern: re.Pattern | str) -> tuple[str, ...] | None:
    """The strings one of which every text the pattern matches in must contain, or None (no promise)."""
    if _parser is None:
        return None
    source, flags = (pattern.pattern, pattern.flags) if isinstance(pattern, re.Pattern) else (pattern, 0)
    if not isinstance(source, str):
        return None
    try:
        parsed = _parser.parse(source, flags)
    except Exception:  # noqa: BLE001 - a pattern this cannot read (or internals that changed): no promise
        return None
    if parsed.state.flags & (re.IGNORECASE | re.VERBOSE):
        return None
    try:
        needs = _sequence(list(parsed))
    except Exception:  # noqa: BLE001 - a shape of the parse tree this does not expect: no promise
        return None
    if needs is None:
        return None
    # A string that contains another adds nothing: ("$", "\\", "\\(") is ("$", "\\").
    return tuple(sorted(text for text in needs if not any(other != text and other in text for other in needs)))


def _sequence(items: list) -> Needs:
    """What a sequence of items needs: any one item's needs will do, so the most selective. Consecutive literal
    characters count as one string (``"  \\n"`` is rarer than either of its characters)."""
    candidates: list[frozenset[str]] = []
    run: list[str] = []
    for op, argument in items:
        if op is _c.LITERAL:
            run.append(chr(argument))
            continue
        if run:
            candidates.append(frozenset(["".join(run)]))
            run = []
        needs = _item(op, argument)
        if needs is not None:
            candidates.append(needs)
    if run:
        candidates.append(frozenset(["".join(run)]))
    if not candidates:
        return None
    # Fewest choices first, then the longest shortest string: the test most texts fail.
    return min(candidates, key=lambda needs: (len(needs), -min(map(len, needs))))


def _item(op, argument) -> Needs:
    if op is _c.IN:
        return _char_class(argument)
    if op is _c.SUBPATTERN:
        _group, add_flags, _del_flags, body = argument
        return None if add_flags & re.IGNORECASE else _sequence(list(body))
    if op is _c.ATOMIC_GROUP:
        return _sequence(list(argument))
    if op in (_c.MAX_REPEAT, _c.MIN_REPEAT, getattr(_c, "POSSESSIVE_REPEAT", None)):
        low, _high, body = argument
        return _sequence(list(body)) if low >= 1 else None
    if op is _c.BRANCH:
        _, alternatives = argument
        union: set[str] = set()
        for alternative in alternatives:
            needs = _sequence(list(alternative))
            if needs is None:
                return None
            union |= needs
        return frozenset(union) if len(union) <= MAX_CHOICES else None
    if op is _c.ASSERT:  # a lookahead or lookbehind: what it looks at must be in the text too
        _direction, body = argument
        return _sequence(list(body))
    return None  # ANY, NOT_LITERAL, AT, ASSERT_NOT, CATEGORY, GROUPREF...: no literal promised


def _char_class(entries) -> Needs:
    chars = set()
    for op, argument in entries:
        if op is not _c.LITERAL:  # NEGATE, RANGE, CATEGORY...: too many characters to list
            return None
        chars.add(chr(argument))
    return frozenset(chars) if len(chars) <= MAX_CHOICES else None
