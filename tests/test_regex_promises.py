"""needed_literals: the strings a regex cannot match without, and the inline processor that skips patterns by them."""
from __future__ import annotations

import random
import re

import pytest

from ankideck.regex_promises import needed_literals


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


def test_the_prefiltered_inline_processor_renders_every_real_section_as_the_stock_one():
    """The same HTML as Python-Markdown's own inline processor, for every section of the real deck (math, code,
    clozes, links, emphasis, HTML) and two texts of corner cases."""
    from markdown.treeprocessors import InlineProcessor

    from ankideck.render import PrefilteredInlineTreeprocessor, Renderer
    from tests.conftest import real_sections

    ours, stock = Renderer(), Renderer()
    assert isinstance(ours.md.treeprocessors["inline"], PrefilteredInlineTreeprocessor)
    stock.md.treeprocessors.register(InlineProcessor(stock.md), "inline", 20)
    texts = [("a **b** `c` [l](https://x.org) <b>q</b> &amp; d  \ne \\*f\\* ![i](fig:x) *$x$* _y_ <https://a.b>"
              " <a@b.c> $$z$$ \\(w\\)", False), ("{{c1::**x**}} and {{c2::$a_1$}}", True)]
    texts.extend(real_sections())
    assert len(texts) > 2000
    different = [text for text, cloze in texts if ours.render(text, cloze) != stock.render(text, cloze)]
    assert different == [], different[:3]
