"""Issue #16: nothing a card author writes can lose cards, reach a reviewer's Anki as script, or crash the build.

Every case runs through the CLI (click's CliRunner) and asserts the exact message prefix, exit code 1 and, where
something was built before, that the deck and the lock file are untouched.
"""
from __future__ import annotations

import json
import os
import re
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from ankideck.cli import cli

LOCK = "cards/cards.lock.json"
DECK = "dist/test.apkg"


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def problems_of(result) -> list[str]:
    return [line for line in result.output.splitlines() if re.match(r"^\S+:\d+: ", line)]


def assert_refused(result, *messages: str) -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    found = problems_of(result)
    for message in messages:
        assert any(line.startswith(message) for line in found), (message, result.output)


def snapshot(project: Path) -> tuple[bytes, bytes]:
    return (project / DECK).read_bytes(), (project / LOCK).read_bytes()


def card(card_id: str, front: str, back: str = "b") -> str:
    return f"# card: {card_id}\n## Front\n{front}\n## Back\n{back}\n"


def write(project: Path, text: str, name: str = "x.md") -> Path:
    path = project / "cards" / name
    path.write_text(text, "utf-8")
    return path


# --- cards lost or changed silently --------------------------------------------------------------------------------

def test_a_fence_still_open_at_the_next_card_header_is_an_error_at_the_fence(project):
    write(project, card("one", "q", "```python\nx = 1\n") + "\n" + card("two", "q2") + card("three", "q3"))
    assert_refused(run("check"), "cards/x.md:5: code fence ``` is never closed (still open at the card header on "
                                 "line 9)")


def test_a_backtick_in_a_backtick_fence_info_makes_it_prose_so_its_script_is_seen(project):
    write(project, card("s", "```x`y\n<script>fetch('https://evil.example')</script>\n```"))
    assert_refused(run("check"), "cards/x.md:4: raw <script> is not allowed in cards")


@pytest.mark.parametrize("text, message", [
    ("# cloze: n\n{{c1::a {{c2::b}} }}\n", "cards/x.md:2: cloze deletion {{c2:: is inside {{c1::...}}"),
    ("# cloze: u\nthe answer is {{c1::abc\n", "cards/x.md:2: cloze deletion {{c1:: is never closed"),
])
def test_nested_and_unclosed_clozes_are_errors(project, text, message):
    write(project, text)
    assert_refused(run("check"), message)


def test_a_cloze_with_braces_inside_math_is_not_mistaken_for_nesting(project):
    write(project, "# cloze: m\n{{c1::$\\frac{1}{x^{2}}$}} and {{c2::b}}\n")
    result = run("check")
    assert result.exit_code == 0, result.output


def test_a_namespace_change_with_a_lock_file_is_refused_unless_asked_for(project):
    assert run("build").exit_code == 0
    before = snapshot(project)
    deck_yaml = project / "cards/deck.yaml"
    deck_yaml.write_text(deck_yaml.read_text("utf-8").replace("namespace: test-deck", "namespace: other"), "utf-8")
    result = run("build")
    assert_refused(result, "cards/deck.yaml:2: namespace changed from 'test-deck' to 'other'")
    assert "would add all 4 notes again as new notes" in result.output and "--new-namespace" in result.output
    assert snapshot(project) == before
    forced = run("build", "--new-namespace")
    assert forced.exit_code == 0, forced.output
    assert json.loads((project / LOCK).read_text("utf-8"))["namespace"] == "other"


def test_ids_that_differ_only_by_case_are_duplicates(project):
    write(project, card("Softmax-Def", "q"))
    assert_refused(run("check"), "cards/x.md:1: duplicate card id 'Softmax-Def': it differs only in case from "
                                 "'softmax-def'")


def test_new_refuses_an_id_that_differs_only_by_case(project):
    result = run("new", "--id", "SOFTMAX-DEF", str(project / "cards/more.md"))
    assert result.exit_code == 1 and "already used" in result.output


def test_a_card_file_linked_from_outside_the_cards_folder_is_refused(project, tmp_path):
    outside = tmp_path / "outside.md"
    outside.write_text(card("outside-card", "q"), "utf-8")
    (project / "cards/linked.md").symlink_to(outside)
    assert_refused(run("check"), "cards/linked.md:1: card file is a link to ")


def test_a_card_file_whose_name_is_not_utf8_is_a_problem_not_a_traceback(project):
    name = os.fsdecode(b"caf\xe9.md")
    (project / "cards" / name).write_text(card("cafe", "q"), "utf-8")
    assert_refused(run("check"), "cards/caf\\xe9.md:1: file name is not valid UTF-8")


@pytest.mark.parametrize("char", ["\x1f", "\x00", "\x1b", "\x7f", "\r"])
def test_control_characters_are_refused_with_their_line(project, char):
    write(project, card("ctl", f"a{char}b"))
    assert_refused(run("check"), f"cards/x.md:3: control character U+{ord(char):04X} is not allowed")


def test_tabs_and_crlf_line_ends_are_fine(project):
    write(project, card("tabs", "a\tb").replace("\n", "\r\n"))
    assert run("check").exit_code == 0


def test_guide_questions_with_control_characters_cannot_break_the_deck(project):
    # The Guide field is built from guide.yaml: a unit separator there would make Anki refuse the deck too.
    guide = project / "cards/guide.yaml"
    guide.write_text(guide.read_text("utf-8").replace("What is softmax?", "What is\\x1f softmax?"), "utf-8")
    result = run("build")
    assert result.exit_code == 1, result.output
    assert "cards/guide.yaml:" in result.output and "control character U+001F" in result.output


@pytest.mark.parametrize("target, message", [
    ("../.git/config", "image '../.git/config' is outside the cards folder"),
    ("../pyproject.toml", "image '../pyproject.toml' is outside the cards folder"),
    ("notes.txt", "image 'notes.txt' is not a PNG, JPEG, GIF or WebP image"),
    ("fake.png", "image 'fake.png' is not a PNG, JPEG, GIF or WebP image"),
])
def test_only_image_files_inside_the_cards_folder_are_packed(project, target, message):
    (project / ".git").mkdir()
    (project / ".git/config").write_text("[core]\n", "utf-8")
    (project / "cards/notes.txt").write_text("secret", "utf-8")
    (project / "cards/fake.png").write_text("<svg onload=alert(1)>", "utf-8")
    write(project, card("img", f"![x]({target})"))
    assert_refused(run("check"), f"cards/x.md:3: {message}")


def test_a_card_over_the_size_limit_is_refused_quickly(project):
    import time

    from ankideck.parse import MAX_CARD_CHARS

    write(project, card("huge", "word " * (5_000_000 // 5)))
    started = time.perf_counter()
    result = run("check")
    assert time.perf_counter() - started < 20
    assert_refused(result, "cards/x.md:1: card 'huge' is 5,000,00")
    assert f"characters long; the limit is {MAX_CARD_CHARS:,}" in result.output


# --- script and markup -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("snippet, message", [
    ("<img src=x onerror=alert(1)>", "HTML attribute 'onerror' on <img> is not allowed"),
    ("<svg onload=alert(1)></svg>", "HTML tag <svg> is not allowed"),
    ('<iframe src="https://evil.example"></iframe>', "HTML tag <iframe> is not allowed"),
    ("<style>.card{display:none}</style>", "HTML tag <style> is not allowed"),
    ("[click](javascript:alert(1))", "link 'javascript:alert(1)' is not allowed"),
    ('<a href="javascript:alert(1)">x</a>', "link 'javascript:alert(1)' is not allowed"),
    ('<img src="https://evil.example/a.png">', "image 'https://evil.example/a.png' must be a file in the project"),
    ('<img src="missing.png">', "image 'missing.png' not found"),
])
def test_hostile_html_fails_check_with_its_line(project, snippet, message):
    write(project, card("h", f"fine\n\n{snippet}"))
    assert_refused(run("check"), f"cards/x.md:5: {message}")


def test_an_html_image_goes_through_media_resolution_like_a_markdown_one(project):
    write(project, card("html-img", '<img src="basics/img/plot.png" alt="p">'))
    result = run("build")
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(project / DECK) as package:
        media = json.loads(package.read("media"))
    assert any(name.startswith("plot-") for name in media.values())


# --- tracebacks and hangs --------------------------------------------------------------------------------------

@pytest.mark.parametrize("payload", [
    b"\x80\x04\x95garbage",                           # an old pickle, or anything that is not our JSON
    b'{"format": 1, "engine": "x", "entries": []}',   # JSON of the wrong shape
    b"[1, 2, 3]",
    "a line cut short",                               # the real file, its last entry cut in the middle
    "a line without its key",
])
def test_a_damaged_compile_cache_is_discarded_silently(project, payload):
    assert run("build").exit_code == 0
    cache = project / ".cache/ankideck/compiled.jsonl"
    assert cache.is_file()
    if payload == "a line cut short":
        payload = cache.read_bytes()[:-40]
    elif payload == "a line without its key":
        header, first, *rest = cache.read_bytes().split(b"\n")
        payload = b"\n".join([header, first.partition(b"\t")[2], *rest])
    cache.write_bytes(payload)
    result = run("build")
    assert result.exit_code == 0 and "no changes" in result.output, result.output


def test_the_compile_cache_cannot_run_code(project):
    """A pickle that would run code when unpickled: the cache format is JSON, so it is never unpickled."""
    import pickle

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {project / 'pwned'}",))

    assert run("build").exit_code == 0
    (project / ".cache/ankideck/compiled.pickle").write_bytes(pickle.dumps(Evil()))
    (project / ".cache/ankideck/compiled.jsonl").write_bytes(pickle.dumps(Evil()))
    assert run("build").exit_code == 0
    assert not (project / "pwned").exists()


def test_the_cache_is_keyed_on_the_engines_source(project, monkeypatch):
    from ankideck import compile

    assert run("build").exit_code == 0
    compile.engine_version.cache_clear()
    real = compile.engine_version()
    monkeypatch.setattr(compile, "engine_version", lambda: real + "-edited")
    compiled = []
    original = compile.compile_file
    monkeypatch.setattr(compile, "compile_file", lambda job: compiled.append(job[0]) or original(job))
    assert run("check").exit_code == 0
    assert sorted(compiled) == ["cards/basics/code.md", "cards/basics/formulas.md"]


@pytest.mark.parametrize("mod", ["1e400", "Infinity", "NaN", "1" * 5000, "-5", "1.5", '"soon"'])
def test_a_bad_lock_entry_is_a_problem_at_its_line(project, mod):
    assert run("build").exit_code == 0
    lock = project / LOCK
    lines = lock.read_text("utf-8").splitlines()
    index = next(i for i, line in enumerate(lines) if line.lstrip().startswith('"plot-card"'))
    lines[index] = re.sub(r'"mod": \d+', f'"mod": {mod}', lines[index])
    lock.write_text("\n".join(lines) + "\n", "utf-8")
    before = snapshot(project)
    assert_refused(run("build"), f"{LOCK}:{index + 1}: bad lock entry 'plot-card': 'mod' must be a whole number")
    assert snapshot(project) == before


def test_an_unreadable_lock_file_is_a_problem(project):
    (project / LOCK).write_text("{not json", "utf-8")
    assert_refused(run("build"), f"{LOCK}:1: unreadable lock file")


def test_a_figure_registry_that_exits_is_a_problem(project):
    (project / "figures").mkdir()
    (project / "figures/__init__.py").write_text("import sys\nsys.exit(3)\n", "utf-8")
    assert_refused(run("check"), "figures/__init__.py:2: cannot load the figure registry: SystemExit: 3")


def test_a_plot_function_that_raises_is_a_problem_at_its_line(project):
    (project / "figures").mkdir()
    (project / "figures/__init__.py").write_text(
        "from ankideck import Figure\nFIGURES = {'bad': Figure(plot='figures.bad:plot')}\n", "utf-8")
    (project / "figures/bad.py").write_text("def plot(ax, data):\n    raise ValueError('no data')\n", "utf-8")
    write(project, card("fig", "![f](fig:bad)"))
    assert_refused(run("build"), "figures/bad.py:2: drawing a figure failed: ValueError: no data")
    assert not (project / DECK).exists()


def test_new_into_a_latin1_file_is_a_problem_and_leaves_it_alone(project):
    target = project / "cards/latin1.md"
    target.write_bytes("# card: x\n## Front\ncaf\xe9\n".encode("latin-1"))
    result = run("new", str(target))
    assert_refused(result, "cards/latin1.md:3: not valid UTF-8")
    assert target.read_bytes() == "# card: x\n## Front\ncaf\xe9\n".encode("latin-1")


@pytest.mark.parametrize("which", [LOCK, ".cache/ankideck/compiled.jsonl"])
def test_an_output_path_that_is_a_directory_fails_before_anything_is_written(project, which):
    assert run("build").exit_code == 0
    formulas = project / "cards/basics/formulas.md"
    formulas.write_text(formulas.read_text("utf-8").replace("Write softmax.", "Write softmax!"), "utf-8")
    deck_before = (project / DECK).read_bytes()
    target = project / which
    target.unlink()
    target.mkdir()
    result = run("build")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"{which}" in result.output and "is a directory" in result.output
    assert (project / DECK).read_bytes() == deck_before


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
@pytest.mark.parametrize("folder", ["cards", ".cache/ankideck"])
def test_a_read_only_output_folder_fails_before_the_deck_is_written(project, folder):
    assert run("build").exit_code == 0
    formulas = project / "cards/basics/formulas.md"
    formulas.write_text(formulas.read_text("utf-8").replace("Write softmax.", "Write softmax!"), "utf-8")
    deck_before = (project / DECK).read_bytes()
    (project / folder).chmod(0o555)
    try:
        result = run("build")
    finally:
        (project / folder).chmod(0o755)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert (project / DECK).read_bytes() == deck_before


def test_a_full_disk_while_writing_fails_with_nothing_replaced(project, monkeypatch):
    """The temporary files are written first; a write that fails (ENOSPC) leaves the old outputs and no temp."""
    import errno

    from ankideck import atomic

    assert run("build").exit_code == 0
    before = snapshot(project)
    formulas = project / "cards/basics/formulas.md"
    formulas.write_text(formulas.read_text("utf-8").replace("Write softmax.", "Write softmax!"), "utf-8")

    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(atomic, "write_temp", full)
    result = run("build")
    assert result.exit_code == 1 and "No space left on device" in result.output
    assert "Traceback" not in result.output
    assert snapshot(project) == before
    assert not list(project.rglob("*.tmp"))
