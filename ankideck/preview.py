"""An offline HTML preview of the deck: every card's front and back as Anki would show them, in a browser.

``write_preview`` gathers the deck exactly like a build (so bad input raises BuildError and nothing is written), fills
the note types' templates the way Anki does (field replacements, conditional sections, ``{{FrontSide}}`` and the
``cloze`` filter, one card per cloze number), and writes ``index.html`` with its assets: the media, MathJax 3.2.2
(from the installed ``django-static-mathjax`` package, configured as Anki configures it) and a line-numbered copy of
each card file, for the links to each card's source line.

Isolation: the page holds every card side as a JSON string, and preview.js parses each one into its own shadow root
(as a fragment, so a stray ``</div>`` or an unclosed tag cannot close or swallow anything outside it, and the deck's
CSS and any ``<style>`` in a card apply to that card only).
"""
from __future__ import annotations

import html
import json
import os
import re
import shutil
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from urllib.parse import quote

from . import cloze as cloze_grammar
from .config import Config
from .errors import AnkideckError, BuildError, Problem, Problems
from .media import collect_media
from .models import BASIC_FIELDS, BASIC_TEMPLATE, CLOZE_FIELDS, CLOZE_TEMPLATE, stylesheet
from .pipeline import Note, gather
from .theme import NIGHT_CLASSES

ASSETS = Path(__file__).with_name("preview_assets")
MATHJAX_SCRIPT = "tex-chtml-full.js"                       # what Anki loads (desktop and AnkiDroid)
MATHJAX_FONTS = Path("output/chtml/fonts/woff-v2")         # CommonHTML fonts, relative to the script
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Flags for a quiet, offline, headless run (the sandbox needs privileges that containers and CI runners lack).
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")
PHONE = {"width": 390, "height": 844}                      # CSS px of a current mid-size phone
SHOT_COUNT = 3


class PreviewError(AnkideckError):
    """The preview cannot be made for a reason outside the cards (a missing package or browser)."""


# --- templates: the part of Anki's template language that note types use --------------------------------------------

class TemplateError(ValueError):
    """A template the preview cannot fill (the note types' templates are the engine's own: a bug, not bad input)."""


@dataclass
class _Replacement:      # {{Field}}, {{filter:Field}}
    name: str
    filters: list[str]


@dataclass
class _Section:          # {{#Field}}..{{/Field}}: shown if the field is not empty; {{^Field}}: if it is
    name: str
    inverted: bool
    children: list = field(default_factory=list)


TAG_RE = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
# Anki's test for an empty field in {{#Field}}: only whitespace, <br> and <div> tags.
EMPTY_FIELD_RE = re.compile(r"^(?:\s|</?(?:br|div) ?/?>)*$", re.IGNORECASE)
HTML_TAG_RE = re.compile(r"<!--.*?-->|<.*?>", re.DOTALL)
MATHJAX_RE = re.compile(r"(\\[(\[])(.*?)(\\[)\]])", re.DOTALL)


@lru_cache(maxsize=None)
def _parse_template(template: str) -> tuple:
    root: list = []
    nodes = root
    open_sections: list[tuple[_Section, list]] = []   # (section, the node list it was appended to)
    position = 0
    for match in TAG_RE.finditer(template):
        if match.start() > position:
            nodes.append(template[position:match.start()])
        position = match.end()
        tag = match.group(1).strip()
        if tag[:1] in ("#", "^"):
            section = _Section(tag[1:].strip(), inverted=tag[0] == "^")
            nodes.append(section)
            open_sections.append((section, nodes))
            nodes = section.children
        elif tag[:1] == "/":
            if not open_sections or open_sections[-1][0].name != tag[1:].strip():
                raise TemplateError(f"{{{{{tag}}}}} closes no open section")
            nodes = open_sections.pop()[1]
        else:
            *filters, name = tag.split(":")
            nodes.append(_Replacement(name.strip(), [f.strip() for f in filters]))
    if open_sections:
        raise TemplateError(f"{{{{#{open_sections[-1][0].name}}}}} is never closed")
    nodes.append(template[position:])
    return tuple(root)


def render_template(template: str, fields: dict[str, str], card_ord: int, question: bool) -> str:
    """Fill a card template as Anki does. ``card_ord`` is 1-based (the cloze number for cloze notes)."""
    return _render_nodes(_parse_template(template), fields, card_ord, question)


def _render_nodes(nodes, fields: dict[str, str], card_ord: int, question: bool) -> str:
    out: list[str] = []
    for node in nodes:
        if isinstance(node, str):
            out.append(node)
        elif isinstance(node, _Section):
            if bool(EMPTY_FIELD_RE.match(_field(fields, node.name))) == node.inverted:
                out.append(_render_nodes(node.children, fields, card_ord, question))
        else:
            text = _field(fields, node.name)
            for name in reversed(node.filters):  # {{outer:inner:Field}}: the filter next to the field runs first
                if name == "cloze":
                    text = cloze_filter(text, card_ord, question)
                elif name == "text":
                    text = html.unescape(HTML_TAG_RE.sub("", text))
                else:
                    raise TemplateError(f"filter '{name}' is not supported by the preview")
            out.append(text)
    return "".join(out)


def _field(fields: dict[str, str], name: str) -> str:
    if name not in fields:
        raise TemplateError(f"unknown field {{{{{name}}}}}")
    return fields[name]


# --- cloze deletions, as rslib/src/cloze.rs renders them --------------------------------------------------------------

def cloze_filter(text: str, card_ord: int, question: bool) -> str:
    """``{{cloze:Field}}`` for card ``card_ord``: its deletions hidden (question) or highlighted (answer), the others
    shown as plain text; HTML inside MathJax is stripped afterwards. Empty when the field has no such deletion."""
    active_found = False

    def reveal(cloze: cloze_grammar.Cloze) -> str:
        nonlocal active_found
        active = cloze.ordinal == card_ord
        active_found |= active
        inner = "".join(node if isinstance(node, str) else reveal(node) for node in cloze.nodes)
        if question and active:
            hint = cloze.hint if cloze.hint is not None else "..."
            return (f'<span class="cloze" data-cloze="{html.escape(inner, quote=True)}" '
                    f'data-ordinal="{cloze.ordinal}">[{hint}]</span>')
        css = "cloze" if active else "cloze-inactive"
        return f'<span class="{css}" data-ordinal="{cloze.ordinal}">{inner}</span>'

    revealed = "".join(node if isinstance(node, str) else reveal(node) for node in cloze_grammar.parse(text))
    if not active_found:
        return ""
    return MATHJAX_RE.sub(lambda m: m.group(1) + HTML_TAG_RE.sub("", m.group(2)) + m.group(3), revealed)


# --- cards -----------------------------------------------------------------------------------------------------------

@dataclass
class CardView:
    """One card of a note, as the reviewer shows it."""
    note: Note
    ordinal: int      # 1-based: the cloze number, or 1 for a basic note
    question: str
    answer: str


def card_views(note: Note) -> list[CardView]:
    basic = note.source.kind == "basic"
    template, names = (BASIC_TEMPLATE, BASIC_FIELDS) if basic else (CLOZE_TEMPLATE, CLOZE_FIELDS)
    deck = note.source.deck
    fields = {name: note.fields.get(name, "") for name in names}
    fields.update(Tags=" ".join(note.tags), Deck=deck, Subdeck=deck.rpartition("::")[2], Card=template["name"])
    views = []
    for ordinal in [1] if basic else cloze_grammar.numbers(fields["Text"]):
        question = render_template(template["qfmt"], fields, ordinal, question=True)
        answer = render_template(template["afmt"], {**fields, "FrontSide": question}, ordinal, question=False)
        views.append(CardView(note, ordinal, question, answer))
    return views


# --- writing ---------------------------------------------------------------------------------------------------------

MEDIA_SRC_RE = re.compile(r'(\ssrc=")([^"]*)(")')


def write_preview(config: Config, out_dir: Path | None = None, shots: bool | tuple[str, ...] = False,
                  progress: bool = False) -> Path:
    """Write the preview (default: ``preview/`` beside the .apkg) and return the path of its index.html.

    Raises BuildError for bad input, before anything is written; the previous preview is replaced only by a complete
    new one. With ``shots``, also saves PNG screenshots under ``shots/``, light and night: of a few cards, or of the
    cards whose ids ``shots`` names (the first card of each note).
    """
    plan = gather(config)
    index = write_plan_preview(plan, out_dir, progress)
    if shots:
        views = [view for note in plan.notes for view in card_views(note)]
        if shots is True:
            chosen = _shot_cards(views)
        else:
            by_id = {view.note.source.id: view for view in reversed(views)}   # the first card of each note
            unknown = [card_id for card_id in shots if card_id not in by_id]
            if unknown:
                raise BuildError([Problem(config.rel(config.cards_dir), 0, f"no card '{card_id}' to screenshot")
                                  for card_id in unknown])
            chosen = [by_id[card_id] for card_id in shots]
        take_screenshots(index, index.parent / "shots", chosen)
    return index


def write_plan_preview(plan, out_dir: Path | None = None, progress: bool = False) -> Path:
    """Write the preview of a gathered deck; return the path of its index.html."""
    config = plan.config
    problems = Problems()
    media = collect_media(plan, progress, problems)
    problems.raise_if_any()
    out_dir = Path(out_dir) if out_dir is not None else config.out.parent / "preview"
    mathjax = _mathjax_dir()
    views = [view for note in plan.notes for view in card_views(note)]

    with _replacing_dir(out_dir) as staging:
        for name, path in media.items():
            _copy(path, staging / "media" / name)
        _copy(mathjax / MATHJAX_SCRIPT, staging / "mathjax" / MATHJAX_SCRIPT)
        shutil.copytree(mathjax / MATHJAX_FONTS, staging / "mathjax" / MATHJAX_FONTS)
        for asset in ("preview.css", "preview.js"):
            _copy(ASSETS / asset, staging / "assets" / asset)
        for source in sorted({note.source.path for note in plan.notes}):
            target = staging / _source_page(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(_source_html(source, (config.root / source).read_text("utf-8")), "utf-8")
        page = _index_html(plan.info.name, plan.notes, views, set(media), stylesheet(config.cache_dir))
        (staging / "index.html").write_text(page, "utf-8")
    return out_dir / "index.html"


def _mathjax_dir() -> Path:
    try:
        root = resources.files("mathjax") / "static" / "mathjax" / "es5"
    except ModuleNotFoundError:
        root = None
    if root is None or not (root / MATHJAX_SCRIPT).is_file():
        raise PreviewError("MathJax is missing: pip install django-static-mathjax (it ships MathJax 3.2.2)")
    return Path(str(root))


@contextmanager
def _replacing_dir(target: Path):
    """Yield an empty staging folder beside ``target``; on success it replaces ``target``, on failure it vanishes."""
    staging = target.with_name(f".{target.name}.new-{os.getpid()}")
    retired = target.with_name(f".{target.name}.old-{os.getpid()}")
    for leftover in (staging, retired):
        shutil.rmtree(leftover, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        yield staging
        if target.exists():
            os.replace(target, retired)
        try:
            os.replace(staging, target)
        except OSError:
            if retired.exists():
                os.replace(retired, target)
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(retired, ignore_errors=True)


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)


def _source_page(path: str) -> str:
    return f"source/{path}.html"


def _json_for_script(data) -> str:
    """JSON that is safe inside a <script> element: without '<', no '</script>' or '<!--' can end or bend it."""
    return json.dumps(data, ensure_ascii=False).replace("<", "\\u003c")


def _with_media_folder(side: str, media: set[str]) -> str:
    """Point the card's media references (bare names, as Anki stores them) into the preview's media folder."""
    def move(match: re.Match) -> str:
        name = html.unescape(match.group(2))
        if name not in media:
            return match.group(0)
        return match.group(1) + html.escape(f"media/{quote(name)}") + match.group(3)
    return MEDIA_SRC_RE.sub(move, side)


def _note_html(note: Note, views: list[CardView], sides: list[str], media: set[str]) -> str:
    """A note's header and the frames of its cards' sides; each side's HTML is appended to ``sides``, and its frame
    refers to it by index (preview.js parses it into the frame's shadow root)."""
    e = html.escape
    card = note.source
    frames = []
    for view in views:
        label = f"Card {view.ordinal}" if card.kind == "cloze" else "Card"
        pair = []
        for face, side in (("front", view.question), ("back", view.answer)):
            sides.append(_with_media_folder(side, media))
            pair.append(f'<figure class="side"><figcaption>{label} · {face}</figcaption>'
                        f'<div class="phone" data-side="{len(sides) - 1}" data-card="{e(card.id)}" '
                        f'data-ord="{view.ordinal}" data-face="{face}"></div></figure>')
        frames.append(f'<div class="card-view">{"".join(pair)}</div>')
    tags = "".join(f'<span class="tag">{e(tag)}</span>' for tag in note.tags)
    anchor = f"note-{card.id}"   # prefixed: a card id must not collide with the page's own ids
    source_href = f"{quote(_source_page(card.path))}#L{card.line}"
    return (f'<article class="note" id="{e(anchor)}" data-deck="{e(card.deck)}" '
            f'data-tags="{e(json.dumps(note.tags, ensure_ascii=False))}">'
            f'<header class="note-head"><a class="note-id" href="#{e(quote(anchor))}">{e(card.id)}</a>'
            f'<span class="kind">{e(card.kind)}</span><span class="deck">{e(card.deck)}</span>'
            f'<a class="source" href="{e(source_href)}">{e(card.location)}</a>'
            f'<span class="tags">{tags}</span><span class="problems" hidden></span></header>'
            f'{"".join(frames)}</article>')


def _index_html(deck_name: str, notes: list[Note], views: list[CardView], media: set[str], css: str) -> str:
    e = html.escape
    views_by_note: dict[str, list[CardView]] = {}
    for view in views:
        views_by_note.setdefault(view.note.source.id, []).append(view)
    sides: list[str] = []
    articles = "\n".join(_note_html(note, views_by_note.get(note.source.id, []), sides, media) for note in notes)
    decks = sorted({deck for note in notes for deck in _deck_and_parents(note.source.deck)})
    tags = sorted({tag for note in notes for tag in note.tags})
    deck_options = "".join(f'<option value="{e(deck)}">{e(deck)}</option>' for deck in decks)
    tag_options = "".join(f'<option value="{e(tag)}">{e(tag)}</option>' for tag in tags)
    data = {"css": css, "night": NIGHT_CLASSES, "sides": sides}
    return f"""<!doctype html>
<html>
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(deck_name)} — preview</title>
<link rel="stylesheet" href="assets/preview.css">
</head>
<body>
<header class="toolbar">
  <h1>{e(deck_name)}</h1>
  <label>Deck <select id="deck-filter"><option value="">all decks</option>{deck_options}</select></label>
  <label>Tag <select id="tag-filter"><option value="">all tags</option>{tag_options}</select></label>
  <input type="search" id="search" placeholder="Search front, back, id, tag" aria-label="Search">
  <label class="switch"><input type="checkbox" id="night-mode"> Night mode</label>
  <span id="count">{len(notes)} notes, {len(views)} cards</span>
</header>
<main id="notes">
{articles}
</main>
<script type="application/json" id="deck-data">{_json_for_script(data)}</script>
<script src="assets/preview.js"></script>
<script src="mathjax/{MATHJAX_SCRIPT}" async></script>
</body>
</html>
"""


def _deck_and_parents(deck: str) -> list[str]:
    parts = deck.split("::")
    return ["::".join(parts[:i]) for i in range(1, len(parts) + 1)]


def _source_html(path: str, text: str) -> str:
    lines = "".join(f'<li id="L{number}">{html.escape(line) or " "}</li>'
                    for number, line in enumerate(text.splitlines(), start=1))
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(path)}</title>
<style>
body {{ margin: 0; font: 14px/1.5 ui-monospace, Menlo, Consolas, "Noto Sans Mono CJK SC", monospace; }}
h1 {{ font-size: 15px; margin: 0; padding: 8px 12px; background: #f6f8fa; border-bottom: 1px solid #d0d7de; }}
ol {{ margin: 0; padding: 8px 0 8px 4.5em; }}
li {{ white-space: pre-wrap; overflow-wrap: anywhere; padding-right: 12px; }}
li::marker {{ color: #59636e; }}
li:target {{ background: #fff8c5; }}
</style></head>
<body><h1>{html.escape(path)}</h1><ol>{lines}</ol></body></html>
"""


# --- the browser: screenshots (and the render check in the tests) -----------------------------------------------------

def chromium_path() -> str | None:
    override = os.environ.get("ANKIDECK_CHROMIUM")
    if override:
        return override
    return next((found for name in CHROMIUM_NAMES if (found := shutil.which(name))), None)


@contextmanager
def open_preview(index: Path, errors: list[str] | None = None):
    """Open a preview in headless Chromium at phone size and yield the page once every card is mounted and typeset.

    ``errors``: collects the page's script errors and failed requests (a missing image, font or script)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise PreviewError("the browser driver is missing: pip install playwright (never 'playwright install': "
                           "the system's chromium is used)") from None
    executable = chromium_path()
    if executable is None:
        raise PreviewError("no Chromium found: install Debian's 'chromium' package (or set ANKIDECK_CHROMIUM)")
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=executable, args=list(CHROMIUM_FLAGS))
        try:
            page = browser.new_page(viewport=PHONE, device_scale_factor=2)
            if errors is not None:
                page.on("pageerror", lambda error: errors.append(f"script error in the page: {error}"))
                page.on("requestfailed", lambda request: errors.append(f"could not load {request.url}"))
            page.goto(index.resolve().as_uri())
            page.wait_for_function("window.ankideckPreview && (ankideckPreview.ready || ankideckPreview.failed)",
                                   timeout=120_000)
            page.evaluate("ankideckPreview.typesetAll()")   # the page typesets lazily; checks and shots need all
            failure = page.evaluate("ankideckPreview.failed")
            if failure:
                raise PreviewError(f"typesetting failed in the browser: {failure}")
            yield page
        finally:
            browser.close()


def _shot_cards(views: list[CardView]) -> list[CardView]:
    """A few cards that show what the deck looks like: the first with display math, code, a figure."""
    chosen: list[CardView] = []
    for marker in ('<div class="arithmatex">', 'class="codehilite"', 'class="figure"'):
        found = next((view for view in views if marker in view.answer and view not in chosen), None)
        if found:
            chosen.append(found)
    chosen += [view for view in views if view not in chosen][:SHOT_COUNT - len(chosen)]
    return chosen[:SHOT_COUNT]


SHOT_PAGE_JS = """
([card, ordinal, page, height]) => {
  // As on the phone: the page around the card has the app's colour (AnkiDroid's night page is black) and the card
  // is at least one screen tall, as the note type's CSS makes it in Anki.
  document.documentElement.style.background = page;
  document.body.style.background = page;
  document.querySelector(".toolbar").style.display = "none";   // a phone shows the card alone
  const side = ankideckPreview.sides.find(s => s.host.dataset.card === card && s.host.dataset.ord === String(ordinal)
                                          && s.host.dataset.face === "back");
  side.body.style.minHeight = height + "px";
  side.host.scrollIntoView();
  const box = side.host.getBoundingClientRect();
  return { x: box.left + window.scrollX, y: box.top + window.scrollY, width: box.width, height: box.height };
}
"""
SHOT_PAGES = {"light": "#ffffff", "night": "#000000"}   # the night shot sits on AnkiDroid's black page


def take_screenshots(index: Path, folder: Path, views: list[CardView]) -> list[Path]:
    """A phone screen (390 px wide, at least 844 tall) of each card's back (which shows the front too) per mode:
    ``ID-ORD-light.png``, ``ID-ORD-night.png``."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    with open_preview(index) as page:
        for mode, colour in SHOT_PAGES.items():
            page.evaluate("document.querySelector('.toolbar').style.display = ''")
            page.set_checked("#night-mode", mode == "night")
            for view in views:
                box = page.evaluate(SHOT_PAGE_JS, [view.note.source.id, view.ordinal, colour, PHONE["height"]])
                path = folder / f"{view.note.source.id}-{view.ordinal}-{mode}.png"
                page.screenshot(path=str(path), full_page=True, clip=box)
                written.append(path)
    return written
