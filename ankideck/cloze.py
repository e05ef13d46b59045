"""The cloze grammar, as Anki reads it (rslib/src/cloze.rs): ``{{cN::`` opens a deletion, the next ``}}`` closes it,
and ``::`` inside it starts the hint. The parser, the renderer, the checks and the preview all use these.

The checks run on the rendered Text field (after the renderer has turned ``}}`` inside TeX into ``} }``), so what is
judged is exactly what Anki will parse. A deletion inside another (``{{c1::a {{c2::b}} }}``) or one never closed
(``{{c1::abc``) makes a note with a missing card, or none: both are problems.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

OPEN = r"\{\{c(\d+)::"
CLOSE = r"\}\}"
HINT = "::"
OPEN_RE = re.compile(OPEN)                     # group 1: the number
TOKEN_RE = re.compile(f"{OPEN}|{CLOSE}")       # an opening (group 1 set) or a closing
# One whole deletion that holds no other: group 1 the number, 2 the answer, 3 the hint (or None).
DELETION_RE = re.compile(rf"{OPEN}(.*?)(?:{HINT}([^{{}}]*?))?{CLOSE}", re.DOTALL)
MAX_DEPTH = 10   # Anki ignores deeper openings


@dataclass
class Cloze:
    ordinal: int
    nodes: list = field(default_factory=list)   # str | Cloze
    hint: str | None = None


def parse(text: str) -> list:
    """Text -> a list of strings and (nested) clozes, as Anki parses it. A ``}}`` outside any cloze is text; an
    unclosed cloze is dropped, as Anki drops it."""
    output: list = []
    open_clozes: list[Cloze] = []

    def add_text(chunk: str) -> None:
        if not chunk:
            return
        if open_clozes:
            cloze = open_clozes[-1]
            head, separator, hint = chunk.partition(HINT)
            if separator:
                chunk, cloze.hint = head, hint
            cloze.nodes.append(chunk)
        else:
            output.append(chunk)

    position = 0
    for match in TOKEN_RE.finditer(text):
        add_text(text[position:match.start()])
        position = match.end()
        if match.group(1) is not None:
            if len(open_clozes) < MAX_DEPTH:
                open_clozes.append(Cloze(int(match.group(1))))
        elif open_clozes:
            cloze = open_clozes.pop()
            (open_clozes[-1].nodes if open_clozes else output).append(cloze)
        else:
            output.append("}}")
    add_text(text[position:])
    return output


def numbers(text: str) -> list[int]:
    """The card numbers a cloze field makes, in order (nested clozes included, c0 excluded)."""
    found: set[int] = set()

    def visit(nodes) -> None:
        for node in nodes:
            if isinstance(node, Cloze) and node.ordinal:
                found.add(node.ordinal)
                visit(node.nodes)

    visit(parse(text))
    return sorted(found)


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
