"""Compile card files: parse one file and render its cards' sections to sanitised HTML, and the cache of the results.

The cache holds each card file's parsed cards, problems and HTML as JSON, not pickle: loading a cache file must never
run code, whoever wrote it (a shared folder, a committed ``.cache/``). Anything in it of the wrong shape makes the
whole cache count as empty: it is only a slower build. One line per card file (``key<TAB>json``, after a header
line), so that saving the cache after an edit re-serialises only the edited file's entry.

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

CACHE_FILE = "compiled.jsonl"
FORMAT = 2
HTML_LIBRARIES = ("markdown", "pymdown-extensions", "pygments", "nh3")  # what shapes the HTML besides this package
PARALLEL_BYTES = 200_000   # below this much Markdown to compile, worker start-up costs more than it saves

FileResult = tuple[list[NoteSource], list[Problem], list[dict]]  # cards, problems, per card {section: Rendered}


# --- one file ------------------------------------------------------------------------------------------------------

_renderer = None


def _start_renderer() -> None:
    """Build the process's one Markdown converter (the expensive part), with the libraries it imports."""
    global _renderer
    if _renderer is None:
        import nh3  # noqa: F401  (sanitize's, imported there on first use)

        from .render import Renderer

        _renderer = Renderer()


def compile_file(job: tuple[str, str, bytes]) -> FileResult:
    """Parse one card file and render every card's sections (in a worker process or in-process).

    A pure function of the file's bytes, its path and its default deck: the build caches its result by those.
    """
    where, deck, data = job
    problems = Problems()
    text = decode(data, where, problems)
    if text is None:
        return [], problems.items, []
    cards = parse_text(text, where, deck, problems)
    _start_renderer()
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
    """file key -> compile_file's result. Entries are read from their lines when first asked for (a build needs
    only those of the current files); ``dirty`` once an entry was added or dropped (the build then saves it)."""

    def __init__(self, lines: dict[str, str] | None = None):
        self._lines: dict[str, str | None] = dict(lines or {})  # key -> its entry's JSON as stored (None: new)
        self.entries: dict[str, FileResult] = {}                  # the entries read or compiled so far
        self.dirty = False

    @classmethod
    def load(cls, path: Path) -> CompileCache:
        """The cache at ``path``; empty when missing, unreadable or written by another engine."""
        try:
            header, *lines = path.read_bytes().decode("utf-8").split("\n")
            head = json.loads(header)
            if head.get("format") != FORMAT or head.get("engine") != engine_version():
                return cls()
            stored = {}
            for line in lines:
                if line:
                    key, tab, text = line.partition("\t")
                    if not tab:
                        raise ValueError("no key")
                    stored[key] = text
            return cls(stored)
        except Exception:  # noqa: BLE001 - any damage to a cache is only a slower build
            return cls()

    def __contains__(self, key: str) -> bool:
        return key in self.entries or key in self._lines

    def get(self, key: str) -> FileResult | None:
        """The entry of ``key``, or None where there is none or it is of the wrong shape (then it is dropped)."""
        if key not in self.entries:
            text = self._lines.get(key)
            if text is None:
                return None
            try:
                self.entries[key] = _entry(json.loads(text))
            except Exception:  # noqa: BLE001 - a damaged entry is only a file compiled again
                del self._lines[key]
                self.dirty = True
                return None
        return self.entries[key]

    def put(self, key: str, result: FileResult, text: str | None = None) -> None:
        """Store ``result`` (``text``: its JSON, when the caller has it already)."""
        self.entries[key] = result
        self._lines[key] = text
        self.dirty = True

    def keep_only(self, keys: set[str]) -> None:
        for key in [key for key in self._lines if key not in keys]:
            del self._lines[key]
            self.entries.pop(key, None)
            self.dirty = True

    def dumps(self) -> bytes:
        lines = [json.dumps({"format": FORMAT, "engine": engine_version()})]
        for key, text in self._lines.items():
            lines.append(key + "\t" + (text if text is not None else _json(self.entries[key])))
        return ("\n".join(lines) + "\n").encode("utf-8")


def _json(result: FileResult) -> str:
    """One file's entry as the cache stores it."""
    cards, problems, rendered = result
    entry = {
        "cards": [[c.id, c.kind, c.path, c.line, c.deck, list(c.tags), c.guide,
                   {name: [s.text, s.line] for name, s in c.sections.items()}] for c in cards],
        "problems": [[p.path, p.line, p.message] for p in problems],
        "rendered": [{name: [r.html, r.refs, [list(p) for p in r.problems]] for name, r in sections.items()}
                     for sections in rendered],
    }
    return json.dumps(entry, ensure_ascii=False, separators=(",", ":"))


def _compile_to_json(job: tuple[str, str, bytes]) -> str:
    """compile_file in a worker process, its result already in the cache's JSON (cheaper to send back)."""
    return _json(compile_file(job))


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
    todo = [i for i, key in enumerate(keys) if key not in cache]
    workers = min(os.cpu_count() or 1, len(todo))
    if sum(len(jobs[i][2]) for i in todo) >= PARALLEL_BYTES and workers > 1:
        from concurrent.futures import as_completed  # only here: a warm build never needs them

        from .workers import worker_pool

        _start_renderer()  # before the workers fork: they share it instead of each building their own
        with worker_pool(workers) as pool:  # the biggest files first, so that no worker finishes alone
            futures = {pool.submit(_compile_to_json, jobs[i]): i for i in sorted(todo, key=lambda i: -len(jobs[i][2]))}
            for future in as_completed(futures):  # read back while the workers go on
                i, text = futures[future], future.result()
                cache.put(keys[i], _entry(json.loads(text)), text)
    for i, key in enumerate(keys):
        if cache.get(key) is None:  # not compiled above, or a cached entry of the wrong shape
            cache.put(key, compile_file(jobs[i]))
    cache.keep_only(set(keys))
    cards, rendered = [], {}
    for key in keys:
        file_cards, file_problems, file_rendered = cache.entries[key]
        cards.extend(file_cards)
        problems.extend(file_problems)
        for card, sections in zip(file_cards, file_rendered):
            rendered[card.id, card.path, card.line] = sections
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


# --- reading the cache back, strictly (JSON object keys are strings already) --------------------------------------

def _card(raw) -> NoteSource:
    id_, kind, path, line, deck, tags, guide, sections = raw
    if not (type(id_) is str and type(kind) is str and type(path) is str and type(line) is int
            and type(deck) is str and type(tags) is list and (guide is None or type(guide) is str)
            and type(sections) is dict and all(type(tag) is str for tag in tags)):
        raise TypeError("a card of the wrong shape")
    card = NoteSource(id_, kind, path, line, deck, tuple(tags), guide)
    for name, (text, at) in sections.items():
        if type(text) is not str or type(at) is not int:
            raise TypeError("a section of the wrong shape")
        card.sections[name] = Section(text, at)
    return card


def _rendered(raw) -> Rendered:
    html, refs, problems = raw
    if not (type(html) is str and type(refs) is list and type(problems) is list
            and (not refs or all(type(ref) is str for ref in refs))):
        raise TypeError("rendered HTML of the wrong shape")
    if not problems:  # most sections (thousands per build): no loop to run
        return Rendered(html, refs, [])
    pairs = []
    for needle, message in problems:
        if type(needle) is not str or type(message) is not str:
            raise TypeError("a problem of the wrong shape")
        pairs.append((needle, message))
    return Rendered(html, refs, pairs)


def _entry(raw) -> FileResult:
    if type(raw) is not dict:
        raise TypeError("an entry of the wrong shape")
    cards = [_card(c) for c in _list(raw["cards"])]
    problems = []
    for path, line, message in _list(raw["problems"]):
        if not (type(path) is str and type(line) is int and type(message) is str):
            raise TypeError("a problem of the wrong shape")
        problems.append(Problem(path, line, message))
    rendered = [{name: _rendered(value) for name, value in _dict(sections).items()}
                for sections in _list(raw["rendered"])]
    if len(rendered) != len(cards) or any(set(r) - set(c.sections) for c, r in zip(cards, rendered)):
        raise ValueError("rendered sections do not match the cards")
    return cards, problems, rendered


def _list(v) -> list:
    if type(v) is not list:
        raise TypeError
    return v


def _dict(v) -> dict:
    if type(v) is not dict:
        raise TypeError
    return v
