"""The pipeline: gather and validate everything, then write. Nothing is written when any problem is found.

gather():  deck.yaml + guide.yaml -> parse every card file -> ids, guide refs -> render Markdown (cached by a hash
           of the source and the renderer's version, in parallel when there is much to do) -> resolve images and
           figures -> note fields, content hashes, mod times from the lock file.
build():   gather() -> render the figures the cards use -> stage media under content-hash names -> write the .apkg
           to a temporary file and rename it over the old one -> update the lock file and the caches.
"""
from __future__ import annotations

import hashlib
import html
import json
import os
import pickle
import shutil
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from .config import Config, DeckInfo, load_deck_info
from .errors import BuildError, Problem
from .parse import Card, parse_file

PARALLEL_THRESHOLD = 400   # below this many cards to render, worker start-up costs more than it saves
LOCK_VERSION = 1


@dataclass
class Note:
    card: Card
    fields: dict[str, str]        # field name -> HTML, in the note type's order
    tags: list[str]
    content_hash: str             # what decides whether the note changed (fields other than Source, and tags)
    mod: int = 0                  # seconds; the time the content last changed
    media: list[tuple[str, str]] = field(default_factory=list)  # (ref, media name)


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
    figures: set[str]              # figure names the cards use
    files: dict[str, Path]         # media name -> source file (images from the cards folder)
    render_cache: dict
    render_cache_dirty: bool


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


def load_cards(config: Config, info: DeckInfo) -> tuple[list[Card], list[Problem]]:
    """Parse every card file and check what spans files: unique ids, known guide questions."""
    cards: list[Card] = []
    problems: list[Problem] = []
    if not config.cards_dir.is_dir():
        raise BuildError([Problem(config.rel(config.cards_dir), 0, "cards folder not found")])
    for path in card_files(config):
        folders = path.parent.relative_to(config.cards_dir).parts
        default_deck = "::".join((info.name, *folders))
        file_cards, file_problems = parse_file(path, config.rel(path), default_deck)
        cards.extend(file_cards)
        problems.extend(file_problems)
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
    return cards, problems


def gather(config: Config, now: int | None = None) -> Plan:
    """Read and check everything; raise BuildError with every problem found. Writes nothing."""
    from .figures import load_registry
    from .render import PLACEHOLDER_RE

    info = load_deck_info(config)
    cards, problems = load_cards(config, info)
    cache_path = config.cache_dir / "render.pickle"
    cache = _load_pickle(cache_path)
    rendered, dirty = render_cards(cards, cache)

    registry, registry_problem = _figure_registry(config, load_registry)
    if registry_problem:
        problems.append(registry_problem)
    lock = _load_lock(config, problems)
    now = int(time.time()) if now is None else now

    notes: list[Note] = []
    figures: set[str] = set()
    files: dict[str, Path] = {}
    file_names: dict[Path, str] = {}
    for card in cards:
        sections = rendered[id(card)]
        note_media: list[tuple[str, str]] = []
        fields: dict[str, str] = {}
        for name, result in sections.items():
            for needle, message in result.problems:
                problems.append(Problem(card.path, card.line_of(needle), message))

            def resolve(match, refs=result.refs) -> str:
                ref = refs[int(match.group(1))]
                media = _resolve_ref(config, card, ref, registry, files, file_names, figures, problems)
                note_media.append((ref, media))
                return html.escape(media, quote=True)

            fields[name] = PLACEHOLDER_RE.sub(resolve, result.html)
        fields["Guide"] = html.escape(f"{card.guide} {info.guide.get(card.guide, '')}".strip()) if card.guide else ""
        fields["Source"] = html.escape(card.source)
        fields["Id"] = card.id
        tags = sorted(set(card.tags) | ({f"guide::{card.guide}"} if card.guide else set()))
        hashed = {k: v for k, v in fields.items() if k != "Source"}  # a moved card is not a changed card
        content_hash = hashlib.sha256(json.dumps([card.kind, hashed, tags], ensure_ascii=False,
                                                 sort_keys=True).encode()).hexdigest()[:20]
        notes.append(Note(card, fields, tags, content_hash, media=note_media))
    if problems:
        raise BuildError(problems)

    new_lock: dict[str, dict] = {}
    new, changed = [], []
    for note in notes:
        previous = lock.get(note.card.id)
        if previous and previous.get("hash") == note.content_hash:
            note.mod = int(previous["mod"])
        else:
            # Strictly newer than what Anki has, or the import skips the note.
            note.mod = max(now, int(previous["mod"]) + 1) if previous else now
            (changed if previous else new).append(note.card.id)
        new_lock[note.card.id] = {"hash": note.content_hash, "mod": note.mod}
    removed = sorted(set(lock) - set(new_lock))
    return Plan(config, info, notes, Changes(sorted(new), sorted(changed), removed), new_lock, figures, files,
                cache, dirty)


def _figure_registry(config: Config, load_registry):
    if not (config.figures_dir / "__init__.py").is_file():
        return {}, None
    try:
        return load_registry(config.figures_dir.parent, config.figures_dir.name), None
    except Exception as e:  # the registry is user code: any error in it is a problem to report, not a crash
        return {}, Problem(config.rel(config.figures_dir / "__init__.py"), getattr(e, "lineno", None) or 1,
                           f"cannot load the figure registry: {type(e).__name__}: {e}")


def _resolve_ref(config, card, ref, registry, files, file_names, figures, problems) -> str:
    """A reference from rendered HTML -> its media file name (content-hashed). Records problems."""
    kind, _, target = ref.partition(":")
    if kind == "fig":
        name, _, variant = target.rpartition(":")
        if name not in registry:
            known = ", ".join(sorted(registry)) or "none registered"
            problems.append(Problem(card.path, card.line_of(f"fig:{name}"), f"unknown figure '{name}' (known: {known})"))
            return ""
        try:
            media_name = figure_media_name(config, registry, name, variant)
        except Exception as e:  # the registry entry is user code: report, don't crash
            problems.append(Problem(card.path, card.line_of(f"fig:{name}"),
                                    f"figure '{name}' cannot be prepared: {type(e).__name__}: {e}"))
            return ""
        figures.add(name)
        return media_name
    path = (config.root / card.path).parent / target
    try:
        resolved = path.resolve()
        resolved.relative_to(config.root)
    except ValueError:
        problems.append(Problem(card.path, card.line_of(target), f"image '{target}' is outside the project"))
        return ""
    if not resolved.is_file():
        problems.append(Problem(card.path, card.line_of(target), f"image '{target}' not found"))
        return ""
    if resolved not in file_names:
        file_names[resolved] = content_name(resolved.stem, resolved)
        files[file_names[resolved]] = resolved
    return file_names[resolved]


@lru_cache(maxsize=None)
def _figure_key(root: Path, name: str, figure, variant: str) -> str:
    from .figures import figure_key

    return figure_key(root, name, figure, variant)


def figure_media_name(config: Config, registry: dict, name: str, variant: str) -> str:
    """Named by the hash of everything the image is made from (rendering is deterministic), known before rendering."""
    return f"fig-{name}-{variant}-{_figure_key(config.figures_dir.parent, name, registry[name], variant)[:12]}.png"


def content_name(stem: str, path: Path) -> str:
    """A media name that changes with the content, so Anki never keeps a stale file under the same name."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in stem)
    return f"{safe}-{digest}{path.suffix.lower()}"


# --- rendering ----------------------------------------------------------------------------------------------------

_renderer = None


def _render_job(job):
    """Render one card's sections (in a worker process or in-process). The converter is built once per process."""
    global _renderer
    if _renderer is None:
        from .render import Renderer
        _renderer = Renderer()
    cloze, sections = job
    return {name: _renderer.render(text, cloze) for name, text in sections.items()}


def render_cards(cards: list[Card], cache: dict) -> tuple[dict[int, dict], bool]:
    """Render every card's sections, reusing cached results keyed by source text and renderer version."""
    from .render import renderer_version

    salt = renderer_version()
    keys, jobs, rendered = {}, {}, {}
    for card in cards:
        sections = {name: section.text for name, section in card.sections.items()}
        key = hashlib.sha256(json.dumps([salt, card.kind, sections], ensure_ascii=False,
                                        sort_keys=True).encode()).hexdigest()
        keys[id(card)] = key
        if key in cache:
            rendered[id(card)] = cache[key]
        elif key not in jobs:
            jobs[key] = (card.kind == "cloze", sections)
    if jobs:
        todo = list(jobs.items())
        payload = [job for _, job in todo]
        workers = min(os.cpu_count() or 1, 8)
        if len(todo) >= PARALLEL_THRESHOLD and workers > 1:
            with ProcessPoolExecutor(workers) as pool:
                results = list(pool.map(_render_job, payload, chunksize=max(1, len(todo) // (workers * 4))))
        else:
            results = [_render_job(job) for job in payload]
        for (key, _), result in zip(todo, results):
            cache[key] = result
    for card in cards:
        rendered[id(card)] = cache[keys[id(card)]]
    used = set(keys.values())
    dirty = bool(jobs) or len(cache) != len(used)
    for stale in set(cache) - used:
        del cache[stale]
    return rendered, dirty


# --- write ---------------------------------------------------------------------------------------------------------

def build(config: Config, now: int | None = None, progress: bool = True) -> Result:
    started = time.perf_counter()
    plan = gather(config, now)
    media = _stage_media(plan, progress)
    out = _write_package(plan, media)
    _write_lock(config, plan.lock)
    if plan.render_cache_dirty:
        _write_pickle(config.cache_dir / "render.pickle", plan.render_cache)
    card_count = sum(_card_count(note) for note in plan.notes)
    return Result(plan, out, len(media), card_count, time.perf_counter() - started)


def _stage_media(plan: Plan, progress: bool) -> dict[str, Path]:
    """Render the figures the cards use and give every media file its content-hash name (in the cache folder)."""
    media: dict[str, Path] = dict(plan.files)
    if plan.figures:
        from .figures import ensure_rendered, load_registry

        config = plan.config
        registry = load_registry(config.figures_dir.parent, config.figures_dir.name)
        pngs = ensure_rendered(config.figures_dir.parent, registry, sorted(plan.figures),
                               config.cache_dir / "figures", progress=progress)
        for (name, variant), path in pngs.items():
            media[figure_media_name(config, registry, name, variant)] = path
    # genanki names each media file by its basename: stage copies under the content-hash names.
    staged: dict[str, Path] = {}
    stage = plan.config.cache_dir / "media"
    stage.mkdir(parents=True, exist_ok=True)
    for name, source in media.items():
        target = stage / name
        if not target.exists():
            tmp = target.with_suffix(target.suffix + ".tmp")
            shutil.copyfile(source, tmp)
            os.replace(tmp, target)
        staged[name] = target
    return staged


def _card_count(note: Note) -> int:
    if note.card.kind == "basic":
        return 1
    from .parse import CLOZE_RE
    return len(set(CLOZE_RE.findall(note.fields["Text"])))


def _write_package(plan: Plan, media: dict[str, Path]) -> Path:
    import genanki

    from .models import BASIC_FIELDS, CLOZE_FIELDS, basic_model, cloze_model

    class TimedNote(genanki.Note):
        """A note whose mod time is its content's, not the build's: unchanged notes stay untouched in Anki."""

        def __init__(self, mod: int, **kwargs):
            super().__init__(**kwargs)
            self.mod = mod

        def write_to_db(self, cursor, timestamp, deck_id, id_gen):
            super().write_to_db(cursor, self.mod, deck_id, id_gen)

    models = {"basic": (basic_model(), BASIC_FIELDS), "cloze": (cloze_model(), CLOZE_FIELDS)}
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
    package = genanki.Package(list(decks.values()), media_files=[str(path) for path in media.values()])
    try:
        package.write_to_file(str(tmp), timestamp=max((note.mod for note in plan.notes), default=0))
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def deck_id(name: str) -> int:
    """A constant id per deck name (Anki matches decks by name on import; the id only has to be stable)."""
    return (1 << 30) + int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) % (1 << 30)


# --- lock file and caches ------------------------------------------------------------------------------------------

def _load_lock(config: Config, problems: list[Problem]) -> dict[str, dict]:
    path = config.lock_path
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text("utf-8"))
        return {str(k): {"hash": str(v["hash"]), "mod": int(v["mod"])} for k, v in data["notes"].items()}
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        problems.append(Problem(config.rel(path), 1, f"unreadable lock file ({e}); restore it from git"))
        return {}


def _write_lock(config: Config, notes: dict[str, dict]) -> None:
    lines = [f"    {json.dumps(k, ensure_ascii=False)}: {json.dumps(v, sort_keys=True)}" for k, v in sorted(notes.items())]
    text = '{\n  "version": %d,\n  "notes": {\n%s\n  }\n}\n' % (LOCK_VERSION, ",\n".join(lines))
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
    return {
        "notes": len(cards),
        "decks": dict(sorted(Counter(c.deck for c in cards).items())),
        "tags": dict(sorted(Counter(t for c in cards for t in c.tags).items())),
        "guide": {qid: {"question": info.guide[qid], "cards": ids} for qid, ids in coverage.items()},
    }
