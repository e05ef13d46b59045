"""ankideck: compile Markdown card sources into an Anki package (.apkg) that updates in place on re-import.

The engine is generic: it knows card files, note types, media and Anki's import rules, nothing about any subject.
This module is its public API; everything else is internal.
"""
from .config import Config, load_config
from .drawing import Figure
from .errors import BuildError, Problem, Problems
from .pipeline import Plan, Result, build, gather

__version__ = "0.1.0"
__all__ = ["BuildError", "Config", "Figure", "Plan", "Problem", "Problems", "Result", "build", "gather", "load_config"]
