"""The card sources: which files they are, their parsed cards without rendering, and the checks that span files."""
from __future__ import annotations

from pathlib import Path

from .config import Config, DeckInfo
from .errors import Problem, Problems
from .parse import NoteSource, parse_file


def card_files(config: Config) -> list[Path]:
    """The card sources: Markdown files whose real location is inside the cards folder, with UTF-8 names."""
    return [path for path in _all_card_files(config) if _source_problem(config, path) is None]


def _all_card_files(config: Config) -> list[Path]:
    return sorted(path for path in config.cards_dir.rglob("*.md") if path.is_file())


def _shown(config: Config, path: Path) -> str:
    return config.rel(path).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _source_problem(config: Config, path: Path) -> Problem | None:
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return Problem(_shown(config, path), 1, "file name is not valid UTF-8; rename the file")
    if not path.resolve().is_relative_to(config.cards_dir.resolve()):
        return Problem(f"{config.rel(path.parent)}/{path.name}", 1,
                       f"card file is a link to {path.resolve().as_posix()}, outside the cards "
                                            "folder; card sources must be inside it")
    return None


def source_problems(config: Config, problems: Problems) -> None:
    problems.extend(p for p in (_source_problem(config, path) for path in _all_card_files(config)) if p is not None)


def default_deck(config: Config, info: DeckInfo, path: Path) -> str:
    """Without front matter, a file's deck is the root deck plus its folders under the cards folder."""
    return "::".join((info.name, *path.parent.relative_to(config.cards_dir).parts))


def check_folder(config: Config, problems: Problems) -> bool:
    """Whether the cards folder exists (if not, a problem: nothing else can be checked)."""
    if not config.cards_dir.is_dir():
        problems.add(config.rel(config.cards_dir), 0, "cards folder not found")
        return False
    return True


def load_sources(config: Config, info: DeckInfo, problems: Problems) -> list[NoteSource]:
    """Parse every card file (no rendering) and run the checks that span files."""
    if not check_folder(config, problems):
        return []
    cards: list[NoteSource] = []
    for path in card_files(config):
        cards += parse_file(path, config.rel(path), default_deck(config, info, path), problems)
    source_problems(config, problems)
    cross_file_problems(config, info, cards, problems)
    return cards


def cross_file_problems(config: Config, info: DeckInfo, cards: list[NoteSource], problems: Problems) -> None:
    first_seen: dict[str, NoteSource] = {}
    for card in cards:
        # By case-folded id: Anki's "Id:" search and case-insensitive file systems see no case.
        first = first_seen.get(card.id.casefold())
        if first is not None and first.id == card.id:
            problems.add(card.path, card.line, f"duplicate card id '{card.id}' (first used at {first.location})")
        elif first is not None:
            problems.add(card.path, card.line, (
                f"duplicate card id '{card.id}': it differs only in case from '{first.id}' (first used at "
                f"{first.location}), and Anki's Id: search treats them as one; choose another id"))
        else:
            first_seen[card.id.casefold()] = card
        if card.guide is not None and info.guide and card.guide not in info.guide:
            problems.add(card.path, card.line,
                         f"unknown guide question '{card.guide}' (see {config.rel(config.guide_path)})")
