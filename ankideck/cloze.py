"""Cloze deletions as Anki reads them: ``{{cN::`` opens one, the next ``}}`` closes it.

Checked on the rendered Text field (after the renderer has turned ``}}`` inside TeX into ``} }``), so what is judged
is exactly what Anki will parse. A deletion inside another (``{{c1::a {{c2::b}} }}``) or one never closed
(``{{c1::abc``) makes a note with a missing card, or none: both are problems.
"""
from __future__ import annotations

import re

TOKEN_RE = re.compile(r"\{\{c(\d+)::|\}\}")


def cloze_problems(html: str) -> list[tuple[str, str]]:
    """(text to locate in the source, message) for each nested or unclosed deletion."""
    problems = []
    open_marker = None
    for match in TOKEN_RE.finditer(html):
        if match.group(1) is not None:
            marker = match.group(0)
            if open_marker is not None:
                problems.append((marker, f"cloze deletion {marker} is inside {open_marker}...}}}}; Anki does not "
                                         "make a card for it: close the first deletion before opening the next"))
            else:
                open_marker = marker
        elif open_marker is not None:
            open_marker = None
    if open_marker is not None:
        problems.append((open_marker, f"cloze deletion {open_marker} is never closed with '}}}}'"))
    return problems
