"""Draw registered matplotlib figures to cached PNGs, one light and one dark variant each.

A project registers figures in ``<project>/<package>/__init__.py`` as ``FIGURES = {name: Figure(...)}``. Each PNG is
cached under a content hash of everything that can change its pixels (``figure_keys``), so a build renders only what
changed, in parallel worker processes when there is much to draw, and imports matplotlib only when something must be
rendered.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
import re
import sys
import tempfile
import traceback
from contextlib import nullcontext
from dataclasses import astuple, dataclass
from functools import cache
from pathlib import Path
from typing import Any, Iterable

from .installed import version
from .theme import DARK_BACKGROUND, LIGHT_BACKGROUND, VARIANTS

# Bump when render_figure changes how it draws or saves (the themes and sizes below are hashed on their own).
FIGURE_REVISION = "2"

# Phones show cards 360-430 CSS px wide; 4.0 in at 200 dpi gives 800 px, sharp at 2x.
WIDTH_IN = 4.0
DPI = 200

# A module with this name next to a plot module is shared by all of that package's plots (colours, helpers).
STYLE_MODULE = "style"
# zlib level of the PNGs: 6 (the default) compresses a plot's flat colours 4% better than 3 for 40% more time.
PNG_COMPRESS_LEVEL = 3
PARALLEL_FIGURES = 8  # below this many images to draw, starting worker processes (matplotlib each) costs more

_FONT_SIZES = {
    # Sized so that text on an 800 px image shown ~380 px wide is readable without zooming.
    "font.size": 11.5,
    "axes.titlesize": 12.5,
    "axes.labelsize": 11.5,
    "xtick.labelsize": 11,
    "ytick.labelsize": 11,
    "legend.fontsize": 10.5,
    "legend.title_fontsize": 10.5,
    "figure.titlesize": 13,
}

_COMMON = {
    **_FONT_SIZES,
    "font.family": "DejaVu Sans",  # bundled with matplotlib: same glyphs on every machine
    "mathtext.fontset": "dejavusans",
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "lines.linewidth": 2.0,
    "lines.markersize": 6,
    "axes.linewidth": 1.0,
    "axes.grid": True,
    "grid.linewidth": 0.7,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.framealpha": 0.9,
    "legend.handlelength": 1.6,
    "image.interpolation": "nearest",  # small matrices stay crisp cells
    "path.simplify": True,
}


def _theme(background: str, ink: str, muted: str, grid: str, cycle: list[str]) -> dict[str, Any]:
    """rcParams that paint every default colour of a figure for one background."""
    return {
        **_COMMON,
        "figure.facecolor": background,
        "figure.edgecolor": background,
        "axes.facecolor": background,
        "savefig.facecolor": background,
        "savefig.edgecolor": background,
        "legend.facecolor": background,
        "legend.edgecolor": muted,
        "text.color": ink,
        "axes.labelcolor": ink,
        "axes.edgecolor": muted,
        "xtick.color": muted,
        "ytick.color": muted,
        "xtick.labelcolor": ink,
        "ytick.labelcolor": ink,
        "grid.color": grid,
        "patch.edgecolor": ink,
        "hatch.color": ink,
        "boxplot.boxprops.color": ink,
        "boxplot.whiskerprops.color": ink,
        "boxplot.capprops.color": ink,
        "boxplot.flierprops.color": ink,
        "boxplot.flierprops.markeredgecolor": ink,
        # A string keeps this module free of matplotlib imports; rcParams parses it.
        "axes.prop_cycle": f"cycler('color', {cycle!r})",
    }


# Same hue order in both themes (C0 blue, C1 orange, C2 green, C3 red, C4 purple, ...), so a card's text can name
# a colour; the dark cycle is lighter and less saturated to keep contrast on the dark background.
THEMES: dict[str, dict[str, Any]] = {
    "light": _theme(
        background=LIGHT_BACKGROUND,
        ink="#1a1a1a",
        muted="#555555",
        grid="#dedede",
        cycle=["#1f77b4", "#e8710a", "#2ca02c", "#d62728", "#8c5fbf", "#17a3b8", "#d6619e", "#7f7f7f"],
    ),
    "dark": _theme(
        background=DARK_BACKGROUND,
        ink="#ececec",
        muted="#b4b4b4",
        grid="#4a4a4e",
        cycle=["#5eb1ff", "#ffa94d", "#69db7c", "#ff7b7b", "#c3a6ff", "#4fd6e0", "#f78fc0", "#b8b8b8"],
    ),
}


@dataclass(frozen=True)
class Figure:
    """How to draw one named figure."""

    plot: str  # "package.module:function"; function(axes, data) draws on the axes it is given
    data: tuple[str, ...] = ()  # file names under <plot module dir>/data/ (.json or .npz), passed as {stem: object}
    grid: tuple[int, int] = (1, 1)  # subplot rows, cols; plot gets one Axes for (1, 1), else an ndarray of Axes
    aspect: float = 0.62  # figure height / width


def load_registry(project_root: Path, package: str = "figures") -> dict[str, Figure]:
    """Import ``<project_root>/<package>`` and return its ``FIGURES`` dict (without importing matplotlib)."""
    _put_first_on_path(project_root)
    importlib.invalidate_caches()  # the path finder caches directory listings; the package may be new
    _forget_package_from_elsewhere(project_root, package)
    module = importlib.import_module(package)
    return dict(module.FIGURES)


class KeyInputs:
    """The files figure keys are made of, each found and read once: make one per build (files change between)."""

    def __init__(self, project_root: Path):
        self.project_root = project_root
        self._modules: dict[str, Path] = {}
        self._bytes: dict[Path, bytes | None] = {}

    def plot_file(self, fig: Figure) -> Path:
        module_name = _split_plot(fig)[0]
        if module_name not in self._modules:
            self._modules[module_name] = _plot_module_file(self.project_root, fig)
        return self._modules[module_name]

    def read(self, path: Path) -> bytes | None:
        """The file's bytes, None if there is no such file."""
        if path not in self._bytes:
            self._bytes[path] = path.read_bytes() if path.is_file() else None
        return self._bytes[path]


def figure_keys(project_root: Path, name: str, fig: Figure, inputs: KeyInputs | None = None) -> dict[str, str]:
    """Per variant, the SHA-256 hex over every input that can change the PNG of ``name`` in that variant.

    ``inputs``: files already read in this build (plot modules and data are shared by many figures)."""
    inputs = inputs or KeyInputs(project_root)
    plot_file = inputs.plot_file(fig)
    style = inputs.read(plot_file.with_name(f"{STYLE_MODULE}.py"))
    files = [("plot module", inputs.read(plot_file))] + ([("style module", style)] if style is not None else [])
    files += [(f"data {data_file.name}", inputs.read(data_file)) for data_file in _data_files(plot_file, fig)]
    libraries = [(dist, version(dist).encode()) for dist in ("matplotlib", "numpy")]
    keys = {}
    for variant in VARIANTS:
        digest = hashlib.sha256()
        for label, payload in [
            ("renderer", FIGURE_REVISION.encode()),
            ("name", name.encode()),
            ("figure", repr(astuple(fig)).encode()),
            ("variant", variant.encode()),
            ("theme", json.dumps(THEMES[variant], sort_keys=True).encode()),
            ("size", f"{WIDTH_IN}@{DPI}".encode()),
            *files,
            *libraries,
        ]:
            # Length-prefixed, so that no two different input lists can hash the same byte stream.
            for part in (label.encode(), payload):
                digest.update(len(part).to_bytes(8, "big"))
                digest.update(part)
        keys[variant] = digest.hexdigest()
    return keys


def figure_key(project_root: Path, name: str, fig: Figure, variant: str) -> str:
    """The key of one variant (see figure_keys)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown figure variant {variant!r}, expected one of {VARIANTS}")
    return figure_keys(project_root, name, fig)[variant]


class FigureFailed(Exception):
    """A plot function failed in a worker process: what it raised, and where (its traceback's frames)."""

    def __init__(self, kind: str, message: str, frames: list[tuple[str, int]], notes: list[str]):
        super().__init__(message)
        self.kind, self.frames, self.notes = kind, frames, notes


def ensure_rendered(
    project_root: Path,
    registry: dict[str, Figure],
    names: Iterable[str],
    cache_dir: Path,
    progress: bool = True,
    keys: dict[tuple[str, str], str] | None = None,
) -> dict[tuple[str, str], Path]:
    """Return ``{(name, variant): png path}`` for both variants of each name, rendering only those not cached.

    ``keys``: the figure keys, where the caller has them already (``(name, variant) -> key``). Raises KeyError for a
    name that is not in ``registry``; what a plot function raises, or FigureFailed when it ran in a worker.
    """
    cache_dir = Path(cache_dir)
    keys = dict(keys or {})
    paths: dict[tuple[str, str], Path] = {}
    missing: list[tuple[str, str]] = []
    for name in dict.fromkeys(names):  # keep order, drop repeats
        fig = registry[name]
        if any((name, variant) not in keys for variant in VARIANTS):
            keys.update(((name, variant), key) for variant, key in figure_keys(project_root, name, fig).items())
        for variant in VARIANTS:
            path = cache_dir / f"{name}-{variant}-{keys[name, variant][:16]}.png"
            paths[name, variant] = path
            if not path.is_file():
                missing.append((name, variant))
    if not missing:
        return paths

    cache_dir.mkdir(parents=True, exist_ok=True)
    # One job per figure, its missing variants together: the later variants reuse the first one's layout.
    outs: dict[str, dict[str, Path]] = {}
    for name, variant in missing:
        outs.setdefault(name, {})[variant] = paths[name, variant]
    jobs = [(name, registry[name], variant_paths) for name, variant_paths in outs.items()]
    with _progressbar(len(missing), progress) as bar:
        for name, variants in _render_all(project_root, jobs):
            for variant in variants:
                _remove_stale_renders(paths[name, variant], name, variant)
                bar.update(1, (name, variant))
    return paths


def _render_all(project_root: Path, jobs: list[tuple[str, Figure, dict[str, Path]]]):
    """Render every job (a figure and its variants' paths), in worker processes when there are many images; yield
    (name, variants) as each figure is written."""
    images = sum(len(variant_paths) for _, _, variant_paths in jobs)
    workers = min(os.cpu_count() or 1, len(jobs))
    if images < PARALLEL_FIGURES or workers < 2:
        for name, fig, variant_paths in jobs:
            render_variants(project_root, name, fig, variant_paths)
            yield name, tuple(variant_paths)
        return
    from concurrent.futures import as_completed

    from .workers import worker_pool

    # The workers are the parallelism: a BLAS thread pool in each of them would only oversubscribe the cores (the
    # variables count only if numpy is not imported yet, as in a build, which imports it for figures only).
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, "1")
    _start_worker(str(project_root))  # matplotlib and the plot modules once, here: forked workers share them
    for module_name in {_split_plot(fig)[0] for _, fig, _ in jobs}:
        importlib.import_module(module_name)
    # The most expensive figures first (the ones with most axes, as a proxy), so no worker is left with a long one.
    jobs = sorted(jobs, key=lambda job: -job[1].grid[0] * job[1].grid[1])
    with worker_pool(workers, initializer=_start_worker, initargs=(str(project_root),)) as pool:
        futures = {pool.submit(_render_in_worker, str(project_root), job): job for job in jobs}
        for future in as_completed(futures):
            failure = future.result()
            if failure is not None:
                for other in futures:
                    other.cancel()
                raise FigureFailed(*failure)
            name, _, variant_paths = futures[future]
            yield name, tuple(variant_paths)


def _start_worker(project_root: str) -> None:
    """One matplotlib setup per worker process: imported once, with the Agg canvas, before the first figure."""
    import matplotlib
    from matplotlib.backends import backend_agg  # noqa: F401

    matplotlib.use("Agg")
    _put_first_on_path(Path(project_root))


def _render_in_worker(project_root: str, job) -> tuple | None:
    """render_variants in a worker; a failure comes back as plain data (user exceptions need not pickle)."""
    name, fig, variant_paths = job
    try:
        render_variants(Path(project_root), name, fig, variant_paths)
    except (Exception, SystemExit) as error:
        frames = [(frame.filename, frame.lineno or 1) for frame in traceback.extract_tb(error.__traceback__)]
        return type(error).__name__, str(error), frames, list(getattr(error, "__notes__", []))
    return None


def render_variants(project_root: Path, name: str, fig: Figure, variant_paths: dict[str, Path]) -> None:
    """Draw ``fig`` once per variant (``{variant: png path}``). The variants differ only in colour, so the first
    one's constrained layout (the costliest step of most figures) is reused by the others."""
    layout = None
    for variant, out_path in variant_paths.items():
        layout = render_figure(project_root, name, fig, variant, out_path, layout=layout)


@dataclass(frozen=True)
class Layout:
    """Where constrained layout put a figure's parts: every Axes' original and active position (figure fractions),
    in ``figure.axes`` order, and the figure-level labels' positions."""

    axes: tuple[tuple[tuple[float, float, float, float], tuple[float, float, float, float]], ...]
    labels: tuple[tuple[float, float] | None, ...]


_FIGURE_LABELS = ("_suptitle", "_supxlabel", "_supylabel")


def _layout_of(figure) -> Layout:
    return Layout(
        axes=tuple((tuple(ax.get_position(original=True).bounds), tuple(ax.get_position().bounds))
                   for ax in figure.axes),
        labels=tuple(None if (text := getattr(figure, attr, None)) is None else tuple(text.get_position())
                     for attr in _FIGURE_LABELS),
    )


def _apply_layout(figure, layout: Layout) -> bool:
    """Put the parts where ``layout`` says and switch the layout engine off; False (nothing changed) when the
    figure does not have the same parts, e.g. a plot that draws differently per variant."""
    labels = [getattr(figure, attr, None) for attr in _FIGURE_LABELS]
    if (len(figure.axes) != len(layout.axes) or figure.subfigs
            or [text is None for text in labels] != [position is None for position in layout.labels]):
        return False
    for ax, (original, active) in zip(figure.axes, layout.axes):
        ax._set_position(original, which="original")
        ax._set_position(active, which="active")
    for text, position in zip(labels, layout.labels):
        if text is not None:
            text.set_position(position)
    # None, not "none": "none" leaves a placeholder engine, for which every draw first runs a whole draw with
    # rendering disabled (to let the engine lay the figure out), here for nothing.
    figure.set_layout_engine(None)
    return True


def render_figure(project_root: Path, name: str, fig: Figure, variant: str, out_path: Path,
                  layout: Layout | None = None) -> Layout:
    """Draw ``fig`` in ``variant`` and write it to ``out_path`` as an opaque PNG, atomically; return its layout.

    ``layout``: another variant's layout of the same figure, reused instead of computing it again (the PNG is the
    same as without it: tests/test_figures.py compares them)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown figure variant {variant!r}, expected one of {VARIANTS}")
    import matplotlib
    from matplotlib.figure import Figure as MplFigure

    plot_file = _plot_module_file(project_root, fig)
    data = {path.stem: _load_data(path) for path in _data_files(plot_file, fig)}
    module_name, function_name = _split_plot(fig)
    plot = getattr(importlib.import_module(module_name), function_name)

    out_path = Path(out_path)
    with matplotlib.rc_context():
        matplotlib.rcdefaults()  # ignore any user matplotlibrc: every machine must render the same bytes
        matplotlib.rcParams.update(THEMES[variant])
        figure = MplFigure(figsize=(WIDTH_IN, WIDTH_IN * fig.aspect), dpi=DPI, layout="constrained")
        _shared_renderer_canvas()(figure)  # render with Agg directly: no pyplot state, no GUI backend
        axes = figure.subplots(*fig.grid, squeeze=True)
        try:
            plot(axes, data)
        except Exception as error:
            error.add_note(f"while drawing figure {name!r} ({variant}) with {fig.plot}")
            raise
        reused = layout is not None and _apply_layout(figure, layout)
        # One draw (the layout engine, if any, runs inside it). savefig would first draw the figure once more with
        # rendering disabled, only to run the layout engine.
        figure.canvas.draw()
        image = _opaque_image(figure.canvas)
        fd, tmp_name = tempfile.mkstemp(dir=out_path.parent, prefix=f".{out_path.stem}-", suffix=".tmp")
        try:
            os.fchmod(fd, 0o644)  # mkstemp's 0600 would make the cached PNG private to this user
            with os.fdopen(fd, "wb") as tmp_file:
                # No text chunks (no version stamp), so that the same inputs give the same bytes.
                image.save(tmp_file, format="png", compress_level=PNG_COMPRESS_LEVEL)
            os.replace(tmp_name, out_path)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        return layout if reused else _layout_of(figure)


# rcParams that can change how text is measured or its glyphs shaped (not its colour, which the variants differ in,
# and which is applied when drawing): a renderer is shared only by figures that agree on all of them.
_TEXT_RC_PREFIXES = ("text.", "mathtext.", "font.")


@cache
def _shared_renderer_canvas():
    """An Agg canvas class whose renderer is shared, in this process, by every figure of the same pixel size, dpi and
    text settings. matplotlib caches text metrics and parsed mathtext per renderer, so a tick label or formula is
    measured and parsed once for all figures and both variants, not once per figure and variant. The renderer's
    buffer is cleared at the start of every draw, so the pixels are those of a renderer of its own (the figure
    tests compare them with savefig's)."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg

    renderers: dict[tuple, RendererAgg] = {}

    class SharedRendererCanvas(FigureCanvasAgg):
        def get_renderer(self):
            width, height = self.get_width_height(physical=True)
            text_settings = tuple((key, repr(value)) for key, value in matplotlib.rcParams.items()
                                  if key.startswith(_TEXT_RC_PREFIXES) and "color" not in key)
            key = (width, height, self.figure.dpi, text_settings)
            if key not in renderers:
                renderers[key] = RendererAgg(width, height, self.figure.dpi)
            self.renderer = renderers[key]  # draw() and buffer_rgba() read it from here
            return self.renderer

    return SharedRendererCanvas


def _opaque_image(canvas):
    """The canvas as a PIL image: RGB where every pixel is opaque (the theme's background is: a quarter less to
    compress, and smaller files), RGBA where a plot made part of the figure transparent."""
    from PIL import Image

    width, height = canvas.get_width_height(physical=True)
    image = Image.frombuffer("RGBA", (width, height), canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
    return image.convert("RGB") if image.getchannel("A").getextrema() == (255, 255) else image


def _put_first_on_path(project_root: Path) -> None:
    root = str(Path(project_root).resolve())
    if sys.path[:1] != [root]:
        if root in sys.path:
            sys.path.remove(root)
        sys.path.insert(0, root)


def _forget_package_from_elsewhere(project_root: Path, package: str) -> None:
    # A package of the same name imported from another project (e.g. an earlier test project) would shadow this one.
    loaded = sys.modules.get(package)
    if loaded is None:
        return
    loaded_file = getattr(loaded, "__file__", None)
    if not (loaded_file and Path(loaded_file).resolve().is_relative_to(Path(project_root).resolve())):
        for module_name in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
            del sys.modules[module_name]


def _split_plot(fig: Figure) -> tuple[str, str]:
    module_name, sep, function_name = fig.plot.partition(":")
    if not sep or not module_name or not function_name:
        raise ValueError(f"Figure.plot must look like 'package.module:function', got {fig.plot!r}")
    return module_name, function_name


def _plot_module_file(project_root: Path, fig: Figure) -> Path:
    """The source file of the plot function's module, found without executing that module."""
    module_name, _ = _split_plot(fig)
    _put_first_on_path(project_root)
    _forget_package_from_elsewhere(project_root, module_name.partition(".")[0])
    spec = importlib.util.find_spec(module_name)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(f"plot module {module_name!r} not found under {project_root}")
    return Path(spec.origin)


def _data_files(plot_file: Path, fig: Figure) -> list[Path]:
    paths = [plot_file.parent / "data" / file_name for file_name in fig.data]
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"figure data file {path} not found")
    return paths


def _load_data(path: Path) -> Any:
    if path.suffix == ".json":
        return json.loads(path.read_text(encoding="utf-8"))
    if path.suffix == ".npz":
        import numpy as np

        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    raise ValueError(f"figure data file {path} must be .json or .npz")


class _Quiet:
    def update(self, steps: int, item=None) -> None:
        pass


def _progressbar(length: int, progress: bool):
    if not progress:
        return nullcontext(_Quiet())
    import click

    return click.progressbar(
        length=length,
        label="Rendering figures",
        item_show_func=lambda item: f"{item[0]} ({item[1]})" if item else "",
        file=sys.stderr,
    )


def _remove_stale_renders(current: Path, name: str, variant: str) -> None:
    """Delete older renders of the same figure and variant, so the cache does not grow with every edit."""
    pattern = re.compile(rf"{re.escape(name)}-{variant}-[0-9a-f]{{16}}\.png")
    for path in current.parent.iterdir():
        if path != current and pattern.fullmatch(path.name):
            path.unlink(missing_ok=True)
