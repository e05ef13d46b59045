"""The project's settings: where things are (``[tool.ankideck]`` in pyproject.toml, overridden by CLI options), and
the deck's own (deck.yaml and guide.yaml in the cards folder)."""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from .errors import BuildError, Problem, Problems
from .parse import CONTROL_RE, control_problems, load_yaml, yaml_problem

DECK_FILE = "deck.yaml"         # in the cards folder: the root deck's name and description
GUIDE_FILE = "guide.yaml"       # in the cards folder, optional: the questions cards can point at
LOCK_FILE = "cards.lock.json"   # in the cards folder, committed: each note's content hash and mod time
PYPROJECT = "pyproject.toml"
DEFAULTS = {"cards": "cards", "out": "dist/deck.apkg", "figures": "figures", "cache": ".cache/ankideck"}
TABLE_RE = re.compile(r"^\s*\[")


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

    def resolve(self, path: Path) -> Path:
        """A path the user gave (a setting or an option): relative to the project root unless absolute."""
        return (self.root / path).resolve()


def find_root(start: Path) -> Path:
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / "pyproject.toml").is_file():
            return folder
    return start


def load_config(cwd: Path | None = None, cards: Path | None = None, out: Path | None = None) -> Config:
    """The settings of the project around ``cwd`` (default: the working directory). ``cards`` and ``out`` override
    theirs; like every path in the settings, they are relative to the project root unless absolute.

    Raises BuildError for an unreadable pyproject.toml, an unknown key in ``[tool.ankideck]`` or a value that is no
    path, each at its line."""
    root = find_root(cwd or Path.cwd())
    settings = _settings(root / PYPROJECT)
    config = Config(root=root, cards_dir=root / settings["cards"], out=root / settings["out"],
                    figures_dir=root / settings["figures"], cache_dir=root / settings["cache"])
    if cards is not None:
        config = replace(config, cards_dir=config.resolve(cards))
    if out is not None:
        config = replace(config, out=config.resolve(out))
    return config


def _settings(pyproject: Path) -> dict[str, str]:
    """``[tool.ankideck]`` over the defaults."""
    if not pyproject.is_file():
        return dict(DEFAULTS)
    try:
        text = pyproject.read_text("utf-8")
        table = tomllib.loads(text).get("tool", {}).get("ankideck", {})
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        line = int(found.group(1)) if (found := re.search(r"at line (\d+)", str(e))) else 1
        raise BuildError([Problem(PYPROJECT, line, f"cannot read [tool.ankideck]: {e}")]) from None
    problems = Problems()
    for key, value in table.items():
        if key not in DEFAULTS:
            problems.add(PYPROJECT, _key_line(text, key), f"unknown key '{key}' in [tool.ankideck] (known: "
                                                          f"{', '.join(sorted(DEFAULTS))})")
        elif not isinstance(value, str) or not value:
            problems.add(PYPROJECT, _key_line(text, key), f"[tool.ankideck] {key} must be a path (a string), "
                                                          f"not {value!r}")
    problems.raise_if_any()
    return {**DEFAULTS, **table}


def _key_line(text: str, key: str) -> int:
    """The line of ``key = ...`` in the ``[tool.ankideck]`` table of ``text`` (the table's line if not found)."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if re.match(r"^\s*\[\s*tool\s*\.\s*ankideck\s*\]", line)), None)
    if start is None:
        return 1
    key_re = re.compile(rf"""^\s*(?:{re.escape(key)}|"{re.escape(key)}"|'{re.escape(key)}')\s*=""")
    for i in range(start + 1, len(lines)):
        if TABLE_RE.match(lines[i]):
            break
        if key_re.match(lines[i]):
            return i + 1
    return start + 1


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
