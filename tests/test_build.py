"""The build's identity, caching and media rules, below the CLI."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile

from ankideck import build, compile, gather, load_config
from tests.conftest import ROOT


def test_a_fresh_clone_with_the_lock_file_builds_the_same_notes(project, tmp_path, monkeypatch):
    first = build(load_config(), now=1_000_000, progress=False)
    clone = tmp_path / "clone"
    shutil.copytree(project, clone, ignore=shutil.ignore_patterns(".cache", "dist"))
    monkeypatch.chdir(clone)
    again = gather(load_config(), now=5_000_000)  # later clock, empty cache
    assert not again.changes
    assert [(n.source.id, n.mod, n.fields) for n in again.notes] == [(n.source.id, n.mod, n.fields)
                                                                    for n in first.plan.notes]


def test_same_basename_images_do_not_collide_and_a_changed_image_gets_a_new_name(project):
    other = project / "cards/other"
    (other / "img").mkdir(parents=True)
    (other / "img/plot.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"another image")
    (other / "x.md").write_text("# card: other-plot\n## Front\nq\n## Back\n![p](img/plot.png)\n", "utf-8")
    result = build(load_config(), now=1_000_000, progress=False)
    with zipfile.ZipFile(result.out) as package:
        media = json.loads(package.read("media"))
        names = sorted(media.values())
        assert len(names) == 2 and all(name.startswith("plot-") for name in names)
        assert sorted(package.read(i) for i in media) == sorted(
            p.read_bytes() for p in (project / "cards/basics/img/plot.png", other / "img/plot.png"))

    (other / "img/plot.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"changed image")
    second = build(load_config(), now=1_000_000, progress=False)
    assert second.plan.changes.changed == ["other-plot"]  # the note must point at the new file
    with zipfile.ZipFile(second.out) as package:
        assert len(set(json.loads(package.read("media")).values()) - set(names)) == 1


def test_only_changed_files_are_compiled_again(project, monkeypatch):
    build(load_config(), now=1_000_000, progress=False)
    compiled = []
    original = compile.compile_file
    monkeypatch.setattr(compile, "compile_file", lambda job: compiled.append(job[0]) or original(job))
    build(load_config(), now=1_000_000, progress=False)
    assert compiled == []
    code = project / "cards/basics/code.md"
    code.write_text(code.read_text("utf-8").replace("Implement softmax.", "Implement a stable softmax."), "utf-8")
    result = build(load_config(), now=1_000_000, progress=False)
    assert compiled == ["cards/basics/code.md"]
    assert result.plan.changes.changed == ["code-card"]


def test_a_warm_build_imports_no_renderer(project):
    build(load_config(), now=1_000_000, progress=False)
    script = ("import sys; from ankideck import build, load_config; "
              "build(load_config(), progress=False); "
              "print(sorted(m for m in ('markdown', 'pygments', 'matplotlib', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", script], cwd=project, capture_output=True, text=True,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, check=True).stdout
    assert out.strip() == "[]"


def test_notes_keep_their_guid_when_their_text_changes(project):
    import genanki

    def guids(result):
        import sqlite3
        import tempfile
        with zipfile.ZipFile(result.out) as package, tempfile.TemporaryDirectory() as tmp:
            package.extract("collection.anki2", tmp)
            with sqlite3.connect(f"{tmp}/collection.anki2") as db:
                return dict(db.execute("select guid, mod from notes"))

    before = guids(build(load_config(), now=1_000_000, progress=False))
    formulas = project / "cards/basics/formulas.md"
    formulas.write_text(formulas.read_text("utf-8").replace("Write softmax.", "Write softmax!"), "utf-8")
    after = guids(build(load_config(), now=1_000_000, progress=False))
    assert set(before) == set(after)
    assert genanki.guid_for("test-deck", "softmax-def") in after
    changed = [g for g in after if after[g] != before[g]]
    assert changed == [genanki.guid_for("test-deck", "softmax-def")]


def test_a_build_with_nothing_changed_leaves_the_deck_alone(project):
    first = build(load_config(), now=1_000_000, progress=False)
    written = first.out.stat().st_mtime_ns
    again = build(load_config(), now=2_000_000, progress=False)
    assert not again.plan.changes and again.media_count == first.media_count == 1
    assert first.out.stat().st_mtime_ns == written          # the same package: not written again
    first.out.write_bytes(b"not the deck that was built")  # replaced by something else: written again
    build(load_config(), now=2_000_000, progress=False)
    assert zipfile.is_zipfile(first.out)


def test_after_an_edit_the_compile_cache_keeps_the_other_files_lines(project):
    build(load_config(), now=1_000_000, progress=False)
    cache = project / ".cache/ankideck/compiled.jsonl"
    before = cache.read_text("utf-8").splitlines()
    code = project / "cards/basics/code.md"
    code.write_text(code.read_text("utf-8").replace("Implement softmax.", "Implement a stable softmax."), "utf-8")
    build(load_config(), now=1_000_000, progress=False)
    after = cache.read_text("utf-8").splitlines()
    assert len(after) == len(before) == 3                  # the header, one line per card file
    assert len(set(after) - set(before)) == 1              # only the edited file's line is new
    assert '"cards/basics/code.md"' in next(line for line in after if line not in before)


def test_a_damaged_cache_entry_costs_only_its_file(project, monkeypatch):
    build(load_config(), now=1_000_000, progress=False)
    cache = project / ".cache/ankideck/compiled.jsonl"
    header, *lines = cache.read_text("utf-8").splitlines()
    damaged = next(line for line in lines if '"cards/basics/code.md"' in line)
    cache.write_text("\n".join([header, *(line for line in lines if line != damaged),
                                damaged.partition("\t")[0] + '\t{"cards": 1}']) + "\n", "utf-8")
    compiled = []
    original = compile.compile_file
    monkeypatch.setattr(compile, "compile_file", lambda job: compiled.append(job[0]) or original(job))
    assert not build(load_config(), now=1_000_000, progress=False).plan.changes
    assert compiled == ["cards/basics/code.md"]
