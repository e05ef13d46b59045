"""The render check: every card side of a deck, laid out in headless Chromium at phone size in light and night mode,
measured for what a phone reader would suffer, and reported as ``path:line: message`` problems.

What it measures (preview_assets/check.js): formulas, code and tables wider than their box (a box that scrolls
sideways hides its rest without a hint), raw list markers, MathJax errors, page overflow, broken images, figures in
the wrong variant or on a mismatched background, low text contrast, and answers taller than two screens with the
Extra closed (and a median above one). And once per deck: in night mode the card paints the whole screen, on a black
page (AnkiDroid) as on Anki desktop's.
"""
from __future__ import annotations

import statistics
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from .config import Config
from .errors import Problem
from .pipeline import gather
from .preview import ASSETS, PHONE, open_preview, write_plan_preview
from .theme import DARK_BACKGROUND, MODE_VARIANT, NIGHT_CLASSES, figure_class

CHECK_JS = (ASSETS / "check.js").read_text("utf-8")
MODES = ("light", "night")
MAX_SCREENS = 2          # no answer side (Extra closed) may be taller than this many screens
MEDIAN_SCREENS = 1       # and the median answer side fits one
# Pages a night-mode card may sit on: AnkiDroid's black, Anki desktop's (the card's own colour).
NIGHT_PAGES = ("#000000", DARK_BACKGROUND)


@dataclass
class Finding:
    """One problem on one card side, before it is located in the source."""
    card: str
    ordinal: int
    face: str
    mode: str
    kind: str
    reason: str
    needle: str = ""
    overflow: float = 0.0     # content width / box width, for ranking the worst offenders


@dataclass
class Report:
    problems: list[Problem]
    worst: list[Finding]      # the widest formula, code and table boxes first
    heights: list[float]      # answer sides, Extra closed, CSS px
    screen: int


def check_rendering(config: Config, progress: bool = False, files: tuple[str, ...] = ()) -> Report:
    """Build the preview in a scratch folder, open it, run the checks in both modes. Raises BuildError for bad input
    (like a build) and PreviewError when the browser or its driver is missing.

    ``files``: lay out only the cards of source files whose path contains one of these strings (and report only
    their problems); the median is then the median of those cards."""
    with tempfile.TemporaryDirectory(prefix="ankideck-render-") as scratch:
        plan = gather(config, only=files)
        index = write_plan_preview(plan, Path(scratch) / "preview", progress)
        findings: list[Finding] = []
        heights: dict[tuple[str, str], float] = {}
        page_errors: list[str] = []
        with open_preview(index, page_errors) as page:
            for mode in MODES:
                page.set_checked("#night-mode", mode == "night")
                result = page.evaluate(CHECK_JS, figure_class(MODE_VARIANT[mode]))
                for found in result["problems"]:
                    width, box = found.get("width") or 0, found.get("box") or 0
                    findings.append(Finding(found["card"], int(found["ord"]), found["face"], mode, found["kind"],
                                            found["reason"], found.get("needle") or "", width / box if box else 0))
                findings += figure_problems(result["figures"], mode)
                for entry in result["heights"]:
                    key = (entry["card"], entry["ord"])
                    heights[key] = max(heights.get(key, 0), entry["height"])
            findings += night_page_problems(page, config)
        findings += [Finding("", 0, "", "light", "page", error.replace(scratch, "PREVIEW")) for error in page_errors]
    cards = {note.source.id: note.source for note in plan.notes}
    screen = PHONE["height"]
    for (card_id, ordinal), height in heights.items():
        if height > MAX_SCREENS * screen:
            findings.append(Finding(card_id, int(ordinal), "back", "light", "height",
                                    f"answer {height / screen:.1f} screens tall with the Extra closed "
                                    f"(at most {MAX_SCREENS}): split the card or move detail to the Extra"))
    problems = _locate(findings, cards, config)
    values = sorted(heights.values())
    if values and statistics.median(values) > MEDIAN_SCREENS * screen:
        problems.append(Problem(config.rel(config.cards_dir), 0, f"the median answer is {statistics.median(values):.0f}"
                                f" px tall with the Extra closed, more than one {screen} px screen"))
    worst = sorted((f for f in findings if f.overflow), key=lambda f: -f.overflow)
    return Report(problems, worst, values, screen)


def _locate(findings: list[Finding], cards: dict, config: Config) -> list[Problem]:
    """One problem per card, kind and piece of source (a formula on the front shows on both sides and in both
    modes: it is one thing to fix)."""
    problems, seen = [], set()
    for finding in findings:
        card = cards.get(finding.card)
        key = (finding.card, finding.kind, finding.needle or finding.reason)
        if key in seen:
            continue
        seen.add(key)
        if card is None:   # the deck's own CSS, not a card
            problems.append(Problem(config.rel(config.cards_dir), 0, finding.reason))
            continue
        where = f"card {card.id}" + (f" {finding.ordinal}" if card.kind == "cloze" else "")
        mode = f", {finding.mode}" if finding.kind in ("contrast", "figure", "image") else ""
        line = card.line_of(finding.needle) if finding.needle else card.line
        problems.append(Problem(card.path, line, f"{finding.reason} ({where}{mode})"))
    return problems


def _contrast(a, b) -> float:
    def luminance(rgb):
        def channel(c):
            c /= 255
            return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
        r, g, b = (channel(c) for c in rgb[:3])
        return 0.2126 * r + 0.7152 * g + 0.0722 * b
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def figure_problems(figures: list[dict], mode: str) -> list[Finding]:
    """A figure's background must match the card's in that mode, and its darkest or lightest ink must read on it."""
    from PIL import Image  # matplotlib's own dependency

    findings = []
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
        ink = max(pixels, key=lambda rgb: _contrast(rgb, paper))
        card = tuple(figure["background"][:3])
        name = figure["src"].rsplit("/", 1)[-1]
        reasons = []
        if _contrast(paper, card) > 1.5:
            reasons.append(f"figure background rgb{paper} does not match the card's rgb{card}: {name}")
        if _contrast(ink, paper) < 4.5:
            reasons.append(f"figure ink rgb{ink} on rgb{paper} has contrast {_contrast(ink, paper):.2f} < 4.5: {name}")
        findings += [Finding(figure["card"], int(figure["ord"]), figure["face"], mode, "figure", reason, "fig:")
                     for reason in reasons]
    return findings


NIGHT_PAGE_JS = """
([css, page, night]) => {
  document.documentElement.style.background = page;     // what the app paints around the card
  document.head.append(Object.assign(document.createElement("style"), { textContent: css }));
  document.body.className = ["card", "card1", ...night].join(" ");
  document.body.innerHTML = '<div id="qa"><div class="front">短卡</div></div>';
}
"""


def night_page_problems(page, config: Config) -> list[Finding]:
    """In night mode a short card still paints the whole screen, whatever colour the app gives the page."""
    from .models import stylesheet

    findings = []
    context = page.context.browser.new_context(viewport=PHONE)
    probe = context.new_page()
    try:
        for colour in NIGHT_PAGES:
            probe.set_content("<!doctype html><html><head></head><body></body></html>")
            probe.evaluate(NIGHT_PAGE_JS, [stylesheet(config.cache_dir), colour, list(NIGHT_CLASSES)])
            shot = probe.screenshot()
            corner = _pixel(shot, PHONE["width"] - 2, PHONE["height"] - 2)
            if _contrast(corner, _hex(DARK_BACKGROUND)) > 1.05:
                findings.append(Finding("", 0, "", "night", "night-page",
                                        f"on a {colour} page a night-mode card leaves rgb{corner} at the screen's "
                                        f"edge, not {DARK_BACKGROUND}"))
    finally:
        context.close()
    return findings


def _hex(colour: str) -> tuple[int, int, int]:
    return tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))


def _pixel(png: bytes, x: int, y: int) -> tuple[int, int, int]:
    import io

    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        return image.convert("RGB").getpixel((x, y))
