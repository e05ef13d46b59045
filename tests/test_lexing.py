"""The dispatching lexer: the same tokens as pygments' own loop, for every regex lexer pygments has."""
from __future__ import annotations

import random
from functools import lru_cache

from pygments.lexer import RegexLexer
from pygments.lexers import get_all_lexers, get_lexer_by_name

from ankideck import highlight, lexing
from tests.conftest import ROOT


def _stock(alias: str):
    return get_lexer_by_name(alias, stripnl=False, ensurenl=False)


def _tokens(lexer, text: str):
    try:
        return list(lexer.get_tokens_unprocessed(text))
    except Exception as error:  # noqa: BLE001 - a lexer that fails on a text must fail the same way
        return repr(error)


def _regex_lexer_aliases() -> list[str]:
    aliases = []
    for _name, names, _files, _types in get_all_lexers():
        if names and type(_stock(names[0])).get_tokens_unprocessed is RegexLexer.get_tokens_unprocessed:
            aliases.append(names[0])
    return aliases


def test_every_regex_lexer_gives_the_stock_tokens():
    """Every pygments lexer that uses RegexLexer's loop (400 or so), on code, prose and random text full of the
    characters that open strings, comments and blocks: the same tokens (or the same error) as the stock loop."""
    rng = random.Random(15)
    characters = list("abcxyz01(){}[]<>\"'#/*-+=;:,.\\$@%&|!?`~ \n\t中")
    texts = [(ROOT / "ankideck" / "render.py").read_text("utf-8")[:1000],
             (ROOT / "README.md").read_text("utf-8")[:600],
             *("".join(rng.choice(characters) for _ in range(150)) for _ in range(2))]
    aliases = _regex_lexer_aliases()
    assert len(aliases) > 300
    different = [alias for alias in aliases
                 if any(_tokens(_stock(alias), text) != _tokens(lexing.dispatching(_stock(alias)), text)
                        for text in texts)]
    assert different == []


def test_every_section_of_the_deck_renders_as_with_the_stock_lexers(monkeypatch):
    """The real deck's code (and everything around it) renders to the same HTML with pygments' own loop."""
    from ankideck.render import Renderer
    from tests.conftest import real_sections

    sections = real_sections()
    assert sum("```" in text for text, _ in sections) > 50
    ours = [Renderer().render(text, cloze) for text, cloze in sections]
    monkeypatch.setattr(highlight, "_lexer", lru_cache(maxsize=None)(lambda language: _stock(language or "text")))
    assert highlight._lexer("python").get_tokens_unprocessed.__func__ is RegexLexer.get_tokens_unprocessed
    stock = [Renderer().render(text, cloze) for text, cloze in sections]
    assert [i for i, (a, b) in enumerate(zip(ours, stock)) if a != b] == []


def test_the_highlighter_lexes_with_the_dispatching_loop():
    assert highlight._lexer("python").get_tokens_unprocessed.__func__ is lexing._tokens
    assert highlight._lexer("bash").get_tokens_unprocessed.__func__ is lexing._tokens


def test_lexers_with_their_own_loop_are_left_alone():
    for alias in ("text", "pycon", "html+jinja"):  # plain text, a console lexer, a delegating lexer
        lexer = lexing.dispatching(_stock(alias))
        assert "get_tokens_unprocessed" not in vars(lexer)
        assert getattr(lexer.get_tokens_unprocessed, "__func__", None) is not lexing._tokens


def test_rules_are_chosen_by_character_and_remembered():
    """Only the rules that can start with a character are tried there, and the choice is made once per state."""
    lexer = lexing.dispatching(_stock("python"))
    list(lexer.get_tokens_unprocessed("x = 1  # c\n"))
    root = lexer.rules_by_character["root"]
    assert 0 < len(root["#"]) < len(lexer._tokens["root"]) / 3
    assert root["#"] is lexing._rules(lexer, "root", "#")
