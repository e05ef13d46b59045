"""End to end with Anki's own backend (PyPI `anki`): import, render, answer, edit, rebuild, re-import."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from ankideck import build, load_config
from tests.conftest import import_package

anki = pytest.importorskip("anki", reason="the test extra installs Anki's backend: pip install -e '.[test]'")


def notes_by_id(col) -> dict:
    return {col.get_note(nid)["Id"]: col.get_note(nid) for nid in col.find_notes("")}


def test_import_builds_notes_cards_decks_tags_and_media(project, collection):
    config = load_config()
    result = build(config, now=1_000_000, progress=False)
    import_package(collection, result.out)

    notes = notes_by_id(collection)
    assert set(notes) == {"softmax-def", "plot-card", "stable-softmax", "code-card"}
    assert collection.card_count() == 5  # one each for the basic notes, two for the cloze with c1 and c2
    decks = {d.name for d in collection.decks.all_names_and_ids()}
    assert {"Test::Formulas", "Test::basics"} <= decks
    assert sorted(notes["softmax-def"].tags) == ["formula", "guide::q1", "softmax"]
    assert sorted(notes["stable-softmax"].tags) == ["formula", "guide::q2"]
    # The footer names the file and the card, never a line that an edit above the card would make stale.
    assert notes["softmax-def"]["Source"] == "cards/basics/formulas.md"
    assert notes["softmax-def"]["Id"] == "softmax-def"
    assert notes["softmax-def"]["Guide"] == "q1 What is softmax?"
    assert notes["softmax-def"].note_type()["name"] == "ankideck Basic"

    # The image is in the collection's media folder under a content-hash name, and the field points at it.
    media_dir = Path(collection.media.dir())
    src = re.search(r'src="([^"]+)"', notes["plot-card"]["Back"]).group(1)
    assert re.fullmatch(r"plot-[0-9a-f]{12}\.png", src)
    assert (media_dir / src).read_bytes() == (project / "cards/basics/img/plot.png").read_bytes()

    # Every card renders a non-empty question and answer through the note type's templates.
    for cid in collection.find_cards(""):
        card = collection.get_card(cid)
        question, answer = card.question(), card.answer()
        assert re.sub(r"<[^>]+>|\s", "", question), cid
        assert len(answer) > len(question) // 2
    cloze_cards = [collection.get_card(c) for c in collection.find_cards("Id:stable-softmax")]
    fronts = sorted(card.question() for card in cloze_cards)
    assert any("[...]" in q and "unchanged" in q for q in fronts)  # c1 hidden, c2 shown
    assert all(r"\(\max_j z_j\)" in c.answer() for c in cloze_cards)  # the math survived the cloze
    # The answer's Extra starts closed, behind one tap; the footer shows the source file and the card id.
    answer = collection.get_card(collection.find_cards("Id:softmax-def")[0]).answer()
    assert re.search(r'<details class="extra"><summary>[^<]+</summary>', answer)
    assert "cards/basics/formulas.md" in answer and '<span class="card-id">softmax-def</span>' in answer


def test_note_types_reference_no_media_file(project, collection):
    """Anki scans a note type's CSS and templates (comments included) for static media named with a leading '_';
    a reference to a file that is not there is reported as missing media in Tools > Check Media."""
    import_package(collection, build(load_config(), now=1_000_000, progress=False).out)
    note_types = [entry for entry in collection.models.all_names_and_ids() if entry.name.startswith("ankideck")]
    assert sorted(entry.name for entry in note_types) == ["ankideck Basic", "ankideck Cloze"]
    for entry in note_types:
        assert list(collection.media.extract_static_media_files(entry.id)) == [], entry.name
    assert not collection.media.check().missing


def _answer_all(col) -> dict[int, tuple]:
    for cid in col.find_cards(""):
        card = col.get_card(cid)
        card.start_timer()
        col.sched.answerCard(card, 3)
    return {cid: _schedule(col, cid) for cid in col.find_cards("")}


def _schedule(col, cid):
    card = col.get_card(cid)
    return card.type, card.queue, card.due, card.ivl, card.reps


def test_reimport_updates_edited_keeps_history_and_leaves_the_rest(project, collection):
    config = load_config()
    first = build(config, now=1_000_000, progress=False)
    import_package(collection, first.out)
    before_schedule = _answer_all(collection)
    revlog_before = collection.db.scalar("select count() from revlog")
    assert revlog_before == len(before_schedule)

    # A user edit in Anki to a note the sources do not change must survive the re-import.
    untouched = notes_by_id(collection)["code-card"]
    untouched["Front"] = "my own wording"
    collection.update_note(untouched)
    note_ids_before = {k: n.id for k, n in notes_by_id(collection).items()}
    mods_before = {k: n.mod for k, n in notes_by_id(collection).items()}

    formulas = project / "cards/basics/formulas.md"
    text = formulas.read_text("utf-8")
    text = text.replace("Write softmax.", "Write the softmax function.")        # edit a basic card
    text = text.replace("{{c2::unchanged}}", "{{c2::the same}}")               # edit the cloze
    text = text.replace("# card: plot-card", "# card: plot-card-renamed")      # "remove" one, add one
    text += "\n# card: brand-new\n\n## Front\nNew?\n\n## Back\nYes.\n"
    formulas.write_text(text, "utf-8")

    second = build(config, now=1_000_000, progress=False)  # same clock: mod times must still move forward
    changes = second.plan.changes
    assert sorted(changes.changed) == ["softmax-def", "stable-softmax"]
    assert sorted(changes.new) == ["brand-new", "plot-card-renamed"]
    assert changes.removed == ["plot-card"]
    import_package(collection, second.out)

    notes = notes_by_id(collection)
    assert notes["softmax-def"]["Front"] == "<p>Write the softmax function.</p>"
    assert "the same" in notes["stable-softmax"]["Text"]
    assert notes["code-card"]["Front"] == "my own wording"   # untouched note: the user's edit survives
    assert notes["code-card"].mod == mods_before["code-card"]
    assert "brand-new" in notes and "plot-card" in notes     # removed notes stay in Anki
    # No duplicates: the edited notes are the same notes, with the same cards and the same schedule.
    assert len(notes) == 6 and len(collection.find_notes("")) == 6
    for key in ("softmax-def", "stable-softmax", "code-card", "plot-card"):
        assert notes[key].id == note_ids_before[key]
    for cid, schedule in before_schedule.items():
        assert _schedule(collection, cid) == schedule
    assert collection.db.scalar("select count() from revlog") == revlog_before


def test_rebuild_without_changes_touches_nothing(project, collection):
    config = load_config()
    first = build(config, now=1_000_000, progress=False)
    import_package(collection, first.out)
    note = notes_by_id(collection)["softmax-def"]
    note["Back"] = "edited in Anki"
    collection.update_note(note)

    second = build(config, now=2_000_000, progress=False)
    assert not second.plan.changes
    log = import_package(collection, second.out)
    assert notes_by_id(collection)["softmax-def"]["Back"] == "edited in Anki"
    assert len(log.log.updated) == 0 and len(log.log.new) == 0


def test_a_stylesheet_change_alone_reaches_anki(project, collection, monkeypatch):
    from ankideck import models

    first = build(load_config(), now=1_000_000, progress=False)
    import_package(collection, first.out)
    monkeypatch.setattr(models, "BASE_CSS", models.BASE_CSS + "\n.card { letter-spacing: 0.01em; }\n")
    second = build(load_config(), now=1_000_000, progress=False)  # same clock, no note changed
    assert not second.plan.changes
    import_package(collection, second.out)
    for name in ("ankideck Basic", "ankideck Cloze"):
        notetype = collection.models.by_name(name)
        assert "letter-spacing: 0.01em" in notetype["css"], name
    assert {m["name"] for m in collection.models.all()} >= {"ankideck Basic", "ankideck Cloze"}
    assert not any(m["name"].startswith("ankideck") and m["name"].endswith("+") for m in collection.models.all())


def test_the_real_deck_imports_with_no_missing_media(tmp_path, collection):
    """The deck a candidate downloads, as Anki's backend (the one AnkiDroid uses) imports it: every note and card
    arrives, every image a field names is in the package, and the note types name no media file."""
    import shutil

    root = Path(__file__).resolve().parents[1]
    copy = tmp_path / "deck"
    for part in ("cards", "figures"):
        shutil.copytree(root / part, copy / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(root / "pyproject.toml", copy / "pyproject.toml")
    result = build(load_config(cwd=copy), progress=False)   # in a copy: the project's lock file stays as it is
    import_package(collection, result.out)

    assert len(collection.find_notes("")) == len(result.plan.notes)
    assert collection.card_count() == result.card_count
    check = collection.media.check()
    assert list(check.missing) == [] and list(check.unused) == []
    for entry in collection.models.all_names_and_ids():
        if entry.name.startswith("ankideck"):
            assert list(collection.media.extract_static_media_files(entry.id)) == [], entry.name


def test_the_package_holds_the_rows_genanki_notes_would_write(tmp_path, monkeypatch):
    """package.NoteRows writes a note's rows itself (genanki's Note objects were a third of an edit-one rebuild):
    every row of the real deck's notes, cards and col tables must be the one a genanki.Note with the note's mod
    time writes, ids and order included."""
    import sqlite3
    import zipfile

    import genanki

    from ankideck import gather, package
    from tests.conftest import ROOT

    class TimedNote(genanki.Note):  # the reference: genanki's own note, stamped with the note's mod time
        def __init__(self, mod, **kwargs):
            super().__init__(**kwargs)
            self.mod = mod

        def write_to_db(self, cursor, timestamp, deck_id, id_gen):
            super().write_to_db(cursor, self.mod, deck_id, id_gen)

        def _check_invalid_html_tags_in_fields(self):
            pass

    def tables(apkg: Path) -> dict[str, list]:
        with zipfile.ZipFile(apkg) as archive:
            archive.extract("collection.anki2", apkg.parent / apkg.stem)
        with sqlite3.connect(apkg.parent / apkg.stem / "collection.anki2") as db:
            return {table: db.execute(f"select * from {table} order by id").fetchall()
                    for table in ("notes", "cards", "col")}

    plan = gather(load_config(ROOT), now=2_000_000_000)
    package.write_package(plan, {}, tmp_path / "rows.apkg")
    monkeypatch.setattr(package, "NoteRows", lambda model, fields, guid, tags, mod: TimedNote(
        mod, model=model, fields=fields, guid=guid, tags=tags))
    package.write_package(plan, {}, tmp_path / "genanki.apkg")
    ours, theirs = tables(tmp_path / "rows.apkg"), tables(tmp_path / "genanki.apkg")
    assert len(ours["notes"]) == len(plan.notes) and len(ours["cards"]) > len(plan.notes)
    for table in ("notes", "cards", "col"):
        assert ours[table] == theirs[table], table
