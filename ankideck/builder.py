"""The pipeline: gather and validate everything, then write. Nothing is written when any problem is found.

gather():  deck.yaml + guide.yaml -> parse every card file -> ids, guide refs -> render Markdown (cached by a hash
           of the source and the renderer's version, in parallel when there is much to do) -> resolve images and
           figures -> note fields, content hashes, mod times from the lock file.
build():   gather() -> render the figures the cards use -> collect media under content-hash names -> write the .apkg
           to a temporary file and rename it over the old one -> update the lock file and the caches.
"""
from __future__ import annotations

import hashlib
import html
import json
import os
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from . import compile_cache, lockfile
from .atomic import Staged, build_lock, check_writable_target, new_temp, remove_stale_temps
from .config import Config, DeckInfo, load_deck_info
from .errors import BuildError, Problem
from .parse import MAX_CARD_CHARS, Card, card_size, decode, parse_file, parse_text

PARALLEL_BYTES = 200_000   # below this much Markdown to compile, worker start-up costs more than it saves
CACHE_FILE = compile_cache.CACHE_FILE
BUILD_LOCK = "build.lock"  # in the cache folder: one build at a time writes a project
# Media a card may embed, recognised by their first bytes (never by the name): an SVG can carry script.
IMAGE_SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"GIF87a", "GIF"), (b"GIF89a", "GIF"))


@dataclass
class Note:
    card: Card
    fields: dict[str, str]        # field name -> HTML, in the note type's order
    tags: list[str]
    content_hash: str             # what decides whether the note changed (fields other than Source, and tags)
    mod: int = 0                  # seconds; the time the content last changed


@dataclass
class Changes:
    new: list[str]
    changed: list[str]
    removed: list[str]

    def __bool__(self) -> bool:
        return bool(self.new or self.changed or self.removed)


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
    compile_cache: dict            # file key -> (cards, problems, rendered sections), see compile_sources
    compile_cache_dirty: bool
    notices: list[str] = field(default_factory=list)  # what the build will do that the user must know about


@dataclass
class Result:
    plan: Plan
    out: Path
    media_count: int
    card_count: int
    seconds: float


# --- gather --------------------------------------------------------------------------------------------------------

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


def source_problems(config: Config) -> list[Problem]:
    return [p for p in (_source_problem(config, path) for path in _all_card_files(config)) if p is not None]


def _default_deck(config: Config, info: DeckInfo, path: Path) -> str:
    """Without front matter, a file's deck is the root deck plus its folders under the cards folder."""
    return "::".join((info.name, *path.parent.relative_to(config.cards_dir).parts))


def _check_folder(config: Config) -> None:
    if not config.cards_dir.is_dir():
        raise BuildError([Problem(config.rel(config.cards_dir), 0, "cards folder not found")])


def load_cards(config: Config, info: DeckInfo) -> tuple[list[Card], list[Problem]]:
    """Parse every card file (no rendering) and run the checks that span files."""
    _check_folder(config)
    cards: list[Card] = []
    problems: list[Problem] = []
    for path in card_files(config):
        file_cards, file_problems = parse_file(path, config.rel(path), _default_deck(config, info, path))
        cards.extend(file_cards)
        problems.extend(file_problems)
    return cards, problems + source_problems(config) + _cross_file_problems(config, info, cards)


def _cross_file_problems(config: Config, info: DeckInfo, cards: list[Card]) -> list[Problem]:
    problems = []
    first_seen: dict[str, Card] = {}
    for card in cards:
        # By case-folded id: Anki's "Id:" search and case-insensitive file systems see no case.
        first = first_seen.get(card.id.casefold())
        if first is not None and first.id == card.id:
            problems.append(Problem(card.path, card.line,
                                    f"duplicate card id '{card.id}' (first used at {first.source})"))
        elif first is not None:
            problems.append(Problem(card.path, card.line, (
                f"duplicate card id '{card.id}': it differs only in case from '{first.id}' (first used at "
                f"{first.source}), and Anki's Id: search treats them as one; choose another id")))
        else:
            first_seen[card.id.casefold()] = card
        if card.guide is not None and info.guide and card.guide not in info.guide:
            problems.append(Problem(card.path, card.line, f"unknown guide question '{card.guide}' "
                                                          f"(see {config.rel(config.guide_path)})"))
    return problems


def gather(config: Config, now: int | None = None, new_namespace: bool = False, only: tuple[str, ...] = ()) -> Plan:
    """Read and check everything; raise BuildError with every problem found. Writes nothing.

    ``new_namespace``: accept a namespace in deck.yaml that differs from the one the lock file records.
    ``only``: keep only the notes of source files whose path contains one of these strings, and raise only for their
    problems (the others become one notice): for checking a few files while others are being edited. Never for a
    build.
    """
    from .render import PLACEHOLDER_RE

    info = load_deck_info(config)
    _check_folder(config)
    cache = compile_cache.load(config.cache_dir / CACHE_FILE)
    cards, problems, rendered, dirty = compile_sources(config, info, cache)
    problems += source_problems(config) + _cross_file_problems(config, info, cards)
    if not cards and not problems:
        problems.append(Problem(config.rel(config.cards_dir), 0, "no cards: an empty deck is not worth shipping "
                                "(add one with: build.py new FILE.md)"))

    registry, registry_problem = _figure_registry(config)
    if registry_problem:
        problems.append(registry_problem)
    lock_state = lockfile.load(config.lock_path, config.rel(config.lock_path), problems)
    lock, note_types_lock = lock_state.notes, lock_state.note_types
    notices: list[str] = []
    problems += _namespace_problems(config, info, lock_state, new_namespace)
    recovered = _recover_lock(config, info, lock_state, problems, notices, new_namespace)
    now = int(time.time()) if now is None else now

    media = MediaResolver(config, registry, problems)
    notes: list[Note] = []
    for card in cards:
        sections = rendered[card.id, card.path, card.line]
        fields: dict[str, str] = {}
        for name, result in sections.items():
            for needle, message in result.problems:
                problems.append(Problem(card.path, card.line_of(needle), message))
            fields[name] = PLACEHOLDER_RE.sub(
                lambda match, refs=result.refs: html.escape(media.placeholder(card, refs, match), quote=True),
                result.html)
        fields["Guide"] = html.escape(f"{card.guide} {info.guide.get(card.guide, '')}".strip()) if card.guide else ""
        # The file, not the line: a card moved within its file (or shifted by an edit above it) is not a changed
        # card, and its footer never goes stale. The footer shows the Id beside it.
        fields["Source"] = html.escape(card.path)
        fields["Id"] = card.id
        tags = sorted(set(card.tags) | ({f"guide::{card.guide}"} if card.guide else set()))
        content_hash = hashlib.sha256("\0".join([card.kind, *fields, *fields.values(), *tags]).encode()
                                      ).hexdigest()[:20]
        notes.append(Note(card, fields, tags, content_hash))
        previous_kind = lock.get(card.id, {}).get("kind")
        if previous_kind and previous_kind != card.kind:
            problems.append(Problem(card.path, card.line, (
                f"card '{card.id}' was a {previous_kind} note and is now a {card.kind} note; Anki cannot change a "
                "note's type on re-import, so give it a new id (the old note stays in Anki)")))
    if recovered is not None:
        lock = _lock_from_package(notes, recovered, problems)
    if only:
        def selected(path: str) -> bool:
            return any(part in path for part in only)
        elsewhere = [problem for problem in problems if not selected(problem.path)]
        if elsewhere:
            notices.append(f"{len(elsewhere)} problem{'s' * (len(elsewhere) != 1)} in other files not shown "
                           "(run check without --file to see them)")
        problems = [problem for problem in problems if selected(problem.path)]
        notes = [note for note in notes if selected(note.card.path)]
    if problems:
        raise BuildError(problems)

    new_lock: dict[str, dict] = {}
    new, changed = [], []
    for note in notes:
        previous = lock.get(note.card.id)
        live = previous is not None and not previous.get("removed")
        if live and previous["hash"] == note.content_hash:
            note.mod = previous["mod"]
        else:
            # Strictly newer than what Anki has (a removed card's note may still be there), or the import skips it.
            note.mod = max(now, previous["mod"] + 1) if previous else now
            (changed if live else new).append(note.card.id)
        new_lock[note.card.id] = {"hash": note.content_hash, "kind": note.card.kind, "mod": note.mod}
    # Removed cards stay in the lock as tombstones: their notes stay in Anki, so their ids are never reused.
    removed = sorted(k for k, v in lock.items() if k not in new_lock and not v.get("removed"))
    for card_id, entry in lock.items():
        new_lock.setdefault(card_id, {**entry, "removed": True})
    return Plan(config, info, notes, Changes(sorted(new), sorted(changed), removed), new_lock, note_types_lock, now,
                media.figures, {name: path for path, name in media.files.items()}, cache, dirty, notices)


def _deck_yaml_line(config: Config, key: str) -> tuple[str, int]:
    from .config import DECK_FILE

    path = config.cards_dir / DECK_FILE
    try:
        lines = path.read_text("utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        lines = []
    return config.rel(path), next((i for i, line in enumerate(lines, 1) if line.startswith(f"{key}:")), 1)


def _namespace_problems(config: Config, info: DeckInfo, lock_state, new_namespace: bool) -> list[Problem]:
    """A changed namespace changes every GUID: a re-import would duplicate the whole deck, without its history."""
    before = lock_state.namespace
    if before is None or before == info.namespace or new_namespace:
        return []
    where, line = _deck_yaml_line(config, "namespace")
    live = sum(1 for entry in lock_state.notes.values() if not entry.get("removed"))
    return [Problem(where, line, (
        f"namespace changed from '{before}' to '{info.namespace}' (recorded in {config.rel(config.lock_path)}): "
        f"every note's identity would change, and a re-import would add all {live} notes again as new notes "
        f"without their review history; restore namespace: {before}, or build with --new-namespace to start a "
        "new deck on purpose"))]


def _recover_lock(config: Config, info: DeckInfo, lock_state, problems: list[Problem], notices: list[str],
                  new_namespace: bool):
    """Without a lock file: the previous package's notes (to rebuild the lock from), or None, with a notice."""
    import genanki

    from .models import BASIC_MODEL_ID, CLOZE_MODEL_ID

    if lock_state.exists:
        return None
    lock_shown = config.rel(config.lock_path)
    if not config.out.is_file():
        notices.append(f"No lock file ({lock_shown}) and no previous deck ({config.rel(config.out)}): every note "
                       "is new. If this deck was built before, restore the lock file from git first, or a re-import "
                       "overwrites every edit made in Anki.")
        return None
    try:
        notes = lockfile.read_package(config.out, BASIC_MODEL_ID, CLOZE_MODEL_ID)
    except ValueError as e:
        problems.append(Problem(config.rel(config.out), 1, (
            f"{lock_shown} is missing and the previous deck cannot be read to rebuild it ({e}); restore the lock "
            f"file from git, or delete {config.rel(config.out)} to start from scratch (every note new)")))
        return None
    foreign = [card_id for card_id, note in notes.items() if note.guid != genanki.guid_for(info.namespace, card_id)]
    if foreign and not new_namespace:
        where, line = _deck_yaml_line(config, "namespace")
        problems.append(Problem(where, line, (
            f"{len(foreign)} of the {len(notes)} notes in {config.rel(config.out)} were built under another "
            f"namespace than '{info.namespace}': a re-import would add them again as new notes; restore the "
            "namespace, or build with --new-namespace to start a new deck on purpose")))
        return None
    notices.append(f"No lock file ({lock_shown}): rebuilt it from {config.rel(config.out)} ({len(notes)} notes); "
                   "notes whose fields and tags are unchanged keep their mod time, so a re-import leaves them alone.")
    return notes


def _lock_from_package(notes: list[Note], package: dict, problems: list[Problem]) -> dict[str, dict]:
    """Lock entries rebuilt from the previous package: a note the same as there keeps its hash's place and time."""
    from .models import BASIC_FIELDS, CLOZE_FIELDS

    lock: dict[str, dict] = {}
    for note in notes:
        previous = package.get(note.card.id)
        if previous is None:
            continue
        if previous.kind != note.card.kind:
            problems.append(Problem(note.card.path, note.card.line, (
                f"card '{note.card.id}' was a {previous.kind} note and is now a {note.card.kind} note; Anki cannot "
                "change a note's type on re-import, so give it a new id (the old note stays in Anki)")))
        names = BASIC_FIELDS if note.card.kind == "basic" else CLOZE_FIELDS
        same = previous.fields == [note.fields.get(name, "") for name in names] and previous.tags == sorted(note.tags)
        lock[note.card.id] = {"hash": note.content_hash if same else "", "kind": previous.kind, "mod": previous.mod}
    for card_id, previous in package.items():
        lock.setdefault(card_id, {"hash": "", "kind": previous.kind, "mod": previous.mod})
    return lock


def _figure_registry(config: Config):
    if not (config.figures_dir / "__init__.py").is_file():
        return {}, None
    from .figures import load_registry

    try:
        return load_registry(config.figures_dir.parent, config.figures_dir.name), None
    except (Exception, SystemExit) as e:  # the registry is user code: any error in it is a problem, not a crash
        if isinstance(e, SyntaxError):
            return {}, Problem(config.rel(config.figures_dir / "__init__.py"), e.lineno or 1,
                               f"cannot load the figure registry: {type(e).__name__}: {e}")
        return {}, _user_code_problem(config, e, "cannot load the figure registry")


class MediaResolver:
    """References in rendered HTML (``file:<path>``, ``fig:<name>:<variant>``) -> content-hash media names.

    Records a problem for an unknown figure, a missing image or one outside the project, and collects what the
    package must contain: ``files`` (image path -> media name) and ``figures`` (figure names to render).
    """

    def __init__(self, config: Config, registry: dict, problems: list[Problem]):
        self.config, self.registry, self.problems = config, registry, problems
        self.files: dict[Path, str] = {}
        self.figures: set[str] = set()
        self._figure_names: dict[tuple[str, str], str] = {}

    def placeholder(self, card: Card, refs: list[str], match) -> str:
        index = int(match.group(1))
        if index >= len(refs):  # the text itself says "ankideck-media:N"
            self.problems.append(Problem(card.path, card.line_of(match.group(0)),
                                         f"'{match.group(0)}' is reserved for the deck's images; reword it"))
            return ""
        return self.resolve(card, refs[index])

    def resolve(self, card: Card, ref: str) -> str:
        kind, _, target = ref.partition(":")
        if kind == "fig":
            name, _, variant = target.rpartition(":")
            return self._figure(card, name, variant)
        return self._file(card, target)

    def _figure(self, card: Card, name: str, variant: str) -> str:
        if name not in self.registry:
            known = ", ".join(sorted(self.registry)) or "none registered"
            self.problems.append(Problem(card.path, card.line_of(f"fig:{name}"),
                                        f"unknown figure '{name}' (known: {known})"))
            return ""
        if (name, variant) not in self._figure_names:
            try:
                self._figure_names[name, variant] = figure_media_name(self.config, self.registry, name, variant)
            except (Exception, SystemExit) as e:  # the registry entry is user code: report, don't crash
                self.problems.append(Problem(card.path, card.line_of(f"fig:{name}"),
                                            f"figure '{name}' cannot be prepared: {type(e).__name__}: {e}"))
                return ""
        self.figures.add(name)
        return self._figure_names[name, variant]

    def _file(self, card: Card, target: str) -> str:
        root = self.config.root
        resolved = ((root / card.path).parent / target).resolve()
        line = card.line_of(target)
        if not resolved.is_relative_to(root):
            self.problems.append(Problem(card.path, line, f"image '{target}' is outside the project"))
            return ""
        allowed = (self.config.cards_dir.resolve(), (self.config.cache_dir / "figures").resolve())
        if not any(resolved.is_relative_to(folder) for folder in allowed):
            self.problems.append(Problem(card.path, line, (
                f"image '{target}' is outside the cards folder; only images inside "
                f"{self.config.rel(self.config.cards_dir)}/ can be packed into the deck")))
            return ""
        if not resolved.is_file():
            self.problems.append(Problem(card.path, line, f"image '{target}' not found"))
            return ""
        if resolved not in self.files:
            try:
                with open(resolved, "rb") as f:
                    head = f.read(16)
            except OSError as e:
                self.problems.append(Problem(card.path, line, f"image '{target}' cannot be read: {e.strerror}"))
                return ""
            if not _image_type(head):
                self.problems.append(Problem(card.path, line, (
                    f"image '{target}' is not a PNG, JPEG, GIF or WebP image (judged by its content); only "
                    "images can be packed into the deck")))
                return ""
            self.files[resolved] = content_name(resolved.stem, resolved)
        return self.files[resolved]


def _image_type(head: bytes) -> str | None:
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    return next((kind for signature, kind in IMAGE_SIGNATURES if head.startswith(signature)), None)


def figure_media_name(config: Config, registry: dict, name: str, variant: str) -> str:
    """Named by the hash of everything the image is made from (rendering is deterministic), known before rendering."""
    from .figures import figure_key

    return f"fig-{name}-{variant}-{figure_key(config.figures_dir.parent, name, registry[name], variant)[:12]}.png"


def content_name(stem: str, path: Path) -> str:
    """A media name that changes with the content, so Anki never keeps a stale file under the same name."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in stem)
    return f"{safe}-{digest}{path.suffix.lower()}"


# --- rendering ----------------------------------------------------------------------------------------------------

_renderer = None


def compile_file(job: tuple[str, str, bytes]) -> tuple[list[Card], list[Problem], list[dict]]:
    """Parse one card file and render every card's sections (in a worker process or in-process).

    A pure function of the file's bytes, its path and its default deck: the build caches its result by those.
    """
    global _renderer
    where, default_deck, data = job
    text, problems = decode(data, where)
    if text is None:
        return [], problems, []
    cards, parse_problems = parse_text(text, where, default_deck)
    if _renderer is None:
        from .markdown_extensions import Renderer
        _renderer = Renderer()  # built once per process: building the converter is the expensive part
    from .cloze import cloze_problems
    from .sanitize import sanitize

    rendered = []
    for card in cards:
        sections = {}
        if card_size(card) <= MAX_CARD_CHARS:  # a longer card is a problem already; rendering it could take minutes
            for name, section in card.sections.items():
                result = sanitize(_renderer.render(section.text, card.kind == "cloze"))
                if card.kind == "cloze" and name == "Text":
                    result.problems.extend(cloze_problems(result.html))
                sections[name] = result
        rendered.append(sections)
    return cards, problems + parse_problems, rendered


def compile_sources(config: Config, info: DeckInfo, cache: dict):
    """Every card file, parsed and rendered, reusing the cache for files whose bytes have not changed.

    Returns (cards, problems, {(id, path, line): {section: Rendered}}, whether the cache changed).
    """
    salt = compile_cache.engine_version().encode()
    jobs, keys = [], []
    for path in card_files(config):
        job = (config.rel(path), _default_deck(config, info, path), path.read_bytes())
        keys.append(hashlib.sha256(b"\0".join((salt, job[0].encode(), job[1].encode(), job[2]))).hexdigest())
        jobs.append(job)
    todo = [i for i, key in enumerate(keys) if key not in cache]
    if todo:
        workers = min(os.cpu_count() or 1, len(todo))
        if sum(len(jobs[i][2]) for i in todo) >= PARALLEL_BYTES and workers > 1:
            with ProcessPoolExecutor(workers) as pool:
                results = list(pool.map(compile_file, [jobs[i] for i in todo]))
        else:
            results = [compile_file(jobs[i]) for i in todo]
        for i, result in zip(todo, results):
            cache[keys[i]] = result
    cards, problems, rendered = [], [], {}
    for key in keys:
        file_cards, file_problems, file_rendered = cache[key]
        cards.extend(file_cards)
        problems.extend(file_problems)
        for card, sections in zip(file_cards, file_rendered):
            rendered[card.id, card.path, card.line] = sections
    stale = set(cache) - set(keys)
    for key in stale:
        del cache[key]
    return cards, problems, rendered, bool(todo or stale)


# --- write ---------------------------------------------------------------------------------------------------------

def build(config: Config, now: int | None = None, progress: bool = True, new_namespace: bool = False,
          on_wait=None) -> Result:
    """Gather, then write the deck, the lock file and the compile cache: all of them or none.

    Holds the project's build lock throughout (a second build waits; ``on_wait`` is called if it has to). Every
    output is written to a temporary file first; only when all are complete are they renamed into place, the lock
    file before the deck (a deck is never newer than the lock that describes it).
    """
    started = time.perf_counter()
    cache_path = config.cache_dir / CACHE_FILE
    lock_file = config.cache_dir / BUILD_LOCK
    with build_lock(lock_file, config.rel(lock_file), on_wait=on_wait):
        plan = gather(config, now, new_namespace=new_namespace)
        remove_stale_temps([config.out, config.lock_path, cache_path], config.cache_dir / "figures")
        for path in (config.out, config.lock_path, cache_path):
            check_writable_target(path, config.rel(path))
        media = collect_media(plan, progress)
        with Staged() as staged:
            out, note_types = _write_package(plan, media, staged.reserve(config.out))
            lock_text = lockfile.dumps(plan.lock, note_types, plan.info.namespace)
            if not _same_text(config.lock_path, lock_text):
                staged.add(config.lock_path, lock_text.encode("utf-8"))
            staged.items.reverse()  # the lock file first, then the deck
            if plan.compile_cache_dirty:
                staged.add(cache_path, compile_cache.dumps(plan.compile_cache))
            staged.commit()
    card_count = sum(note.card.card_count for note in plan.notes)
    return Result(plan, config.out, len(media), card_count, time.perf_counter() - started)


def _same_text(path: Path, text: str) -> bool:
    try:
        return path.is_file() and path.read_text("utf-8") == text
    except (OSError, UnicodeDecodeError):
        return False


def collect_media(plan: Plan, progress: bool) -> dict[str, Path]:
    """Media name (content hash) -> file, rendering the figures the cards use where the cache lacks them."""
    media: dict[str, Path] = dict(plan.files)
    if plan.figures:
        from .figures import ensure_rendered, load_registry

        config = plan.config
        try:
            registry = load_registry(config.figures_dir.parent, config.figures_dir.name)
            pngs = ensure_rendered(config.figures_dir.parent, registry, sorted(plan.figures),
                                   config.cache_dir / "figures", progress=progress)
        except OSError:
            raise
        except (Exception, SystemExit) as e:  # plot functions are user code: report where they failed
            raise BuildError([_user_code_problem(config, e, "drawing a figure failed")]) from None
        for (name, variant), path in pngs.items():
            media[figure_media_name(config, registry, name, variant)] = path
    return media


def _user_code_problem(config: Config, error: BaseException, what: str) -> Problem:
    """The innermost line of the project's own code in ``error``'s traceback, as a Problem."""
    import traceback

    root = config.root.resolve()
    where, line = config.rel(config.figures_dir / "__init__.py"), 1
    for frame in traceback.extract_tb(error.__traceback__):
        path = Path(frame.filename).resolve()
        if path.is_relative_to(root) and not path.is_relative_to(Path(__file__).resolve().parent):
            where, line = config.rel(path), frame.lineno or 1
    notes = "; ".join(getattr(error, "__notes__", []))
    return Problem(where, line, f"{what}: {type(error).__name__}: {error}" + (f" ({notes})" if notes else ""))


def _write_package(plan: Plan, media: dict[str, Path], target: Path | None = None) -> tuple[Path, dict]:
    """Write the .apkg to ``target`` (a temporary file the caller renames), or else atomically over the output."""
    import genanki

    from .changelog import deck_description
    from .models import BASIC_FIELDS, CLOZE_FIELDS, basic_model, cloze_model, stylesheet

    class TimedNote(genanki.Note):
        """A note whose mod time is its content's, not the build's: unchanged notes stay untouched in Anki."""

        def __init__(self, mod: int, **kwargs):
            super().__init__(**kwargs)
            self.mod = mod

        def write_to_db(self, cursor, timestamp, deck_id, id_gen):
            super().write_to_db(cursor, self.mod, deck_id, id_gen)

    class TimedModel(genanki.Model):
        """A note type whose mod time is when its templates or CSS last changed: Anki updates it only if newer."""

        def to_json(self, timestamp, deck_id):
            return super().to_json(note_types[self.name]["mod"], deck_id)

    css = stylesheet(plan.config.cache_dir)
    models = {"basic": (basic_model(css, TimedModel), BASIC_FIELDS),
              "cloze": (cloze_model(css, TimedModel), CLOZE_FIELDS)}
    note_types = _note_type_versions([model for model, _ in models.values()], plan.note_types_lock, plan.now)
    namespace = plan.info.namespace
    root = plan.info.name  # always shipped, even with every note in a sub-deck: it carries the version and links
    decks: dict[str, genanki.Deck] = {root: genanki.Deck(deck_id(root), root, description=deck_description(
        plan.info.description, max((note.mod for note in plan.notes), default=0)))}
    for note in plan.notes:
        deck_name = note.card.deck
        if deck_name not in decks:
            decks[deck_name] = genanki.Deck(deck_id(deck_name), deck_name)
        model, names = models[note.card.kind]
        decks[deck_name].add_note(TimedNote(
            note.mod, model=model, fields=[note.fields.get(name, "") for name in names], tags=note.tags,
            guid=genanki.guid_for(namespace, note.card.id),
        ))
    out = plan.config.out
    package = genanki.Package(list(decks.values()))
    timestamp = max((note.mod for note in plan.notes), default=0)
    if target is not None:
        _write_apkg(package, media, target, timestamp=timestamp)
        return out, note_types
    tmp = new_temp(out)
    try:
        _write_apkg(package, media, tmp, timestamp=timestamp)
        os.replace(tmp, out)  # only a complete package replaces the previous one
    finally:
        tmp.unlink(missing_ok=True)
    return out, note_types


def _note_type_versions(models, previous: dict[str, dict], now: int) -> dict[str, dict]:
    """Each note type's definition hash and the time it last changed (the same rule as for notes)."""
    import genanki

    versions = {}
    for model in models:
        definition = {k: v for k, v in genanki.Model.to_json(model, 0, 0).items() if k not in ("mod", "did")}
        digest = hashlib.sha256(json.dumps(definition, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:20]
        before = previous.get(model.name)
        if before and before["hash"] == digest:
            versions[model.name] = before
        else:
            versions[model.name] = {"hash": digest, "mod": max(now, before["mod"] + 1) if before else now}
    return versions


def _write_apkg(package, media: dict[str, Path], path: Path, timestamp: int) -> None:
    """genanki's Package.write_to_file, with a throw-away database that skips journaling and fsync (3x faster on
    large decks) and media stored under the names given here rather than the files' basenames."""
    import sqlite3
    import zipfile

    try:
        _write_apkg_unchecked(package, media, path, timestamp)
    except (sqlite3.Error, zipfile.BadZipFile) as e:  # a full disk surfaces as "database or disk is full"
        raise OSError(f"cannot write the deck: {e}") from None


def _write_apkg_unchecked(package, media: dict[str, Path], path: Path, timestamp: int) -> None:
    import itertools
    import sqlite3
    import tempfile
    import zipfile

    with tempfile.TemporaryDirectory() as scratch:
        database = Path(scratch) / "collection.anki2"
        connection = sqlite3.connect(database)
        connection.execute("PRAGMA journal_mode = OFF")
        connection.execute("PRAGMA synchronous = OFF")
        package.write_to_db(connection.cursor(), timestamp, itertools.count(int(timestamp * 1000)))
        connection.commit()
        connection.close()
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
            archive.write(database, "collection.anki2")
            archive.writestr("media", json.dumps({str(i): name for i, name in enumerate(media)}))
            for i, source in enumerate(media.values()):
                archive.write(source, str(i), compress_type=zipfile.ZIP_STORED)  # images are compressed already


def deck_id(name: str) -> int:
    """A constant id per deck name (Anki matches decks by name on import; the id only has to be stable)."""
    return (1 << 30) + int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) % (1 << 30)


# --- lock file and caches ------------------------------------------------------------------------------------------

def _load_lock(config: Config, problems: list[Problem]) -> tuple[dict[str, dict], dict[str, dict]]:
    """The lock file's notes (id -> hash, kind, mod[, removed]) and note types (name -> hash, mod)."""
    lock = lockfile.load(config.lock_path, config.rel(config.lock_path), problems)
    return lock.notes, lock.note_types


# --- stats ---------------------------------------------------------------------------------------------------------

def stats(config: Config) -> dict:
    """Cards per deck and tag, and which guide questions have cards (no rendering, nothing written)."""
    info = load_deck_info(config)
    cards, problems = load_cards(config, info)
    if problems:
        raise BuildError(problems)
    coverage = {qid: [c.id for c in cards if c.guide == qid] for qid in info.guide}

    def count(groups: Counter, key_cards) -> dict:
        return {key: {"notes": groups[key], "cards": key_cards[key]} for key in sorted(groups)}

    decks, deck_cards, tags, tag_cards = Counter(), Counter(), Counter(), Counter()
    for card in cards:
        decks[card.deck] += 1
        deck_cards[card.deck] += card.card_count
        for tag in card.tags:
            tags[tag] += 1
            tag_cards[tag] += card.card_count
    return {
        "notes": len(cards),
        "cards": sum(card.card_count for card in cards),
        "decks": count(decks, deck_cards),
        "tags": count(tags, tag_cards),
        "guide": {qid: {"question": info.guide[qid], "cards": ids} for qid, ids in coverage.items()},
    }
