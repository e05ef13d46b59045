"""The .apkg writer: genanki note types and decks, and note rows, whose mod times are their content's, and the zip.

Each note's mod time is when its content last changed (from the lock file), each note type's when its templates or
CSS last changed, so a re-import updates exactly what changed. Deck ids are derived from the deck names.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import genanki

from .atomic import new_temp
from .changelog import deck_description
from .lockfile import next_mod
from .models import BASIC_FIELDS, CLOZE_FIELDS, basic_model, cloze_model, stylesheet


class NoteRows:
    """A note, as the rows genanki writes for it in the notes and cards tables, without a genanki.Note.

    genanki.Deck calls ``write_to_db`` for each of its notes; this writes the same rows in the same order with the
    same ids (tests/test_anki.py compares the databases), but its mod time is its content's, not the build's, so
    unchanged notes stay untouched in Anki. Which cards a note makes is genanki's own rule (its Note methods, called
    on this note). A genanki.Note costs about three times as much: its tag list, cached properties and checks
    (every field has been through the allow-list already, sanitize.py).
    """

    __slots__ = ("model", "fields", "guid", "tags", "mod")
    NOTE_SQL = "INSERT INTO notes VALUES(?,?,?,?,?,?,?,?,?,?,?);"  # genanki's statements, batched with its own
    CARD_SQL = "INSERT INTO cards VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?);"

    def __init__(self, model: genanki.Model, fields: list[str], guid: str, tags: list[str], mod: int):
        self.model, self.fields, self.guid, self.tags, self.mod = model, fields, guid, tags, mod

    def write_to_db(self, cursor, timestamp, deck_id, id_gen) -> None:
        note_id = next(id_gen)
        cursor.execute(self.NOTE_SQL, (
            note_id, self.guid, self.model.model_id, self.mod, -1, " " + " ".join(self.tags) + " ",
            "\x1f".join(self.fields), self.fields[self.model.sort_field_index], 0, 0, ""))
        cloze = self.model.model_type == genanki.Model.CLOZE
        for card in genanki.Note._cloze_cards(self) if cloze else genanki.Note._front_back_cards(self):
            cursor.execute(self.CARD_SQL, (next(id_gen), note_id, deck_id, card.ord, self.mod, -1, 0,
                                           -1 if card.suspend else 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, ""))


class TimedModel(genanki.Model):
    """A note type whose mod time is when its templates or CSS last changed: Anki updates it only if newer."""

    mod = 0     # set from the lock file's note types, by _models
    hash = ""   # the definition's hash, set by note_type_versions

    def to_json(self, timestamp, deck_id):
        return super().to_json(self.mod, deck_id)


def _models(plan) -> dict[str, tuple[TimedModel, tuple[str, ...]]]:
    """kind -> (note type, its field names), with the note types' mod times from the lock file's rule."""
    css = stylesheet(plan.config.cache_dir)
    models = {"basic": (basic_model(css, TimedModel), BASIC_FIELDS),
              "cloze": (cloze_model(css, TimedModel), CLOZE_FIELDS)}
    note_types = note_type_versions([model for model, _ in models.values()], plan.note_types_lock, plan.now)
    for model, _ in models.values():
        model.mod = note_types[model.name]["mod"]
    return models


def note_types(plan) -> dict[str, dict]:
    """The note types' versions for the lock file after this build (name -> hash, mod)."""
    return {model.name: {"hash": model.hash, "mod": model.mod} for model, _ in _models(plan).values()}


def _description(plan) -> str:
    return deck_description(plan.info.description, max((note.mod for note in plan.notes), default=0))


def fingerprint(plan, media_names: list[str]) -> str:
    """A hash of everything the .apkg holds (notes, decks, note types, media names; the media are named by their
    content): equal fingerprints, equal packages."""
    models = _models(plan)
    content = [plan.info.namespace, plan.info.name, _description(plan), sorted(media_names),
               sorted((model.name, model.hash, model.mod) for model, _ in models.values()),
               # the content hash covers the note's kind, fields and tags
               "\n".join(f"{note.source.id}\0{note.source.deck}\0{note.content_hash}\0{note.mod}"
                         for note in plan.notes)]
    return hashlib.sha256(json.dumps(content, ensure_ascii=False).encode()).hexdigest()


def write_package(plan, media: dict[str, Path], target: Path | None = None) -> tuple[Path, dict]:
    """Write the .apkg to ``target`` (a temporary file the caller renames), or else atomically over the output.

    Returns the output path and the note types' versions for the lock file (name -> hash, mod).
    """
    models = _models(plan)
    namespace = plan.info.namespace
    root = plan.info.name  # always shipped, even with every note in a sub-deck: it carries the version and links
    decks: dict[str, genanki.Deck] = {root: genanki.Deck(deck_id(root), root, description=_description(plan))}
    for note in plan.notes:
        deck_name = note.source.deck
        if deck_name not in decks:
            decks[deck_name] = genanki.Deck(deck_id(deck_name), deck_name)
        model, names = models[note.source.kind]
        decks[deck_name].add_note(NoteRows(model, [note.fields.get(name, "") for name in names],
                                           genanki.guid_for(namespace, note.source.id), note.tags, note.mod))
    out = plan.config.out
    package = genanki.Package(list(decks.values()))
    timestamp = max((note.mod for note in plan.notes), default=0)
    versions = {model.name: {"hash": model.hash, "mod": model.mod} for model, _ in models.values()}
    if target is not None:
        write_apkg(package, media, target, timestamp=timestamp)
        return out, versions
    tmp = new_temp(out)
    try:
        write_apkg(package, media, tmp, timestamp=timestamp)
        os.replace(tmp, out)  # only a complete package replaces the previous one
    finally:
        tmp.unlink(missing_ok=True)
    return out, versions


def note_type_versions(models, previous: dict[str, dict], now: int) -> dict[str, dict]:
    """Each note type's definition hash and the time it last changed (the same rule as for notes); also set on
    each model as ``hash``."""
    versions = {}
    for model in models:
        definition = {k: v for k, v in genanki.Model.to_json(model, 0, 0).items() if k not in ("mod", "did")}
        digest = hashlib.sha256(json.dumps(definition, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:20]
        model.hash = digest
        before = previous.get(model.name)
        if before and before["hash"] == digest:
            versions[model.name] = before
        else:
            versions[model.name] = {"hash": digest, "mod": next_mod(before, now)}
    return versions


def write_apkg(package: genanki.Package, media: dict[str, Path], path: Path, timestamp: int) -> None:
    """genanki's Package.write_to_file, with a throw-away database that skips journaling and fsync (3x faster on
    large decks) and media stored under the names given here rather than the files' basenames."""
    import sqlite3  # here: a build with nothing to write never needs them
    import zipfile

    try:
        _write_apkg_unchecked(package, media, path, timestamp)
    except (sqlite3.Error, zipfile.BadZipFile) as e:  # a full disk surfaces as "database or disk is full"
        raise OSError(f"cannot write the deck: {e}") from None


class _BatchedInserts:
    """The cursor genanki writes through, with its row-by-row INSERTs sent as one executemany per table.

    The rows and their order are genanki's; any other statement (the decks' and models' SELECT and UPDATE) first
    sends the rows held back. A note's id is the explicit first column, so ``lastrowid`` is known without a round trip.
    """

    def __init__(self, cursor):  # a sqlite3.Cursor
        self.cursor = cursor
        self.pending: dict[str, list[tuple]] = {}
        self.lastrowid = None

    def execute(self, sql: str, parameters=()):
        if sql.startswith("INSERT INTO "):
            self.pending.setdefault(sql, []).append(parameters)
            self.lastrowid = parameters[0]
            return self
        self.flush()
        return self.cursor.execute(sql, parameters)

    def executescript(self, script: str):
        self.flush()
        return self.cursor.executescript(script)

    def flush(self) -> None:
        for sql, rows in self.pending.items():
            self.cursor.executemany(sql, rows)
        self.pending = {}


def _write_apkg_unchecked(package: genanki.Package, media: dict[str, Path], path: Path, timestamp: int) -> None:
    import itertools
    import sqlite3
    import tempfile
    import zipfile

    with tempfile.TemporaryDirectory() as scratch:
        database = Path(scratch) / "collection.anki2"
        connection = sqlite3.connect(database)
        connection.execute("PRAGMA journal_mode = OFF")
        connection.execute("PRAGMA synchronous = OFF")
        cursor = _BatchedInserts(connection.cursor())
        package.write_to_db(cursor, timestamp, itertools.count(int(timestamp * 1000)))
        cursor.flush()
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
