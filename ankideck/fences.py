"""The one code-fence grammar (CommonMark's), shared by the parser, the renderer and every check that must skip code.

A fence opens with three or more backticks or tildes, indented at most three spaces; a backtick fence's info string
has no backtick in it (```` ```x`y ```` is prose). It closes at a line of the same character, at least as long, with
nothing else on it. Inside a fence nothing is Markdown, math or a card header.
"""
from __future__ import annotations

import re

FENCE_OPEN_RE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`]*?)[ \t]*$")


def closes(line: str, fence: str) -> bool:
    """Whether ``line`` closes a fence opened with ``fence`` (e.g. "````")."""
    stripped = line.strip()
    return stripped.startswith(fence) and not stripped.strip(fence[0])


def fenced(lines: list[str]) -> list[bool]:
    """For each line, whether it belongs to a code fence (its opening and closing lines included)."""
    marks: list[bool] = []
    fence = None
    for line in lines:
        if fence is not None:
            marks.append(True)
            if closes(line, fence):
                fence = None
            continue
        opened = FENCE_OPEN_RE.match(line)
        if opened:
            fence = opened.group("fence")
        marks.append(opened is not None)
    return marks
