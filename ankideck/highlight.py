"""Code highlighting with pygments' CSS classes, keeping cloze markers inside code working."""
from __future__ import annotations

import html
from functools import lru_cache

from pygments.lexers import get_lexer_by_name
from pygments.token import STANDARD_TYPES, Whitespace
from pygments.util import ClassNotFound

from .cloze import DELETION_RE
from .lexing import dispatching


@lru_cache(maxsize=None)
def _lexer(language: str):
    try:
        # stripnl/ensurenl off: token offsets must match the text exactly, for the cloze markers.
        return dispatching(get_lexer_by_name(language or "text", stripnl=False, ensurenl=False))
    except ClassNotFound:
        return None


@lru_cache(maxsize=None)
def _css_class(token_type) -> str:
    """The class of a token's span; "" (no span) for whitespace, whose class only sets a colour."""
    if token_type in Whitespace:
        return ""
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
    run_css, run = "", []  # the open run of text of one class: one span for it (fewer spans, the same colours)

    def close_run() -> None:
        if run:
            escaped = html.escape("".join(run), quote=False)
            out.append(f'<span class="{run_css}">{escaped}</span>' if run_css else escaped)
            run.clear()

    cuts = sorted(inserts)
    past_the_end = len(text) + 1
    cut_index, start = 0, 0
    next_cut = cuts[0] if cuts else past_the_end
    for token_type, value in tokens:
        css = _css_class(token_type) if token_type is not None else ""
        while value:
            if next_cut <= start:  # markers due before the rest of this token
                close_run()
                out.extend(inserts[next_cut])
                cut_index += 1
                next_cut = cuts[cut_index] if cut_index < len(cuts) else past_the_end
                continue
            # The token up to the next marker: all of it, for most code (no marker in it).
            chunk, value = (value[:next_cut - start], value[next_cut - start:]) if next_cut < start + len(value) \
                else (value, "")
            if css != run_css:
                close_run()
                run_css = css
            run.append(chunk)
            start += len(chunk)
    close_run()
    for cut in cuts[cut_index:]:
        out.extend(inserts[cut])
    return "".join(out), lexer is not None
