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
