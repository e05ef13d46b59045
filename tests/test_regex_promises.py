"""regex_promises: the strings a regex cannot match without (and the inline processor that skips patterns by them),
and the characters its matches can start with (what the dispatching lexer tries rules by)."""
from __future__ import annotations

import random
import re

import pytest

from ankideck.regex_promises import first_characters, needed_literals


@pytest.mark.parametrize("pattern, expected", [
    (r"\*|_", ("*", "_")),
    (r"  \n", ("  \n",)),                         # a run of literals is one string, rarer than its characters
    (r"(?<!\\)\$\$(.+?)(?<!\\)\$\$", ("$$",)),     # negative lookbehinds promise nothing, and cost nothing
    (r"\!\[", ("![",)),
    (r"ab(?=c)", ("ab",)),
    (r"x(?=`+)", ("x",)),
    (r"[`~]{3,}", ("`", "~")),
    (r"(?:\$|\\\()", ("$", "\\(")),
    (r"a|ab", ("a",)),                            # "ab" contains "a": it adds nothing
    (r"(?:\\{2})+(?=`)|`", ("\\\\", "`")),         # a repeated string: all its copies (two backslashes)
    (r"x(?:ab){3,}", ("ababab",)), (r"a{100}", ("a" * 8,)),
    # No promise: these can match without any particular literal.
    (r"\w+", None), (r"x*", None), (r"[^a]", None), (r"a|\d", None), (r".", None),
    (r"(?i)abc", None), (r"(?i:a)", None), (r"[a-z]", None), (r"[abcdefghij]", None),
])
def test_known_patterns(pattern, expected):
    assert needed_literals(pattern) == expected


def _markdown_patterns() -> list[re.Pattern]:
    from ankideck.render import Renderer

    return [pattern.getCompiledRegExp() for pattern in Renderer().md.inlinePatterns]


def test_every_inline_pattern_of_the_renderer_gets_a_promise():
    """Each of the renderer's inline patterns can be skipped for a plain text (else the prefilter does nothing)."""
    patterns = _markdown_patterns()
    assert len(patterns) >= 15
    assert all(needed_literals(pattern) for pattern in patterns)
    assert not any(pattern.search("中文 plain text, 1 + 2 = 3.\n") for pattern in patterns)


def test_no_text_without_the_literals_is_matched():
    """Soundness, by brute force: random texts over the characters the patterns care about; every text a pattern
    finds a match in contains one of its literals (and the texts do match often enough to tell)."""
    patterns = _markdown_patterns() + [re.compile(p) for p in (r"(a|b)c+", r"x(?=yz)|w", r"(?:ab){2}")]
    rng = random.Random(15)
    alphabet = list("*_`$\\[]()!<>&:/@#;  \n\tabcxyzw09中") + ["http://", "&amp;", "  \n", "$$", "![", "\\("]
    matched = 0
    for _ in range(20_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        for pattern in patterns:
            literals = needed_literals(pattern)
            if pattern.search(text):
                matched += 1
                assert literals is None or any(literal in text for literal in literals), (pattern.pattern, text)
    assert matched > 20_000


# --- first_characters ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("pattern, starts, does_not_start", [
    (r"\d+|x", "0x٣", "ay "),                      # \d is Unicode's, as in the pattern ("٣": an Arabic-Indic 3)
    (r"(?a:\d)", "7", "٣a"),
    (r"(?<!\.)abs\b", "a", "b."),                  # a lookbehind matches no character
    (r"(?=y)\w", "yz_中", " -"),                    # nor does a lookahead (its promise is not needed)
    (r"\s*#", " \t\n#", "a"),                       # an optional part lets the next one's characters through
    (r"[^a-c]", "dZ\n", "abc"),
    (r"[\]\\\-]", "]\\-", "a"),
    (r".", "a ", "\n"), (r"(?s).", "a\n", ""), (r"(?s:x).", "x", "\n"),
    (r"(?:ab|c+)d", "ac", "bd"), (r"(?>a|b)", "ab", "c"), (r"a*+b", "ab", "c"), (r"^\bx", "x", "y"),
])
def test_first_characters_known_patterns(pattern, starts, does_not_start):
    test = first_characters(pattern)
    assert test is not None
    assert all(test.fullmatch(character) for character in starts), pattern
    assert not any(test.fullmatch(character) for character in does_not_start), pattern


@pytest.mark.parametrize("pattern", [
    r"x*", r"a|", r"(?:)", r"\b", r"(?=a)", r"(a?)",                     # can match the empty string
    r"(?i)k", r"(?i:k)x", r"(?i)[a-z]", r"(a)?\1b", r"(a)?(?(1)b|c)",  # case folding, references: no promise
])
def test_first_characters_without_a_promise(pattern):
    assert first_characters(pattern) is None


def _random_regex(rng: random.Random, depth: int = 0) -> str:
    """A random regex over a few characters, with every construct first_characters reads (and some it refuses)."""
    atoms = ["a", "b", "K", "\\n", " ", "é", "\\.", ".", "[ab]", "[^a\\n]", "[a-c]", "\\d", "\\w", "\\s", "\\W",
             "^", "$", "\\b", "\\B", "\\A", "\\Z"]
    if depth > 2 or rng.random() < 0.4:
        return rng.choice(atoms)
    body = "".join(_random_regex(rng, depth + 1) for _ in range(rng.randint(1, 3)))
    wrap = rng.choice(["(?:%s)", "(%s)", "(?>%s)", "(?=%s)", "(?!%s)", "(?<=a)%s", "(?<!b)%s", "(?s:%s)",
                       "(?i:%s)", "(?a:%s)", "%s|" + _random_regex(rng, depth + 1), "(?:%s)*", "(?:%s)+",
                       "(?:%s)?", "(?:%s){0,2}", "(?:%s){1,3}?", "(?:%s)*+", "(%s)\\1", "(%s)?(?(1)a|b)",
                       "(?:%s){2}", "(?:%s){2,}", "a{2,3}%s"])
    return wrap % body


def _promising(rng: random.Random, promise, count: int = 3_000) -> list[tuple]:
    """(source, compiled pattern, its promise) for each of ``count`` random regexes that compiles (with random
    flags) and gets a promise (not None) from ``promise``."""
    cases = []
    for _ in range(count):
        source = _random_regex(rng)
        try:
            pattern = re.compile(source, rng.choice([0, re.M, re.S]))
        except re.error:
            continue
        if (answer := promise(pattern)) is not None:
            cases.append((source, pattern, answer))
    return cases


def _random_texts(rng: random.Random, alphabet: list[str], count: int, longest: int) -> list[str]:
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, longest))) for _ in range(count)]


def test_no_random_regex_matches_without_its_literals():
    """Soundness of needed_literals, by brute force: 3,000 random regexes over random texts; wherever one finds a
    match, the text holds one of its literals (when it promises any), and promises are made often enough to tell."""
    rng = random.Random(16)
    alphabet = ["a", "b", "K", "k", "\n", " ", "é", ".", "1", "_", "aa", "ab", "\u212a"]
    cases, checked = _promising(rng, needed_literals), 0
    for source, pattern, literals in cases:
        for text in _random_texts(rng, alphabet, count=20, longest=10):
            if pattern.search(text):
                checked += 1
                assert any(literal in text for literal in literals), (source, text, literals)
    assert len(cases) > 1_000 and checked > 3_000


def test_no_match_starts_with_a_character_outside_first_characters():
    """Soundness, by brute force: 3,000 random regexes, each tried at every position of random texts; wherever one
    matches, the match is not empty and its first character passes the test (when the test promises anything),
    and promises are made often enough to tell."""
    rng = random.Random(15)
    alphabet = list("abKk\n é.ab1_\u212a\u017f")  # the Kelvin sign and long s fold onto "k" and "s"
    cases, checked = _promising(rng, first_characters), 0
    for source, pattern, test in cases:
        for text in _random_texts(rng, alphabet, count=10, longest=8):
            for position in range(len(text) + 1):
                match = pattern.match(text, position)
                if match:
                    checked += 1
                    assert match.end() > position and test.fullmatch(text[position]), (source, text, position)
    assert len(cases) > 1_000 and checked > 5_000
