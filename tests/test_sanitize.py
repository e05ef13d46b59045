"""The field sanitiser: a table of hostile snippets, each reported and removed; the renderer's own HTML kept."""
from __future__ import annotations

import pytest

from ankideck.rendered import Rendered
from ankideck.sanitize import ALLOWED, PYGMENTS_CLASSES, sanitize

HOSTILE = [
    # snippet, message prefix, what must not survive
    ("<script>alert(1)</script>", "raw <script> is not allowed", "alert"),
    ("<SCRIPT SRC=//evil.example/x.js></SCRIPT>", "raw <script> is not allowed", "evil"),
    ("<img src=x onerror=alert(1)>", "HTML attribute 'onerror' on <img>", "onerror"),
    ("<svg onload=alert(1)><circle r=1></svg>", "HTML tag <svg>", "onload"),
    ("<svg><script>alert(1)</script></svg>", "HTML tag <svg>", "alert"),
    ('<iframe src="https://evil.example"></iframe>', "HTML tag <iframe>", "iframe"),
    ("<style>.card{display:none}</style>", "HTML tag <style>", "display"),
    ('<a href="javascript:alert(1)">x</a>', "link 'javascript:alert(1)'", "javascript"),
    ('<a href="JaVaScRiPt:alert(1)">x</a>', "link 'JaVaScRiPt:alert(1)'", "alert"),
    ('<a href="java&#9;script:alert(1)">x</a>', "link ", "alert"),
    ('<a href="data:text/html,<script>alert(1)</script>">x</a>', "link 'data:", "data:"),
    ('<a href="vbscript:msgbox(1)">x</a>', "link 'vbscript:", "vbscript"),
    ('<img src="https://evil.example/a.png">', "image 'https://evil.example/a.png' must be a file", "evil"),
    ('<img src="//evil.example/a.png">', "image '//evil.example/a.png' must be a file", "evil"),
    ('<object data="x.swf"></object>', "HTML tag <object>", "x.swf"),
    ('<embed src="x.swf">', "HTML tag <embed>", "x.swf"),
    ('<form action="https://evil.example"><input name=q></form>', "HTML tag <form>", "evil"),
    ('<meta http-equiv="refresh" content="0;url=https://evil.example">', "HTML tag <meta>", "evil"),
    ('<link rel=stylesheet href="https://evil.example/x.css">', "HTML tag <link>", "evil"),
    ('<base href="https://evil.example/">', "HTML tag <base>", "evil"),
    ('<p style="background:url(https://evil.example)">x</p>', "HTML attribute 'style' on <p>", "evil"),
    ('<span class="card nightMode">x</span>', 'HTML attribute class="card nightMode" on <span>', "nightMode"),
    ('<div onclick="alert(1)">x</div>', "HTML attribute 'onclick' on <div>", "alert"),
    ('<details open ontoggle=alert(1)>x</details>', "HTML tag <details>", "alert"),
    ('<math><mtext><img src=x onerror=alert(1)></mtext></math>', "HTML tag <math>", "onerror"),
]


@pytest.mark.parametrize("snippet, message, gone", HOSTILE)
def test_each_hostile_snippet_is_reported_and_removed(snippet, message, gone):
    result = sanitize(Rendered(f"<p>before</p>{snippet}<p>after</p>"))
    assert any(m.startswith(message) for _, m in result.problems), result.problems
    assert gone.lower() not in result.html.lower(), result.html
    assert "<p>before</p>" in result.html and "<p>after</p>" in result.html


KEPT = [
    "<p>Some <em>em</em>, <strong>strong</strong>, x<sup>2</sup>, H<sub>2</sub>O<br>next</p>",
    '<div class="codehilite"><pre><code class="language-python"><span class="k">def</span> '
    '<span class="nf">f</span><span class="p">():</span></code></pre></div>',
    '<div class="arithmatex">\\[\\sum_i a &lt; b\\]</div>',
    '<p><span class="arithmatex">\\(x\\)</span> and <span class="arithmatex display">\\[y\\]</span></p>',
    '<p><span class="figure"><img alt="a" class="fig-light" src="ankideck-media:0">'
    '<img alt="a" class="fig-dark" src="ankideck-media:1"></span></p>',
    '<table><thead><tr><th style="text-align: center;">a</th></tr></thead>'
    '<tbody><tr><td style="text-align: center;">1</td></tr></tbody></table>',
    "<h3>Heading</h3><ul><li>a</li></ul><ol start=\"3\"><li>b</li></ol><blockquote><p>q</p></blockquote><hr>",
    '<p><a href="https://arxiv.org/abs/1706.03762" title="paper">paper</a> <code>x</code></p>',
    "<p>{{c1::answer::hint}} and {{c2::<code>code</code>}}</p>",
]


@pytest.mark.parametrize("html", KEPT)
def test_what_the_renderer_produces_is_kept_unchanged(html):
    result = sanitize(Rendered(html, ["fig:a:light", "fig:a:dark"]))
    assert result.problems == []
    assert result.html == html


def test_an_html_image_becomes_a_media_reference():
    result = sanitize(Rendered('<p><img src="img/a%20b.png" alt="x"></p>'))
    assert result.problems == [] and result.refs == ["file:img/a b.png"]
    assert result.html == '<p><img src="ankideck-media:0" alt="x"></p>'


def test_the_allow_list_covers_every_pygments_class():
    from pygments.token import STANDARD_TYPES

    assert set(STANDARD_TYPES.values()) - {""} <= PYGMENTS_CLASSES


def test_the_allow_list_has_no_tag_that_runs_or_loads_anything():
    assert not {"script", "style", "iframe", "svg", "math", "object", "embed", "link", "meta", "base", "form",
                "details", "summary", "input", "button", "video", "audio", "source"} & set(ALLOWED)
    assert not any(name.startswith("on") for attributes in ALLOWED.values() for name in attributes)


def test_the_real_deck_renders_with_no_problem():
    """The renderer's own output, over every real card, passes untouched (the real deck builds with 0 problems)."""
    from ankideck import gather, load_config
    from tests.conftest import ROOT

    plan = gather(load_config(ROOT), now=0)
    assert len(plan.notes) > 300


# --- the fast path: a field nh3 would return unchanged is not passed to it ----------------------------------------

def _nh3_clean(field: str) -> str:
    """nh3 with the sanitiser's allow-list (the clean it skips for a field judged CLEAN)."""
    import nh3

    from ankideck import sanitize as module

    return nh3.clean(field, tags=module._NH3_TAGS, clean_content_tags=module._NH3_DROPPED,
                     attributes=module._NH3_ATTRIBUTES, url_schemes=module._NH3_SCHEMES, link_rel=None,
                     strip_comments=True)


def _generated_fields(seed: int, count: int) -> list[str]:
    """Random fields of allowed tags (with their attributes), nested every way, valid or not, around text with
    the characters and entities an HTML serialiser rewrites."""
    import random

    rng = random.Random(seed)
    tags = ["p", "em", "strong", "code", "span", "a", "ul", "ol", "li", "table", "thead", "tbody", "tr", "th", "td",
            "pre", "div", "blockquote", "h2", "br", "hr", "img", "dl", "dt", "dd", "sup", "b"]
    texts = ["x", " ", "\n", "a &amp; b", "&lt;", "&gt;", ">", "&quot;", '"', "&#39;", "\xa0", "&copy;", "\t",
             "\r", "\x0c", "&", "\n\n", "é 中"]
    attributes = {
        "span": ['', ' class="n"', ' class="arithmatex"', ' class="n"  '],
        "a": [' href="https://x.org/?a=1&amp;b=2"', ' title="t&quot;q"', ' href="https://x" title="a&lt;b"', ''],
        "code": ['', ' class="language-python"'],
        "div": [' class="codehilite"', ' class="arithmatex"'],
        "img": [' src="ankideck-media:0"', ' src="ankideck-media:0" alt="a&gt;b"', ' alt="" src="ankideck-media:0"'],
        "td": ['', ' style="text-align: left;"', ' align="center"'],
        "ol": ['', ' start="3"'],
    }

    def code_block() -> str:
        """As the highlighter writes one, or nearly (a class pygments lacks, a tag inside a token, no language)."""
        spans = "".join(rng.choice([rng.choice(texts), f'<span class="{rng.choice(["n", "p", "c1", "zz"])}">'
                                    f'{rng.choice(texts)}</span>', '<span class="n"><em>x</em></span>'])
                        for _ in range(rng.randint(0, 6)))
        language = rng.choice([' class="language-python"', '', ' class="language-py thon"'])
        return f'<div class="codehilite"><pre><code{language}>{spans}</code></pre></div>'

    def field(depth: int) -> str:
        parts = []
        for _ in range(rng.randint(0, 4)):
            if rng.random() < 0.35 or depth > 4:
                parts.append(rng.choice(texts) if rng.random() < 0.9 else code_block())
                continue
            tag = rng.choice(tags)
            start = f"<{tag}{rng.choice(attributes.get(tag, ['']))}>"
            if tag in ("br", "hr", "img"):
                parts.append(start)
            else:
                parts.append(start + field(depth + 1) + (f"</{tag}>" if rng.random() > 0.05 else ""))
        return "".join(parts)

    return [field(0) for _ in range(count)]


def _sanitized_the_slow_way(field: str, refs: list[str], monkeypatch) -> Rendered:
    """sanitize with no shortcut: the tokenizer's report and nh3 with the attribute filter, whatever the field."""
    from ankideck import sanitize as module

    with monkeypatch.context() as patch:
        patch.setattr(module, "_glance", lambda field, refs: module.NEEDS_REPORT)
        return sanitize(Rendered(field, list(refs)))


def test_a_field_judged_clean_is_one_the_full_sanitiser_returns_unchanged(monkeypatch):
    """Generated fields: wherever the one-pass judgement skips the report and nh3, the full sanitiser would have
    found nothing and returned the field as it is. The fields it must not skip are there too (a class pygments
    lacks, a tr outside tbody, a block in a paragraph, text in a table, an unclosed tag, a no-break space...)."""
    from ankideck.sanitize import CLEAN, _glance

    fields = _generated_fields(seed=15, count=20_000)
    judged_clean = [field for field in fields if _glance(field, 1) == CLEAN]
    assert 0.2 * len(fields) < len(judged_clean) < 0.5 * len(fields), "both kinds must be well represented"
    wrong = []
    for field in judged_clean:
        slow = _sanitized_the_slow_way(field, ["file:a.png"], monkeypatch)
        if (slow.html, slow.problems, slow.refs) != (field, [], ["file:a.png"]):
            wrong.append(field)
    assert wrong == [], wrong[:5]


def test_the_quick_look_at_the_text_changes_no_verdict(monkeypatch):
    """The shortcut of the text check (no '&', no character nh3 rewrites, as many '>' as '<') gives every field the
    verdict the exact check gives: generated fields, the renderer's own and stray brackets either way."""
    from ankideck import sanitize as module
    from ankideck.render import Renderer
    from tests.conftest import real_sections

    renderer = Renderer()
    fields = _generated_fields(seed=16, count=20_000)
    fields += [renderer.render(text, cloze).html for text, cloze in real_sections()]
    fields += ["<p>a > b</p>", "<p>a > b <</p>", "<p>a < b</p><p>c > d</p>", "<p>x</p>>", "<<p>x</p>", "a>b<c"]
    quick = [module._glance(field, 1) for field in fields]
    shortcut = sum("&" not in f and "\xa0" not in f and f.count(">") == f.count("<") for f in fields)
    assert shortcut > 0.2 * len(fields)
    monkeypatch.setattr(module, "_text_canonical", module._text_canonical_exactly)
    assert [module._glance(field, 1) for field in fields] == quick


@pytest.mark.parametrize("field", [
    "<p><b>bold</p>",                                 # unclosed: would run on into the rest of the card
    "<p>a<div class=\"arithmatex\">x</div></p>",      # a block inside a paragraph
    "<table><tr><td>1</td></tr></table>",             # no tbody
    "<p>a\xa0b</p>",                                  # a no-break space (nh3 writes &nbsp;)
    "<p>&copy; x</p>",                                # an entity nh3 writes as its character
    "<p><em>x</p></em>",                              # crossed
])
def test_a_field_nh3_would_change_is_still_cleaned(field):
    from ankideck.sanitize import CLEAN, _glance

    assert _glance(field, 0) != CLEAN
    assert sanitize(Rendered(field)).html == _nh3_clean(field)


def test_every_field_of_the_deck_skips_nh3_and_nh3_would_not_change_it():
    """The renderer's own HTML, over every real card: judged CLEAN (the fast path is taken; if a renderer change
    stopped that, cold builds would silently slow down) and returned unchanged by nh3."""
    from ankideck import compile as compile_module
    from ankideck.compile import _start_renderer
    from ankideck.sanitize import CLEAN, _glance
    from tests.conftest import real_sections

    _start_renderer()
    judged, wrong = [], []
    for text, cloze in real_sections():
        rendered = compile_module._renderer.render(text, cloze)
        judged.append(_glance(rendered.html, len(rendered.refs)) == CLEAN)
        if judged[-1] and _nh3_clean(rendered.html) != rendered.html:
            wrong.append(rendered.html)
    assert len(judged) > 1000 and sum(judged) >= 0.99 * len(judged)
    assert wrong == [], wrong[:3]
