"""The CLI through click's CliRunner: builds, checks, scaffolds, stats, and every bad-input path."""
from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from ankideck.cli import cli


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def problems_of(result) -> list[str]:
    return [line for line in result.output.splitlines() if re.match(r"^\S+:\d+: ", line)]


@pytest.mark.parametrize("command", [[], *[[name] for name in sorted(cli.commands)]])
def test_every_command_has_help(command):
    for flag in ("--help", "-h"):
        result = run(*command, flag)
        assert result.exit_code == 0 and "Usage:" in result.output
    if command:
        assert cli.commands[command[0]].help, f"command {command[0]!r} has no help text"


def test_default_command_builds_and_prints_changes_and_summary(project):
    result = run()
    assert result.exit_code == 0, result.output
    assert "new (4): code-card, plot-card, softmax-def, stable-softmax" in result.output
    summary = result.output.strip().splitlines()[-1]
    assert re.fullmatch(r"Built dist/test\.apkg: 4 notes, 5 cards, 1 media; 4 new, 0 changed, 0 removed; "
                        r"\d+\.\d\d s", summary), summary
    assert (project / "dist/test.apkg").is_file()
    lock = json.loads((project / "cards/cards.lock.json").read_text("utf-8"))
    assert sorted(lock["notes"]) == ["code-card", "plot-card", "softmax-def", "stable-softmax"]

    again = run("build")
    assert "no changes" in again.output.splitlines()[-1]


def test_build_reports_removed_cards_with_a_search(project):
    run("build")
    formulas = project / "cards/basics/formulas.md"
    formulas.write_text(formulas.read_text("utf-8").replace("# card: plot-card", "# card: plot-card-2"), "utf-8")
    result = run("build")
    assert "removed (1): plot-card" in result.output
    assert "Id:plot-card" in result.output
    assert "1 new, 0 changed, 1 removed" in result.output
    assert "no changes" in run("build").output  # reported once, when it happens
    lock = json.loads((project / "cards/cards.lock.json").read_text("utf-8"))["notes"]
    assert lock["plot-card"]["removed"] is True

    # Brought back under its old id: a new note as far as the build goes, newer than the one Anki kept.
    formulas.write_text(formulas.read_text("utf-8").replace("# card: plot-card-2", "# card: plot-card"), "utf-8")
    back = run("build")
    assert "new (1): plot-card" in back.output
    relock = json.loads((project / "cards/cards.lock.json").read_text("utf-8"))["notes"]
    assert "removed" not in relock["plot-card"] and relock["plot-card"]["mod"] > lock["plot-card"]["mod"]


def test_deleting_or_moving_a_card_changes_no_other_card(project):
    """The footer names the file and the id, not a line: deleting the first card of a file shifts the lines of the
    cards after it, and must not make them changed notes (nor leave them with a stale footer in Anki)."""
    from ankideck import gather, load_config

    assert run("build").exit_code == 0
    before = {note.source.id: note.fields["Source"] for note in gather(load_config()).notes}
    formulas = project / "cards/basics/formulas.md"
    text = formulas.read_text("utf-8")
    first = text[text.index("# card: softmax-def"):text.index("# card: plot-card")]
    formulas.write_text(text.replace(first, ""), "utf-8")          # the first card goes: every line below shifts
    deleted = run("build")
    assert "0 new, 0 changed, 1 removed" in deleted.output, deleted.output
    after = {note.source.id: note.fields["Source"] for note in gather(load_config()).notes}
    assert after == {card_id: source for card_id, source in before.items() if card_id != "softmax-def"}

    formulas.write_text(formulas.read_text("utf-8") + "\n" + first, "utf-8")   # back, at the end of the file
    assert "1 new, 0 changed, 0 removed" in run("build").output
    text = formulas.read_text("utf-8")
    plot = text[text.index("# card: plot-card"):text.index("# cloze: stable-softmax")]
    formulas.write_text(text.replace(plot, "") + "\n" + plot, "utf-8")   # moved within its file
    assert "no changes" in run("build").output.splitlines()[-1]


def test_build_with_cards_and_out_options(project, tmp_path):
    out = tmp_path / "elsewhere" / "deck.apkg"
    result = run("build", "--cards", "cards", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert out.is_file()


def test_check_writes_nothing(project):
    result = run("check")
    assert result.exit_code == 0 and result.output.startswith("OK: 4 notes")
    assert not (project / "dist").exists()
    assert not (project / "cards/cards.lock.json").exists()


BAD_FILE = """---
deck: Test::Bad
---

# card: no-front
## Back
b

# card: softmax-def
## Front
duplicate id
## Back
x

# cloze: no-deletion
just text

# card: open-math
## Front
$$ x
## Back
b

# card: missing-image
## Front
![x](nope.png)
## Back
![y](fig:no-such-figure)

# card: escape
## Front
![x](../../../etc/passwd)
## Back
b

# card: unclosed-fence
## Front
q
## Back
```python
x = 1
"""



def test_bad_input_fails_without_touching_the_previous_package(project):
    good = run("build")
    assert good.exit_code == 0
    package = project / "dist/test.apkg"
    before = package.read_bytes()
    lock_before = (project / "cards/cards.lock.json").read_text("utf-8")

    (project / "cards/bad.md").write_text(BAD_FILE, "utf-8")
    (project / "cards/latin1.md").write_bytes("# card: x\n## Front\ncaf\xe9\n".encode("latin-1"))
    (project / "cards/frontmatter.md").write_text("---\ndeck: [unclosed\n---\n", "utf-8")
    result = run("build")
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    found = problems_of(result)
    expected = [
        "cards/bad.md:5: card 'no-front' has an empty front (no '## Front' section)",
        "cards/basics/formulas.md:7: duplicate card id 'softmax-def' (first used at cards/bad.md:9)",
        "cards/bad.md:15: cloze card 'no-deletion' has no cloze deletion",
        "cards/bad.md:20: display math '$$' is never closed",
        "cards/bad.md:26: image 'nope.png' not found",
        "cards/bad.md:28: unknown figure 'no-such-figure'",
        "cards/bad.md:32: image '../../../etc/passwd' is outside the project",
        "cards/bad.md:40: code fence ``` is never closed",
        "cards/frontmatter.md:2: bad front matter",
        "cards/latin1.md:3: not valid UTF-8",
    ]
    for message in expected:
        assert any(line.startswith(message) for line in found), (message, found)
    assert result.output.strip().endswith("nothing was written.")
    assert package.read_bytes() == before
    assert (project / "cards/cards.lock.json").read_text("utf-8") == lock_before

    assert run("check").exit_code == 1


def test_changing_a_cards_note_type_under_the_same_id_is_refused(project):
    assert run("build").exit_code == 0
    code = project / "cards/basics/code.md"
    code.write_text("# cloze: code-card\n{{c1::softmax}} subtracts the max.\n", "utf-8")
    result = run("build")
    assert result.exit_code == 1
    assert ("cards/basics/code.md:1: card 'code-card' was a basic note and is now a cloze note; Anki cannot change "
            "a note's type on re-import, so give it a new id") in result.output


def test_raw_script_is_refused(project):
    (project / "cards/x.md").write_text("# card: s\n## Front\n<script>alert(1)</script>\n## Back\nb\n", "utf-8")
    result = run("check")
    assert result.exit_code == 1
    assert "cards/x.md:3: raw <script> is not allowed in cards" in result.output


@pytest.mark.parametrize("text, message", [
    ("# card: a b\n## Front\nq\n## Back\nb\n", "cards/x.md:1: bad card id 'a b'"),
    ("# card:\n## Front\nq\n## Back\nb\n", "cards/x.md:1: missing card id"),
    ("# card: e\n## Front\n\n## Back\nb\n", "cards/x.md:2: card 'e' has an empty front"),
    ("# card: e\n## Front\nq\n## Back\n   \n", "cards/x.md:4: card 'e' has an empty back"),
    ("# card: e\n## Front\nq {{c1::x}}\n## Back\nb\n", "cards/x.md:3: cloze marker in basic card 'e'"),
    ("# cloze: e\n{{c0::x}}\n", "cards/x.md:2: cloze numbers start at 1"),
    ("# card: e\n## Question\nq\n", "cards/x.md:2: unknown section '## Question'"),
    ("# card: e\nguide: nope\n\n## Front\nq\n## Back\nb\n", "cards/x.md:1: unknown guide question 'nope'"),
    ("# card: e\ncolour: red\n\n## Front\nq\n## Back\nb\n", "cards/x.md:2: unknown card key 'colour'"),
    ("# card: e\ntags: [a b]\n\n## Front\nq\n## Back\nb\n", "cards/x.md:2: bad tag 'a b'"),
    ("stray text\n# card: e\n## Front\nq\n## Back\nb\n", "cards/x.md:1: text outside a card"),
    ("# Heading\n", "cards/x.md:1: a level-1 heading must be"),
    ("# card: e\nq\nmore\n## Back\nb\n", "cards/x.md:2: text outside '## Front' / '## Back' / '## Extra' in card 'e'"),
    ("---\nfoo: 1\n---\n", "cards/x.md:2: unknown front matter key 'foo'"),
    ("---\n- a\n---\n", "cards/x.md:1: front matter must be a YAML mapping"),
    ("---\ndeck: A\n", "cards/x.md:1: front matter opened with '---' is never closed"),
    ("# card: e\n## Front\n```pyhton\nx\n```\n## Back\nb\n", "cards/x.md:3: unknown code language 'pyhton'"),
])
def test_each_bad_input(project, text, message):
    (project / "cards/x.md").write_text(text, "utf-8")
    result = run("check")
    assert result.exit_code == 1
    assert any(line.startswith(message) for line in problems_of(result)), result.output


def test_new_scaffolds_a_card_with_a_fresh_id_that_builds(project):
    target = project / "cards/basics/new-topic.md"
    first = run("new", str(target))
    second = run("new", "--cloze", str(target))
    assert first.exit_code == 0 and second.exit_code == 0
    ids = re.findall(r"^# (?:card|cloze): (\S+)$", target.read_text("utf-8"), re.M)
    assert len(ids) == 2 and len(set(ids)) == 2 and all(i.startswith("new-topic-") for i in ids)
    assert f"at {target.as_posix()}:1" in first.output
    # As written, the scaffold's placeholders must not ship: check names each one at its line.
    unfilled = run("check")
    assert unfilled.exit_code == 1
    assert problems_of(unfilled) == [
        f"cards/basics/new-topic.md:5: card '{ids[0]}' still has the placeholder '...' that 'new' wrote: "
        "write its front",
        f"cards/basics/new-topic.md:9: card '{ids[0]}' still has the placeholder '...' that 'new' wrote: "
        "write its back",
        f"cards/basics/new-topic.md:16: card '{ids[1]}' still has the placeholder '{{{{c1::...}}}}' that 'new' "
        "wrote: write its text"], unfilled.output
    # Filled in, it is a valid card.
    text = target.read_text("utf-8").replace("{{c1::...}}", "A {{c1::cloze}}.").replace("...", "Filled in.")
    target.write_text(text, "utf-8")
    assert run("check").exit_code == 0, run("check").output
    taken = run("new", "--id", ids[0], str(target))
    assert taken.exit_code == 1 and "already used" in taken.output


def test_new_never_reuses_the_id_of_a_removed_card(project):
    assert run("build").exit_code == 0
    formulas = project / "cards/basics/formulas.md"
    formulas.write_text(formulas.read_text("utf-8").replace("# card: plot-card", "# card: plot-card-2"), "utf-8")
    assert run("build").exit_code == 0
    result = run("new", "--id", "plot-card", str(project / "cards/basics/more.md"))
    assert result.exit_code == 1 and "already used" in result.output


def test_stats_reports_decks_tags_and_guide_coverage(project):
    result = run("stats")
    assert result.exit_code == 0
    assert "4 notes, 5 cards" in result.output
    assert "     3    4  Test::Formulas" in result.output
    assert "Guide coverage: 2/2 questions" in result.output
    data = json.loads(run("stats", "--json").output)
    assert data["guide"]["q1"]["cards"] == ["softmax-def", "plot-card"]
    assert data["decks"] == {"Test::Formulas": {"notes": 3, "cards": 4}, "Test::basics": {"notes": 1, "cards": 1}}
    assert data["tags"]["formula"] == {"notes": 3, "cards": 4}


def test_stats_lists_uncovered_questions(project):
    guide = project / "cards/guide.yaml"
    guide.write_text(guide.read_text("utf-8") + '- {id: "q3", question: "Uncovered?"}\n', "utf-8")
    result = run("stats")
    assert "Guide coverage: 2/3 questions" in result.output and "Not covered: q3" in result.output


def test_new_refuses_a_file_outside_the_cards_folder(project):
    for target in (project / "elsewhere/topic.md", project / "cards/notes.txt"):
        result = run("new", str(target))
        assert result.exit_code == 1 and "is not a .md file inside the cards folder (cards/)" in result.output
        assert not target.exists()


def test_build_options_work_without_the_build_command(project, tmp_path):
    quiet = run("-q", "--out", str(tmp_path / "top.apkg"))
    assert quiet.exit_code == 0, quiet.output
    assert (tmp_path / "top.apkg").is_file()
    assert quiet.output.strip().splitlines()[-1].startswith("Built ") and "new (4)" not in quiet.output
    misplaced = run("-q", "check")
    assert misplaced.exit_code == 2 and "build options go after 'build', not before 'check'" in misplaced.output


def test_an_empty_deck_is_a_problem(project, tmp_path):
    (tmp_path / "empty").mkdir()
    result = run("check", "--cards", str(tmp_path / "empty"))
    assert result.exit_code == 1 and "no cards: an empty deck is not worth shipping" in result.output


def test_check_file_reports_only_the_chosen_files(project):
    (project / "cards/x.md").write_text("# card: e\n## Front\n\n## Back\nb\n", "utf-8")
    assert run("check").exit_code == 1
    chosen = run("check", "--file", "formulas.md")
    assert chosen.exit_code == 0, chosen.output
    assert "1 problem in other files not shown" in chosen.output
    assert run("check", "--file", "x.md").exit_code == 1


def test_build_py_without_the_project_installed_says_how_to_set_up(tmp_path):
    """Run with a Python that has none of the project's packages: one message, no traceback."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    result = subprocess.run([sys.executable, "-I", "-S", str(root / "build.py")], capture_output=True, text=True,
                            cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("Error: ") and "pip install -e ." in result.stderr


# --- the error handler, settings and paths --------------------------------------------------------------------------


def test_new_with_an_unreadable_lock_file_is_a_problem_not_a_traceback(project):
    (project / "cards/cards.lock.json").write_text("{not json", "utf-8")
    result = CliRunner().invoke(cli, ["new", str(project / "cards/basics/more.md")])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert problems_of(result)[0].startswith("cards/cards.lock.json:1: unreadable lock file")
    assert not (project / "cards/basics/more.md").exists()


def test_new_card_is_engine_work_without_the_cli(project):
    from ankideck.config import load_config
    from ankideck.scaffold import new_card

    card = new_card(load_config(), project / "cards/basics/more.md", cloze=True)
    assert card.line == 1 and card.id.startswith("more-")
    assert (project / "cards/basics/more.md").read_text("utf-8").startswith(f"# cloze: {card.id}\n")


@pytest.mark.parametrize("setting, message", [
    ('outt = "x.apkg"', "unknown key 'outt' in [tool.ankideck] (known: cache, cards, figures, out)"),
    ("cards = 3", "[tool.ankideck] cards must be a path (a string), not 3"),
])
def test_a_bad_tool_ankideck_setting_is_reported_at_its_line(project, setting, message):
    pyproject = project / "pyproject.toml"
    lines = [line for line in pyproject.read_text("utf-8").splitlines() if not line.startswith("cards =")]
    table = lines.index("[tool.ankideck]")
    lines.insert(table + 2, setting)
    pyproject.write_text("\n".join(lines + ["", "[tool.other]", "outt = 1", ""]), "utf-8")
    for command in (["build"], ["check"], ["stats"], ["new", "cards/x.md"]):
        result = run(*command)
        assert result.exit_code == 1, (command, result.output)
        assert problems_of(result) == [f"pyproject.toml:{table + 3}: {message}"], (command, result.output)


def test_an_unreadable_pyproject_is_reported_at_its_line(project):
    (project / "pyproject.toml").write_text('[tool.ankideck]\ncards = "cards"\nout = \n', "utf-8")
    result = run("check")
    assert result.exit_code == 1 and problems_of(result)[0].startswith("pyproject.toml:3: cannot read [tool.ankideck]")


def test_cards_and_out_are_relative_to_the_project_not_the_working_directory(project, monkeypatch):
    monkeypatch.chdir(project / "cards/basics")
    result = run("build", "--cards", "cards", "--out", "dist/here.apkg")
    assert result.exit_code == 0, result.output
    assert (project / "dist/here.apkg").is_file()
    assert not (project / "cards/basics/dist").exists()
    assert run("check", "--cards", "cards").exit_code == 0
    assert run("stats", "--cards", "cards").exit_code == 0


@pytest.mark.parametrize("command, message", [
    (["changes", "--since", "HEAD"], "is not in a git repository"),                       # ChangelogError
    (["build", "--out", "dist"], "cannot write dist: it is a directory"),                 # OSError
])
def test_every_error_is_one_line_and_exit_code_1(project, command, message):
    (project / "dist").mkdir()
    result = CliRunner().invoke(cli, command)
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: ") and message in result.output, result.output
    assert "Traceback" not in result.output and not isinstance(result.exception, (AttributeError, TypeError))


def test_a_preview_error_is_one_line(project, monkeypatch):
    monkeypatch.setenv("ANKIDECK_CHROMIUM", "")
    monkeypatch.setattr("ankideck.preview.chromium_path", lambda: None)
    result = CliRunner().invoke(cli, ["preview", "--shots"])
    assert result.exit_code == 1 and result.output.startswith("Error: no Chromium found"), result.output
