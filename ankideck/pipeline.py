"""The pipeline: gather and validate everything, then write. Nothing is written when any problem is found.

gather():  deck.yaml + guide.yaml -> compile every card file (parse, render; cached by a hash of the source and the
           engine, in parallel when there is much to do) -> checks across files -> the figure registry -> the lock
           file -> note fields with resolved media, content hashes -> mod times and the changes.
build():   gather() -> render the figures the cards use -> collect media under content-hash names -> write the .apkg
           to a temporary file and rename it over the old one -> update the lock file and the caches.
"""
from __future__ import annotations

import hashlib
import html
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import lockfile
from .atomic import Staged, build_lock, check_writable_target, remove_stale_temps
from .collector import collector_paused
from .compile import CACHE_FILE, CompileCache, compile_sources
from .config import Config, DeckInfo, load_deck_info
from .errors import Problems
from .lockfile import Changes
from .media import MediaResolver, collect_media, load_figure_registry
from .parse import NoteSource
from .rendered import PLACEHOLDER_PREFIX, PLACEHOLDER_RE, Rendered
from .sources import check_folder, cross_file_problems, source_problems

BUILD_LOCK = "build.lock"  # in the cache folder: one build at a time writes a project
DECK_STATE = "deck.json"   # in the cache folder: the fingerprint of the .apkg last written, and its size and time


@dataclass
class Note:
    source: NoteSource            # the card text this note is made from
    fields: dict[str, str]        # field name -> HTML, in the note type's order
    tags: list[str]
    content_hash: str             # what decides whether the note changed (fields other than Source, and tags)
    mod: int = 0                  # seconds; the time the content last changed


@dataclass
class Plan:
    config: Config
    info: DeckInfo
    notes: list[Note]
    changes: Changes
    lock: dict[str, dict]          # the lock file's notes after this build
    note_types_lock: dict[str, dict]  # the lock file's note types before this build (name -> hash, mod)
    now: int
    figures: set[str]              # figure names the cards use
    files: dict[str, Path]         # media name -> source file (images from the cards folder)
    notices: list[str] = field(default_factory=list)  # what the build will do that the user must know about
    registry: dict = field(default_factory=dict)       # the project's figures (name -> Figure), loaded once
    figure_keys: dict[tuple[str, str], str] = field(default_factory=dict)  # (name, variant) -> key, computed once


@dataclass
class Result:
    plan: Plan
    out: Path
    media_count: int
    card_count: int
    seconds: float


# --- gather --------------------------------------------------------------------------------------------------------

def gather(config: Config, now: int | None = None, new_namespace: bool = False, only: tuple[str, ...] = (),
           cache: CompileCache | None = None) -> Plan:
    """Read and check everything; raise BuildError with every problem found. Writes nothing.

    ``new_namespace``: accept a namespace in deck.yaml that differs from the one the lock file records.
    ``only``: keep only the notes of source files whose path contains one of these strings, and raise only for their
    problems (the others become one notice): for checking a few files while others are being edited. Never for a
    build. ``cache``: the compile cache to read and update (default: the project's, read here and not saved).
    """
    problems = Problems()
    info = load_deck_info(config, problems)
    problems.raise_if_any()  # without the deck's settings nothing else can be judged
    if not check_folder(config, problems):
        problems.raise_if_any()
    if cache is None:
        cache = CompileCache.load(config.cache_dir / CACHE_FILE)
    cards, rendered = compile_sources(config, info, cache, problems)
    source_problems(config, problems)
    cross_file_problems(config, info, cards, problems)
    if not cards and not problems:
        problems.add(config.rel(config.cards_dir), 0, "no cards: an empty deck is not worth shipping "
                     "(add one with: build.py new FILE.md)")

    registry = load_figure_registry(config, problems)
    lock_state = lockfile.load(config.lock_path, config.rel(config.lock_path), problems)
    lock = lock_state.notes
    notices: list[str] = []
    lockfile.check_namespace(config, info, lock_state, new_namespace, problems)
    recovered = lockfile.recover(config, info, lock_state, problems, notices, new_namespace)
    now = int(time.time()) if now is None else now

    media = MediaResolver(config, registry, problems)
    notes = [_note(card, rendered[card.id, card.path, card.line], info, media, problems) for card in cards]
    _check_kinds(notes, lock, problems)
    if recovered is not None:
        lock = lockfile.lock_from_package(notes, recovered, problems)
    if only:
        notes, problems = _only(only, notes, problems, notices)
    problems.raise_if_any()
    new_lock, changes = lockfile.advance(lock, notes, now)
    return Plan(config, info, notes, changes, new_lock, lock_state.note_types, now, media.figures,
                {name: path for path, name in media.files.items()}, notices, registry, media.figure_keys)


def _note(card: NoteSource, sections: dict[str, Rendered], info: DeckInfo, media: MediaResolver,
          problems: Problems) -> Note:
    """A card's note: its rendered sections with media resolved, the Guide, Source and Id fields, its content hash."""
    fields: dict[str, str] = {}
    for name, result in sections.items():
        for needle, message in result.problems:
            problems.add(card.path, card.line_of(needle), message)
        if PLACEHOLDER_PREFIX not in result.html:  # nothing to resolve (most fields)
            fields[name] = result.html
            continue
        fields[name] = PLACEHOLDER_RE.sub(
            lambda match, refs=result.refs: html.escape(media.placeholder(card, refs, match), quote=True),
            result.html)
    fields["Guide"] = html.escape(f"{card.guide} {info.guide.get(card.guide, '')}".strip()) if card.guide else ""
    # The file, not the line: a card moved within its file (or shifted by an edit above it) is not a changed card,
    # and its footer never goes stale. The footer shows the Id beside it.
    fields["Source"] = html.escape(card.path)
    fields["Id"] = card.id
    tags = sorted(set(card.tags) | ({f"guide::{card.guide}"} if card.guide else set()))
    content_hash = hashlib.sha256("\0".join([card.kind, *fields, *fields.values(), *tags]).encode()).hexdigest()[:20]
    return Note(card, fields, tags, content_hash)


def _check_kinds(notes: list[Note], lock: dict[str, dict], problems: Problems) -> None:
    for note in notes:
        card = note.source
        previous_kind = lock.get(card.id, {}).get("kind")
        if previous_kind and previous_kind != card.kind:
            problems.add(card.path, card.line, (
                f"card '{card.id}' was a {previous_kind} note and is now a {card.kind} note; Anki cannot change a "
                "note's type on re-import, so give it a new id (the old note stays in Anki)"))


def _only(only: tuple[str, ...], notes: list[Note], problems: Problems,
          notices: list[str]) -> tuple[list[Note], Problems]:
    def selected(path: str) -> bool:
        return any(part in path for part in only)

    elsewhere = [problem for problem in problems if not selected(problem.path)]
    if elsewhere:
        notices.append(f"{len(elsewhere)} problem{'s' * (len(elsewhere) != 1)} in other files not shown "
                       "(run check without --file to see them)")
    return ([note for note in notes if selected(note.source.path)],
            Problems(problem for problem in problems if selected(problem.path)))


# --- write ---------------------------------------------------------------------------------------------------------

def build(config: Config, now: int | None = None, progress: bool = True, new_namespace: bool = False,
          on_wait=None) -> Result:
    """Gather, then write the deck, the lock file and the compile cache: all of them or none.

    Holds the project's build lock throughout (a second build waits; ``on_wait`` is called if it has to). Every
    output is written to a temporary file first; only when all are complete are they renamed into place, the lock
    file before the deck (a deck is never newer than the lock that describes it).
    """
    from . import package
    from .media import media_names

    started = time.perf_counter()
    cache_path = config.cache_dir / CACHE_FILE
    state_path = config.cache_dir / DECK_STATE
    lock_file = config.cache_dir / BUILD_LOCK
    with build_lock(lock_file, config.rel(lock_file), on_wait=on_wait), collector_paused():
        cache = CompileCache.load(cache_path)
        plan = gather(config, now, new_namespace=new_namespace, cache=cache)
        remove_stale_temps([config.out, config.lock_path, cache_path, state_path], config.cache_dir / "figures")
        for path in (config.out, config.lock_path, cache_path, state_path):
            check_writable_target(path, config.rel(path))
        names = media_names(plan)
        fingerprint = package.fingerprint(plan, names)
        with Staged() as staged:
            deck = None
            state = _deck_state_of(config.out, fingerprint)
            if state is not None and _deck_state(state_path) == state:
                note_types = package.note_types(plan)  # the deck there is this build's already: keep it
            else:
                problems = Problems()
                media = collect_media(plan, progress, problems)
                problems.raise_if_any()
                deck = staged.reserve(config.out)
                _, note_types = package.write_package(plan, media, deck)
            lock_text = lockfile.dumps(plan.lock, note_types, plan.info.namespace)
            if not _same_text(config.lock_path, lock_text):
                staged.add(config.lock_path, lock_text.encode("utf-8"))
            staged.items.reverse()  # the lock file first, then the deck
            if cache.dirty:
                staged.add(cache_path, cache.dumps())
            if deck is not None:  # a rename keeps the time: the state describes the deck once it is in place
                staged.add(state_path, json.dumps(_deck_state_of(deck, fingerprint)).encode())
            staged.commit()
    card_count = sum(note.source.card_count for note in plan.notes)
    return Result(plan, config.out, len(names), card_count, time.perf_counter() - started)


def _deck_state_of(path: Path, fingerprint: str) -> dict | None:
    """What DECK_STATE records for the package at ``path``: its fingerprint, size and modification time."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return {"fingerprint": fingerprint, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _deck_state(path: Path) -> dict | None:
    try:
        state = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def _same_text(path: Path, text: str) -> bool:
    try:
        return path.is_file() and path.read_text("utf-8") == text
    except (OSError, UnicodeDecodeError):
        return False
