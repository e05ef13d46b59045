"""Compile card files: parse one file and render its cards' sections to sanitised HTML, and the cache of the results.

The cache holds each card file's parsed cards, problems and HTML as JSON, not pickle: loading a cache file must never
run code, whoever wrote it (a shared folder, a committed ``.cache/``). Anything in it of the wrong shape makes the
whole cache count as empty: it is only a slower build.

Entries are keyed by a hash of the engine (``engine_version``: the source of this package and the versions of the
libraries that shape the HTML) and of the file's path, default deck and bytes, so an edit to the engine, like an
edit to a card, is never answered from the cache.
"""
from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path

from .config import Config, DeckInfo
from .errors import Problem, Problems
from .installed import version
from .parse import MAX_CARD_CHARS, NoteSource, Section, card_size, decode, parse_text
from .rendered import Rendered
from .sources import card_files, default_deck

CACHE_FILE = "compiled.json"
FORMAT = 1
HTML_LIBRARIES = ("markdown", "pymdown-extensions", "pygments", "nh3")  # what shapes the HTML besides this package
PARALLEL_BYTES = 200_000   # below this much Markdown to compile, worker start-up costs more than it saves

FileResult = tuple[list[NoteSource], list[Problem], list[dict]]  # cards, problems, per card {section: Rendered}


# --- one file ------------------------------------------------------------------------------------------------------

_renderer = None


def compile_file(job: tuple[str, str, bytes]) -> FileResult:
    """Parse one card file and render every card's sections (in a worker process or in-process).

    A pure function of the file's bytes, its path and its default deck: the build caches its result by those.
    """
    global _renderer
    where, deck, data = job
    problems = Problems()
    text = decode(data, where, problems)
    if text is None:
        return [], problems.items, []
    cards = parse_text(text, where, deck, problems)
    if _renderer is None:
        from .render import Renderer
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
    return cards, problems.items, rendered


# --- every file, through the cache ---------------------------------------------------------------------------------

class CompileCache:
    """file key -> compile_file's result; ``dirty`` once an entry was added or dropped (the build then saves it)."""

    def __init__(self, entries: dict[str, FileResult] | None = None):
        self.entries: dict[str, FileResult] = entries or {}
        self.dirty = False

    @classmethod
    def load(cls, path: Path) -> CompileCache:
        """The cache at ``path``; empty when missing, unreadable or of the wrong shape."""
        try:
            data = json.loads(path.read_bytes())
            if data.get("format") != FORMAT or data.get("engine") != engine_version():
                return cls()
            return cls({_str(key): _entry(entry) for key, entry in _dict(data["entries"]).items()})
        except Exception:  # noqa: BLE001 - any damage to a cache is only a slower build
            return cls()

    def dumps(self) -> bytes:
        entries = {}
        for key, (cards, problems, rendered) in self.entries.items():
            entries[key] = {
                "cards": [[c.id, c.kind, c.path, c.line, c.deck, list(c.tags), c.guide,
                           {name: [s.text, s.line] for name, s in c.sections.items()}] for c in cards],
                "problems": [[p.path, p.line, p.message] for p in problems],
                "rendered": [{name: [r.html, r.refs, [list(p) for p in r.problems]] for name, r in sections.items()}
                             for sections in rendered],
            }
        return json.dumps({"format": FORMAT, "engine": engine_version(), "entries": entries},
                          ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def compile_sources(config: Config, info: DeckInfo, cache: CompileCache,
                    problems: Problems) -> tuple[list[NoteSource], dict[tuple[str, str, int], dict[str, Rendered]]]:
    """Every card file, parsed and rendered, reusing the cache for files whose bytes have not changed.

    Returns (cards, {(id, path, line): {section: Rendered}}).
    """
    salt = engine_version().encode()
    jobs, keys = [], []
    for path in card_files(config):
        job = (config.rel(path), default_deck(config, info, path), path.read_bytes())
        keys.append(hashlib.sha256(b"\0".join((salt, job[0].encode(), job[1].encode(), job[2]))).hexdigest())
        jobs.append(job)
    entries = cache.entries
    todo = [i for i, key in enumerate(keys) if key not in entries]
    if todo:
        workers = min(os.cpu_count() or 1, len(todo))
        if sum(len(jobs[i][2]) for i in todo) >= PARALLEL_BYTES and workers > 1:
            from concurrent.futures import ProcessPoolExecutor  # only here: a warm build never imports it

            with ProcessPoolExecutor(workers) as pool:
                results = list(pool.map(compile_file, [jobs[i] for i in todo]))
        else:
            results = [compile_file(jobs[i]) for i in todo]
        for i, result in zip(todo, results):
            entries[keys[i]] = result
    cards, rendered = [], {}
    for key in keys:
        file_cards, file_problems, file_rendered = entries[key]
        cards.extend(file_cards)
        problems.extend(file_problems)
        for card, sections in zip(file_cards, file_rendered):
            rendered[card.id, card.path, card.line] = sections
    stale = set(entries) - set(keys)
    for key in stale:
        del entries[key]
    cache.dirty |= bool(todo or stale)
    return cards, rendered


@lru_cache(maxsize=None)
def engine_version() -> str:
    """Everything compiled HTML depends on besides a file's bytes: this package's source and the libraries'
    versions. Salts every cache key, so an edit to the engine (or an upgrade) is never answered from the cache."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).resolve().parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    libraries = ",".join(f"{name}={version(name)}" for name in HTML_LIBRARIES)
    return f"{libraries};engine={digest.hexdigest()[:20]}"


# --- reading the cache back, strictly ------------------------------------------------------------------------------

def _card(raw) -> NoteSource:
    id_, kind, path, line, deck, tags, guide, sections = raw
    card = NoteSource(_str(id_), _str(kind), _str(path), _int(line), _str(deck), tuple(_str(t) for t in _list(tags)),
                None if guide is None else _str(guide))
    card.sections = {_str(name): Section(_str(text), _int(at)) for name, (text, at) in _dict(sections).items()}
    return card


def _rendered(raw) -> Rendered:
    html, refs, problems = raw
    return Rendered(_str(html), [_str(r) for r in _list(refs)], [(_str(n), _str(m)) for n, m in _list(problems)])


def _entry(raw) -> FileResult:
    cards = [_card(c) for c in _list(raw["cards"])]
    problems = [Problem(_str(path), _int(line), _str(message)) for path, line, message in _list(raw["problems"])]
    rendered = [{_str(k): _rendered(v) for k, v in _dict(sections).items()} for sections in _list(raw["rendered"])]
    if len(rendered) != len(cards) or any(set(r) - set(c.sections) for c, r in zip(cards, rendered)):
        raise ValueError("rendered sections do not match the cards")
    return cards, problems, rendered


def _str(v) -> str:
    if type(v) is not str:
        raise TypeError
    return v


def _int(v) -> int:
    if type(v) is not int:
        raise TypeError
    return v


def _list(v) -> list:
    if type(v) is not list:
        raise TypeError
    return v


def _dict(v) -> dict:
    if type(v) is not dict:
        raise TypeError
    return v
