"""The HTML preview: Anki's template and cloze semantics, isolation of broken card HTML, the CLI command, and a render
check of the real deck in headless Chromium at phone size, in light and night mode."""
from __future__ import annotations

import json
import re
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from ankideck import load_config
from ankideck.cli import cli
from ankideck.parse import NoteSource
from ankideck.pipeline import Note
from ankideck.preview import (
    PreviewError,
    card_views,
    chromium_path,
    cloze_filter,
    open_preview,
    render_template,
    write_preview,
)
from tests.conftest import ROOT, write_project


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def note(kind: str, **fields: str) -> Note:
    card = NoteSource("n1", kind, "cards/x.md", 3, "Deck::Sub", ("t1",), None)
    return Note(card, fields, ["t1"], content_hash="")


# --- cloze and templates, as Anki renders them ------------------------------------------------------------------------

TEXT = "A {{c1::alpha}} B {{c2::beta::hint}} C {{c1::gamma}}"


def test_cloze_front_hides_this_number_and_shows_the_others():
    assert cloze_filter(TEXT, 1, question=True) == (
        'A <span class="cloze" data-cloze="alpha" data-ordinal="1">[...]</span> '
        'B <span class="cloze-inactive" data-ordinal="2">beta</span> '
        'C <span class="cloze" data-cloze="gamma" data-ordinal="1">[...]</span>')
    assert cloze_filter(TEXT, 2, question=True) == (
        'A <span class="cloze-inactive" data-ordinal="1">alpha</span> '
        'B <span class="cloze" data-cloze="beta" data-ordinal="2">[hint]</span> '
        'C <span class="cloze-inactive" data-ordinal="1">gamma</span>')


def test_cloze_back_highlights_this_number():
    assert cloze_filter(TEXT, 2, question=False) == (
        'A <span class="cloze-inactive" data-ordinal="1">alpha</span> '
        'B <span class="cloze" data-ordinal="2">beta</span> '
        'C <span class="cloze-inactive" data-ordinal="1">gamma</span>')


def test_cloze_of_a_number_the_field_lacks_is_empty_and_stray_braces_are_text():
    assert cloze_filter(TEXT, 3, question=True) == ""
    assert cloze_filter("x }} {{c1::y}}", 1, question=False) == 'x }} <span class="cloze" data-ordinal="1">y</span>'


def test_nested_clozes_and_clozes_inside_math():
    nested = "{{c1::a {{c2::b}} c}}"
    assert cloze_filter(nested, 2, question=True) == (
        '<span class="cloze-inactive" data-ordinal="1">a '
        '<span class="cloze" data-cloze="b" data-ordinal="2">[...]</span> c</span>')
    assert cloze_filter(nested, 1, question=True).startswith('<span class="cloze" data-cloze="a &lt;span')
    # Anki strips the HTML it inserted inside MathJax delimiters, so the formula stays valid TeX.
    assert cloze_filter(r"\(x + {{c1::y}}\)", 1, question=True) == r"\(x + [...]\)"
    assert cloze_filter(r"\(x + {{c1::y}}\)", 1, question=False) == r"\(x + y\)"


def test_one_card_per_cloze_number_with_front_and_back():
    views = card_views(note("cloze", Text="{{c2::two}} and {{c1::one}}", Extra=""))
    assert [view.ordinal for view in views] == [1, 2]
    assert "[...]" in views[0].question and ">two<" in views[0].question
    assert '<span class="cloze" data-ordinal="1">one</span>' in views[0].answer
    assert 'class="extra"' not in views[0].answer  # {{#Extra}} of an empty field


def test_basic_card_back_has_front_and_back_and_optional_sections():
    [view] = card_views(note("basic", Front="<p>Q</p>", Back="<p>A</p>", Extra="<br>", Source="cards/x.md:3"))
    assert view.question == '<div class="front"><p>Q</p></div>'
    assert view.answer.startswith('<div class="front"><p>Q</p></div>\n<hr id="answer">\n<div class="back"><p>A</p>')
    assert 'class="extra"' not in view.answer  # Anki treats whitespace and <br> as empty
    assert "cards/x.md:3" in view.answer


def test_template_language_subset():
    fields = {"A": "x", "B": " ", "Front": "f"}
    assert render_template("{{#A}}[{{A}}]{{/A}}{{^B}}no B{{/B}}{{#B}}B{{/B}}", fields, 1, True) == "[x]no B"
    assert render_template("{{text:A}}", {"A": "<b>bold</b>"}, 1, True) == "bold"
    with pytest.raises(ValueError, match="unknown field"):
        render_template("{{Nope}}", fields, 1, True)
    with pytest.raises(ValueError, match="never closed"):
        render_template("{{#A}}", fields, 1, True)


# --- the page: broken card HTML stays inside its card -----------------------------------------------------------------

BROKEN_MD = """# card: broken-card

## Front
Unclosed <b>bold and a stray </div></div><div> in the front.

## Back
back <i>unclosed
"""


class Outline(HTMLParser):
    """The page's element tree (void elements excepted), failing on an end tag that closes nothing open."""

    VOID = {"meta", "link", "input", "br", "hr", "img"}

    def __init__(self):
        super().__init__()
        self.stack: list[str] = []
        self.children: Counter = Counter()   # (parent tag, tag) -> count
        self.scripts: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.children[self.stack[-1] if self.stack else None, tag] += 1
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:] or 'nothing'}"
        self.stack.pop()

    def handle_data(self, data):
        if self.stack and self.stack[-1] == "script":
            self.scripts.append(data)


def test_broken_card_html_cannot_break_the_page(project):
    (project / "cards/broken.md").write_text(BROKEN_MD, "utf-8")
    index = write_preview(load_config())
    page = index.read_text("utf-8")
    outline = Outline()
    outline.feed(page)
    outline.close()
    assert outline.stack == []
    assert outline.children["main", "article"] == 5   # every note is still its own article
    assert outline.children["article", "header"] == 5
    # The card's markup is never part of the page's markup: it travels as a JSON string, parsed in a shadow root,
    # and the sanitiser has already balanced it.
    assert "</div></div><div>" not in page
    data = json.loads(next(text for text in outline.scripts if text.lstrip().startswith("{")))
    front = next(side for side in data["sides"] if "a stray" in side)
    assert "in the front" in front


def test_preview_files_and_cli(project):
    result = run("preview")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Wrote dist/preview/index.html; open file://")
    preview = project / "dist/preview"
    assert (preview / "mathjax/tex-chtml-full.js").is_file()
    assert list((preview / "mathjax/output/chtml/fonts/woff-v2").glob("*.woff"))
    [image] = (preview / "media").glob("plot-*.png")
    page = (preview / "index.html").read_text("utf-8")
    assert f"media/{image.name}" in page
    assert 'href="source/cards/basics/formulas.md.html#L7"' in page
    assert 'id="L7"' in (preview / "source/cards/basics/formulas.md.html").read_text("utf-8")
    # Cards: basic 1 each, the cloze note 2: five cards, ten sides.
    assert page.count('class="phone"') == 10

    elsewhere = project / "elsewhere"
    assert run("preview", "--out", str(elsewhere)).exit_code == 0
    assert (elsewhere / "index.html").is_file()
    assert run("preview", "--help").output.startswith("Usage:")


def test_bad_input_writes_no_preview(project):
    assert run("preview").exit_code == 0
    index = project / "dist/preview/index.html"
    before = index.read_bytes()
    (project / "cards/x.md").write_text("# card: s\n## Front\n<script>alert(1)</script>\n## Back\nb\n", "utf-8")
    result = run("preview")
    assert result.exit_code == 1
    assert "cards/x.md:3: raw <script> is not allowed in cards" in result.output
    assert result.output.strip().endswith("nothing was written.")
    assert index.read_bytes() == before
    assert sorted(p.name for p in (project / "dist").iterdir()) == ["preview"]  # no staging folder left behind


def test_bad_input_in_a_fresh_project_creates_nothing(tmp_path, monkeypatch):
    root = write_project(tmp_path / "fresh")
    (root / "cards/x.md").write_text("# card: s\n## Front\n<SCRIPT src=x>\n## Back\nb\n", "utf-8")
    monkeypatch.chdir(root)
    result = run("preview")
    assert result.exit_code == 1 and "cards/x.md:3: raw <script>" in result.output
    assert not (root / "dist").exists()


# --- in the browser --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser_available():
    pytest.importorskip("playwright.sync_api", reason="the browser driver is missing: pip install -e '.[test]'")
    if chromium_path() is None:
        pytest.skip("no Chromium: install Debian's 'chromium' package (.ci/run does)")


@pytest.fixture(scope="module")
def real_deck_preview(browser_available, tmp_path_factory) -> Path:
    return write_preview(load_config(cwd=ROOT), tmp_path_factory.mktemp("preview") / "preview")


def test_every_card_of_the_real_deck_renders_cleanly_on_a_phone(browser_available):
    """The render check on the real deck: every card side at 390x844, light and night, one browser."""
    from ankideck.render_check import check_rendering

    report = check_rendering(load_config(cwd=ROOT))
    worst = "\n".join(f"  {f.card}: {f.reason} ({f.overflow:.2f}x)" for f in report.worst[:10])
    assert [str(problem) for problem in report.problems] == [], f"worst offenders:\n{worst}"
    assert len(report.heights) > 500   # every answer side was measured


def test_switch_and_filters(real_deck_preview):
    with open_preview(real_deck_preview) as page:
        night_classes = "ankideckPreview.sides.every(s => s.body.matches('.card.nightMode.night_mode'))"
        assert not page.evaluate(night_classes)
        page.check("#night-mode")
        assert page.evaluate(night_classes)

        notes = page.locator("article.note")
        total = notes.count()
        deck = page.locator("#deck-filter option").nth(2).get_attribute("value")
        page.select_option("#deck-filter", deck)
        decks = page.eval_on_selector_all("article.note:not([hidden])", "notes => notes.map(n => n.dataset.deck)")
        assert 0 < len(decks) < total and all(d == deck or d.startswith(deck + "::") for d in decks)
        page.select_option("#deck-filter", "")
        tag = page.locator("#tag-filter option").nth(1).get_attribute("value")
        page.select_option("#tag-filter", tag)
        tags = page.eval_on_selector_all("article.note:not([hidden])", "notes => notes.map(n => n.dataset.tags)")
        assert 0 < len(tags) < total and all(tag in json.loads(t) for t in tags)
        source = page.locator("article.note a.source").first
        assert re.fullmatch(r"source/.+\.md\.html#L\d+", source.get_attribute("href"))


def test_broken_card_stays_inside_its_card_in_the_browser(browser_available, project):
    (project / "cards/broken.md").write_text(BROKEN_MD, "utf-8")
    with open_preview(write_preview(load_config())) as page:
        assert page.locator("main > article.note").count() == 5
        assert page.locator(".note-head").evaluate_all("heads => heads.every(h => h.checkVisibility())")
        sides = page.evaluate("""ankideckPreview.sides.map(s => ({
            card: s.host.dataset.card, face: s.host.dataset.face,
            footer: !!s.body.querySelector('#qa .meta'),
            outside: [...s.root.children].filter(c => c.localName !== 'style').length }))""")
        broken = [s for s in sides if s["card"] == "broken-card"]
        assert broken[1]["footer"], "the template's footer stays inside the broken card"
        assert all(s["outside"] == 1 for s in sides)   # nothing escaped next to the card in its own root
        bold = page.evaluate("getComputedStyle(document.querySelector('#count')).fontWeight")
        assert bold == "400"   # the unclosed <b> did not reach the page


def test_screenshots(browser_available, project):
    result = run("preview", "--shots")
    assert result.exit_code == 0, result.output
    shots = sorted(p.name for p in (project / "dist/preview/shots").glob("*.png"))
    assert len(shots) == 6 and sum(name.endswith("-night.png") for name in shots) == 3, shots


def test_missing_browser_is_a_clear_error(project, monkeypatch):
    monkeypatch.setattr("ankideck.preview.chromium_path", lambda: None)
    with pytest.raises(PreviewError, match="Chromium|playwright"):
        with open_preview(project / "index.html"):
            pass


WIDE_MD = r"""# card: wide-formula

## Front
What is the sum?

## Back
$$a_1 + a_2 + a_3 + a_4 + a_5 + a_6 + a_7 + a_8 + a_9 + a_{10} + a_{11} + a_{12} + a_{13} + a_{14} + a_{15}$$
"""


def test_check_render_names_each_problem_at_its_line(browser_available, project):
    clean = run("check", "--render")
    assert clean.exit_code == 0 and "Answers with the Extra closed: median" in clean.output, clean.output
    (project / "cards/wide.md").write_text(WIDE_MD, "utf-8")
    result = CliRunner().invoke(cli, ["check", "--render"])
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert any(re.fullmatch(r"cards/wide\.md:7: formula \d+ px wide in a \d+ px box \(card wide-formula\)", line)
               for line in lines), result.output
    assert "Widest boxes:" in result.output and lines[-1] == "Error: 1 problem found; nothing was written."
