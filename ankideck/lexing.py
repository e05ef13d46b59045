"""pygments' lexing, with each state's rules tried by one regular expression instead of one after another.

A pygments ``RegexLexer`` tries the rules of its current state in order at each position, one ``match`` call each:
about forty Python-level calls per token of Python code, most of a code block's cost. Here each state's rules are
joined into one alternation, ``(rule0)|(rule1)|...``, which the regex engine tries in the same order (the first
alternative that matches at a position wins, as the first rule that matches does), so a token costs one call.
``match.lastindex`` names the rule (its outer group closes last). Everything else is pygments' own loop: the actions
get the rule's own match (matched again, for its group numbers), and the state changes are the same.

The tokens are the same as pygments' (tests/test_render.py compares them on every code block of the deck and on
Python sources); a lexer or state this cannot join (backreferences, ASCII or locale flags, another lexing loop) is
left to pygments.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Iterator

from pygments.lexer import RegexLexer
from pygments.token import Error, Whitespace, _TokenType

# Rules whose meaning depends on their own group numbers, which the joined pattern shifts.
_GROUP_REFERENCE_RE = re.compile(r"\\[1-9]|\(\?P=|\(\?\(")
_LEADING_FLAGS_RE = re.compile(r"^\(\?[aiLmsux]+\)")
_SCOPED_FLAGS = ((re.IGNORECASE, "i"), (re.MULTILINE, "m"), (re.DOTALL, "s"), (re.VERBOSE, "x"))


def _scoped(pattern: re.Pattern) -> str | None:
    """``pattern`` as a group that carries its own flags (the rules of one state may differ in them)."""
    if pattern.flags & (re.ASCII | re.LOCALE) or _GROUP_REFERENCE_RE.search(pattern.pattern):
        return None
    on = "".join(letter for flag, letter in _SCOPED_FLAGS if pattern.flags & flag)
    off = "".join(letter for flag, letter in _SCOPED_FLAGS if not pattern.flags & flag)
    return f"(?{on}-{off}:{_LEADING_FLAGS_RE.sub('', pattern.pattern)})"


@lru_cache(maxsize=None)
def _joined_states(lexer) -> dict | None:
    """state -> (the joined pattern's match, {outer group number: the rule}); None where pygments must lex."""
    if type(lexer).get_tokens_unprocessed is not RegexLexer.get_tokens_unprocessed or lexer.filters:
        return None
    states = {}
    for name, rules in lexer._tokens.items():
        parts, rule_of_group, group = [], {}, 1
        for rule in rules:
            pattern = rule[0].__self__  # the rule's compiled pattern (pygments keeps its bound match)
            part = _scoped(pattern)
            if part is None:
                return None
            parts.append(f"({part})")
            rule_of_group[group] = rule
            group += pattern.groups + 1
        try:
            joined = re.compile("|".join(parts))
        except re.error:
            return None
        states[name] = (joined.match, rule_of_group)
    return states


def tokens(lexer, text: str) -> Iterator[tuple[_TokenType, str]]:
    """``lexer.get_tokens(text)``: the same (token type, value) pairs."""
    states = _joined_states(lexer)
    if states is None:
        yield from lexer.get_tokens(text)
        return
    text = lexer._preprocess_lexer_input(text)
    position, stack = 0, ["root"]
    match, rule_of_group = states["root"]
    while True:
        found = match(text, position)
        if found is None:  # pygments' recovery: a newline resets to root, anything else is one Error character
            if position >= len(text):
                return
            if text[position] == "\n":
                stack = ["root"]
                match, rule_of_group = states["root"]
                yield Whitespace, "\n"
            else:
                yield Error, text[position]
            position += 1
            continue
        rule_match, action, new_state = rule_of_group[found.lastindex]
        end = found.end()
        if action is not None:
            if type(action) is _TokenType:
                yield action, text[position:end]
            else:
                for _, token_type, value in action(lexer, rule_match(text, position)):
                    yield token_type, value
        position = end
        if new_state is not None:
            _change_state(stack, new_state)
            match, rule_of_group = states[stack[-1]]


def _change_state(stack: list[str], new_state) -> None:
    """pygments' state transition (RegexLexer.get_tokens_unprocessed), on ``stack`` in place."""
    if isinstance(new_state, tuple):
        for state in new_state:
            if state == "#pop":
                if len(stack) > 1:
                    stack.pop()
            elif state == "#push":
                stack.append(stack[-1])
            else:
                stack.append(state)
    elif isinstance(new_state, int):
        if abs(new_state) >= len(stack):
            del stack[1:]
        else:
            del stack[new_state:]
    elif new_state == "#push":
        stack.append(stack[-1])
    else:
        raise AssertionError(f"wrong state def: {new_state!r}")
