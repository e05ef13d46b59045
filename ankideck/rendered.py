"""What rendering produces, without importing the renderer (a warm build never needs it).

Rendering (render.py) is a pure function of the Markdown text and the ``cloze`` flag, so its result can be cached by a
hash of both. Images are not resolved there: each becomes a placeholder ``ankideck-media:N`` that points into the
returned list of references (``file:<path as written>`` or ``fig:<name>:<variant>``); the build resolves them later.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

PLACEHOLDER_PREFIX = "ankideck-media:"
PLACEHOLDER = PLACEHOLDER_PREFIX + "{}"
PLACEHOLDER_RE = re.compile(re.escape(PLACEHOLDER_PREFIX) + r"(\d+)")
REMOTE_RE = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|//)", re.IGNORECASE)  # an image or link that is not a project file


@dataclass
class Rendered:
    html: str
    refs: list[str] = field(default_factory=list)        # what each ankideck-media:N placeholder stands for
    problems: list[tuple[str, str]] = field(default_factory=list)  # (text to locate in the source, message)
