"""Benchmark the build against its floors and against ankdown, side by side in one run, medians of several runs.

    python benchmarks/bench_build.py [--notes 10000] [--runs 5] [--skip real,ankdown,naive] [--with-runs-quick]

Every build runs as its own process (``python build.py build --quiet``), as a user runs it, so start-up is counted.
Rows, each with its ratio to the floor or rival it is judged against (issue #15's targets):

- ``python -c "import genanki"``: the floor of any build (start-up and the one library every build needs);
- the real deck (a copy of cards/, figures/ and pyproject.toml in a temporary folder), warm with nothing changed
  (target: <= 0.5 s and <= 3x the floor) and cold, figures included (target: <= 15 s);
- N synthetic notes with formulas and code: cold, each run next to one of ankdown's (target: <= 1.0x ankdown, PyPI
  ``ankdown``, the ``bench`` extra, on the same notes in its format), and after editing one card (target: <= 2x a
  raw genanki write of the same notes from pre-rendered HTML); a naive single-process Python-Markdown + pygments
  loop for reference;
- with ``--with-runs-quick``: ``figures/runs.py --quick``, each group of experiments against its 60 s budget.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTES_PER_FILE = 51   # 17 blocks of three notes

# Three notes: a basic card with display math and code, a basic card with inline math and a list, a cloze.
BLOCK = r"""# card: syn-{i}-a
tags: [bench]

## Front
第 {i} 题：写出 softmax 与交叉熵，并说明 $\epsilon$ 在 $\hat x$ 中的位置。

## Back
$$\mathrm{{softmax}}(z)_j = \frac{{e^{{z_j - m}}}}{{\sum_{{k=1}}^{{K}} e^{{z_k - m}}}},\quad m = \max_k z_k$$

交叉熵 $L = -\sum_j y_j \log p_j$，BN 为 $\hat x = (x-\mu)/\sqrt{{\sigma^2+\epsilon}}$。

```python
import numpy as np

def softmax(z, axis=-1):
    z = z - z.max(axis, keepdims=True)
    e = np.exp(z)  # card {i}
    return e / e.sum(axis, keepdims=True)
```

## Extra
- 减去最大值防止 **overflow**；结果不变，因为 $e^{{-m}}$ 约掉。
- 参考 $\log\sum\exp$ 技巧与 $\nabla_z L = p - y$。

# card: syn-{i}-b

## Front
Adam 的一阶、二阶矩估计与偏差修正是什么 (card {i})？

## Back
- $m_t = \beta_1 m_{{t-1}} + (1-\beta_1) g_t$
- $v_t = \beta_2 v_{{t-1}} + (1-\beta_2) g_t^2$
- $\hat m_t = m_t / (1-\beta_1^t)$，$\hat v_t = v_t / (1-\beta_2^t)$
- 更新 $\theta_t = \theta_{{t-1}} - \eta\, \hat m_t / (\sqrt{{\hat v_t}} + \epsilon)$，常用 $\beta_1 = 0.9$。

# cloze: syn-{i}-c
数值稳定的 softmax 先减去 {{{{c1::$\max_k z_k$}}}}，再做 {{{{c2::`np.exp`}}}}；梯度是 {{{{c3::$p - y$}}}} (card {i})。

"""


# --- the corpora ----------------------------------------------------------------------------------------------------

def write_project(root: Path, notes: int) -> None:
    """A project of ``notes`` synthetic notes (in files of NOTES_PER_FILE), in ankideck's format."""
    cards = root / "cards"
    cards.mkdir(parents=True)
    (root / "pyproject.toml").write_text('[tool.ankideck]\nout = "dist/bench.apkg"\n', "utf-8")
    (cards / "deck.yaml").write_text("name: Bench\nnamespace: bench\n", "utf-8")
    blocks = notes // 3
    per_file = NOTES_PER_FILE // 3
    for start in range(0, blocks, per_file):
        text = "".join(BLOCK.format(i=i) for i in range(start, min(start + per_file, blocks)))
        (cards / f"part-{start // per_file:04d}.md").write_text(text, "utf-8")


def write_ankdown_corpus(project: Path, target: Path) -> None:
    """The same notes in ankdown's format: fields split by '%', notes by '---', math as \\( \\) and \\[ \\] (its
    $-config cannot be loaded with PyYAML 6), a cloze as a front with its answers on the back."""
    import re

    sys.path.insert(0, str(ROOT))
    from ankideck.errors import Problems
    from ankideck.parse import parse_file

    def tex(text: str) -> str:
        text = re.sub(r"\$\$(.+?)\$\$", r"\\[\1\\]", text, flags=re.S)
        return re.sub(r"(?<!\\)\$(.+?)(?<!\\)\$", r"\\(\1\\)", text)

    target.mkdir(parents=True)
    for path in sorted((project / "cards").glob("*.md")):
        notes = []
        for card in parse_file(path, path.name, "Bench", Problems()):
            if card.kind == "basic":
                front, back = card.text("Front"), card.text("Back") + "\n\n" + card.text("Extra")
            else:
                front, back = card.text("Text"), card.text("Text")
            notes.append(f"{tex(front)}\n\n%\n\n{tex(back)}\n\n%\n\nbench\n")
        (target / path.name).write_text("\n---\n\n".join(notes), "utf-8")


# --- timing ---------------------------------------------------------------------------------------------------------



class Seconds(float):
    """Wall-clock seconds, with the CPU seconds (``cpu``) of the process and its children."""

    cpu = 0.0


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command: list[str], cwd: Path, env: dict | None = None) -> Seconds:
    cpu, started = _children_cpu(), time.perf_counter()
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    seconds = Seconds(time.perf_counter() - started)
    seconds.cpu = _children_cpu() - cpu
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed in {cwd}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return seconds


def middle(results: list[Seconds]) -> Seconds:
    """The median run itself (its CPU seconds with it)."""
    results = sorted(results)
    return results[(len(results) - 1) // 2]


def median(function, runs: int) -> Seconds:
    return middle([function() for _ in range(runs)])


def build(root: Path) -> float:
    return timed([sys.executable, str(ROOT / "build.py"), "build", "--quiet"], root, {"PYTHONPATH": str(ROOT)})


def clear_cache(root: Path) -> None:
    """Cold: no compile cache, no rendered figures, no record of the deck last written."""
    shutil.rmtree(root / ".cache", ignore_errors=True)


RAW_GENANKI = r"""
import json, sys, genanki
notes, out = json.load(open(sys.argv[1], encoding="utf-8")), sys.argv[2]
basic_fields = [{"name": n} for n in ("Front", "Back", "Extra", "Guide", "Source", "Id")]
cloze_fields = [{"name": n} for n in ("Text", "Extra", "Guide", "Source", "Id")]
model = genanki.Model(1607392319, "raw", fields=basic_fields,
                      templates=[{"name": "Card 1", "qfmt": "{{Front}}", "afmt": "{{Back}}"}])
cloze = genanki.Model(1607392320, "raw cloze", fields=cloze_fields,
                      templates=[{"name": "Cloze", "qfmt": "{{cloze:Text}}", "afmt": "{{cloze:Text}}"}],
                      model_type=genanki.Model.CLOZE)
deck = genanki.Deck(2059400110, "Bench")
for note in notes:
    deck.add_note(genanki.Note(model=cloze if note["cloze"] else model, fields=note["fields"], guid=note["guid"]))
genanki.Package(deck).write_to_file(out)
"""


def write_raw_notes(project: Path, target: Path) -> None:
    """The notes of a built project, pre-rendered (fields as the build made them), for the raw genanki write."""
    import sqlite3
    import zipfile

    with zipfile.ZipFile(project / "dist" / "bench.apkg") as package, tempfile.TemporaryDirectory() as scratch:
        package.extract("collection.anki2", scratch)
        with sqlite3.connect(Path(scratch) / "collection.anki2") as db:
            rows = db.execute("select guid, mid, flds from notes").fetchall()
    notes = [{"guid": guid, "cloze": mid == 1607392320, "fields": flds.split("\x1f")} for guid, mid, flds in rows]
    target.write_text(json.dumps(notes, ensure_ascii=False), "utf-8")


NAIVE = r"""
import sys, pathlib, re, genanki, markdown
cards = re.compile(r"^# (?:card|cloze): (\S+)$", re.M)
model = genanki.Model(1607392319, "naive", fields=[{"name": "Front"}, {"name": "Back"}],
                      templates=[{"name": "Card 1", "qfmt": "{{Front}}", "afmt": "{{Back}}"}])
deck = genanki.Deck(2059400111, "Naive")
md = markdown.Markdown(extensions=["fenced_code", "codehilite", "tables", "pymdownx.arithmatex"],
                       extension_configs={"pymdownx.arithmatex": {"generic": True}})
for path in sorted(pathlib.Path(sys.argv[1]).glob("*.md")):
    parts = cards.split(path.read_text("utf-8"))
    for card_id, body in zip(parts[1::2], parts[2::2]):
        front, _, back = body.partition("## Back")
        fields = [md.reset().convert(front), md.reset().convert(back)]
        deck.add_note(genanki.Note(model=model, fields=fields, guid=genanki.guid_for(card_id)))
genanki.Package(deck).write_to_file(sys.argv[2])
"""


# --- the rows -------------------------------------------------------------------------------------------------------

def row(label: str, seconds: float, against: str = "", ratio: float | None = None, target: str = "",
        met: bool | None = None) -> None:
    verdict = "" if met is None else ("  ok" if met else "  MISSED")
    ratio_text = f"{ratio:6.2f}x {against}" if ratio is not None else ""
    cpu = f"{getattr(seconds, 'cpu', 0.0):6.2f}"
    print(f"{label:<56} {seconds:7.2f} s {cpu} cpu  {ratio_text:<26} {target}{verdict}", flush=True)


def copy_real_deck(root: Path, ref: str | None) -> None:
    """cards/, figures/ and pyproject.toml into ``root``: from the working tree, or as committed at ``ref``."""
    if ref:
        archive = subprocess.run(["git", "archive", "--format=tar", ref, "cards", "figures", "pyproject.toml"],
                                 cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(root)], input=archive, check=True)
        return
    for name in ("cards", "figures"):
        shutil.copytree(ROOT / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copyfile(ROOT / "pyproject.toml", root / "pyproject.toml")


def bench_real(runs: int, floor: float, ref: str | None) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-real-") as tmp:
        root = Path(tmp)
        copy_real_deck(root, ref)
        cold = []
        for _ in range(max(1, runs // 2) | 1):  # a cold build renders every figure: fewer runs, an odd number
            clear_cache(root)
            cold.append(build(root))
        cold_median = middle(cold)
        warm = median(lambda: build(root), runs)
        lock = json.loads((root / "cards" / "cards.lock.json").read_text("utf-8"))["notes"]
        notes = sum(not entry.get("removed") for entry in lock.values())  # the lock remembers removed notes too
        figures = len(list((root / ".cache" / "ankideck" / "figures").glob("*.png")))
        label = f"real deck ({notes:,} notes, {figures} figure images)"
        row(f"{label}, warm, nothing changed", warm, "import genanki", warm / floor, "<= 0.5 s and <= 3x",
            warm <= 0.5 and warm <= 3 * floor)
        row(f"{label}, cold", cold_median, target="<= 15 s", met=cold_median <= 15)


def bench_synthetic(notes: int, runs: int, skip: set[str]) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-synthetic-") as tmp:
        root = Path(tmp) / "project"
        write_project(root, notes)
        ankdown_command = None
        if "ankdown" not in skip and shutil.which("ankdown", path=str(Path(sys.executable).parent)):
            corpus = Path(tmp) / "ankdown"
            write_ankdown_corpus(root, corpus)
            ankdown_command = [str(Path(sys.executable).parent / "ankdown"), "-r", str(corpus), "-p",
                               str(Path(tmp) / "ankdown.apkg"), "--highlight"]
        cold, rival = [], []
        for _ in range(runs):  # ours and ankdown in turn: a slower spell of a shared machine hits both alike
            clear_cache(root)
            shutil.rmtree(root / "dist", ignore_errors=True)
            (root / "cards" / "cards.lock.json").unlink(missing_ok=True)
            cold.append(build(root))
            if ankdown_command:
                rival.append(timed(ankdown_command, Path(tmp)))
        ours = middle(cold)
        first = root / "cards" / "part-0000.md"
        original = first.read_text("utf-8")

        def edit_one() -> float:
            marker = f"（改 {time.perf_counter_ns()}）"
            first.write_text(original.replace("第 0 题", f"第 0 题{marker}", 1), "utf-8")
            return build(root)

        edited = median(edit_one, runs)
        write_raw_notes(root, Path(tmp) / "notes.json")
        raw = median(lambda: timed([sys.executable, "-c", RAW_GENANKI, str(Path(tmp) / "notes.json"),
                                    str(Path(tmp) / "raw.apkg")], Path(tmp)), runs)
        label = f"{notes:,} synthetic notes"
        if ankdown_command:
            ankdown = middle(rival)
            row(f"{label}, ankdown (misaka), cold", ankdown)
            row(f"{label}, cold", ours, "ankdown", ours / ankdown, "<= 1.0x", ours <= ankdown)
        else:
            row(f"{label}, cold", ours, target="(ankdown not installed: pip install -e '.[bench]')")
        if "naive" not in skip:
            naive = median(lambda: timed([sys.executable, "-c", NAIVE, str(root / "cards"),
                                          str(Path(tmp) / "naive.apkg")], Path(tmp)), max(1, runs // 2))
            row(f"{label}, naive Python-Markdown loop, cold", naive, "ours cold", naive / ours)
        row(f"{label}, raw genanki write (pre-rendered)", raw)
        row(f"{label}, one card edited", edited, "raw genanki write", edited / raw, "<= 2x", edited <= 2 * raw)


def bench_runs_quick() -> None:
    sys.path.insert(0, str(ROOT))
    from figures.runs import QUICK_BUDGET_S, QUICK_GROUPS  # imports nothing heavy

    for group, names in QUICK_GROUPS.items():
        with tempfile.TemporaryDirectory(prefix="bench-runs-") as tmp:
            seconds = timed([sys.executable, str(ROOT / "figures" / "runs.py"), "--quick", "--device", "cpu",
                             "--only", ",".join(names), "--out", tmp], ROOT)
        row(f"figures/runs.py --quick, {group} ({len(names)} experiments, CPU)", seconds, "budget",
            seconds / QUICK_BUDGET_S, f"<= {QUICK_BUDGET_S:.0f} s", seconds <= QUICK_BUDGET_S)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--notes", type=int, default=10_000, help="synthetic notes (default 10,000)")
    parser.add_argument("--runs", type=int, default=5, help="runs per row, the median is shown (default 5)")
    parser.add_argument("--skip", default="", help="comma-separated rows to skip: real, synthetic, ankdown, naive")
    parser.add_argument("--with-runs-quick", action="store_true", help="also time figures/runs.py --quick")
    parser.add_argument("--ref", help="take the real deck as committed at this git ref (default: the working tree)")
    args = parser.parse_args()
    skip = {part.strip() for part in args.skip.split(",") if part.strip()}
    print(f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, medians of {args.runs} runs; seconds of wall "
          "clock, then of CPU (worker processes included); load average "
          f"{os.getloadavg()[0]:.2f} at the start (other processes share the cores)", flush=True)
    floor = median(lambda: timed([sys.executable, "-c", "import genanki"], ROOT), max(args.runs, 5))
    row('python -c "import genanki" (the floor)', floor)
    if "real" not in skip:
        bench_real(args.runs, floor, args.ref)
    if "synthetic" not in skip:
        bench_synthetic(args.notes, args.runs, skip)
    if args.with_runs_quick:
        bench_runs_quick()


if __name__ == "__main__":
    main()
