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
import pickle
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from .config import Config, DeckInfo, load_deck_info
from .errors import BuildError, Problem
from .parse import Card, decode, parse_file, parse_text

PARALLEL_BYTES = 200_000   # below this much Markdown to compile, worker start-up costs more than it saves
CACHE_FILE = "compiled.pickle"
LOCK_VERSION = 1


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


@dataclass
class Result:
    plan: Plan
    out: Path
    media_count: int
    card_count: int
    seconds: float


# --- gather --------------------------------------------------------------------------------------------------------

def card_files(config: Config) -> list[Path]:
    return sorted(path for path in config.cards_dir.rglob("*.md") if path.is_file())


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
    return cards, problems + _cross_file_problems(config, info, cards)


def _cross_file_problems(config: Config, info: DeckInfo, cards: list[Card]) -> list[Problem]:
    problems = []
    first_seen: dict[str, Card] = {}
    for card in cards:
        if card.id in first_seen:
            problems.append(Problem(card.path, card.line,
                                    f"duplicate card id '{card.id}' (first used at {first_seen[card.id].source})"))
        else:
            first_seen[card.id] = card
        if card.guide is not None and info.guide and card.guide not in info.guide:
            problems.append(Problem(card.path, card.line, f"unknown guide question '{card.guide}' "
                                                          f"(see {config.rel(config.guide_path)})"))
    return problems


def gather(config: Config, now: int | None = None) -> Plan:
    """Read and check everything; raise BuildError with every problem found. Writes nothing."""
    from .render import PLACEHOLDER_RE

    info = load_deck_info(config)
    _check_folder(config)
    cache = _load_pickle(config.cache_dir / CACHE_FILE)
    cards, problems, rendered, dirty = compile_sources(config, info, cache)
    problems += _cross_file_problems(config, info, cards)

    registry, registry_problem = _figure_registry(config)
    if registry_problem:
        problems.append(registry_problem)
    lock, note_types_lock = _load_lock(config, problems)
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
                lambda match, refs=result.refs: html.escape(media.resolve(card, refs[int(match.group(1))]), quote=True),
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
                media.figures, {name: path for path, name in media.files.items()}, cache, dirty)


def _figure_registry(config: Config):
    if not (config.figures_dir / "__init__.py").is_file():
        return {}, None
    from .figures import load_registry

    try:
        return load_registry(config.figures_dir.parent, config.figures_dir.name), None
    except Exception as e:  # the registry is user code: any error in it is a problem to report, not a crash
        return {}, Problem(config.rel(config.figures_dir / "__init__.py"), getattr(e, "lineno", None) or 1,
                           f"cannot load the figure registry: {type(e).__name__}: {e}")


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
            except Exception as e:  # the registry entry is user code: report, don't crash
                self.problems.append(Problem(card.path, card.line_of(f"fig:{name}"),
                                            f"figure '{name}' cannot be prepared: {type(e).__name__}: {e}"))
                return ""
        self.figures.add(name)
        return self._figure_names[name, variant]

    def _file(self, card: Card, target: str) -> str:
        root = self.config.root
        resolved = ((root / card.path).parent / target).resolve()
        if not resolved.is_relative_to(root):
            self.problems.append(Problem(card.path, card.line_of(target), f"image '{target}' is outside the project"))
            return ""
        if not resolved.is_file():
            self.problems.append(Problem(card.path, card.line_of(target), f"image '{target}' not found"))
            return ""
        if resolved not in self.files:
            self.files[resolved] = content_name(resolved.stem, resolved)
        return self.files[resolved]


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
    rendered = [{name: _renderer.render(section.text, card.kind == "cloze") for name, section in card.sections.items()}
                for card in cards]
    return cards, problems + parse_problems, rendered


def compile_sources(config: Config, info: DeckInfo, cache: dict):
    """Every card file, parsed and rendered, reusing the cache for files whose bytes have not changed.

    Returns (cards, problems, {(id, path, line): {section: Rendered}}, whether the cache changed).
    """
    from .render import renderer_version

    salt = renderer_version().encode()
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

def build(config: Config, now: int | None = None, progress: bool = True) -> Result:
    started = time.perf_counter()
    plan = gather(config, now)
    media = collect_media(plan, progress)
    out, note_types = _write_package(plan, media)
    _write_lock(config, plan.lock, note_types)
    if plan.compile_cache_dirty:
        _write_pickle(config.cache_dir / CACHE_FILE, plan.compile_cache)
    card_count = sum(note.card.card_count for note in plan.notes)
    return Result(plan, out, len(media), card_count, time.perf_counter() - started)


def collect_media(plan: Plan, progress: bool) -> dict[str, Path]:
    """Media name (content hash) -> file, rendering the figures the cards use where the cache lacks them."""
    media: dict[str, Path] = dict(plan.files)
    if plan.figures:
        from .figures import ensure_rendered, load_registry

        config = plan.config
        registry = load_registry(config.figures_dir.parent, config.figures_dir.name)
        pngs = ensure_rendered(config.figures_dir.parent, registry, sorted(plan.figures),
                               config.cache_dir / "figures", progress=progress)
        for (name, variant), path in pngs.items():
            media[figure_media_name(config, registry, name, variant)] = path
    return media


def _write_package(plan: Plan, media: dict[str, Path]) -> Path:
    import genanki

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
    decks: dict[str, genanki.Deck] = {}
    for note in plan.notes:
        deck_name = note.card.deck
        if deck_name not in decks:
            decks[deck_name] = genanki.Deck(deck_id(deck_name), deck_name,
                                            description=plan.info.description if deck_name == plan.info.name else "")
        model, names = models[note.card.kind]
        decks[deck_name].add_note(TimedNote(
            note.mod, model=model, fields=[note.fields.get(name, "") for name in names], tags=note.tags,
            guid=genanki.guid_for(namespace, note.card.id),
        ))
    out = plan.config.out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    package = genanki.Package(list(decks.values()))
    try:
        _write_apkg(package, media, tmp, timestamp=max((note.mod for note in plan.notes), default=0))
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
    path = config.lock_path
    if not path.is_file():
        return {}, {}
    try:
        data = json.loads(path.read_text("utf-8"))
        notes = {str(k): {"hash": str(v["hash"]), "kind": str(v.get("kind", "")), "mod": int(v["mod"]),
                          **({"removed": True} if v.get("removed") else {})}
                 for k, v in data["notes"].items()}
        note_types = {str(k): {"hash": str(v["hash"]), "mod": int(v["mod"])}
                      for k, v in data.get("note_types", {}).items()}
        return notes, note_types
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        problems.append(Problem(config.rel(path), 1, f"unreadable lock file ({e}); restore it from git"))
        return {}, {}


def _write_lock(config: Config, notes: dict[str, dict], note_types: dict[str, dict]) -> None:
    def entries(items: dict[str, dict]) -> str:
        return ",\n".join(f"    {json.dumps(k, ensure_ascii=False)}: {json.dumps(v, sort_keys=True)}"
                           for k, v in sorted(items.items()))

    text = '{\n  "version": %d,\n  "note_types": {\n%s\n  },\n  "notes": {\n%s\n  }\n}\n' % (
        LOCK_VERSION, entries(note_types), entries(notes))
    path = config.lock_path
    if path.is_file() and path.read_text("utf-8") == text:
        return
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, "utf-8")
    os.replace(tmp, path)


def _load_pickle(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            data = pickle.load(f)
        return data if isinstance(data, dict) else {}
    except Exception:  # a missing or corrupt cache is only a slower build
        return {}


def _write_pickle(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        pickle.dump(data, f, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, path)


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
