"""Where things are. Read from ``[tool.ankideck]`` in the project's pyproject.toml; CLI options override it."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from .errors import BuildError, Problem, Problems
from .parse import CONTROL_RE, control_problems, load_yaml, yaml_problem

DECK_FILE = "deck.yaml"         # in the cards folder: the root deck's name and description
GUIDE_FILE = "guide.yaml"       # in the cards folder, optional: the questions cards can point at
LOCK_FILE = "cards.lock.json"   # in the cards folder, committed: each note's content hash and mod time


@dataclass(frozen=True)
class Config:
    root: Path            # project root: images must stay inside it
    cards_dir: Path
    out: Path
    figures_dir: Path     # a Python package with a FIGURES registry; may be absent
    cache_dir: Path

    @property
    def lock_path(self) -> Path:
        return self.cards_dir / LOCK_FILE

    @property
    def guide_path(self) -> Path:
        return self.cards_dir / GUIDE_FILE

    def rel(self, path: Path) -> str:
        """A path as the user should see it in messages: relative to the project root where possible."""
        try:
            return path.resolve().relative_to(self.root).as_posix()
        except ValueError:
            return path.as_posix()


def find_root(start: Path) -> Path:
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / "pyproject.toml").is_file():
            return folder
    return start


def load_config(cwd: Path | None = None, cards: Path | None = None, out: Path | None = None) -> Config:
    root = find_root(cwd or Path.cwd())
    settings: dict = {}
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        try:
            settings = tomllib.loads(pyproject.read_text("utf-8")).get("tool", {}).get("ankideck", {})
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise BuildError([Problem("pyproject.toml", 1, f"cannot read [tool.ankideck]: {e}")])
    config = Config(
        root=root,
        cards_dir=root / settings.get("cards", "cards"),
        out=root / settings.get("out", "dist/deck.apkg"),
        figures_dir=root / settings.get("figures", "figures"),
        cache_dir=root / settings.get("cache", ".cache/ankideck"),
    )
    if cards is not None:
        config = replace(config, cards_dir=(Path.cwd() / cards).resolve())
    if out is not None:
        config = replace(config, out=(Path.cwd() / out).resolve())
    return config


@dataclass(frozen=True)
class DeckInfo:
    name: str
    description: str
    namespace: str         # salt of every note GUID: set once, never changed (GUID = hash(namespace, card id))
    guide: dict[str, str]  # question id -> question text, in the guide's order


def load_deck_info(config: Config, problems: Problems) -> DeckInfo:
    """Read deck.yaml and guide.yaml from the cards folder (both optional)."""
    deck = _load_yaml(config, config.cards_dir / DECK_FILE, dict, problems) or {}
    guide: dict[str, str] = {}
    for i, item in enumerate(_load_yaml(config, config.guide_path, list, problems) or []):
        if not (isinstance(item, dict) and "id" in item and "question" in item):
            problems.add(config.rel(config.guide_path), 1, f"entry {i + 1} needs 'id' and 'question'")
            continue
        question = str(item["question"])
        bad = CONTROL_RE.search(question + str(item["id"]))
        if bad:  # written as a YAML escape ("\x1f"): still a control character in the field
            problems.add(config.rel(config.guide_path), 1,
                         f"entry {i + 1}: control character U+{ord(bad.group()[0]):04X} is not allowed (only tab and "
                         "newline)")
            continue
        guide[str(item["id"])] = question
    return DeckInfo(name=str(deck.get("name", "Deck")), description=str(deck.get("description", "")),
                    namespace=str(deck.get("namespace", "ankideck")), guide=guide)


def deck_yaml_line(config: Config, key: str) -> tuple[str, int]:
    """Where deck.yaml sets ``key`` (its first line if nowhere), for messages: (path as shown, line)."""
    path = config.cards_dir / DECK_FILE
    try:
        lines = path.read_text("utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        lines = []
    return config.rel(path), next((i for i, line in enumerate(lines, 1) if line.startswith(f"{key}:")), 1)


def _load_yaml(config: Config, path: Path, kind: type, problems: Problems):
    if not path.is_file():
        return None
    where = config.rel(path)
    try:
        text = path.read_text("utf-8")
    except UnicodeDecodeError:
        problems.add(where, 1, "not valid UTF-8")
        return None
    if control_problems(text, where, problems):  # the guide's questions become field text
        return None
    try:
        data = load_yaml(text)
    except yaml.YAMLError as e:
        problems.append(yaml_problem(e, where, text, 1, "bad YAML"))
        return None
    if data is not None and not isinstance(data, kind):
        problems.add(where, 1, f"expected a YAML {kind.__name__}")
        return None
    return data
