"""The deck's media: what the cards' image references resolve to, under names that change with the content.

``MediaResolver`` turns the references in rendered HTML into media names and records what the package must hold;
``collect_media`` then maps each media name to a file, rendering the figures the cards use where the figure cache
lacks them.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from .config import Config
from .errors import Problem, Problems
from .parse import NoteSource

# Media a card may embed, recognised by their first bytes (never by the name): an SVG can carry script.
IMAGE_SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"GIF87a", "GIF"), (b"GIF89a", "GIF"))


class MediaResolver:
    """References in rendered HTML (``file:<path>``, ``fig:<name>:<variant>``) -> content-hash media names.

    Records a problem for an unknown figure, a missing image or one outside the project, and collects what the
    package must contain: ``files`` (image path -> media name) and ``figures`` (figure names to render), with each
    figure's keys (``figure_keys``: (name, variant) -> key), computed once per build.
    """

    def __init__(self, config: Config, registry: dict, problems: Problems):
        self.config, self.registry, self.problems = config, registry, problems
        self.files: dict[Path, str] = {}
        self.figures: set[str] = set()
        self.figure_keys: dict[tuple[str, str], str] = {}
        self._unpreparable: dict[str, str] = {}   # figure name -> why its keys cannot be computed
        self._key_inputs = None

    def placeholder(self, card: NoteSource, refs: list[str], match) -> str:
        index = int(match.group(1))
        if index >= len(refs):  # the text itself says "ankideck-media:N"
            self.problems.append(Problem(card.path, card.line_of(match.group(0)),
                                         f"'{match.group(0)}' is reserved for the deck's images; reword it"))
            return ""
        return self.resolve(card, refs[index])

    def resolve(self, card: NoteSource, ref: str) -> str:
        kind, _, target = ref.partition(":")
        if kind == "fig":
            name, _, variant = target.rpartition(":")
            return self._figure(card, name, variant)
        return self._file(card, target)

    def _figure(self, card: NoteSource, name: str, variant: str) -> str:
        if name not in self.registry:
            known = ", ".join(sorted(self.registry)) or "none registered"
            self.problems.append(Problem(card.path, card.line_of(f"fig:{name}"),
                                        f"unknown figure '{name}' (known: {known})"))
            return ""
        if name not in self.figures and name not in self._unpreparable:
            from .drawing import KeyInputs, figure_keys

            root = self.config.figures_dir.parent
            self._key_inputs = self._key_inputs or KeyInputs(root)
            try:
                keys = figure_keys(root, name, self.registry[name], self._key_inputs)
            except (Exception, SystemExit) as e:  # the registry entry is user code: report, don't crash
                self._unpreparable[name] = f"{type(e).__name__}: {e}"
            else:
                self.figure_keys.update(((name, v), key) for v, key in keys.items())
                self.figures.add(name)
        if name in self._unpreparable:
            self.problems.append(Problem(card.path, card.line_of(f"fig:{name}"),
                                        f"figure '{name}' cannot be prepared: {self._unpreparable[name]}"))
            return ""
        if (name, variant) not in self.figure_keys:
            self.problems.append(Problem(card.path, card.line_of(f"fig:{name}"), f"unknown figure variant {variant!r}"))
            return ""
        return figure_media_name(name, variant, self.figure_keys[name, variant])

    def _file(self, card: NoteSource, target: str) -> str:
        root = self.config.root
        resolved = ((root / card.path).parent / target).resolve()
        line = card.line_of(target)
        if not resolved.is_relative_to(root):
            self.problems.append(Problem(card.path, line, f"image '{target}' is outside the project"))
            return ""
        allowed = (self.config.cards_dir.resolve(), (self.config.cache_dir / "figures").resolve())
        if not any(resolved.is_relative_to(folder) for folder in allowed):
            self.problems.append(Problem(card.path, line, (
                f"image '{target}' is outside the cards folder; only images inside "
                f"{self.config.rel(self.config.cards_dir)}/ can be packed into the deck")))
            return ""
        if not resolved.is_file():
            self.problems.append(Problem(card.path, line, f"image '{target}' not found"))
            return ""
        if resolved not in self.files:
            try:
                with open(resolved, "rb") as f:
                    head = f.read(16)
            except OSError as e:
                self.problems.append(Problem(card.path, line, f"image '{target}' cannot be read: {e.strerror}"))
                return ""
            if not image_type(head):
                self.problems.append(Problem(card.path, line, (
                    f"image '{target}' is not a PNG, JPEG, GIF or WebP image (judged by its content); only "
                    "images can be packed into the deck")))
                return ""
            self.files[resolved] = content_name(resolved.stem, resolved)
        return self.files[resolved]


def image_type(head: bytes) -> str | None:
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    return next((kind for signature, kind in IMAGE_SIGNATURES if head.startswith(signature)), None)


def figure_media_name(name: str, variant: str, key: str) -> str:
    """Named by the hash of everything the image is made from (rendering is deterministic), known before rendering."""
    return f"fig-{name}-{variant}-{key[:12]}.png"


def content_name(stem: str, path: Path) -> str:
    """A media name that changes with the content, so Anki never keeps a stale file under the same name."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in stem)
    return f"{safe}-{digest}{path.suffix.lower()}"


# --- figures -------------------------------------------------------------------------------------------------------

def load_figure_registry(config: Config, problems: Problems) -> dict:
    """The project's figure registry (empty without one, or when loading it failed: a problem)."""
    if not (config.figures_dir / "__init__.py").is_file():
        return {}
    from .drawing import load_registry

    try:
        return load_registry(config.figures_dir.parent, config.figures_dir.name)
    except (Exception, SystemExit) as e:  # the registry is user code: any error in it is a problem, not a crash
        if isinstance(e, SyntaxError):
            problems.add(config.rel(config.figures_dir / "__init__.py"), e.lineno or 1,
                         f"cannot load the figure registry: {type(e).__name__}: {e}")
        else:
            problems.append(user_code_problem(config, e, "cannot load the figure registry"))
        return {}


def media_names(plan) -> list[str]:
    """The names of every media file the package holds: the cards' images and both variants of each figure."""
    return [*plan.files, *(figure_media_name(name, variant, key) for (name, variant), key in plan.figure_keys.items())]


def collect_media(plan, progress: bool, problems: Problems) -> dict[str, Path]:
    """Media name (content hash) -> file, rendering the figures the cards use where the cache lacks them.

    A plot function that fails is a problem at its line (the figures it would have drawn are then missing)."""
    media: dict[str, Path] = dict(plan.files)
    if plan.figures:
        from .drawing import ensure_rendered

        config = plan.config
        try:
            pngs = ensure_rendered(config.figures_dir.parent, plan.registry, sorted(plan.figures),
                                   config.cache_dir / "figures", progress=progress, keys=plan.figure_keys)
        except OSError:
            raise
        except (Exception, SystemExit) as e:  # plot functions are user code: report where they failed
            problems.append(user_code_problem(config, e, "drawing a figure failed"))
            return media
        for (name, variant), path in pngs.items():
            media[figure_media_name(name, variant, plan.figure_keys[name, variant])] = path
    return media


def user_code_problem(config: Config, error: BaseException, what: str) -> Problem:
    """The innermost line of the project's own code in ``error``'s traceback, as a Problem (for a figure that
    failed in a worker process: in the traceback it had there)."""
    import traceback

    from .drawing import FigureFailed

    if isinstance(error, FigureFailed):
        kind, frames, notes = error.kind, error.frames, error.notes
    else:
        kind, notes = type(error).__name__, getattr(error, "__notes__", [])
        frames = [(frame.filename, frame.lineno or 1) for frame in traceback.extract_tb(error.__traceback__)]
    root = config.root.resolve()
    where, line = config.rel(config.figures_dir / "__init__.py"), 1
    for filename, lineno in frames:
        path = Path(filename).resolve()
        if path.is_relative_to(root) and not path.is_relative_to(Path(__file__).resolve().parent):
            where, line = config.rel(path), lineno
    text = "; ".join(notes)
    return Problem(where, line, f"{what}: {kind}: {error}" + (f" ({text})" if text else ""))
