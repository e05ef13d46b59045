"""Problems found in the sources, and the errors the engine raises. Every check reports all problems at once.

Each stage takes a ``Problems`` collector and adds what it finds, as ``path:line: message``; only the entry points
(``gather``, ``build``, ``stats``, the preview, ``load_config``, ``new_card``) raise, once, with everything found.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator


@dataclass(frozen=True, order=True)
class Problem:
    path: str  # relative to the project root, POSIX separators
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


class Problems:
    """What the stages of one run found, in the order found."""

    def __init__(self, problems: Iterable[Problem] = ()):
        self.items: list[Problem] = list(problems)

    def add(self, path: str, line: int, message: str) -> None:
        self.items.append(Problem(path, line, message))

    def append(self, problem: Problem) -> None:
        self.items.append(problem)

    def extend(self, problems: Iterable[Problem]) -> None:
        self.items.extend(problems)

    def raise_if_any(self) -> None:
        if self.items:
            raise BuildError(self.items)

    def __iter__(self) -> Iterator[Problem]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __bool__(self) -> bool:
        return bool(self.items)


class AnkideckError(Exception):
    """An error the user can act on, as one line (the CLI prints it as ``Error: ...``)."""


class BuildError(AnkideckError):
    """Raised by the engine when the sources have problems; nothing has been written."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = sorted(set(problems))
        super().__init__("\n".join(map(str, self.problems)))
