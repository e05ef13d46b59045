"""The facts that the note types' CSS, the figures, the sanitiser, the preview and the render check must agree on.

Anki shows a card in night mode by putting a class on an ancestor of the card: ``nightMode`` (desktop, AnkiMobile)
or ``night_mode`` (AnkiDroid). A figure is drawn twice, once per variant, on the background of the mode it is shown
in; the CSS shows the light variant by day and the dark one at night.
"""
from __future__ import annotations

NIGHT_CLASSES = ("nightMode", "night_mode")   # Anki desktop / AnkiMobile, AnkiDroid
VARIANTS = ("light", "dark")                  # each figure's images, in this order in the field
MODE_VARIANT = {"light": "light", "night": "dark"}  # the figure variant each display mode shows
LIGHT_BACKGROUND = "#ffffff"
DARK_BACKGROUND = "#2f2f31"  # Anki's night-mode card background: the dark figures' and the night card's


def figure_class(variant: str) -> str:
    """The CSS class of a figure's image in ``variant``."""
    return f"fig-{variant}"


def night(*selectors: str) -> str:
    """A CSS selector list: each of ``selectors`` (with ``{night}`` for the class) for every night-mode class."""
    return ", ".join(selector.format(night=name) for selector in selectors for name in NIGHT_CLASSES)
