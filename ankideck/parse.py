"""Card files -> NoteSource records (one per note). Pure text work: no Markdown rendering, no file writes.

Grammar (see docs/card-format.md): optional YAML front matter; then cards, each starting with ``# card: ID`` or
``# cloze: ID`` outside code fences, an optional block of ``key: value`` metadata lines, and ``## Front`` /
``## Back`` / ``## Extra`` / ``## Text`` sections.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .cloze import OPEN_RE as CLOZE_OPEN_RE
from .errors import Problem, Problems
from .fences import FENCE_OPEN_RE, closes, fenced

CARD_RE = re.compile(r"^#\s+(card|cloze):\s*(.*?)\s*$")
SECTION_RE = re.compile(r"^##\s+(.*?)\s*#*\s*$")
HEADING1_RE = re.compile(r"^#(\s|$)")
META_RE = re.compile(r"^([a-z_]+):(\s|$)")
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
SCRIPT_RE = re.compile(r"<\s*script\b", re.IGNORECASE)
# Control characters break Anki (U+001F is its field separator: one makes the whole deck unimportable); tab and
# line ends are the only ones a card needs. U+2028/9 would split lines differently for Python and for editors.
CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]|\r(?!\n)")
# Python-Markdown's inline parsing is quadratic in a paragraph's length (a 200 kB paragraph takes a second, 5 MB
# minutes): a card longer than this is refused instead of hanging the build. Real cards are a few kB.
MAX_CARD_CHARS = 50_000
DISPLAY_DOLLARS_RE = re.compile(r"(?<!\\)\$\$")
INLINE_CODE_RE = re.compile(r"(`+).+?\1")
# libyaml's loader when PyYAML was built with it: about 20 times faster on thousands of small metadata blocks.
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

FILE_KEYS = {"deck", "tags", "guide"}
CARD_KEYS = {"tags", "guide"}
SECTIONS = {"basic": ("Front", "Back", "Extra"), "cloze": ("Text", "Extra")}
REQUIRED = {"basic": ("Front", "Back"), "cloze": ("Text",)}


@dataclass
class Section:
    text: str
    line: int  # line of the section's first content line


@dataclass
class NoteSource:
    """One ``# card:`` or ``# cloze:`` block of a card file: the source of one Anki note (of one or more cards)."""

    id: str
    kind: str                 # "basic" or "cloze"
    path: str                 # source file, relative to the project root
    line: int                 # line of the "# card:" header
    deck: str
    tags: tuple[str, ...]
    guide: str | None
    sections: dict[str, Section] = field(default_factory=dict)

    @property
    def location(self) -> str:
        return f"{self.path}:{self.line}"

    @property
    def card_count(self) -> int:
        """How many cards Anki makes from this note: one, or one per cloze number."""
        return 1 if self.kind == "basic" else len(set(CLOZE_OPEN_RE.findall(self.text("Text"))))

    def text(self, name: str) -> str:
        section = self.sections.get(name)
        return section.text if section else ""

    def line_of(self, needle: str) -> int:
        """The source line where ``needle`` first occurs in this card (for error messages)."""
        for section in self.sections.values():
            index = section.text.find(needle)
            if index >= 0:
                return section.line + section.text.count("\n", 0, index)
        return self.line


def load_yaml(text: str):
    return yaml.load(text, Loader=YAML_LOADER)


def yaml_problem(error: yaml.YAMLError, where: str, text: str, first_line: int, what: str) -> Problem:
    """A YAML syntax error in ``text`` (which starts at ``first_line`` of ``where``), at the line it names.

    libyaml marks an unclosed construct at the end of the input: the line is kept inside the text.
    """
    mark = getattr(error, "problem_mark", None)
    line = min(first_line + (mark.line if mark else 0), first_line + text.count("\n"))
    return Problem(where, line, f"{what}: {getattr(error, 'problem', None) or error}")


def decode(data: bytes, where: str, problems: Problems) -> str | None:
    """A card file's text, or None (with the problem) when it is not UTF-8; control characters are problems."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        problems.add(where, line, f"not valid UTF-8 (byte 0x{data[e.start]:02x}); save the file as UTF-8")
        return None
    text = text.removeprefix("\ufeff")
    control_problems(text, where, problems)
    return text


def control_problems(text: str, where: str, problems: Problems) -> bool:
    """One problem per line that holds a control character other than tab and the line end; whether any did."""
    last_line = 0
    for match in CONTROL_RE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        if line != last_line:
            problems.add(where, line, f"control character U+{ord(match.group()[0]):04X} is not allowed "
                                      "in cards (only tab and newline); Anki would refuse the deck")
            last_line = line
    return last_line != 0


def parse_text(text: str, where: str, default_deck: str, problems: Problems) -> list[NoteSource]:
    """Parse one card file. ``where`` is its path for messages; ``default_deck`` applies without front matter."""
    lines = text.splitlines()

    def problem(line: int, message: str) -> None:
        problems.add(where, line, message)

    meta, body_start = _front_matter(lines, where, problems)
    deck = meta.get("deck", default_deck)
    if not isinstance(deck, str) or not deck.strip() or any(not part.strip() for part in deck.split("::")):
        problem(1, f"front matter 'deck' must be a name like 'A::B', not {deck!r}")
        deck = default_deck
    file_tags = _tags(meta.get("tags"), 1, problem)
    file_guide = meta.get("guide")

    cards: list[NoteSource] = []
    card: NoteSource | None = None
    section_name: str | None = None
    section_lines: list[str] = []
    section_start = 0
    in_meta = False
    meta_lines: list[tuple[int, str]] = []
    fence: tuple[str, int] | None = None  # (fence marker, line it opened on)
    stray_text_card: NoteSource | None = None

    def close_section() -> None:
        if card is not None and section_name is not None:
            if section_name in card.sections:
                problem(section_start - 1, f"section '{section_name}' appears twice in card '{card.id}'")
            content = "\n".join(section_lines).strip("\n")
            first = next((i for i, text in enumerate(section_lines) if text.strip()), 0)
            card.sections[section_name] = Section(content, section_start + first)

    def finish_meta() -> None:
        nonlocal in_meta
        in_meta = False
        if card is not None and meta_lines:
            _card_meta(card, meta_lines, where, problems, file_guide)

    for number, line in enumerate(lines[body_start:], start=body_start + 1):
        if fence is not None and CARD_RE.match(line):
            # An unclosed fence would swallow every later card: stop it at the next card header, and say so.
            problem(fence[1], f"code fence {fence[0]} is never closed (still open at the card header on line "
                              f"{number})")
            fence = None
        if fence is not None:
            if closes(line, fence[0]):
                fence = None
            section_lines.append(line)
            continue
        opened = FENCE_OPEN_RE.match(line)
        if opened:
            if in_meta:
                finish_meta()
            fence = (opened.group("fence"), number)
            if card is None:
                problem(number, "text outside a card: start a card with '# card: ID' or '# cloze: ID'")
            section_lines.append(line)
            continue

        header = CARD_RE.match(line)
        if header:
            if in_meta:
                finish_meta()
            close_section()
            kind = "basic" if header.group(1) == "card" else "cloze"
            card_id = header.group(2)
            if not card_id:
                problem(number, f"missing card id after '# {header.group(1)}:'")
            elif not ID_RE.match(card_id):
                problem(number, f"bad card id {card_id!r}: use letters, digits, '.', '_' and '-'")
            card = NoteSource(card_id, kind, where, number, deck, file_tags,
                        str(file_guide) if file_guide is not None else None)
            cards.append(card)
            section_name = "Text" if kind == "cloze" else None
            section_lines, section_start = [], number + 1
            in_meta, meta_lines = True, []
            continue
        if HEADING1_RE.match(line):
            problem(number, "a level-1 heading must be '# card: ID' or '# cloze: ID' (use '###' inside cards)")
            continue

        if in_meta:
            if META_RE.match(line):
                meta_lines.append((number, line))
                continue
            finish_meta()
            section_start = number
            if not line.strip():
                section_start = number + 1
                continue

        if line.startswith("## "):
            heading = SECTION_RE.match(line).group(1)
            if card is None:
                problem(number, "section heading outside a card")
                continue
            close_section()
            if heading not in SECTIONS[card.kind]:
                allowed = ", ".join(f"'## {s}'" for s in SECTIONS[card.kind])
                problem(number, f"unknown section '## {heading}' in a {card.kind} card (allowed: {allowed}; "
                                "use '###' for headings inside a card)")
                section_name = None
            else:
                section_name = heading
            section_lines, section_start = [], number + 1
            continue

        if card is None:
            if line.strip():
                problem(number, "text outside a card: start a card with '# card: ID' or '# cloze: ID'")
            continue
        if section_name is None and line.strip() and card.kind == "basic":
            if stray_text_card is not card:  # once per card: a card without headings is one mistake, not many
                problem(number, f"text outside '## Front' / '## Back' / '## Extra' in card '{card.id}'")
                stray_text_card = card
            continue
        if SCRIPT_RE.search(line):
            problem(number, "raw <script> is not allowed in cards")
        section_lines.append(line)

    if in_meta:
        finish_meta()
    if fence is not None:
        problem(fence[1], f"code fence {fence[0]} is never closed")
    close_section()

    for card in cards:
        _check_card(card, problem)
    return cards


def parse_file(path: Path, where: str, default_deck: str, problems: Problems) -> list[NoteSource]:
    text = decode(path.read_bytes(), where, problems)
    if text is None:
        return []
    return parse_text(text, where, default_deck, problems)


def _front_matter(lines: list[str], where: str, problems: Problems) -> tuple[dict, int]:
    def problem(line: int, message: str) -> None:
        problems.add(where, line, message)

    if not lines or lines[0].strip() != "---":
        return {}, 0
    for end in range(1, len(lines)):
        if lines[end].strip() in ("---", "..."):
            break
    else:
        problem(1, "front matter opened with '---' is never closed")
        return {}, len(lines)
    text = "\n".join(lines[1:end])
    try:
        meta = load_yaml(text) or {}
    except yaml.YAMLError as e:
        problems.append(yaml_problem(e, where, text, 2, "bad front matter"))
        return {}, end + 1
    if not isinstance(meta, dict):
        problem(1, "front matter must be a YAML mapping (key: value lines)")
        return {}, end + 1
    for key in sorted(set(meta) - FILE_KEYS):
        line = next((i + 1 for i, text in enumerate(lines[:end]) if text.startswith(f"{key}:")), 1)
        problem(line, f"unknown front matter key '{key}' (allowed: {', '.join(sorted(FILE_KEYS))})")
    return meta, end + 1


def _card_meta(card: NoteSource, meta_lines: list[tuple[int, str]], where: str, problems: Problems, file_guide) -> None:
    def problem(line: int, message: str) -> None:
        problems.add(where, line, message)

    first = meta_lines[0][0]
    text = "\n".join(line for _, line in meta_lines)
    try:
        meta = load_yaml(text) or {}
    except yaml.YAMLError as e:
        problems.append(yaml_problem(e, where, text, first, "bad card metadata"))
        return
    for number, line in meta_lines:
        key = META_RE.match(line).group(1)
        if key not in CARD_KEYS:
            problem(number, f"unknown card key '{key}' (allowed: {', '.join(sorted(CARD_KEYS))})")
    card.tags = tuple(dict.fromkeys(card.tags + _tags(meta.get("tags"), first, problem)))
    if meta.get("guide") is not None:
        card.guide = str(meta["guide"])


def _tags(value, line: int, problem) -> tuple[str, ...]:
    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    tags = []
    for item in items:
        tag = str(item).strip()
        if not tag or any(c.isspace() for c in tag):
            problem(line, f"bad tag {tag!r}: tags cannot be empty or contain spaces (use '_' or '::')")
        else:
            tags.append(tag)
    return tuple(tags)


# What `build.py new` writes into a fresh card: a card still holding it must not ship.
NEW_PLACEHOLDERS = frozenset({"...", "{{c1::...}}"})


def card_size(card: NoteSource) -> int:
    return sum(len(section.text) for section in card.sections.values())


def _check_card(card: NoteSource, problem) -> None:
    size = card_size(card)
    if size > MAX_CARD_CHARS:
        problem(card.line, f"card '{card.id}' is {size:,} characters long; the limit is {MAX_CARD_CHARS:,} "
                           "(split it into several cards)")
    for name in REQUIRED[card.kind]:
        if not card.text(name).strip():
            where = card.sections[name].line - 1 if name in card.sections else card.line
            what = "front" if name == "Front" else "back" if name == "Back" else "text"
            problem(where, f"card '{card.id}' has an empty {what}" + (
                "" if name in card.sections else f" (no '## {name}' section)" if card.kind == "basic" else ""))
        elif card.text(name).strip() in NEW_PLACEHOLDERS:
            what = "front" if name == "Front" else "back" if name == "Back" else "text"
            problem(card.sections[name].line, f"card '{card.id}' still has the placeholder "
                                              f"{card.text(name).strip()!r} that 'new' wrote: write its {what}")
    clozes = [int(n) for section in card.sections.values() for n in CLOZE_OPEN_RE.findall(section.text)]
    if card.kind == "cloze" and card.text("Text").strip():
        if not CLOZE_OPEN_RE.search(card.text("Text")):
            problem(card.line, f"cloze card '{card.id}' has no cloze deletion like {{{{c1::...}}}}; "
                               "Anki would make no card from it")
        elif 0 in clozes:
            problem(card.line_of("{{c0::"), "cloze numbers start at 1 ({{c0::...}} makes no card)")
    if card.kind == "basic" and clozes:
        problem(card.line_of("{{c"), f"cloze marker in basic card '{card.id}': start it with '# cloze: {card.id}'")
    for name, section in card.sections.items():
        _check_display_math(section, problem)


def _check_display_math(section: Section, problem) -> None:
    """Report a ``$$`` that is never closed (outside code), at the line where it opens."""
    open_line = None
    lines = section.text.split("\n")
    for offset, (line, in_code) in enumerate(zip(lines, fenced(lines))):
        if in_code:
            continue
        for _ in DISPLAY_DOLLARS_RE.finditer(INLINE_CODE_RE.sub("", line)):
            open_line = None if open_line is not None else section.line + offset
    if open_line is not None:
        problem(open_line, "display math '$$' is never closed")
