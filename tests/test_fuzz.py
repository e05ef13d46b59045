"""Property-based fuzz test (Hypothesis): real card files, mutated the way careless or hostile authors would.

Whatever the mutation, the CLI never shows a traceback and exits 0 or 1; and when it exits 0, every card header in
the input is a note in the output (no card is swallowed silently). A fixed seed and a bounded number of examples
keep it deterministic and fast.
"""
from __future__ import annotations

import re
import shutil

import pytest
from click.testing import CliRunner

hypothesis = pytest.importorskip("hypothesis", reason="the test extra installs hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from ankideck.cli import cli  # noqa: E402
from ankideck.parse import CARD_RE  # noqa: E402
from tests.conftest import ROOT  # noqa: E402

REAL_FILES = sorted(path for path in (ROOT / "cards").rglob("*.md"))[:12]
TOKENS = ["```", "```python", "```x`y", "~~~", "$$", "$", "\\$", "{{c1::", "{{c2::a {{c3::b}} }}", "}}", "::",
          "# card: fuzz-a", "# cloze: fuzz-b", "# card: Fuzz-A", "## Front", "## Back", "## Extra", "## Text", "#",
          "\x1f", "\x00", "\r", "\u2028", "<script>alert(1)</script>", "<img src=x onerror=alert(1)>",
          "[x](javascript:alert(1))", "<iframe src=//e.example>", "---", "tags: [a b]", "guide: nope", "deck: [x",
          "![x](nope.png)", "![x](../../.git/config)", "![x](fig:nope)", "ankideck-media:7", "\t", "\\", "    ",
          "|a|b|\n|-|-|", "- item", "1. item", "> quote", "<details>", "</div>", "&", "\ufeff"]

operation = st.one_of(
    st.tuples(st.just("delete"), st.integers(0, 10_000)),
    st.tuples(st.just("duplicate"), st.integers(0, 10_000)),
    st.tuples(st.just("insert"), st.integers(0, 10_000), st.sampled_from(TOKENS)),
    st.tuples(st.just("inline"), st.integers(0, 10_000), st.integers(0, 200), st.sampled_from(TOKENS)),
    st.tuples(st.just("text"), st.integers(0, 10_000), st.text(max_size=12)),
    st.tuples(st.just("truncate"), st.integers(0, 10_000)),
    st.tuples(st.just("swap"), st.integers(0, 10_000), st.integers(0, 10_000)),
)


def mutate(text: str, operations) -> str:
    lines = text.split("\n")
    for op in operations:
        n = max(len(lines), 1)
        if op[0] == "delete" and lines:
            del lines[op[1] % n]
        elif op[0] == "duplicate" and lines:
            lines.insert(op[1] % n, lines[op[1] % n])
        elif op[0] in ("insert", "text"):
            lines.insert(op[1] % (n + 1), op[2])
        elif op[0] == "inline" and lines:
            line = lines[op[1] % n]
            at = op[2] % (len(line) + 1)
            lines[op[1] % n] = line[:at] + op[3] + line[at:]
        elif op[0] == "truncate":
            lines = lines[: op[1] % (n + 1)]
        elif op[0] == "swap" and lines:
            i, j = op[1] % n, op[2] % n
            lines[i], lines[j] = lines[j], lines[i]
    return "\n".join(lines)


@pytest.fixture(scope="module")
def fuzz_project(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    (root / "pyproject.toml").write_text(
        '[tool.ankideck]\ncards = "cards"\nout = "dist/fuzz.apkg"\n'
        f'figures = "{(ROOT / "figures").as_posix()}"\ncache = ".cache/ankideck"\n', "utf-8")
    (root / "cards").mkdir()
    for name in ("deck.yaml", "guide.yaml"):
        shutil.copyfile(ROOT / "cards" / name, root / "cards" / name)
    return root


@settings(max_examples=60, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(source=st.sampled_from(REAL_FILES), operations=st.lists(operation, min_size=1, max_size=6))
def test_mutated_real_cards_never_crash_and_never_lose_a_card(fuzz_project, monkeypatch, source, operations):
    monkeypatch.chdir(fuzz_project)
    text = mutate(source.read_text("utf-8"), operations)
    card_file = fuzz_project / "cards" / "fuzzed.md"
    card_file.write_text(text, "utf-8", newline="")
    result = CliRunner().invoke(cli, ["check"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    assert "Traceback" not in result.output
    assert result.exit_code in (0, 1), result.output
    if result.exit_code == 0:
        headers = [line for line in re.split(r"\r\n|\n", text.removeprefix("\ufeff")) if CARD_RE.match(line)]
        notes = int(re.match(r"OK: (\d+) notes", result.output).group(1))
        assert notes == len(headers), (headers, result.output)
