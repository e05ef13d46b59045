"""figures/runs.py: a --quick run of every experiment on the CPU, its data files' schema and provenance, the
qualitative claims that are robust at that size, and the committed full-run data.

The quick run needs the optional extra ``.[runs]`` (torch, scikit-learn, transformers, the packaged model); without
it those tests are skipped with the reason. The tests of the committed data and of --help need none of it.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
RUNS = ROOT / "figures" / "runs.py"
DATA = ROOT / "figures" / "data"

sys.path.insert(0, str(ROOT))
from figures import FIGURES  # noqa: E402  (imports nothing heavy)
from figures.experiments.common import PROVENANCE_KEYS, SIZE_NAMES  # noqa: E402  (stdlib only)
from figures.runs import EXPERIMENTS  # noqa: E402  (imports nothing heavy)
from tests.conftest import load_run as _load  # noqa: E402

STEMS = list(EXPERIMENTS)  # each experiment writes figures/data/<name>.json

MEASURED = {name: fig for name, fig in FIGURES.items() if name.startswith("run-")}


def _sizes(name: str) -> dict[str, dict]:
    """The SIZES table of figures/experiments/<name>.py, read without importing it (that needs torch)."""
    tree = ast.parse((ROOT / "figures" / "experiments" / f"{name}.py").read_text("utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["SIZES"]:
            return ast.literal_eval(node.value)
    raise AssertionError(f"figures/experiments/{name}.py has no SIZES table")


def _check_provenance(d: dict, stem: str, quick: bool):
    missing = [k for k in PROVENANCE_KEYS if k not in d]
    assert not missing, f"{stem}: provenance keys missing: {missing}"
    assert d["experiment"] == stem
    assert d["quick"] is quick
    assert isinstance(d["model"], str) and d["model"]
    assert d["steps"] is None or (isinstance(d["steps"], int) and d["steps"] >= 0)  # None: nothing is trained
    assert isinstance(d["seed"], int)
    assert d["device"] in ("cpu", "cuda")
    assert isinstance(d["versions"], dict) and {"python", "numpy", "torch"} <= d["versions"].keys()
    assert isinstance(d["wall_time_s"], (int, float)) and d["wall_time_s"] >= 0
    datetime.fromisoformat(d["date"])
    assert isinstance(d["claim"], str) and len(d["claim"]) > 20
    assert isinstance(d["cpu_threads"], int)
    if "config" in d and "size" in d["config"]:  # data written since the SIZES tables: the row, verbatim
        sizes = _sizes(stem)
        assert d["config"] == {"size": d["config"]["size"], **sizes[d["config"]["size"]]}
        assert d["config"]["size"].startswith("quick" if quick else "full")


# --- without torch ---------------------------------------------------------------------------------------------


def test_help_works_without_torch():
    code = (
        "import sys, runpy\n"
        "class Block:\n"  # make torch (and sklearn) unimportable, as on a machine without the extra
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('torch', 'sklearn', 'transformers'):\n"
        "            raise ImportError('blocked: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        f"sys.argv = [{str(RUNS)!r}, '--help']\n"
        "try:\n"
        f"    runpy.run_path({str(RUNS)!r}, run_name='__main__')\n"
        "except SystemExit as e:\n"
        "    assert e.code in (0, None), e.code\n"
        "assert 'torch' not in sys.modules\n"
        "print('HELP-OK')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "--device" in proc.stdout and "--quick" in proc.stdout and "--only" in proc.stdout
    assert "HELP-OK" in proc.stdout


def test_import_is_cheap():
    code = ("import sys; import figures.runs; bad = {'torch', 'sklearn', 'transformers', 'numpy'} & set(sys.modules); "
            "print(sorted(bad))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_without_torch_the_script_says_how_to_install_it():
    code = (
        "import sys, runpy\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'torch':\n"
        "            raise ImportError('blocked')\n"
        "sys.meta_path.insert(0, Block())\n"
        f"sys.argv = [{str(RUNS)!r}, '--quick']\n"
        f"runpy.run_path({str(RUNS)!r}, run_name='__main__')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert ".[runs]" in proc.stderr


def test_unknown_experiment_is_an_error():
    proc = subprocess.run([sys.executable, str(RUNS), "--only", "nope"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and "unknown experiment" in proc.stderr


@pytest.mark.parametrize("stem", STEMS)
def test_committed_data_is_a_full_run_with_provenance(stem):
    d = _load(DATA, stem)
    _check_provenance(d, stem, quick=False)


def test_every_measured_figure_has_committed_data():
    assert len(MEASURED) >= 11
    for name, fig in MEASURED.items():
        module, function = fig.plot.split(":")
        assert module.startswith("figures.measured"), fig.plot  # measured.py or measured_<topic>.py
        assert function == name.replace("-", "_"), fig.plot  # the registry's one name rule
        for f in fig.data:
            assert Path(f).stem in EXPERIMENTS, f"{name}: {f} is no experiment's data"
            assert (DATA / f).is_file(), f"{name}: {f} not committed"


def test_every_experiment_is_in_one_quick_budget_group():
    from figures.runs import QUICK_GROUPS

    grouped = [name for names in QUICK_GROUPS.values() for name in names]
    assert sorted(grouped) == sorted(EXPERIMENTS), "each experiment in exactly one --quick budget group"


def test_every_experiment_is_a_module_with_a_sizes_table():
    """The experiment's name is its module's (the rest of figures/experiments/ are shared helpers: no SIZES)."""
    modules = {path.stem for path in (ROOT / "figures" / "experiments").glob("*.py")
               if "\nSIZES = " in path.read_text("utf-8")}
    assert modules == set(EXPERIMENTS)
    for name in EXPERIMENTS:
        sizes = _sizes(name)
        assert set(SIZE_NAMES) <= set(sizes), name
        assert all(set(row) == set(sizes["quick"]) for row in sizes.values()), f"{name}: rows differ in their keys"


# --- the quick run -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stem", STEMS)
def test_quick_run_writes_data_with_provenance(quick, stem):
    out, _, _ = quick
    d = _load(out, stem)
    _check_provenance(d, stem, quick=True)
    assert d["device"] == "cpu"
    assert d["config"]["size"] == "quick"
    assert (out / f"{stem}.json").read_text("utf-8").count("\n") > 10  # indented: a data diff shows what changed


def test_quick_run_prints_device_and_progress(quick):
    _, stdout, _ = quick
    assert "device=cpu" in stdout
    for i, stem in enumerate(STEMS, 1):
        assert f"[{i}/{len(STEMS)}] {stem}: start" in stdout


def test_l1_gives_more_zero_weights_than_l2(quick):
    d = _load(quick[0], "l1_l2")
    l1, l2 = d["zero_frac"]["l1"], d["zero_frac"]["l2"]
    assert all(a > b for a, b in zip(l1, l2)), (l1, l2)
    assert max(l2) == 0.0  # L2 shrinks, never zeroes (blank pixels are dropped first)
    assert l1[-1] > 0.5  # the strongest L1 penalty zeroes most weights
    assert l1 == sorted(l1)  # more penalty, more zeros


def test_kaiming_keeps_relu_spread_while_normal_explodes(quick):
    d = _load(quick[0], "init_spread")
    kaiming = d["act"]["relu"]["kaiming"]
    normal = d["act"]["relu"]["normal"]
    assert max(kaiming) / min(kaiming) < 4, kaiming
    assert normal[-1] / normal[0] > 1e4, normal
    small = d["act"]["relu"]["small"]
    assert small[-1] / small[0] < 1e-4, small  # a small constant scale vanishes


def test_kv_cache_is_faster_than_recomputation_at_long_lengths(quick):
    g = _load(quick[0], "attention_cost")["generation"]
    assert all(g["same_tokens"])
    assert g["time_cache_s"][-1] < g["time_nocache_s"][-1], g


def test_kv_cache_bytes_shrink_with_fewer_kv_heads(quick):
    m = _load(quick[0], "attention_cost")["kv_cache"]["tiny"]["measured"]
    assert m["MHA"]["bytes"] == m["MHA"]["formula_bytes"]
    assert m["MHA"]["bytes"] == 4 * m["GQA"]["bytes"] == 8 * m["MQA"]["bytes"]


def test_balancing_loss_evens_expert_load(quick):
    d = _load(quick[0], "moe_balance")
    assert d["mean_cv"]["aux"] < d["mean_cv"]["no_aux"], d["mean_cv"]


def test_quick_data_plots(quick, tmp_path):
    """Every run-* figure draws from freshly written (quick) data: the plots and the data agree on the schema."""
    import importlib

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure as MplFigure

    for name, fig in MEASURED.items():
        data = {Path(f).stem: json.loads((quick[0] / f).read_text(encoding="utf-8")) for f in fig.data}
        module, fn = fig.plot.split(":")
        f = MplFigure(figsize=(4, 4 * fig.aspect), layout="constrained")
        axes = f.subplots(*fig.grid, squeeze=True)
        getattr(importlib.import_module(module), fn)(axes, data)
        # Each panel draws something from the data: lines, points, bars or an image, not an empty frame.
        for ax in np.atleast_1d(axes).ravel():
            drawn = len(ax.lines) + len(ax.collections) + len(ax.patches) + len(ax.images)
            assert drawn > 0, f"{name}: a panel of {fig.plot} draws nothing from the quick data"
        f.savefig(tmp_path / f"{name}.png", dpi=50)
        assert (tmp_path / f"{name}.png").stat().st_size > 1000


# --- part 4 (AIGC, issue 11): DDPM, DDIM, flow matching, classifier-free guidance ------------------------------


def test_more_ddim_steps_give_samples_closer_to_the_data(quick):
    r = _load(quick[0], "ddpm_2d")["results"]
    swd = [r[f"ddim_{k}"]["swd_mean"] for k in (5, 10, 20)]
    assert swd == sorted(swd, reverse=True), swd
    assert r["ddim_50"]["swd_mean"] < r["ddim_10"]["swd_mean"], r["ddim_50"]
    # the ODE's discretisation error alone (same noise, against a finer run) shrinks with every added step
    gaps = [r[f"ddim_{k}"]["endpoint_gap"] for k in (5, 10, 20, 50)]
    assert gaps == sorted(gaps, reverse=True), gaps
    # tens of deterministic steps come close to the 1000-step ancestral chain, in a fraction of its time
    assert r["ddim_50"]["swd_mean"] < 1.5 * r["ddpm_1000"]["swd_mean"], (r["ddim_50"], r["ddpm_1000"])
    assert r["ddim_50"]["time_s"] < r["ddpm_1000"]["time_s"]


def test_flow_matching_euler_improves_with_steps(quick):
    r = _load(quick[0], "ddpm_2d")["results"]
    swd = [r[f"flow_{k}"]["swd_mean"] for k in (1, 2, 5, 10)]
    assert swd == sorted(swd, reverse=True), swd


def test_guidance_raises_classifier_accuracy_and_lowers_recall(quick):
    sweep = {s["w"]: s for s in _load(quick[0], "cfg_digits")["sweep"]}
    assert sweep[3.0]["acc"] > sweep[0.0]["acc"] + 0.5, (sweep[0.0], sweep[3.0])  # vs unconditional samples
    assert sweep[3.0]["acc"] > sweep[1.0]["acc"], (sweep[1.0], sweep[3.0])        # vs plain conditional ones
    assert sweep[3.0]["recall"] < sweep[1.0]["recall"], (sweep[1.0], sweep[3.0])  # less of the data covered


def test_committed_aigc_data_shows_what_the_cards_say():
    """The full runs behind cards/experiments/aigc*.md: the orderings their backs state."""
    r = _load(DATA, "ddpm_2d")["results"]
    for method, steps in (("ddim", (5, 10, 20, 50)), ("flow", (1, 2, 5, 10, 20, 50)), ("ancestral", (10, 20, 50))):
        swd = [r[f"{method}_{k}"]["swd_mean"] for k in steps]
        assert swd == sorted(swd, reverse=True), (method, swd)
    for k in (5, 10, 20):  # at equal steps the straighter flow beats DDIM, and DDIM beats ancestral sampling
        assert r[f"flow_{k}"]["swd_mean"] < r[f"ddim_{k}"]["swd_mean"], k
    for k in (10, 20, 50):
        assert r[f"ddim_{k}"]["swd_mean"] < r[f"ancestral_{k}"]["swd_mean"], k
    sweep = _load(DATA, "cfg_digits")["sweep"]
    acc = [s["acc"] for s in sweep]
    recall = [s["recall"] for s in sweep[1:]]  # from w = 1 (conditional) up
    assert acc == sorted(acc) and recall == sorted(recall, reverse=True), (acc, recall)
