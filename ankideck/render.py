"""What rendering produces and depends on, without importing the renderer (a warm build never needs it).

The renderer itself, Python-Markdown and its extensions, is in markdown_extensions.py. Rendering is a pure function of the Markdown text and the ``cloze`` flag, so its result can be cached by a hash of
both. Images are not resolved here: each becomes a placeholder ``ankideck-media:N`` that points into the returned
list of references (``file:<path as written>`` or ``fig:<name>:<variant>``); the build resolves them later.
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import metadata

from .cloze import DELETION_RE


# Bump when the HTML this module produces changes, so cached renders are thrown away.
RENDERER_REVISION = 7

PLACEHOLDER = "ankideck-media:{}"
PLACEHOLDER_RE = re.compile(r"ankideck-media:(\d+)")
FIGURE_VARIANTS = ("light", "dark")
REMOTE_RE = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|//)", re.IGNORECASE)
CLOSE_BRACES_RE = re.compile(r"\}(?=\})")


def renderer_version() -> str:
    """Everything the rendered HTML depends on besides the text: the cache key's salt."""
    libraries = ",".join(f"{name}={metadata.version(name)}" for name in ("markdown", "pymdown-extensions", "pygments"))
    return f"ankideck-render-{RENDERER_REVISION};{libraries}"


@dataclass
class Rendered:
    html: str
    refs: list[str] = field(default_factory=list)        # what each ankideck-media:N placeholder stands for
    problems: list[tuple[str, str]] = field(default_factory=list)  # (text to locate in the source, message)


# --- code ---------------------------------------------------------------------------------------------------------

@lru_cache(maxsize=None)
def _lexer(language: str):
    from pygments.lexers import get_lexer_by_name
    from pygments.util import ClassNotFound

    try:
        # stripnl/ensurenl off: token offsets must match the text exactly, for the cloze markers.
        return get_lexer_by_name(language or "text", stripnl=False, ensurenl=False)
    except ClassNotFound:
        return None


@lru_cache(maxsize=None)
def _css_class(token_type) -> str:
    from pygments.token import STANDARD_TYPES

    while token_type not in STANDARD_TYPES:
        token_type = token_type.parent
    return STANDARD_TYPES[token_type]


def highlight(code: str, language: str) -> tuple[str, bool]:
    """Highlight ``code`` into ``<span class=..>`` HTML (pygments' class names), keeping cloze markers working.

    Cloze markers are lifted out before lexing and put back between tokens, splitting a token where a marker falls
    inside it, so every span stays balanced inside a deletion. Returns (html, whether the language is known).
    """
    lexer = _lexer(language)
    plain: list[str] = []
    inserts: dict[int, list[str]] = {}
    offset = position = 0
    for match in DELETION_RE.finditer(code):
        before = code[position:match.start()]
        plain.append(before)
        offset += len(before)
        inserts.setdefault(offset, []).append("{{c%s::" % match.group(1))
        plain.append(match.group(2))
        offset += len(match.group(2))
        hint = match.group(3)
        inserts.setdefault(offset, []).append(("::" + html.escape(hint, quote=False) if hint else "") + "}}")
        position = match.end()
    plain.append(code[position:])
    text = "".join(plain)

    tokens = lexer.get_tokens(text) if lexer is not None else [(None, text)]
    out: list[str] = []
    cuts = sorted(inserts)
    cut_index = 0
    start = 0
    for token_type, value in tokens:
        css = _css_class(token_type) if token_type is not None else ""
        end = start + len(value)
        while value:
            # Emit markers due at ``start``, then the part of the token up to the next marker.
            while cut_index < len(cuts) and cuts[cut_index] <= start:
                out.extend(inserts[cuts[cut_index]])
                cut_index += 1
            limit = cuts[cut_index] if cut_index < len(cuts) and cuts[cut_index] < end else end
            chunk, value = value[:limit - start], value[limit - start:]
            escaped = html.escape(chunk, quote=False)
            out.append(f'<span class="{css}">{escaped}</span>' if css else escaped)
            start = limit
    for cut in cuts[cut_index:]:
        out.extend(inserts[cut])
    return "".join(out), lexer is not None
