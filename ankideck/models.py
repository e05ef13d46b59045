"""The two note types. Their ids, names, fields and template names are fixed for the deck's whole life.

Anki forks a note type (``Name+``) when a re-imported package adds, renames or reorders its fields or templates, and
then skips every later update as conflicting. Template text and CSS may change freely; nothing else here may.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import genanki

from .installed import version
from .theme import DARK_BACKGROUND, LIGHT_BACKGROUND, NIGHT_CLASSES, figure_class, night

BASIC_MODEL_ID = 1607392319        # never change
CLOZE_MODEL_ID = 1607392320        # never change
BASIC_FIELDS = ("Front", "Back", "Extra", "Guide", "Source", "Id")   # never change (names or order)
CLOZE_FIELDS = ("Text", "Extra", "Guide", "Source", "Id")            # never change (names or order)

# The Extra (derivations, sources, follow-ups) is closed by default, so a daily review fits one phone screen; one tap
# opens it. <details> works in the web views of Anki desktop, AnkiDroid and AnkiMobile without any script.
EXTRA_SUMMARY = "出处与追问"
# The footer names the card by file and id: nothing in it moves when other cards are added or deleted.
FOOTER = """
{{#Extra}}<details class="extra"><summary>%s</summary><div class="extra-body">{{Extra}}</div></details>{{/Extra}}
<div class="meta">{{#Guide}}<span class="guide">{{Guide}}</span>{{/Guide}}<span class="source">{{Source}}</span>\
<span class="card-id">{{Id}}</span></div>
""" % EXTRA_SUMMARY

BASIC_TEMPLATE = {
    "name": "Card 1",  # never change
    "qfmt": '<div class="front">{{Front}}</div>',
    "afmt": '<div class="front">{{Front}}</div>\n<hr id="answer">\n<div class="back">{{Back}}</div>' + FOOTER,
}
CLOZE_TEMPLATE = {
    "name": "Cloze",  # never change
    "qfmt": '<div class="text">{{cloze:Text}}</div>',
    "afmt": '<div class="text">{{cloze:Text}}</div>' + FOOTER,
}

LIGHT_CODE_STYLE = "default"
DARK_CODE_STYLE = "github-dark"



def _with_theme(css: str) -> str:
    """The @NAME@ markers in ``css`` replaced by the theme's colours, night-mode selectors and figure classes."""
    for marker, value in {
        "@LIGHT@": LIGHT_BACKGROUND, "@DARK@": DARK_BACKGROUND, "@FIG_DARK@": figure_class("dark"),
        "@NIGHT_CARD@": night(".card.{night}", ".{night} .card"), "@NIGHT_HTML@": night("html.{night}"),
        "@NIGHT_FIG_LIGHT@": night(".{night} ." + figure_class("light")),
        "@NIGHT_FIG_DARK@": night(".{night} ." + figure_class("dark")),
    }.items():
        css = css.replace(marker, value)
    return css


BASE_CSS = _with_theme("""
/* Mobile first: written for a 390 px phone. Nothing is wider than the card: formulas and code are written to fit
   (the render check measures them); a box scrolls sideways only on screens narrower than the check's. */
html, body { margin: 0; padding: 0; }
.card {
  --fg: #1f2328; --bg: @LIGHT@; --muted: #59636e; --accent: #0b57d0; --cloze: #0b57d0;
  --box: #f6f8fa; --border: #d0d7de;
  font-family: -apple-system, "PingFang SC", "Hiragino Sans GB", "Noto Sans CJK SC", "Source Han Sans SC",
    "Microsoft YaHei", "Helvetica Neue", Roboto, Arial, sans-serif;
  font-size: 18px; line-height: 1.6; color: var(--fg); background: var(--bg);
  text-align: left; margin: 0; padding: 12px 14px; overflow-wrap: anywhere; word-break: normal;
  /* Paint the whole screen: AnkiDroid's page around a short card can be black in night mode. */
  min-height: 100vh; box-sizing: border-box;
}
@NIGHT_CARD@ {
  /* --bg is the dark figures' background, so images blend into the card. */
  --fg: #e6edf3; --bg: @DARK@; --muted: #a0a7b0; --accent: #79b8ff; --cloze: #79b8ff;
  --box: #232427; --border: #4a4f57;
}
/* The page behind the card (past its edges, or under overscroll) matches it too. Anki reads a name with an
   underscore inside parentheses as a media file, so the :has() test matches both night classes by "night". */
html:has(> body[class*="night"]), @NIGHT_HTML@ { background: @DARK@; }
.front, .text { font-size: 1.05em; }
hr#answer { border: 0; border-top: 1px solid var(--border); margin: 14px 0; }
.cloze { font-weight: 700; color: var(--cloze); }
code { font-family: "JetBrains Mono", "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono", "Noto Sans Mono CJK SC",
  monospace; font-size: 0.88em; }
:not(pre) > code { background: var(--box); border-radius: 4px; padding: 0.1em 0.3em; }
.codehilite { background: var(--box); border: 1px solid var(--border); border-radius: 6px; margin: 0.6em 0;
  max-width: 100%; overflow-x: auto; -webkit-overflow-scrolling: touch; }
/* A fixed size, the same in the Extra: a code line of up to 40 columns fits the box on a 390 px phone. */
.codehilite pre { margin: 0; padding: 8px 8px; line-height: 1.45; white-space: pre; overflow-wrap: normal; }
.codehilite code { font-size: 13px; }
.arithmatex { max-width: 100%; overflow-x: auto; overflow-y: hidden; }
div.arithmatex, span.arithmatex.display { display: block; margin: 0.5em 0; }
/* MathJax's hidden copy of each formula for screen readers is laid out wider than the formula in Chromium (Anki's
   web views): uncapped, it widens the card and the page scrolls sideways. */
mjx-assistive-mml { max-width: 100%; }
img { max-width: 100%; height: auto; }
.figure { display: block; margin: 0.6em 0; text-align: center; }
.@FIG_DARK@ { display: none; }
@NIGHT_FIG_LIGHT@ { display: none; }
@NIGHT_FIG_DARK@ { display: inline; }
table { display: block; max-width: 100%; overflow-x: auto; border-collapse: collapse; margin: 0.6em 0;
  font-size: 0.9em; }
th, td { border: 1px solid var(--border); padding: 4px 6px; }
th { background: var(--box); }
ul, ol { padding-left: 1.4em; }
.extra { margin-top: 16px; border-left: 3px solid var(--accent); background: var(--box); font-size: 0.92em; }
.extra > summary { padding: 8px 10px; color: var(--accent); cursor: pointer; font-size: 0.95em; }
.extra-body { padding: 0 10px 8px; }
.meta { margin-top: 14px; font-size: 0.72em; color: var(--muted); display: flex; flex-wrap: wrap; gap: 0 12px; }
/* Narrower than the 390 px the cards are checked at: a smaller code font, then wrapping, so nothing is cut off. */
@media (max-width: 380px) { .codehilite code { font-size: 12px; } }
@media (max-width: 340px) { .codehilite pre { white-space: pre-wrap; overflow-wrap: anywhere; } }
@media (min-width: 700px) { .card { max-width: 760px; margin: 0 auto; font-size: 20px; } }
""")


def stylesheet(cache_dir: Path | None = None) -> str:
    """The note types' CSS: layout plus pygments' classes in a light palette and, under night mode, a dark one.

    The pygments part depends only on the pygments version and the two style names, so it is cached on disk: a warm
    build does not import pygments.
    """
    key = hashlib.sha256(f"{version('pygments')};{LIGHT_CODE_STYLE};{DARK_CODE_STYLE}".encode()).hexdigest()
    cached = cache_dir / f"code-{key[:16]}.css" if cache_dir else None
    if cached and cached.is_file():
        code_css = cached.read_text("utf-8")
    else:
        code_css = _code_stylesheet()
        if cached:
            cached.parent.mkdir(parents=True, exist_ok=True)
            cached.write_text(code_css, "utf-8")
    return BASE_CSS + code_css


def _code_stylesheet() -> str:
    from pygments.formatters import HtmlFormatter

    # Token colours only: the boxes' backgrounds and text colour come from the palette variables.
    light = HtmlFormatter(style=LIGHT_CODE_STYLE).get_token_style_defs(".codehilite")
    dark = HtmlFormatter(style=DARK_CODE_STYLE).get_token_style_defs([f".{name} .codehilite" for name in NIGHT_CLASSES])
    return "\n".join(["/* code, light */", *light, "/* code, night mode */", *dark, ""])


def basic_model(css: str, model_class: type[genanki.Model] = genanki.Model) -> genanki.Model:
    return model_class(
        BASIC_MODEL_ID, "ankideck Basic",
        fields=[{"name": name} for name in BASIC_FIELDS],
        templates=[BASIC_TEMPLATE], css=css, sort_field_index=0,
    )


def cloze_model(css: str, model_class: type[genanki.Model] = genanki.Model) -> genanki.Model:
    return model_class(
        CLOZE_MODEL_ID, "ankideck Cloze",
        fields=[{"name": name} for name in CLOZE_FIELDS],
        templates=[CLOZE_TEMPLATE], css=css, model_type=genanki.Model.CLOZE, sort_field_index=0,
    )
