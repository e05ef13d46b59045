"""Pygments' regex lexers, trying at each position only the rules whose match can start with the character there.

A ``RegexLexer`` tries its current state's rules in order at each position until one matches: for Python, about 38
regexes per token, nearly all of which fail on the first character. ``dispatching(lexer)`` gives the lexer a
tokenizer that first asks, once per state and character, which rules can start with that character
(``first_characters``) and tries only those, in their order. A rule it cannot judge is always tried, so the first
rule that matches is the one the stock loop finds, and the tokens are the same (tests/test_lexing.py compares them
for many languages). It makes lexing about three times faster, a quarter of compiling a card with code.

The loop is the stock ``RegexLexer.get_tokens_unprocessed``'s (pygments 2.x), with the choice of rules added.
Lexers with their own loop (``ExtendedRegexLexer``, delegating lexers, plain text) are left as they are.
"""
from __future__ import annotations

import collections
import re
from types import MethodType

from pygments.lexer import RegexLexer
from pygments.token import Error, Whitespace, _TokenType

from .regex_promises import first_characters


def dispatching(lexer):
    """``lexer``, tokenizing with the rules that can start with the next character (the lexer itself, changed)."""
    if type(lexer).get_tokens_unprocessed is RegexLexer.get_tokens_unprocessed:
        lexer.get_tokens_unprocessed = MethodType(_tokens, lexer)
        # state -> {character -> the rules that can match there}; "" stands for the end of the text.
        lexer.rules_by_character = collections.defaultdict(dict)
    return lexer


def _rules(lexer, state: str, character: str) -> tuple:
    """The rules of ``state`` that can match at a position holding ``character``, in their order (remembered)."""
    by_character = lexer.rules_by_character[state]
    rules = by_character.get(character)
    if rules is None:
        rules = by_character[character] = tuple(
            rule for rule in lexer._tokens[state]
            if (test := _start_test(rule[0])) is None or (character and test.fullmatch(character)))
    return rules


def _start_test(rexmatch):
    """The first-character test of a rule's regex (``rexmatch``: its compiled pattern's ``match``), or None."""
    pattern = getattr(rexmatch, "__self__", None)
    return first_characters(pattern) if isinstance(pattern, re.Pattern) else None


def _tokens(self, text: str, stack=("root",)):
    pos = 0
    statestack = list(stack)
    state = statestack[-1]
    rules_by_character = self.rules_by_character
    state_rules = rules_by_character[state]
    end = len(text)
    while 1:
        character = text[pos] if pos < end else ""
        rules = state_rules.get(character)
        if rules is None:
            rules = _rules(self, state, character)
        for rexmatch, action, new_state in rules:
            m = rexmatch(text, pos)
            if m:
                if action is not None:
                    if type(action) is _TokenType:
                        yield pos, action, m.group()
                    else:
                        yield from action(self, m)
                pos = m.end()
                if new_state is not None:
                    # state transition
                    if isinstance(new_state, tuple):
                        for next_state in new_state:
                            if next_state == "#pop":
                                if len(statestack) > 1:
                                    statestack.pop()
                            elif next_state == "#push":
                                statestack.append(statestack[-1])
                            else:
                                statestack.append(next_state)
                    elif isinstance(new_state, int):
                        # pop, but keep at least one state on the stack
                        if abs(new_state) >= len(statestack):
                            del statestack[1:]
                        else:
                            del statestack[new_state:]
                    elif new_state == "#push":
                        statestack.append(statestack[-1])
                    else:
                        raise AssertionError(f"wrong state def: {new_state!r}")
                    state = statestack[-1]
                    state_rules = rules_by_character[state]
                break
        else:
            # No rule matched.
            try:
                if text[pos] == "\n":
                    # at EOL, reset state to "root"
                    statestack = ["root"]
                    state = "root"
                    state_rules = rules_by_character[state]
                    yield pos, Whitespace, "\n"
                    pos += 1
                    continue
                yield pos, Error, text[pos]
                pos += 1
            except IndexError:
                break
