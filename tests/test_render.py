"""Golden rendering tests: what reaches Anki for the math, code, cloze and image edge cases."""
from __future__ import annotations

import pytest

from ankideck.highlight import highlight
from ankideck.render import Renderer


@pytest.fixture(scope="module")
def render():
    renderer = Renderer()
    return lambda text, cloze=False: renderer.render(text, cloze)


@pytest.mark.parametrize("source, expected", [
    # TeX reaches MathJax untouched: backslashes, _, *, braces; < and & escaped for HTML only.
    (r"a $x_i^2 * y_j$ b", r'<p>a <span class="arithmatex">\(x_i^2 * y_j\)</span> b</p>'),
    (r"$a<b & \{c\}$", r'<p><span class="arithmatex">\(a&lt;b &amp; \{c\}\)</span></p>'),
    (r"$\frac{\partial L}{\partial z_i} = p_i - y_i$",
     r'<p><span class="arithmatex">\(\frac{\partial L}{\partial z_i} = p_i - y_i\)</span></p>'),
    ("$$\n\\sum_{i=1}^{n} x_i *y*\n$$", '<div class="arithmatex">\\[\\sum_{i=1}^{n} x_i *y*\\]</div>'),
    # Display blocks need no blank lines around them: consecutive formulas stay separate.
    ("$$a_1$$\n$$b<c$$\ntext\n$$\nx\n$$\nafter",
     '<div class="arithmatex">\\[a_1\\]</div>\n<div class="arithmatex">\\[b&lt;c\\]</div>\n<p>text</p>\n'
     '<div class="arithmatex">\\[x\\]</div>\n<p>after</p>'),
    (r"see $$\|w\|_2^2$$ here", r'<p>see <span class="arithmatex display">\[\|w\|_2^2\]</span> here</p>'),
    (r"- ends with $$x_1$$", '<ul>\n<li>ends with <span class="arithmatex display">\\[x_1\\]</span></li>\n</ul>'),
    (r"already \(x_1\) delimited", r'<p>already <span class="arithmatex">\(x_1\)</span> delimited</p>'),
    # Not math: escaped dollars, prices, dollars in code.
    (r"literal \$ sign", "<p>literal $ sign</p>"),
    ("costs $5 and $10", "<p>costs $5 and $10</p>"),
    ("`$x$` is code", "<p><code>$x$</code> is code</p>"),
    ("_emph_ and $a_b_c$", '<p><em>emph</em> and <span class="arithmatex">\\(a_b_c\\)</span></p>'),
])
def test_math(render, source, expected):
    assert render(source).html == expected


def test_math_in_cloze_keeps_the_deletion_intact(render):
    html = render(r"{{c1::$\frac{a}{b_{i}}$}} and {{c2::$\sqrt{x}$::root}}", cloze=True).html
    # "}}" inside TeX would end the deletion early; Anki's manual: write "} }".
    assert html == (r'<p>{{c1::<span class="arithmatex">\(\frac{a}{b_{i} }\)</span>}} and '
                    r'{{c2::<span class="arithmatex">\(\sqrt{x}\)</span>::root}}</p>')
    assert "}}" not in html.replace("</span>}}", "").replace("::root}}", "")


def test_display_math_in_cloze_notes_splits_double_braces(render):
    assert (render("$$\n\\frac{a}{b_{i}}\n$$", cloze=True).html
            == '<div class="arithmatex">\\[\\frac{a}{b_{i} }\\]</div>')


def test_braces_in_basic_cards_are_left_alone(render):
    assert r"b_{i}}" in render(r"$\frac{a}{b_{i}}$").html


def test_code_is_highlighted_with_classes_not_inline_styles(render):
    html = render("```python\ndef f(x):\n    return x  # $not math$\n```").html
    assert html.startswith('<div class="codehilite"><pre><code class="language-python"><span class="k">def</span>')
    assert '<span class="c1"># $not math$</span>' in html
    assert "style=" not in html and "arithmatex" not in html


def test_code_spans_merge_tokens_of_one_class_and_leave_whitespace_plain():
    """One span per run of a class (pygments gives "(" and ")" apart), none around whitespace: the same colours
    (pygments' whitespace class only sets a colour) in fewer bytes."""
    from pygments.lexers import PythonLexer

    code = "f(g())\n    return x\n"
    html, _ = highlight(code, "python")
    assert html == ('<span class="n">f</span><span class="p">(</span><span class="n">g</span><span class="p">())</span>'
                    '\n    <span class="k">return</span> <span class="n">x</span>\n')
    assert [value for _, value in PythonLexer().get_tokens(code)][:6] == ["f", "(", "g", "(", ")", ")"]


def test_code_escapes_html(render):
    html = render("```python\nif a < b and c & d: pass\n```").html
    assert "&lt;" in html and "&amp;" in html and "< b" not in html


def test_cloze_markers_inside_code_survive_highlighting(render):
    html = render("```python\nreturn {{c1::x ** 2::square}} + 1\n```", cloze=True).html
    assert '{{c1::<span class="n">x</span> <span class="o">**</span> <span class="mi">2</span>::square}}' in html


def test_cloze_marker_splitting_a_token_keeps_spans_balanced():
    code, known = highlight("total = {{c1::soft}}max(z)", "python")
    assert known
    inside = code[code.index("{{c1::") + 6:code.index("}}")]
    assert inside == '<span class="n">soft</span>'
    assert code.count("<span") == code.count("</span>")


def test_unknown_language_is_reported(render):
    result = render("```pyhton\nx = 1\n```")
    assert result.problems == [("```pyhton", "unknown code language 'pyhton'")]


def test_tables_and_lists(render):
    html = render("| a | b |\n|---|---|\n| $x$ | 2 |\n\n- one\n- *two*").html
    assert '<td><span class="arithmatex">\\(x\\)</span></td>' in html
    assert "<ul>\n<li>one</li>\n<li><em>two</em></li>\n</ul>" in html


def test_images_become_placeholders_and_figures_get_two_variants(render):
    result = render("![a plot](img/my%20plot.png) and ![curve](fig:activations)")
    assert result.refs == ["file:img/my plot.png", "fig:activations:light", "fig:activations:dark"]
    assert result.html == ('<p><img alt="a plot" src="ankideck-media:0"> and <span class="figure">'
                           '<img alt="curve" class="fig-light" src="ankideck-media:1">'
                           '<img alt="curve" class="fig-dark" src="ankideck-media:2"></span></p>')


@pytest.mark.parametrize("src", ["http://example.com/a.png", "https://x/y.png", "//cdn/x.png",
                                 "data:image/png;base64,AA"])
def test_remote_images_are_refused(render, src):
    assert render(f"![x]({src})").problems


def test_render_is_reusable_and_independent(render):
    render("![x](a.png)")
    assert render("plain").refs == [] and render("plain").html == "<p>plain</p>"


@pytest.mark.parametrize("source, expected", [
    # A list right after a line of text is a list (CommonMark), not a run-on paragraph with literal " - ".
    ("要点：\n- 一\n- 二", "<p>要点：</p>\n<ul>\n<li>一</li>\n<li>二</li>\n</ul>"),
    ("steps:\n1. a\n2. b", "<p>steps:</p>\n<ol>\n<li>a</li>\n<li>b</li>\n</ol>"),
    ("text\n* star\n+ plus", "<p>text</p>\n<ul>\n<li>star</li>\n<li>plus</li>\n</ul>"),
    # An ordered item interrupts a paragraph only when it starts at 1 (as in CommonMark): a year stays prose.
    ("发表于\n2017. 年", "<p>发表于\n2017. 年</p>"),
    # Inside a list or a quote nothing changes; a nested list stays nested.
    ("- a\n    - b\n- c", "<ul>\n<li>a<ul>\n<li>b</li>\n</ul>\n</li>\n<li>c</li>\n</ul>"),
    ("> quote\n> - item", "<blockquote>\n<p>quote\n- item</p>\n</blockquote>"),
    # Not in code, and a hyphen inside a line is text.
    ("```text\nx\n- y\n```", '<div class="codehilite"><pre><code class="language-text">x\n- y</code></pre></div>'),
    ("a - b", "<p>a - b</p>"),
])
def test_a_list_after_a_text_line_is_a_list(render, source, expected):
    assert render(source).html == expected


def test_code_lines_wider_than_a_phone_are_reported(render):
    fits = "x = 1  # " + "a" * 33                           # 42 columns
    wide = "y = 2  # " + "中文" * 9                          # 9 + 36 = 45 columns: a CJK character takes two
    result = render(f"```python\n{fits}\n{wide}\n```")
    assert result.problems == [(wide, "code line 45 columns wide: at most 42 fit a 390 px phone (break it, or put "
                                      "the comment on its own line)")]
    # A cloze in code is measured as its answer.
    assert render("```python\n{{c1::" + "b" * 42 + "::hint}}\n```", cloze=True).problems == []


def test_a_longer_fence_holds_a_shorter_one_and_dollars(tmp_path):
    """One fence grammar for the parser, the math check and the renderer: a ````markdown block that shows a ```
    fence and $$ is code, not an unclosed display formula."""
    from ankideck import Problems
    from ankideck.parse import parse_file

    path = tmp_path / "x.md"
    path.write_text("# card: fences\n## Front\nq\n## Back\n````markdown\n```\n$$\n````\n", "utf-8")
    problems = Problems()
    cards = parse_file(path, "cards/x.md", "Deck", problems)
    assert not problems, list(problems)
    html = Renderer().render(cards[0].text("Back")).html
    assert html.count('<div class="codehilite">') == 1 and "```" in html and "$$</code>" in html


def test_the_renderers_own_loops_render_every_real_section_as_python_markdowns():
    """The prefiltered inline processor, the quick HTML-block extraction and unescape, the block loop over a fixed
    tuple and the remembered block-level lookup give the same HTML as Python-Markdown's own, for every section of the
    real deck (math, code, clozes, links, emphasis, escapes, entities, HTML, lists, tables, quotes) and texts of corner
    cases."""
    from markdown.preprocessors import HtmlBlockPreprocessor
    from markdown.treeprocessors import InlineProcessor, UnescapeTreeprocessor

    from ankideck.render import PrefilteredInlineTreeprocessor, QuickHtmlBlockPreprocessor, Renderer
    from tests.conftest import real_sections

    ours, stock = Renderer(), Renderer()
    assert isinstance(ours.md.treeprocessors["inline"], PrefilteredInlineTreeprocessor)
    stock.md.treeprocessors.register(InlineProcessor(stock.md), "inline", 20)
    stock.md.treeprocessors.register(UnescapeTreeprocessor(stock.md), "unescape", 0)
    stock.md.preprocessors.register(HtmlBlockPreprocessor(stock.md), "html_block", 20)
    assert [type(p) for p in ours.md.preprocessors].count(QuickHtmlBlockPreprocessor) == 1
    assert "parseBlocks" in vars(ours.md.parser)
    del stock.md.parser.parseBlocks  # the class's own loop again
    assert "is_block_level" in vars(ours.md)
    del stock.md.is_block_level  # and the class's own lookup
    texts = [("a **b** `c` [l](https://x.org) <b>q</b> &amp; d  \ne \\*f\\* ![i](fig:x) *$x$* _y_ <https://a.b>"
              " <a@b.c> $$z$$ \\(w\\)", False), ("{{c1::**x**}} and {{c2::$a_1$}}", True),
             ("<div>\nblock *x*\n</div>\n\nafter &copy; &#169; a&b", False), ("a <!-- c --> b\n\n<br/>", False)]
    texts.extend(real_sections())
    assert len(texts) > 2000
    different = [text for text, cloze in texts if ours.render(text, cloze) != stock.render(text, cloze)]
    assert different == [], different[:3]
