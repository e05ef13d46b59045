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

from .errors import Problem

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


def load(path: Path, shown: str, problems: list[Problem]) -> Lock:
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
    lines = _key_lines(text)
    lock = Lock(exists=True)
    namespace = data.get("namespace")
    if namespace is not None and not isinstance(namespace, str):
        problems.append(Problem(shown, lines.get(("", "namespace"), 1), "'namespace' must be a string"))
    lock.namespace = namespace if isinstance(namespace, str) else None
    for section, target, kinds in (("notes", lock.notes, True), ("note_types", lock.note_types, False)):
        for key, entry in data.get(section, {}).items():
            where = lines.get((section, key), 1)
            if not isinstance(entry, dict):
                problems.append(Problem(shown, where, f"bad lock entry '{key}': expected an object"))
                continue
            errors = []
            if type(entry.get("hash")) is not str:
                errors.append("'hash' must be a string")
            if not _mod_ok(entry.get("mod")):
                errors.append(f"'mod' must be a whole number of seconds below {MAX_MOD}, not {entry.get('mod')!r}")
            if kinds and entry.get("kind", "basic") not in KINDS:
                errors.append(f"'kind' must be one of {', '.join(KINDS)}")
            if errors:
                problems.append(Problem(shown, where, f"bad lock entry '{key}': {'; '.join(errors)}; "
                                                      "restore the file from git"))
                continue
            value = {"hash": entry["hash"], "mod": entry["mod"]}
            if kinds:
                value["kind"] = entry.get("kind", "")
                if entry.get("removed"):
                    value["removed"] = True
            target[str(key)] = value
    return lock


def dumps(notes: dict[str, dict], note_types: dict[str, dict], namespace: str) -> str:
    def entries(items: dict[str, dict]) -> str:
        return ",\n".join(f"    {json.dumps(k, ensure_ascii=False)}: {json.dumps(v, sort_keys=True)}"
                          for k, v in sorted(items.items()))

    return ('{\n  "version": %d,\n  "namespace": %s,\n  "note_types": {\n%s\n  },\n  "notes": {\n%s\n  }\n}\n'
            % (LOCK_VERSION, json.dumps(namespace, ensure_ascii=False), entries(note_types), entries(notes)))


# --- recovery from a previous package ------------------------------------------------------------------------------

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
