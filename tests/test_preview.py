"""The HTML preview: Anki's template and cloze semantics, isolation of broken card HTML, the CLI command, and a render
check of the real deck in headless Chromium at phone size, in light and night mode."""
from __future__ import annotations

import json
import re
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from click.testing import CliRunner

from ankideck.builder import Note
from ankideck.cli import cli
from ankideck.config import load_config
from ankideck.parse import Card
from ankideck.preview import PreviewError, card_views, chromium_path, cloze_filter, open_preview, render_template, \
    write_preview
from tests.conftest import ROOT, write_project


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def note(kind: str, **fields: str) -> Note:
    card = Card("n1", kind, "cards/x.md", 3, "Deck::Sub", ("t1",), None)
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
<style>.note-head { display: none } p { color: red }</style>

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
    # The card's markup is never part of the page's markup: it travels as a JSON string, parsed in a shadow root.
    assert "</div></div><div>" not in page and "<style>.note-head" not in page
    data = json.loads(next(text for text in outline.scripts if text.lstrip().startswith("{")))
    assert any("stray </div></div><div> in the front" in side for side in data["sides"])


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


# Runs in the page, once per mode: every card side's problems, as {card, ord, face, reason}; and the figures shown.
CHECK_SIDES_JS = r"""
async (mode) => {
  const preview = window.ankideckPreview;
  const problems = [];
  const figures = [];
  const report = (side, reason) => problems.push({ ...side.host.dataset, reason });

  const rgba = (css) => {
    const parts = css.match(/rgba?\(([^)]*)\)/)[1].split(/[\s,/]+/).filter(Boolean).map(Number);
    return parts.length === 3 ? [...parts, 1] : parts;
  };
  const channel = (c) => (c /= 255) <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  const luminance = ([r, g, b]) => 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
  const contrast = (a, b) => {
    const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
    return (hi + 0.05) / (lo + 0.05);
  };
  const over = (top, bottom) => [0, 1, 2].map((i) => top[i] * top[3] + bottom[i] * (1 - top[3])).concat(1);
  const up = (node) => node.parentElement || node.getRootNode().host || null;
  // The colour behind an element: its own and its ancestors' backgrounds (across the shadow boundary), composited.
  const background = (element) => {
    const layers = [];
    for (let node = element; node; node = up(node)) {
      const color = rgba(getComputedStyle(node).backgroundColor);
      if (color[3] > 0) layers.push(color);
      if (color[3] >= 1) break;
    }
    return layers.reverse().reduce((below, layer) => over(layer, below), [255, 255, 255, 1]);
  };
  const scrolls = (element) => {   // a box that keeps its overflow to itself (overflow does not apply to inlines)
    const style = getComputedStyle(element);
    return style.display !== "inline" && ["auto", "scroll", "hidden", "clip"].includes(style.overflowX);
  };
  const describe = (element) => `<${element.localName}${element.className ? ` class="${element.className}"` : ""}>`
    + ` "${element.textContent.trim().replace(/\s+/g, " ").slice(0, 60)}"`;

  await Promise.all([...document.querySelectorAll(".phone")].flatMap((host) =>
    [...host.shadowRoot.querySelectorAll("img")].map((img) => img.decode().catch(() => null))));

  for (const side of preview.sides) {
    const card = side.body;
    for (const problem of side.mathProblems) report(side, `MathJax: ${problem}`);

    // Wider than the screen: the card's content overflows it, outside any box that scrolls on its own.
    if (card.getBoundingClientRect().width > window.innerWidth + 0.5) report(side, "card wider than the screen");
    if (card.scrollWidth > card.clientWidth + 1) {
      const edge = card.getBoundingClientRect().right;
      const culprit = [...card.querySelectorAll("*")].find((element) => {
        if (element.getBoundingClientRect().right <= edge + 1) return false;
        for (let node = element.parentElement; node && node !== card; node = node.parentElement) {
          if (scrolls(node)) return false;
        }
        return true;
      });
      report(side, `overflows the screen by ${card.scrollWidth - card.clientWidth}px`
        + (culprit ? `: ${describe(culprit)}` : ""));
    }

    for (const img of side.root.querySelectorAll("img")) {
      if (img.checkVisibility() && (!img.complete || img.naturalWidth === 0)) {
        report(side, `image failed to load: ${img.getAttribute("src")}`);
      }
    }
    const wanted = mode === "night" ? "fig-dark" : "fig-light";
    for (const figure of side.root.querySelectorAll(".figure")) {
      const shown = [...figure.querySelectorAll("img")].filter((img) => img.checkVisibility());
      if (shown.length !== 1 || !shown[0].classList.contains(wanted)) {
        report(side, `figure shows ${shown.map((img) => img.className).join(", ") || "nothing"}, not ${wanted}`);
      } else {
        figures.push({ ...side.host.dataset, src: shown[0].currentSrc, background: background(figure) });
      }
    }

    // Text colour against what is behind it (formulas are drawn by CSS, so check their containers too).
    const seen = new Set();
    const walker = document.createTreeWalker(card, NodeFilter.SHOW_TEXT);
    const elements = [...card.querySelectorAll("mjx-container")];
    for (let text = walker.nextNode(); text; text = walker.nextNode()) {
      if (text.data.trim() && !text.parentElement.closest("mjx-assistive-mml")) elements.push(text.parentElement);
    }
    for (const element of elements) {
      if (seen.has(element) || !element.checkVisibility({ visibilityProperty: true })) continue;
      seen.add(element);
      const behind = background(element);
      const ink = over(rgba(getComputedStyle(element).color), behind);
      const ratio = contrast(ink, behind);
      if (ratio < 4.5) {   // WCAG AA for normal-size text
        report(side, `contrast ${ratio.toFixed(2)} < 4.5 (rgb(${ink.slice(0, 3)}) on rgb(${behind.slice(0, 3)})):`
          + ` ${describe(element)}`);
      }
    }
  }
  return { problems, figures };
}
"""


def contrast(a, b) -> float:
    def luminance(rgb):
        def channel(c):
            c /= 255
            return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
        r, g, b = (channel(c) for c in rgb[:3])
        return 0.2126 * r + 0.7152 * g + 0.0722 * b
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def figure_problems(figures: list[dict]) -> list[dict]:
    """A figure's background must match the card's in that mode, and its darkest or lightest ink must read on it."""
    from PIL import Image

    problems = []
    for figure in figures:
        with Image.open(unquote(urlparse(figure["src"]).path)) as image:
            width, height = image.size
            # Nearest-neighbour sampling keeps the real colours of thin strokes (text, axes).
            small = image.convert("RGB").resize((200, max(1, round(200 * height / width))), Image.Resampling.NEAREST)
        data = small.tobytes()
        pixels = [tuple(data[i:i + 3]) for i in range(0, len(data), 3)]
        rows = [pixels[i:i + 200] for i in range(0, len(pixels), 200)]
        border = rows[0] + rows[-1] + [row[0] for row in rows] + [row[-1] for row in rows]
        paper = Counter(border).most_common(1)[0][0]
        ink = max(pixels, key=lambda rgb: contrast(rgb, paper))
        card = tuple(figure["background"][:3])
        name = figure["src"].rsplit("/", 1)[-1]
        if contrast(paper, card) > 1.5:
            problems.append({**figure, "reason": f"figure background rgb{paper} does not match the card's "
                                                 f"rgb{card}: {name}"})
        if contrast(ink, paper) < 4.5:
            problems.append({**figure, "reason": f"figure ink rgb{ink} on rgb{paper} has contrast "
                                                 f"{contrast(ink, paper):.2f} < 4.5: {name}"})
    return problems


@pytest.fixture(scope="module")
def real_deck_preview(browser_available, tmp_path_factory) -> Path:
    return write_preview(load_config(cwd=ROOT), tmp_path_factory.mktemp("preview") / "preview")


def test_every_card_of_the_real_deck_renders_cleanly_on_a_phone(real_deck_preview):
    failed_requests, errors, found = [], [], []
    with open_preview(real_deck_preview) as page:
        page.on("requestfailed", lambda request: failed_requests.append(request.url))
        page.on("pageerror", lambda error: errors.append(str(error)))
        assert page.evaluate("MathJax.version") == "3.2.2"
        assert page.evaluate("ankideckPreview.sides.length") == page.locator(".phone").count() > 0
        for mode in ("light", "night"):
            page.set_checked("#night-mode", mode == "night")
            result = page.evaluate(CHECK_SIDES_JS, mode)
            found += [{**problem, "mode": mode} for problem in result["problems"] + figure_problems(result["figures"])]
    report = sorted({f"{p['card']} (card {p['ord']} {p['face']}, {p['mode']}): {p['reason']}" for p in found})
    assert not report, f"{len(report)} problems:\n" + "\n".join(report)
    assert not failed_requests and not errors, (failed_requests, errors)


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
            color: getComputedStyle(s.body.querySelector('p') || s.body).color,
            footer: !!s.body.querySelector('#qa .meta'),
            outside: [...s.root.children].filter(c => c.localName !== 'style').length }))""")
        broken = [s for s in sides if s["card"] == "broken-card"]
        others = [s for s in sides if s["card"] != "broken-card"]
        assert broken[1]["footer"], "the template's footer stays inside the broken card"
        assert all(s["outside"] == 1 for s in sides)   # nothing escaped next to the card in its own root
        assert broken[1]["color"] == "rgb(255, 0, 0)" and all(s["color"] != "rgb(255, 0, 0)" for s in others)
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
