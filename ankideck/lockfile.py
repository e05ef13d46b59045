"""``cards/cards.lock.json``: each note's content hash, kind and mod time, the note types' versions, the namespace.

Read strictly: an entry of the wrong shape (a mod time that is not a whole number of seconds a database can hold,
``Infinity``, a hash that is no string) is a problem at its own line. Written one entry per line, sorted, so that a
diff shows exactly the notes that changed.

Without a lock file, a previous ``.apkg`` still knows every note's fields and mod time: ``recover_from_package``
reads it back, so deleting the lock file never makes every note look new (a re-import would then overwrite every
edit made in Anki).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from .config import Config, DeckInfo, deck_yaml_line
from .errors import Problem, Problems

LOCK_VERSION = 1
MAX_MOD = 2 ** 53  # seconds; sqlite holds 2**63, JavaScript (Anki's web views) 2**53
KINDS = ("basic", "cloze")
KEY_LINE_RE = re.compile(r'^\s*("(?:[^"\\]|\\.)*")\s*:')


@dataclass
class Lock:
    notes: dict[str, dict] = field(default_factory=dict)       # id -> {hash, kind, mod[, removed]}
    note_types: dict[str, dict] = field(default_factory=dict)  # name -> {hash, mod}
    namespace: str | None = None                               # None: not recorded (an older lock file)
    exists: bool = False


class _BadNumber(float):
    pass


def _parse_int(text: str):
    return int(text) if len(text) <= 20 else _BadNumber("inf")


def _reject_constant(name: str):
    return _BadNumber("nan")


def _key_lines(text: str) -> dict[tuple[str, str], int]:
    """(section, key) -> line number, for the lock file's one-entry-per-line layout."""
    lines: dict[tuple[str, str], int] = {}
    section = ""
    for number, line in enumerate(text.splitlines(), start=1):
        match = KEY_LINE_RE.match(line)
        if not match:
            continue
        try:
            key = json.loads(match.group(1))
        except ValueError:
            continue
        if line.startswith("  ") and not line.startswith("   "):
            section = key
            lines.setdefault(("", key), number)
        else:
            lines.setdefault((section, key), number)
    return lines


def _mod_ok(value) -> bool:
    return type(value) is int and 0 <= value < MAX_MOD


def load(path: Path, shown: str, problems: Problems) -> Lock:
    if not path.exists():
        return Lock()
    if path.is_dir():
        problems.append(Problem(shown, 1, "is a directory, not the lock file; move it out of the way"))
        return Lock(exists=True)
    try:
        text = path.read_text("utf-8")
        data = json.loads(text, parse_int=_parse_int, parse_constant=_reject_constant)
        if not isinstance(data, dict) or not isinstance(data.get("notes"), dict) \
                or not isinstance(data.get("note_types", {}), dict):
            raise ValueError("expected an object with 'notes'")
    except (OSError, ValueError, RecursionError) as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        line = getattr(e, "lineno", 1)
        problems.append(Problem(shown, line, f"unreadable lock file ({e}); restore it from git"))
        return Lock(exists=True)
    found: list[dict] = []

    def line_of(section: str, key: str) -> int:  # only for a problem: finding the lines costs more than the rest
        if not found:
            found.append(_key_lines(text))
        return found[0].get((section, key), 1)

    lock = Lock(exists=True)
    namespace = data.get("namespace")
    if namespace is not None and not isinstance(namespace, str):
        problems.append(Problem(shown, line_of("", "namespace"), "'namespace' must be a string"))
    lock.namespace = namespace if isinstance(namespace, str) else None
    for section, target, kinds in (("notes", lock.notes, True), ("note_types", lock.note_types, False)):
        for key, entry in data.get(section, {}).items():
            if not isinstance(entry, dict):
                problems.append(Problem(shown, line_of(section, key), f"bad lock entry '{key}': expected an object"))
                continue
            errors = []
            if type(entry.get("hash")) is not str:
                errors.append("'hash' must be a string")
            if not _mod_ok(entry.get("mod")):
                errors.append(f"'mod' must be a whole number of seconds below {MAX_MOD}, not {entry.get('mod')!r}")
            if kinds and entry.get("kind", "basic") not in KINDS:
                errors.append(f"'kind' must be one of {', '.join(KINDS)}")
            if errors:
                message = f"bad lock entry '{key}': {'; '.join(errors)}; restore the file from git"
                problems.append(Problem(shown, line_of(section, key), message))
                continue
            value = {"hash": entry["hash"], "mod": entry["mod"]}
            if kinds:
                value["kind"] = entry.get("kind", "")
                if entry.get("removed"):
                    value["removed"] = True
            target[str(key)] = value
    return lock


def next_mod(previous: dict | None, now: int) -> int:
    """The mod time of something (a note, a note type) whose content changed now: strictly newer than what Anki has
    (a removed card's note may still be there), or the import skips it."""
    return max(now, previous["mod"] + 1) if previous else now


@dataclass
class Changes:
    new: list[str]
    changed: list[str]
    removed: list[str]

    def __bool__(self) -> bool:
        return bool(self.new or self.changed or self.removed)


def advance(lock: dict[str, dict], notes: list, now: int) -> tuple[dict[str, dict], Changes]:
    """The lock after this build, and what changed: sets each note's ``mod`` (kept while its content hash is)."""
    new_lock: dict[str, dict] = {}
    new, changed = [], []
    for note in notes:
        previous = lock.get(note.source.id)
        live = previous is not None and not previous.get("removed")
        if live and previous["hash"] == note.content_hash:
            note.mod = previous["mod"]
        else:
            note.mod = next_mod(previous, now)
            (changed if live else new).append(note.source.id)
        new_lock[note.source.id] = {"hash": note.content_hash, "kind": note.source.kind, "mod": note.mod}
    # Removed cards stay in the lock as tombstones: their notes stay in Anki, so their ids are never reused.
    removed = sorted(k for k, v in lock.items() if k not in new_lock and not v.get("removed"))
    for card_id, entry in lock.items():
        new_lock.setdefault(card_id, {**entry, "removed": True})
    return new_lock, Changes(sorted(new), sorted(changed), removed)


def dumps(notes: dict[str, dict], note_types: dict[str, dict], namespace: str) -> str:
    def entries(items: dict[str, dict]) -> str:
        return ",\n".join(f"    {_string(k)}: {_entry(v)}" for k, v in sorted(items.items()))

    return ('{\n  "version": %d,\n  "namespace": %s,\n  "note_types": {\n%s\n  },\n  "notes": {\n%s\n  }\n}\n'
            % (LOCK_VERSION, json.dumps(namespace, ensure_ascii=False), entries(note_types), entries(notes)))


PLAIN_RE = re.compile(r"[A-Za-z0-9._-]*")  # card ids, hashes, kinds: JSON writes them as they are


def _string(value: str, ensure_ascii: bool = False) -> str:
    return f'"{value}"' if PLAIN_RE.fullmatch(value) else json.dumps(value, ensure_ascii=ensure_ascii)


def _entry(entry: dict) -> str:
    """``json.dumps(entry, sort_keys=True)``, written out for the usual entries (thousands per build)."""
    if entry.keys() <= {"hash", "kind", "mod", "removed"} and type(entry.get("mod")) is int \
            and all(type(entry.get(key, "")) is str for key in ("hash", "kind")) and entry.get("removed", True) is True:
        parts = [f'"{key}": {_string(entry[key], ensure_ascii=True)}' for key in ("hash", "kind") if key in entry]
        parts.append(f'"mod": {entry["mod"]}')
        if "removed" in entry:
            parts.append('"removed": true')
        return "{" + ", ".join(parts) + "}"
    return json.dumps(entry, sort_keys=True)


# --- the namespace, and recovery from a previous package -----------------------------------------------------------

def check_namespace(config: Config, info: DeckInfo, lock: Lock, new_namespace: bool, problems: Problems) -> None:
    """A changed namespace changes every GUID: a re-import would duplicate the whole deck, without its history."""
    before = lock.namespace
    if before is None or before == info.namespace or new_namespace:
        return
    where, line = deck_yaml_line(config, "namespace")
    live = sum(1 for entry in lock.notes.values() if not entry.get("removed"))
    problems.add(where, line, (
        f"namespace changed from '{before}' to '{info.namespace}' (recorded in {config.rel(config.lock_path)}): "
        f"every note's identity would change, and a re-import would add all {live} notes again as new notes "
        f"without their review history; restore namespace: {before}, or build with --new-namespace to start a "
        "new deck on purpose"))


def recover(config: Config, info: DeckInfo, lock: Lock, problems: Problems, notices: list[str],
            new_namespace: bool) -> dict[str, PackageNote] | None:
    """Without a lock file: the previous package's notes (to rebuild the lock from), or None, with a notice."""
    import genanki

    from .models import BASIC_MODEL_ID, CLOZE_MODEL_ID

    if lock.exists:
        return None
    lock_shown = config.rel(config.lock_path)
    if not config.out.is_file():
        notices.append(f"No lock file ({lock_shown}) and no previous deck ({config.rel(config.out)}): every note "
                       "is new. If this deck was built before, restore the lock file from git first, or a re-import "
                       "overwrites every edit made in Anki.")
        return None
    try:
        notes = read_package(config.out, BASIC_MODEL_ID, CLOZE_MODEL_ID)
    except ValueError as e:
        problems.append(Problem(config.rel(config.out), 1, (
            f"{lock_shown} is missing and the previous deck cannot be read to rebuild it ({e}); restore the lock "
            f"file from git, or delete {config.rel(config.out)} to start from scratch (every note new)")))
        return None
    foreign = [card_id for card_id, note in notes.items() if note.guid != genanki.guid_for(info.namespace, card_id)]
    if foreign and not new_namespace:
        where, line = deck_yaml_line(config, "namespace")
        problems.append(Problem(where, line, (
            f"{len(foreign)} of the {len(notes)} notes in {config.rel(config.out)} were built under another "
            f"namespace than '{info.namespace}': a re-import would add them again as new notes; restore the "
            "namespace, or build with --new-namespace to start a new deck on purpose")))
        return None
    notices.append(f"No lock file ({lock_shown}): rebuilt it from {config.rel(config.out)} ({len(notes)} notes); "
                   "notes whose fields and tags are unchanged keep their mod time, so a re-import leaves them alone.")
    return notes


def lock_from_package(notes: list, package: dict[str, PackageNote], problems: Problems) -> dict[str, dict]:
    """Lock entries rebuilt from the previous package: a note the same as there keeps its hash's place and time."""
    from .models import BASIC_FIELDS, CLOZE_FIELDS

    lock: dict[str, dict] = {}
    for note in notes:
        previous = package.get(note.source.id)
        if previous is None:
            continue
        if previous.kind != note.source.kind:
            problems.append(Problem(note.source.path, note.source.line, (
                f"card '{note.source.id}' was a {previous.kind} note and is now a {note.source.kind} note; Anki cannot "
                "change a note's type on re-import, so give it a new id (the old note stays in Anki)")))
        names = BASIC_FIELDS if note.source.kind == "basic" else CLOZE_FIELDS
        same = previous.fields == [note.fields.get(name, "") for name in names] and previous.tags == sorted(note.tags)
        lock[note.source.id] = {"hash": note.content_hash if same else "", "kind": previous.kind, "mod": previous.mod}
    for card_id, previous in package.items():
        lock.setdefault(card_id, {"hash": "", "kind": previous.kind, "mod": previous.mod})
    return lock


@dataclass
class PackageNote:
    kind: str
    fields: list[str]
    tags: list[str]
    mod: int
    guid: str


def read_package(path: Path, basic_model_id: int, cloze_model_id: int) -> dict[str, PackageNote]:
    """The notes of an .apkg this engine wrote, by card id (their last field). Raises ValueError if unreadable."""
    import sqlite3
    import tempfile
    import zipfile

    kinds = {basic_model_id: "basic", cloze_model_id: "cloze"}
    try:
        with zipfile.ZipFile(path) as package, tempfile.TemporaryDirectory() as scratch:
            package.extract("collection.anki2", scratch)
            connection = sqlite3.connect(Path(scratch) / "collection.anki2")
            try:
                rows = connection.execute("select guid, mid, mod, tags, flds from notes").fetchall()
            finally:
                connection.close()
    except (OSError, KeyError, zipfile.BadZipFile, sqlite3.Error) as e:
        raise ValueError(str(e)) from None
    notes = {}
    for guid, mid, mod, tags, flds in rows:
        fields = str(flds).split("\x1f")
        if mid in kinds and fields and _mod_ok(mod):
            notes[fields[-1]] = PackageNote(kinds[mid], fields, sorted(str(tags).split()), mod, str(guid))
    return notes
