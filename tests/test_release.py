"""Releases (#14): the workflows pass actionlint; `changes` reports exactly what the build reports, in a git repository
with two tags; the deck knows its version; scripts/release.sh builds, checks and writes the notes and checksum in a dry
run without publishing, and refuses when the lock file is not committed in step with the cards."""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import tomllib
import zipfile
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from ankideck import Problems, build, changelog, load_config
from ankideck.cli import cli
from ankideck.parse import parse_text
from tests.conftest import ROOT, import_package

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
GIT_ENV = {"GIT_AUTHOR_NAME": "Release Test", "GIT_AUTHOR_EMAIL": "release-test@example.invalid",
           "GIT_COMMITTER_NAME": "Release Test", "GIT_COMMITTER_EMAIL": "release-test@example.invalid",
           "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]["version"]
REPOSITORY = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]["urls"]["Repository"]


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def git_env(monkeypatch):
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)


# --- the workflows and the issue form -------------------------------------------------------------------------------

def actionlint() -> str:
    beside = Path(sys.executable).parent / "actionlint"
    found = str(beside) if beside.is_file() else shutil.which("actionlint")
    if found is None:
        pytest.fail("actionlint is missing: it comes with the test extra (pip install -e '.[test]')")
    return found


def test_the_ci_and_release_workflows_exist():
    assert {path.name for path in WORKFLOWS} >= {"ci.yml", "release.yml"}


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda path: path.name)
def test_every_workflow_passes_actionlint(workflow):
    done = subprocess.run([actionlint(), "-no-color", "-oneline", str(workflow.relative_to(ROOT))], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout + done.stderr


def test_actionlint_really_checks(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
                      "      - run: echo ${{ github.no_such_context }}\n      - uses: actions/checkout@v6\n"
                      "        with: {no-such-input: 1}\n", "utf-8")
    done = subprocess.run([actionlint(), "-no-color", "-oneline", str(broken)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode != 0 and done.stdout.count("broken.yml:") >= 2, done.stdout + done.stderr


def _workflow(name: str) -> dict:
    data = yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text("utf-8"))
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as true
    return data


def _readme_test_command() -> str:
    readme = (ROOT / "README.md").read_text("utf-8")
    block = re.search(r"Run the tests.*?```bash\n(.*?)\n```", readme, re.DOTALL)
    assert block, "README has no test command"
    return block.group(1).strip()


def test_ci_runs_the_readme_test_command_on_every_push_and_pull_request():
    ci = _workflow("ci.yml")
    assert {"push", "pull_request", "workflow_call"} <= set(ci["on"])
    steps = [step for job in ci["jobs"].values() for step in job["steps"]]
    assert any(step.get("run", "").strip() == "bash .ci/run" for step in steps)
    assert _readme_test_command() in (ROOT / ".ci" / "run").read_text("utf-8")
    assert any("hashFiles('pyproject.toml')" in str(step.get("with", {}).get("key", "")) for step in steps)


def test_release_runs_on_version_tags_after_the_tests_with_full_history():
    release = _workflow("release.yml")
    assert release["on"] == {"push": {"tags": ["v*"]}}
    assert release["jobs"]["ci"]["uses"] == "./.github/workflows/ci.yml"
    job = release["jobs"]["release"]
    assert job["needs"] == "ci" and job["permissions"] == {"contents": "write"}
    checkout = next(step for step in job["steps"] if step.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["fetch-depth"] == 0
    python = next(step for step in job["steps"] if step.get("uses", "").startswith("actions/setup-python@"))
    assert python["with"] == {"python-version": "3.11", "cache": "pip", "cache-dependency-path": "pyproject.toml"}
    assert [step["run"] for step in job["steps"] if "release.sh" in step.get("run", "")] == ["scripts/release.sh"]


def test_the_card_correction_form_asks_for_the_id_the_file_what_is_wrong_and_the_source():
    form = yaml.safe_load((ROOT / ".github" / "ISSUE_TEMPLATE" / "card-correction.yml").read_text("utf-8"))
    fields = {item["id"]: item for item in form["body"] if "id" in item}
    assert form["name"] and form["description"]
    for required in ("card-id", "what-is-wrong", "primary-source"):
        assert fields[required]["validations"]["required"] is True
    assert "source-file" in fields
    assert "footer" in fields["card-id"]["attributes"]["description"]


def test_readme_download_section_comes_before_the_build_instructions():
    readme = (ROOT / "README.md").read_text("utf-8")
    download, setup = readme.find("## Download"), readme.find("## Set-up")
    assert 0 < download < setup
    section = readme[download:setup]
    assert f"{REPOSITORY}/releases/latest" in section
    for platform in ("Anki desktop", "AnkiDroid", "AnkiMobile"):
        assert platform in section
    assert "card-correction.yml" in section and "Id" in section


# --- the deck knows its version -------------------------------------------------------------------------------------

def _root_deck_description(apkg: Path, name: str) -> str:
    with zipfile.ZipFile(apkg) as package, tempfile.TemporaryDirectory() as scratch:
        package.extract("collection.anki2", scratch)
        connection = sqlite3.connect(Path(scratch) / "collection.anki2")
        try:
            decks = json.loads(connection.execute("select decks from col").fetchone()[0])
        finally:
            connection.close()
    return next(deck["desc"] for deck in decks.values() if deck["name"] == name)


def test_the_root_deck_shows_version_date_and_links_and_no_note_hash_sees_it(project, collection, monkeypatch):
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    result = build(load_config(), progress=False)
    newest = max(note.mod for note in result.plan.notes)
    description = _root_deck_description(result.out, "Test")  # no note is in the root deck itself: it still ships
    assert description.startswith("A deck for tests.<br><br>")
    assert f"Version {VERSION} · {time.strftime('%Y-%m-%d', time.gmtime(newest))}" in description
    assert f'href="{REPOSITORY}/blob/HEAD/CHANGELOG.md"' in description
    assert f'href="{REPOSITORY}/issues/new?template=card-correction.yml"' in description
    assert (ROOT / ".github" / "ISSUE_TEMPLATE" / "card-correction.yml").is_file()
    import_package(collection, result.out)
    assert collection.decks.by_name("Test")["desc"] == description

    lock = (project / "cards" / "cards.lock.json").read_text("utf-8")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")  # a release dates the deck by its tagged commit
    again = build(load_config(), progress=False)
    assert not again.plan.changes and (project / "cards" / "cards.lock.json").read_text("utf-8") == lock
    assert f"Version {VERSION} · 2023-11-14 · " in _root_deck_description(again.out, "Test")
    import_package(collection, again.out)  # a re-import updates the description
    assert "2023-11-14" in collection.decks.by_name("Test")["desc"]


# --- changes --------------------------------------------------------------------------------------------------------

NEW_CARD = ("\n# card: lse-stable\n\n## Front\nWhy is `logsumexp` **stable** for $x \\gg 0$?\n\n"
            "## Back\nIt subtracts the max.\n")
EXPECTED = """1 new, 1 changed, 1 removed since {since}; 4 notes in 2 decks.

### Test::Formulas

Changed:

- `softmax-def` — Write the softmax of a vector z.

Removed:

- `plot-card` — What does the plot show?

### Test::basics

New:

- `lse-stable` — Why is logsumexp stable for x \\\\gg 0?
"""


def edit_cards(project: Path) -> None:
    """One card added, one changed, one removed."""
    formulas = project / "cards" / "basics" / "formulas.md"
    text = formulas.read_text("utf-8").replace("Write softmax.", "Write the softmax of a vector $z$.")
    start, end = text.index("# card: plot-card"), text.index("# cloze: stable-softmax")
    formulas.write_text(text[:start] + text[end:], "utf-8")
    code = project / "cards" / "basics" / "code.md"
    code.write_text(code.read_text("utf-8") + NEW_CARD, "utf-8")


def commit(project: Path, message: str, tag: str | None = None) -> str:
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", message)
    if tag:
        git(project, "tag", "-a", tag, "-m", tag)
    return git(project, "rev-parse", "--short=7", "HEAD")


@pytest.fixture
def repo(project, git_env) -> Path:
    """The small project in git, built and tagged v0.1 with its lock file."""
    (project / ".gitignore").write_text("dist/\n.cache/\n", "utf-8")
    git(project, "init", "-q", "-b", "main")
    assert run("build").exit_code == 0
    commit(project, "v0.1", tag="v0.1")
    return project


def ids_of(markdown: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {"new": [], "changed": [], "removed": []}
    kind = None
    for line in markdown.splitlines():
        if line in ("New:", "Changed:", "Removed:"):
            kind = line[:-1].lower()
        elif line.startswith("- `") and kind:
            found[kind].append(line.split("`")[1])
    return {key: sorted(value) for key, value in found.items()}


def test_changes_between_two_tags_are_exactly_the_builds_change_report(repo):
    v01 = git(repo, "rev-parse", "--short=7", "v0.1^{commit}")
    edit_cards(repo)
    before = run("changes")  # default: the last v* tag, against the working tree
    assert before.exit_code == 0, before.output
    assert before.output == EXPECTED.format(since=f"v0.1 ({v01})")

    report = build(load_config(), progress=False).plan.changes  # what the build itself calls new/changed/removed
    assert (report.new, report.changed, report.removed) == (["lse-stable"], ["softmax-def"], ["plot-card"])
    assert ids_of(before.output) == {"new": report.new, "changed": report.changed, "removed": report.removed}

    commit(repo, "v0.2", tag="v0.2")  # the cards with their lock file, in step
    since_first = run("changes", "--since", "v0.1")
    assert since_first.exit_code == 0 and since_first.output == before.output
    assert run("changes").output == f"No card changes since v0.2 ({git(repo, 'rev-parse', '--short=7', 'HEAD')}); " \
                                    "4 notes in 2 decks.\n"
    assert run("changes", "--since", v01).output == EXPECTED.format(since=v01)


def test_changes_writes_release_notes_and_a_changelog_section(repo):
    edit_cards(repo)
    notes = repo / "dist" / "notes.md"
    result = run("changes", "--out", str(notes))
    assert result.exit_code == 0 and result.output.startswith("Wrote dist/notes.md: 1 new, 1 changed, 1 removed")
    assert ids_of(notes.read_text("utf-8"))["new"] == ["lse-stable"]

    first = run("changes", "--changelog")
    assert first.exit_code == 0 and f"Added the {VERSION} section of CHANGELOG.md" in first.output
    text = (repo / "CHANGELOG.md").read_text("utf-8")
    assert text.startswith("# Changelog\n")
    assert re.search(rf"^## {re.escape(VERSION)} — \d{{4}}-\d\d-\d\d\n\n1 new, 1 changed, 1 removed since v0\.1",
                     text, re.MULTILINE)
    again = run("changes", "--changelog")
    assert "Replaced" in again.output
    assert (repo / "CHANGELOG.md").read_text("utf-8") == text  # the same section, once


def test_a_new_version_section_goes_above_the_older_ones(tmp_path):
    path = tmp_path / "CHANGELOG.md"
    changelog.add_to_changelog(path, "0.1.0", "2026-01-01", "Initial release: 3 notes in 1 deck (3 cards).\n")
    changelog.add_to_changelog(path, "0.2.0", "2026-02-01", "1 new, 0 changed, 0 removed since v0.1.0.\n")
    changelog.add_to_changelog(path, "0.2.0", "2026-02-02", "2 new, 0 changed, 0 removed since v0.1.0.\n")
    text = path.read_text("utf-8")
    assert re.findall(r"^## (\S+ — \S+)", text, re.MULTILINE) == ["0.2.0 — 2026-02-02", "0.1.0 — 2026-01-01"]
    assert "2 new" in text and "1 new" not in text and text.startswith(changelog.CHANGELOG_HEADER)


def test_without_a_tag_changes_asks_for_a_ref_and_the_changelog_is_the_initial_release(project, git_env):
    git(project, "init", "-q", "-b", "main")
    commit(project, "cards")
    result = run("changes")
    assert result.exit_code == 1
    assert result.output.strip() == "Error: no version tag (v*) to compare with: pass --since REF (a tag, branch " \
                                    "or commit)"
    assert run("changes", "--initial").output == ("Initial release: 4 notes in 2 decks (5 cards).\n\n"
                                                  "- Test::Formulas: 3 notes\n- Test::basics: 1 note\n")
    assert run("changes", "--changelog").exit_code == 0
    assert f"## {VERSION} — " in (project / "CHANGELOG.md").read_text("utf-8")
    assert "Initial release: 4 notes" in (project / "CHANGELOG.md").read_text("utf-8")


def test_a_ref_without_a_lock_file_is_compared_by_the_card_sources(project, git_env):
    git(project, "init", "-q", "-b", "main")
    commit(project, "cards, never built", tag="v0.1")
    edit_cards(project)
    result = run("changes")
    assert result.exit_code == 0
    assert ids_of(result.output) == {"new": ["lse-stable"], "changed": ["softmax-def"], "removed": ["plot-card"]}


@pytest.mark.parametrize("args, message", [
    (["--since", "no-such-tag"], "Error: unknown git ref 'no-such-tag' (a tag, branch or commit of this repository)"),
    (["--since", "--help"], "Error: not a git ref: '--help'"),
])
def test_a_bad_ref_is_one_error_line(repo, args, message):
    result = run("changes", *args)
    assert result.exit_code == 1 and result.output.strip() == message


def test_outside_a_git_repository_changes_is_one_error_line(project, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(project.parent))
    result = run("changes", "--since", "v0.1")
    assert result.exit_code == 1
    assert result.output.strip() == (f"Error: {project.resolve().as_posix()} is not in a git repository: changes "
                                     "compares the cards with a git ref")


def test_through_build_py_errors_have_no_traceback(project, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(project.parent))
    done = subprocess.run([sys.executable, str(ROOT / "build.py"), "changes"], cwd=project, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("Error: ") and len(done.stderr.strip().splitlines()) == 1


def _card(text: str):
    problems = Problems()
    cards = parse_text(text, "cards/x.md", "Deck", problems)
    assert not problems, list(problems)
    return cards[0]


@pytest.mark.parametrize("source, front", [
    ("# card: a\n\n## Front\n写出 softmax 的定义（$K$ 类）。\n\n## Back\nb\n", "写出 softmax 的定义（K 类）。"),
    ("# card: a\n\n## Front\n\n```python\ndef f(x):\n```\n\n## Back\nb\n", "def f(x):"),
    ("# card: a\n\n## Front\n![the plot](img/p.png) What does it show?\n\n## Back\nb\n", "the plot What does it show?"),
    ("# cloze: a\n\nSoftmax subtracts {{c1::$\\max_j z_j$}} first.\n", "Softmax subtracts [...] first."),
    ("# card: a\n\n## Front\n" + "长" * 100 + "\n\n## Back\nb\n", "长" * 79 + "…"),
])
def test_a_front_is_its_first_line_as_plain_text(source, front):
    assert changelog.front_text(_card(source)) == front


# --- scripts/release.sh ---------------------------------------------------------------------------------------------

FAKE_GH = '#!/bin/sh\nprintf "%s\\n" "$*" >> "$GH_LOG"\n'


@pytest.fixture(scope="module")
def release_clone(tmp_path_factory) -> Path:
    """A clone of this repository with the lock file in step (built once: the slow part, every figure drawn)."""
    clone = tmp_path_factory.mktemp("release") / "repo"
    env = {**os.environ, **GIT_ENV}
    # With the usual git configuration: a CI checkout may be owned by another user, trusted by its global config.
    subprocess.run(["git", "-c", "safe.directory=*", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=300)
    built = subprocess.run([sys.executable, "build.py", "build", "-q"], cwd=clone, capture_output=True, text=True,
                           env=env, timeout=1200)
    assert built.returncode == 0, built.stdout + built.stderr
    if subprocess.run(["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True).stdout.strip():
        subprocess.run(["git", "commit", "-q", "-am", "lock file in step"], cwd=clone, check=True, env=env)
    return clone


@pytest.fixture
def clone(release_clone, tmp_path, git_env) -> Path:
    copy = tmp_path / "repo"
    shutil.copytree(release_clone, copy, symlinks=True)
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "gh").write_text(FAKE_GH, "utf-8")
    (tmp_path / "bin" / "gh").chmod(0o755)
    return copy


def release(clone: Path, *args: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("GITHUB_") and key != "SOURCE_DATE_EPOCH"}
    env.update(GIT_ENV, PYTHON=sys.executable, GH_LOG=str(clone.parent / "gh.log"),
               PATH=f"{clone.parent / 'bin'}{os.pathsep}{env.get('PATH', '')}")
    return subprocess.run(["bash", "scripts/release.sh", *args], cwd=clone, capture_output=True, text=True, env=env,
                          timeout=900)


def gh_calls(clone: Path) -> list[str]:
    log = clone.parent / "gh.log"
    return log.read_text("utf-8").splitlines() if log.exists() else []


def test_a_dry_run_builds_checks_and_writes_the_notes_and_checksum_and_publishes_nothing(clone):
    done = release(clone, "--dry-run")
    assert done.returncode == 0, done.stdout + done.stderr
    apkg = clone / "dist" / "aigc-interview.apkg"
    digest = hashlib.sha256(apkg.read_bytes()).hexdigest()
    assert (clone / "dist" / "aigc-interview.apkg.sha256").read_text("utf-8") == f"{digest}  aigc-interview.apkg\n"
    notes = (clone / "dist" / "release-notes.md").read_text("utf-8")
    first = notes.splitlines()[0]
    assert first.startswith("Initial release: ") or re.match(r"(\d+ new, \d+ changed, \d+ removed|No card changes) "
                                                             r"since v", first), first
    assert f"SHA-256 of `aigc-interview.apkg`: `{digest}`" in notes
    assert "; no changes; " in done.stdout and "OK: " in done.stdout  # the build, then the check
    assert "dry run: published nothing" in done.stdout and gh_calls(clone) == []
    assert git(clone, "status", "--porcelain") == ""
    commit_date = time.strftime("%Y-%m-%d", time.gmtime(int(git(clone, "log", "-1", "--format=%ct"))))
    assert f"Version {VERSION} · {commit_date} · " in _root_deck_description(apkg, "AIGC面经")

    wrong = release(clone, "--dry-run", "--tag", "v999.0.0")
    assert wrong.returncode == 1
    assert f"Error: tag v999.0.0 does not match the version in pyproject.toml ({VERSION})" in wrong.stderr

    # On the tag (as the workflow runs it): the same steps, then one `gh release create` with the deck and checksum.
    subprocess.run(["git", "tag", "-d", f"v{VERSION}"], cwd=clone, capture_output=True)
    git(clone, "tag", "-a", f"v{VERSION}", "-m", f"v{VERSION}")
    published = release(clone)
    assert published.returncode == 0, published.stdout + published.stderr
    assert gh_calls(clone) == [f"release create v{VERSION} dist/aigc-interview.apkg dist/aigc-interview.apkg.sha256 "
                               f"--title v{VERSION} --notes-file dist/release-notes.md --verify-tag"]


def test_a_release_is_refused_unless_the_lock_file_is_committed_in_step(clone):
    card_file = next(path for path in sorted((clone / "cards").rglob("*.md")) if "# card: " in path.read_text("utf-8"))
    card_file.write_text(card_file.read_text("utf-8") + "\n# card: release-test-card\n\n## Front\nA card added after "
                         "the last build.\n\n## Back\nIts answer.\n", "utf-8")
    dirty = release(clone, "--dry-run")
    assert dirty.returncode == 1 and "uncommitted changes" in dirty.stderr

    git(clone, "commit", "-q", "-am", "a card, without building")  # the lock file not updated with it
    refused = release(clone, "--dry-run")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "Error: the build reports changes (1 new, 0 changed, 0 removed)" in refused.stderr
    assert "cards/cards.lock.json is not committed in step with the cards" in refused.stderr
    assert not (clone / "dist" / "release-notes.md").exists() and gh_calls(clone) == []

    changelog_file = clone / "CHANGELOG.md"
    changelog_file.write_text(changelog_file.read_text("utf-8").replace(f"## {VERSION} ", "## 0.0.0 "), "utf-8")
    git(clone, "commit", "-q", "-am", "no section for this version")
    missing = release(clone, "--dry-run")
    assert missing.returncode == 1 and f"CHANGELOG.md has no section for {VERSION}" in missing.stderr
