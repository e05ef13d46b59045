"""ankideck: compile Markdown card sources into an Anki package (.apkg) that updates in place on re-import.

The engine is generic: it knows card files, note types, media and Anki's import rules, nothing about any subject.
"""
__version__ = "0.1.0"
