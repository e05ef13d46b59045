"""What a regular expression promises about the texts it matches: cheap tests that skip costly matching.

- ``needed_literals(pattern)``: strings such that the pattern can find a match in a text only if the text contains
  at least one of them (``r"\\*|_"`` needs ``("*", "_")``, ``r"  \\n"`` needs ``("  \\n",)``), or None where no
  such promise can be made (``r"\\w+"``);
- ``first_characters(pattern)``: a compiled test of one character, which every match the pattern makes starts with
  (``r"\\d+|x"``: a digit or "x"), or None where a match may start with anything or be empty.

Both read the pattern the way ``re`` compiles it (``re._parser``, the standard library's own parser); anything they
do not understand, and any case-insensitive part, gives None, never a wrong answer: None only means "always try".
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
MAX_REPEATS = 8  # "a{1000}" needs "aaaaaaaa": enough to be rare

Needs = frozenset[str] | None


@lru_cache(maxsize=None)
def needed_literals(pattern: re.Pattern | str) -> tuple[str, ...] | None:
    """The strings one of which every text the pattern matches in must contain, or None (no promise)."""
    parsed = _parse(pattern)
    if parsed is None or parsed.state.flags & (re.IGNORECASE | re.VERBOSE):
        return None
    try:
        needs = _sequence(list(parsed))
    except Exception:  # noqa: BLE001 - a shape of the parse tree this does not expect: no promise
        return None
    if needs is None:
        return None
    # A string that contains another adds nothing: ("$", "\\", "\\(") is ("$", "\\").
    return tuple(sorted(text for text in needs if not any(other != text and other in text for other in needs)))


def _parse(pattern: re.Pattern | str):
    """``pattern`` as ``re``'s parser reads it, or None: no parser (another Python), bytes, or a pattern it refuses."""
    if _parser is None:
        return None
    source, flags = (pattern.pattern, pattern.flags) if isinstance(pattern, re.Pattern) else (pattern, 0)
    if not isinstance(source, str):
        return None
    try:
        return _parser.parse(source, flags)
    except Exception:  # noqa: BLE001 - a pattern this cannot read (or internals that changed): no promise
        return None


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
        if low < 1:
            return None
        body = list(body)
        if all(item_op is _c.LITERAL for item_op, _ in body):  # a string repeated: it occurs ``low`` times over
            return frozenset(["".join(chr(code) for _, code in body) * min(low, MAX_REPEATS)])
        return _sequence(body)
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


# --- the characters a match starts with -----------------------------------------------------------------------------

class _NoPromise(Exception):
    """A construct whose first characters are not worth working out (or cannot be): the answer is None."""


@lru_cache(maxsize=None)
def first_characters(pattern: re.Pattern | str) -> re.Pattern | None:
    """A pattern that fully matches each character a match of ``pattern`` can start with (and perhaps others),
    or None: no promise, or the pattern can match the empty string (then a match needs no character at all)."""
    parsed = _parse(pattern)
    if parsed is None:
        return None
    try:
        classes, can_be_empty = _starts(list(parsed), parsed.state.flags)
        if can_be_empty or not classes:
            return None
        return re.compile("|".join(sorted(set(classes))))
    except Exception:  # noqa: BLE001 - _NoPromise, or a shape of the parse tree this does not expect
        return None


def _starts(items: list, flags: int) -> tuple[list[str], bool]:
    """(character classes, one of which the first character matched by ``items`` is in; whether they can match
    the empty string). Items that match nothing (anchors, lookarounds) let the next item's characters through."""
    classes: list[str] = []
    for op, argument in items:
        item_classes, can_be_empty = _item_starts(op, argument, flags)
        classes.extend(item_classes)
        if not can_be_empty:
            return classes, False
    return classes, True


def _item_starts(op, argument, flags: int) -> tuple[list[str], bool]:
    if op in (_c.LITERAL, _c.NOT_LITERAL, _c.ANY, _c.IN):
        if flags & re.IGNORECASE:
            raise _NoPromise  # case folding pairs characters in ways not worth repeating here ("K" and the Kelvin sign)
        scope = "(?a:%s)" if flags & re.ASCII else "(?u:%s)"
        if op is _c.LITERAL:
            return [re.escape(chr(argument))], False
        if op is _c.NOT_LITERAL:
            return [f"[^{re.escape(chr(argument))}]"], False
        if op is _c.ANY:
            return ["(?s:.)" if flags & re.DOTALL else "[^\\n]"], False
        return [scope % _char_class_source(argument)], False
    if op in (_c.AT, _c.ASSERT, _c.ASSERT_NOT):  # an anchor or a lookaround: it matches no character
        return [], True
    if op is _c.SUBPATTERN:
        _group, add_flags, del_flags, body = argument
        return _starts(list(body), (flags | add_flags) & ~del_flags)
    if op is _c.ATOMIC_GROUP:
        return _starts(list(argument), flags)
    if op in (_c.MAX_REPEAT, _c.MIN_REPEAT, getattr(_c, "POSSESSIVE_REPEAT", None)):
        low, _high, body = argument
        classes, can_be_empty = _starts(list(body), flags)
        return classes, can_be_empty or low == 0
    if op is _c.BRANCH:
        classes, can_be_empty = [], False
        for alternative in argument[1]:
            alternative_classes, alternative_empty = _starts(list(alternative), flags)
            classes.extend(alternative_classes)
            can_be_empty = can_be_empty or alternative_empty
        return classes, can_be_empty
    raise _NoPromise  # a back reference, a conditional group...: it may match anything, or nothing


_CATEGORIES = {_c.CATEGORY_DIGIT: r"\d", _c.CATEGORY_NOT_DIGIT: r"\D", _c.CATEGORY_SPACE: r"\s",
               _c.CATEGORY_NOT_SPACE: r"\S", _c.CATEGORY_WORD: r"\w", _c.CATEGORY_NOT_WORD: r"\W"} if _c else {}


def _char_class_source(entries) -> str:
    """A character class as ``re`` reads it, written back as a regex."""
    negate, parts = "", []
    for op, argument in entries:
        if op is _c.NEGATE:
            negate = "^"
        elif op is _c.LITERAL:
            parts.append(re.escape(chr(argument)))
        elif op is _c.RANGE:
            low, high = argument
            parts.append(f"{re.escape(chr(low))}-{re.escape(chr(high))}")
        elif op is _c.CATEGORY:
            parts.append(_CATEGORIES[argument])
        else:
            raise _NoPromise
    return f"[{negate}{''.join(parts)}]"
