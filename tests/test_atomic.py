"""Writes: unique temporary names, all outputs or none, lock file before deck, stale temporaries removed, and two
real build processes in one project at once."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

from click.testing import CliRunner

from ankideck import atomic
from ankideck.cli import cli
from tests.conftest import ROOT

ENV = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def build_process(project: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "from ankideck.cli import main; main()", *args], cwd=project,
                            env=ENV, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_temporary_names_are_unique_and_beside_the_target(tmp_path):
    target = tmp_path / "deck.apkg"
    first, second = atomic.new_temp(target), atomic.new_temp(target)
    assert first != second and first.parent == second.parent == tmp_path
    assert first.name.startswith(".deck.apkg.") and first.name.endswith(".tmp")


def test_stale_temporaries_of_a_killed_build_are_removed(project):
    assert run("build").exit_code == 0
    stale = [project / "cards/cards.lock.json.tmp", project / "dist/.test.apkg.tmp",
             project / "dist/.test.apkg.abc123.tmp", project / "cards/.cards.lock.json.x1.tmp",
             project / ".cache/ankideck/.compiled.jsonl.zz.tmp"]
    for path in stale:
        path.write_bytes(b"half")
    old_figure = project / ".cache/ankideck/figures/.plot-light-abc.tmp"
    old_figure.parent.mkdir(parents=True, exist_ok=True)
    old_figure.write_bytes(b"half")
    os.utime(old_figure, (time.time() - 3600,) * 2)
    fresh_figure = old_figure.with_name(".plot-dark-abc.tmp")  # may belong to a preview rendering right now
    fresh_figure.write_bytes(b"half")
    assert run("build").exit_code == 0
    assert not [p for p in stale + [old_figure] if p.exists()]
    assert fresh_figure.exists()
    assert (project / "cards/basics/formulas.md").exists()


def test_the_lock_file_is_replaced_before_the_deck(project, monkeypatch):
    """A kill between the two renames leaves the new lock beside the old deck: the next build rewrites the deck
    with the same mod times, never a deck whose notes the lock does not describe."""
    assert run("build").exit_code == 0
    formulas = project / "cards/basics/formulas.md"
    formulas.write_text(formulas.read_text("utf-8").replace("Write softmax.", "Write softmax!"), "utf-8")
    order = []
    real_replace = os.replace

    def recording_replace(src, dst):
        order.append(Path(dst).name)
        return real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", recording_replace)
    assert run("build").exit_code == 0
    assert order[:2] == ["cards.lock.json", "test.apkg"]


def test_two_builds_at_once_both_succeed_and_keep_every_lock_entry(project):
    for i in range(40):  # enough cards that the two builds overlap
        (project / f"cards/many-{i}.md").write_text(
            f"# card: many-{i}\n## Front\nq {i} $x^{i}$\n## Back\n```python norun\nx = {i}\n```\n", "utf-8")
    processes = [build_process(project, "build") for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in processes]
    for process, (out, err) in zip(processes, outputs):
        assert process.returncode == 0, (out, err)
        assert "Traceback" not in err
    lock = json.loads((project / "cards/cards.lock.json").read_text("utf-8"))["notes"]
    assert len(lock) == 44
    with zipfile.ZipFile(project / "dist/test.apkg") as package:
        assert package.testzip() is None
    assert not list(project.rglob("*.tmp"))


def test_a_second_build_waits_for_the_one_holding_the_lock(project):
    lock_path = project / ".cache/ankideck/build.lock"
    with atomic.build_lock(lock_path, "lock"):
        waiting = build_process(project, "build")
        time.sleep(3)
        assert waiting.poll() is None  # still waiting
        assert not (project / "dist/test.apkg").exists()
    out, err = waiting.communicate(timeout=60)
    assert waiting.returncode == 0, err
    assert "Another build is running in this project; waiting" in err
    assert (project / "dist/test.apkg").is_file()


def test_a_build_that_waits_too_long_says_so(tmp_path):
    lock_path = tmp_path / "build.lock"
    with atomic.build_lock(lock_path, "lock"):
        script = ("import sys; from pathlib import Path; from ankideck import atomic\n"
                  "try:\n with atomic.build_lock(Path(sys.argv[1]), 'the lock', wait_s=0.3): pass\n"
                  "except atomic.BuildBusy as e: print(e)")
        out = subprocess.run([sys.executable, "-c", script, str(lock_path)], env=ENV, capture_output=True,
                             text=True, timeout=60).stdout
    assert out.startswith("another build is still running in this project (it holds the lock)")
