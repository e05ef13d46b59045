"""``build.py new``: append a card with a fresh, unique id to a card file (created if missing)."""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from . import lockfile
from .config import Config
from .errors import AnkideckError, Problems
from .parse import CARD_RE, ID_RE, decode
from .sources import card_files

BASIC_BODY = "# card: {id}\n\n## Front\n\n...\n\n## Back\n\n...\n\n## Extra\n\n"
CLOZE_BODY = "# cloze: {id}\n\n{{{{c1::...}}}}\n\n## Extra\n\n"   # parse.NEW_PLACEHOLDERS: must be filled in


@dataclass
class NewCard:
    id: str
    path: Path
    line: int     # of its "# card:" header


def new_card(config: Config, file: Path, cloze: bool = False, card_id: str | None = None) -> NewCard:
    """Append a card scaffold to ``file``. Its id is ``card_id``, or a fresh one made from the file's name.

    Raises AnkideckError when ``file`` is no .md file inside the cards folder or ``card_id`` is invalid or taken,
    BuildError when the lock file or ``file`` cannot be read (a file this tool cannot read back exactly is never
    rewritten).
    """
    if not file.resolve().is_relative_to(config.cards_dir.resolve()) or file.suffix != ".md":
        raise AnkideckError(f"{file.as_posix()} is not a .md file inside the cards folder "
                            f"({config.rel(config.cards_dir)}/): a card there would never be built")
    problems = Problems()
    used = _ids_in_use(config, file, problems)
    problems.raise_if_any()
    if card_id is None:
        stem = re.sub(r"[^a-z0-9]+", "-", file.stem.lower()).strip("-") or "card"
        while card_id is None or card_id in used:
            card_id = f"{stem}-{secrets.token_hex(3)}"  # fresh: random, then checked against every id in use
    elif card_id.casefold() in {used_id.casefold() for used_id in used}:
        raise AnkideckError(f"card id {card_id!r} is already used")
    elif not ID_RE.match(card_id):
        raise AnkideckError(f"card id {card_id!r} is not valid: use letters, digits, '.', '_' and '-'")

    text = ""
    if file.is_file():
        text = decode(file.read_bytes(), config.rel(file), problems)
        if text is None:
            problems.raise_if_any()
    if text and not text.endswith("\n"):
        text += "\n"
    prefix = "\n" if text else ""
    line = text.count("\n") + 1 + len(prefix)
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(text + prefix + (CLOZE_BODY if cloze else BASIC_BODY).format(id=card_id), "utf-8")
    return NewCard(card_id, file, line)


def _ids_in_use(config: Config, file: Path, problems: Problems) -> set[str]:
    """Every card id in the card files and ``file``, and in the lock file: removed cards stay there as tombstones,
    because their ids still name notes in people's collections."""
    used = set()
    for path in card_files(config) + ([file] if file.is_file() else []):
        for line in path.read_text("utf-8", errors="replace").splitlines():
            match = CARD_RE.match(line)
            if match:
                used.add(match.group(2))
    return used | set(lockfile.load(config.lock_path, config.rel(config.lock_path), problems).notes)
