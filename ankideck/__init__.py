"""ankideck: compile Markdown card sources into an Anki package (.apkg) that updates in place on re-import.

The engine is generic: it knows card files, note types, media and Anki's import rules, nothing about any subject.
This module is its public API; everything else is internal. The names are imported on first use (PEP 562), so that
``from ankideck import Figure`` in a figure registry, or build.py's check of the installed packages, stays cheap.
"""
from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

__version__ = "0.1.0"
_WHERE = {  # public name -> the module that defines it
    "BuildError": "errors", "Problem": "errors", "Problems": "errors",
    "Config": "config", "load_config": "config",
    "Figure": "drawing",
    "Plan": "pipeline", "Result": "pipeline", "build": "pipeline", "gather": "pipeline",
}
__all__ = ["BuildError", "Config", "Figure", "Plan", "Problem", "Problems", "Result", "build", "gather", "load_config"]

if TYPE_CHECKING:
    from .config import Config, load_config
    from .drawing import Figure
    from .errors import BuildError, Problem, Problems
    from .pipeline import Plan, Result, build, gather


assert sorted(__all__) == sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'ankideck' has no attribute {name!r}")
    value = getattr(import_module(f".{_WHERE[name]}", __name__), name)
    globals()[name] = value
    return value
