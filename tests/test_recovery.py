"""A deleted lock file is rebuilt from the previous deck, so a re-import keeps every edit made in Anki
(with Anki's own backend, as tests/test_anki.py)."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from ankideck import build, load_config
from ankideck.cli import cli
from tests.conftest import import_package

anki = pytest.importorskip("anki", reason="the test extra installs Anki's backend: pip install -e '.[test]'")


def notes_by_id(col) -> dict:
    return {col.get_note(nid)["Id"]: col.get_note(nid) for nid in col.find_notes("")}


def test_a_deleted_lock_is_rebuilt_from_the_previous_deck_and_anki_edits_survive(project, collection):
    first = build(load_config(), now=1_000_000, progress=False)
    import_package(collection, first.out)
    note = notes_by_id(collection)["code-card"]
    note["Front"] = "my own wording"
    collection.update_note(note)
    lock_path = project / "cards/cards.lock.json"
    entries = json.loads(lock_path.read_text("utf-8"))["notes"]
    lock_path.unlink()

    formulas = project / "cards/basics/formulas.md"
    formulas.write_text(formulas.read_text("utf-8").replace("Write softmax.", "Write softmax!"), "utf-8")
    result = CliRunner().invoke(cli, ["build"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "No lock file (cards/cards.lock.json): rebuilt it from dist/test.apkg (4 notes)" in result.output
    assert "0 new, 1 changed, 0 removed" in result.output
    rebuilt = json.loads(lock_path.read_text("utf-8"))["notes"]
    assert {k: v["mod"] for k, v in rebuilt.items() if k != "softmax-def"} == \
        {k: v["mod"] for k, v in entries.items() if k != "softmax-def"}

    log = import_package(collection, project / "dist/test.apkg")
    assert len(log.log.new) == 0 and len(log.log.updated) == 1
    notes = notes_by_id(collection)
    assert notes["code-card"]["Front"] == "my own wording"
    assert notes["softmax-def"]["Front"] == "<p>Write softmax!</p>"


def test_a_missing_lock_beside_an_unreadable_deck_is_refused(project):
    assert CliRunner().invoke(cli, ["build"]).exit_code == 0
    (project / "cards/cards.lock.json").unlink()
    (project / "dist/test.apkg").write_bytes(b"not a zip")
    result = CliRunner().invoke(cli, ["build"], catch_exceptions=False)
    assert result.exit_code == 1
    assert any(line.startswith("dist/test.apkg:1: cards/cards.lock.json is missing and the previous deck cannot "
                               "be read") for line in result.output.splitlines())
    assert (project / "dist/test.apkg").read_bytes() == b"not a zip"


def test_a_namespace_change_without_a_lock_is_seen_in_the_previous_deck(project):
    assert CliRunner().invoke(cli, ["build"]).exit_code == 0
    (project / "cards/cards.lock.json").unlink()
    deck_yaml = project / "cards/deck.yaml"
    deck_yaml.write_text(deck_yaml.read_text("utf-8").replace("namespace: test-deck", "namespace: other"), "utf-8")
    result = CliRunner().invoke(cli, ["build"], catch_exceptions=False)
    assert result.exit_code == 1
    assert "cards/deck.yaml:2: 4 of the 4 notes in dist/test.apkg were built under another namespace" in result.output
