"""Figure pipeline: the real registry renders legible phone PNGs; the cache renders only what changed."""

import dataclasses
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from ankideck import drawing as engine

ROOT = Path(__file__).resolve().parents[1]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_size(path):
    header = path.read_bytes()[:24]
    assert header[:8] == PNG_SIGNATURE, f"{path.name} is not a PNG"
    return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")


def _corner_luminance(path):
    rgb = imread(path)[..., :3]
    corners = np.concatenate([rgb[:6, :6], rgb[:6, -6:], rgb[-6:, :6], rgb[-6:, -6:]]).reshape(-1, 3)
    return float((corners @ [0.2126, 0.7152, 0.0722]).mean())


# --- the real registry --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def registry():
    return engine.load_registry(ROOT)


@pytest.fixture(scope="module")
def rendered(registry, tmp_path_factory):
    cache = tmp_path_factory.mktemp("figure-cache")
    return cache, engine.ensure_rendered(ROOT, registry, registry, cache, progress=False)


def test_every_diagram_in_names_md_is_registered(registry):
    names_md = (ROOT / "figures" / "NAMES.md").read_text(encoding="utf-8")
    diagram_table = names_md.split("Diagrams", 1)[1].split("Measured", 1)[0]
    documented = re.findall(r"^\| ([a-z0-9-]+) \|", diagram_table, flags=re.MULTILINE)
    documented = [name for name in documented if name != "name"]  # the header rows
    diagrams = {name for name in registry if not name.startswith("run-")}
    assert len(documented) == len(set(documented)), sorted({n for n in documented if documented.count(n) > 1})
    assert set(documented) == diagrams, (sorted(set(documented) - diagrams), sorted(diagrams - set(documented)))


def test_every_figure_renders_in_both_variants(registry, rendered):
    _, paths = rendered
    assert set(paths) == {(name, variant) for name in registry for variant in engine.VARIANTS}
    for path in paths.values():
        assert path.is_file() and path.suffix == ".png"


def test_figures_are_opaque_and_phone_sized(rendered):
    _, paths = rendered
    for (name, variant), path in paths.items():
        width, height = _png_size(path)
        assert 600 <= width <= 900, f"{name} ({variant}) is {width} px wide"
        assert height <= 2.2 * width, f"{name} ({variant}) is too tall to read on a phone"
        image = imread(path)
        if image.shape[-1] == 4:
            assert image[..., 3].min() == 1.0, f"{name} ({variant}) has transparent pixels"


def test_dark_variant_is_dark_and_light_variant_is_light(registry, rendered):
    _, paths = rendered
    for name in registry:
        light, dark = paths[name, "light"], paths[name, "dark"]
        assert light.read_bytes() != dark.read_bytes()
        assert _corner_luminance(light) > 0.9, name
        assert _corner_luminance(dark) < 0.25, name


def test_same_inputs_give_the_same_bytes(registry, rendered, tmp_path):
    _, first = rendered
    second = engine.ensure_rendered(ROOT, registry, registry, tmp_path, progress=False)
    for key, path in first.items():
        assert second[key].name == path.name
        assert second[key].read_bytes() == path.read_bytes(), f"{key} renders differently each time"


# Figures with every part the layout reuse must carry over: a footer (supxlabel) and a figure legend outside the
# axes (run-warmup), fixed-aspect heatmaps (run-bert-heads), a supxlabel of a diagram (norm-axes), one plain axes.
LAYOUT_SAMPLES = ("run-warmup", "run-bert-heads", "norm-axes", "activations")


@pytest.mark.parametrize("name", LAYOUT_SAMPLES)
def test_dark_variant_drawn_with_the_light_layout_equals_one_drawn_alone(registry, rendered, tmp_path, name):
    """A build draws the dark variant with the light variant's constrained layout; the bytes must be the same as
    when the dark variant computes its own layout."""
    _, paths = rendered
    alone = tmp_path / "alone.png"
    layout = engine.render_figure(ROOT, name, registry[name], "dark", alone)
    assert layout.axes, "the layout records the axes' positions"
    assert alone.read_bytes() == paths[name, "dark"].read_bytes()


def _drawn_by_savefig(fig, variant, path, project=ROOT):
    """The figure as matplotlib's own savefig writes it (the reference for render_figure's one-draw PNG)."""
    import importlib

    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure as MplFigure

    module, function = fig.plot.split(":")
    plot = getattr(importlib.import_module(module), function)
    data = {p.stem: engine._load_data(p) for p in engine._data_files(engine._plot_module_file(project, fig), fig)}
    with matplotlib.rc_context():
        matplotlib.rcdefaults()
        matplotlib.rcParams.update(engine.THEMES[variant])
        figure = MplFigure(figsize=(engine.WIDTH_IN, engine.WIDTH_IN * fig.aspect), dpi=engine.DPI,
                           layout="constrained")
        FigureCanvasAgg(figure)
        plot(figure.subplots(*fig.grid, squeeze=True), data)
        figure.savefig(path, format="png", dpi=engine.DPI)


@pytest.mark.parametrize("name", LAYOUT_SAMPLES)
def test_a_figure_png_has_the_pixels_savefig_draws_in_rgb(registry, rendered, tmp_path, name):
    """render_figure draws once and writes RGB (the figures are opaque); savefig draws twice and writes RGBA.
    Both variants (the dark one drawn with the light one's layout) must have savefig's pixels."""
    _, paths = rendered
    for variant in engine.VARIANTS:
        reference = tmp_path / f"{variant}.png"
        _drawn_by_savefig(registry[name], variant, reference)
        ours, theirs = imread(paths[name, variant]), imread(reference)
        assert paths[name, variant].read_bytes()[25] == 2, "an opaque figure is written as an RGB PNG"
        assert ours.shape[2] == 3 and theirs.shape[2] == 4 and (theirs[..., 3] == 1).all()
        assert np.array_equal(ours, theirs[..., :3]), f"{name} ({variant}) differs from savefig's pixels"


def _figures_project(root, package_name: str, names: tuple[str, ...], plot_source: str):
    """A project whose package ``package_name`` registers the figures ``names``, each drawn by ``plots.<name>``."""
    package = root / "project" / package_name
    package.mkdir(parents=True)
    entries = ", ".join(f'"{name}": Figure("{package_name}.plots:{name}")' for name in names)
    (package / "__init__.py").write_text(f"from ankideck import Figure\nFIGURES = {{{entries}}}\n")
    (package / "plots.py").write_text(textwrap.dedent(plot_source))
    return package.parent, engine.load_registry(package.parent, package_name)


def test_a_figure_made_transparent_keeps_its_alpha(tmp_path):
    project, registry = _figures_project(tmp_path, "seefigs", ("glass",), """
        def glass(ax, data):
            ax.plot([0, 1], [0, 1])
            ax.figure.patch.set_alpha(0.0)
            ax.patch.set_alpha(0.0)
        """)
    engine.render_figure(project, "glass", registry["glass"], "light", tmp_path / "glass.png")
    image = imread(tmp_path / "glass.png")
    assert image.shape[2] == 4 and image[..., 3].min() == 0, "transparent pixels stay transparent"


def test_figures_sharing_a_renderer_are_drawn_as_if_alone(tmp_path):
    """Figures of one size share a renderer in a process (its caches of text metrics and parsed formulas); one that
    sets a text rcParam of its own must still get its own glyphs, not the ones cached for the figure before it."""
    project, registry = _figures_project(tmp_path, "rcfigs", ("italic", "upright"), """
        import matplotlib


        def italic(ax, data):
            ax.set_title("$x + y$")


        def upright(ax, data):
            matplotlib.rcParams["mathtext.default"] = "rm"
            ax.set_title("$x + y$")
        """)
    for name in ("italic", "upright"):  # in this order, in this process: the second finds the first's renderer
        engine.render_figure(project, name, registry[name], "light", tmp_path / f"{name}.png")
    reference = tmp_path / "reference.png"
    _drawn_by_savefig(registry["upright"], "light", reference, project)
    assert np.array_equal(imread(tmp_path / "upright.png"), imread(reference)[..., :3])
    assert not np.array_equal(imread(tmp_path / "upright.png"), imread(tmp_path / "italic.png"))


def test_registry_and_cached_lookups_do_not_import_matplotlib(rendered):
    cache, _ = rendered
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from ankideck.drawing import ensure_rendered, load_registry
        registry = load_registry(Path({str(ROOT)!r}))
        ensure_rendered(Path({str(ROOT)!r}), registry, registry, Path({str(cache)!r}), progress=False)
        heavy = sorted(m for m in ("matplotlib", "numpy") if m in sys.modules)
        assert not heavy, heavy
        """
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# --- the cache, on a tiny project of its own ----------------------------------------------------------------------

TINY_REGISTRY = """
from ankideck import Figure

FIGURES = {
    "line": Figure("tinyfigs.plots:line", data=("points.json", "grid.npz")),
    "pair": Figure("tinyfigs.plots:pair", grid=(1, 2), aspect=0.5),
}
"""

TINY_PLOTS = """
def line(ax, data):
    assert data["grid"]["values"].shape == (2, 3)
    ax.plot(data["points"]["y"], label="y")


def pair(axes, data):
    assert data == {} and axes.shape == (2,)
    for ax in axes:
        ax.plot([0, 1], [1, 0])
"""


@pytest.fixture
def tiny_project(tmp_path):
    package = tmp_path / "project" / "tinyfigs"
    (package / "data").mkdir(parents=True)
    (package / "__init__.py").write_text(TINY_REGISTRY)
    (package / "plots.py").write_text(TINY_PLOTS)
    (package / "data" / "points.json").write_text(json.dumps({"y": [0, 2, 1]}))
    np.savez(package / "data" / "grid.npz", values=np.arange(6).reshape(2, 3))
    return package.parent


@pytest.fixture
def render_calls(monkeypatch):
    """Record (name, variant) of every figure actually rendered."""
    calls = []
    real_render = engine.render_figure

    def counting_render(project_root, name, fig, variant, out_path, layout=None):
        calls.append((name, variant))
        return real_render(project_root, name, fig, variant, out_path, layout=layout)

    monkeypatch.setattr(engine, "render_figure", counting_render)
    return calls


def test_second_build_renders_nothing(tiny_project, tmp_path, render_calls):
    registry = engine.load_registry(tiny_project, "tinyfigs")
    cache = tmp_path / "cache"
    first = engine.ensure_rendered(tiny_project, registry, ["line", "pair"], cache, progress=False)
    assert sorted(render_calls) == sorted((n, v) for n in ("line", "pair") for v in engine.VARIANTS)
    render_calls.clear()
    second = engine.ensure_rendered(tiny_project, registry, ["line", "pair"], cache, progress=False)
    assert render_calls == []
    assert second == first
    assert all(re.fullmatch(rf"{n}-{v}-[0-9a-f]{{16}}\.png", p.name) for (n, v), p in first.items())


def test_changed_data_file_rerenders_that_figure_and_drops_its_old_png(tiny_project, tmp_path, render_calls):
    registry = engine.load_registry(tiny_project, "tinyfigs")
    cache = tmp_path / "cache"
    before = engine.ensure_rendered(tiny_project, registry, ["line", "pair"], cache, progress=False)
    render_calls.clear()
    (tiny_project / "tinyfigs" / "data" / "points.json").write_text(json.dumps({"y": [3, 1, 2]}))
    after = engine.ensure_rendered(tiny_project, registry, ["line", "pair"], cache, progress=False)
    assert sorted(render_calls) == [("line", "dark"), ("line", "light")]
    assert after["line", "light"] != before["line", "light"]
    assert not before["line", "light"].exists()
    assert after["pair", "dark"] == before["pair", "dark"]


def test_changed_figure_fields_rerender(tiny_project, tmp_path, render_calls):
    registry = engine.load_registry(tiny_project, "tinyfigs")
    cache = tmp_path / "cache"
    engine.ensure_rendered(tiny_project, registry, ["pair"], cache, progress=False)
    render_calls.clear()
    taller = {"pair": dataclasses.replace(registry["pair"], aspect=0.8)}
    paths = engine.ensure_rendered(tiny_project, taller, ["pair"], cache, progress=False)
    assert sorted(render_calls) == [("pair", "dark"), ("pair", "light")]
    width, height = _png_size(paths["pair", "light"])
    assert height == round(0.8 * width)


def test_changed_plot_module_changes_the_key(tiny_project):
    registry = engine.load_registry(tiny_project, "tinyfigs")
    before = engine.figure_key(tiny_project, "pair", registry["pair"], "light")
    plots = tiny_project / "tinyfigs" / "plots.py"
    plots.write_text(plots.read_text().replace("[1, 0]", "[1, 0.5]"))
    assert engine.figure_key(tiny_project, "pair", registry["pair"], "light") != before
    assert engine.figure_key(tiny_project, "pair", registry["pair"], "dark") != before


def test_a_plot_that_differs_per_variant_gets_its_own_layout(tmp_path):
    """The layout is reused only when the variants have the same parts: here the dark one has two axes."""
    project, registry = _figures_project(tmp_path, "varfigs", ("odd",), """
        import matplotlib as mpl
        from ankideck.theme import LIGHT_BACKGROUND as LIGHT

        def odd(ax, data):
            ax.plot([0, 1], [0, 1])
            if mpl.rcParams["figure.facecolor"] != LIGHT:  # the dark variant: an inset as well
                ax.figure.add_axes([0.6, 0.6, 0.3, 0.3]).plot([1, 0])
        """)
    light = engine.render_figure(project, "odd", registry["odd"], "light", tmp_path / "light.png")
    reused = engine.render_figure(project, "odd", registry["odd"], "dark", tmp_path / "dark.png", layout=light)
    alone = engine.render_figure(project, "odd", registry["odd"], "dark", tmp_path / "alone.png")
    assert len(light.axes) == 1 and len(reused.axes) == len(alone.axes) == 2
    assert (tmp_path / "dark.png").read_bytes() == (tmp_path / "alone.png").read_bytes()


def test_unknown_figure_name_raises_key_error(tiny_project, tmp_path):
    registry = engine.load_registry(tiny_project, "tinyfigs")
    with pytest.raises(KeyError):
        engine.ensure_rendered(tiny_project, registry, ["line", "no-such-figure"], tmp_path, progress=False)


def test_every_figure_the_cards_reference_lands_in_the_package(rendered, tmp_path):
    """Build the real deck's package (into tmp, from the rendered cache) and look for both variants of each figure."""
    import zipfile

    from ankideck import Problems, gather, load_config
    from ankideck.media import collect_media
    from ankideck.package import write_package

    cache, _ = rendered
    (tmp_path / "figures").symlink_to(cache, target_is_directory=True)
    config = dataclasses.replace(load_config(ROOT), cache_dir=tmp_path, out=tmp_path / "deck.apkg")
    plan = gather(config)  # nothing here writes into the repo: no lock file, no render cache
    assert len(plan.figures) >= 15
    problems = Problems()
    package, _ = write_package(plan, collect_media(plan, False, problems))
    assert not problems
    with zipfile.ZipFile(package) as apkg:
        names = set(json.loads(apkg.read("media")).values())
    for name in plan.figures:
        for variant in engine.VARIANTS:
            assert any(n.startswith(f"fig-{name}-{variant}-") for n in names), (name, variant)
    referenced = {m for note in plan.notes for field in note.fields.values()
                  for m in re.findall(r'src="([^"]+)"', field)}
    assert referenced == names  # every image a card shows is in the package, and nothing else
