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
    package must contain: ``files`` (image path -> media name) and ``figures`` (figure names to render).
    """

    def __init__(self, config: Config, registry: dict, problems: Problems):
        self.config, self.registry, self.problems = config, registry, problems
        self.files: dict[Path, str] = {}
        self.figures: set[str] = set()
        self._figure_names: dict[tuple[str, str], str] = {}

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
        if (name, variant) not in self._figure_names:
            try:
                self._figure_names[name, variant] = figure_media_name(self.config, self.registry, name, variant)
            except (Exception, SystemExit) as e:  # the registry entry is user code: report, don't crash
                self.problems.append(Problem(card.path, card.line_of(f"fig:{name}"),
                                            f"figure '{name}' cannot be prepared: {type(e).__name__}: {e}"))
                return ""
        self.figures.add(name)
        return self._figure_names[name, variant]

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


def figure_media_name(config: Config, registry: dict, name: str, variant: str) -> str:
    """Named by the hash of everything the image is made from (rendering is deterministic), known before rendering."""
    from .drawing import figure_key

    return f"fig-{name}-{variant}-{figure_key(config.figures_dir.parent, name, registry[name], variant)[:12]}.png"


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


def collect_media(plan, progress: bool, problems: Problems) -> dict[str, Path]:
    """Media name (content hash) -> file, rendering the figures the cards use where the cache lacks them.

    A plot function that fails is a problem at its line (the figures it would have drawn are then missing)."""
    media: dict[str, Path] = dict(plan.files)
    if plan.figures:
        from .drawing import ensure_rendered, load_registry

        config = plan.config
        try:
            registry = load_registry(config.figures_dir.parent, config.figures_dir.name)
            pngs = ensure_rendered(config.figures_dir.parent, registry, sorted(plan.figures),
                                   config.cache_dir / "figures", progress=progress)
        except OSError:
            raise
        except (Exception, SystemExit) as e:  # plot functions are user code: report where they failed
            problems.append(user_code_problem(config, e, "drawing a figure failed"))
            return media
        for (name, variant), path in pngs.items():
            media[figure_media_name(config, registry, name, variant)] = path
    return media


def user_code_problem(config: Config, error: BaseException, what: str) -> Problem:
    """The innermost line of the project's own code in ``error``'s traceback, as a Problem."""
    import traceback

    root = config.root.resolve()
    where, line = config.rel(config.figures_dir / "__init__.py"), 1
    for frame in traceback.extract_tb(error.__traceback__):
        path = Path(frame.filename).resolve()
        if path.is_relative_to(root) and not path.is_relative_to(Path(__file__).resolve().parent):
            where, line = config.rel(path), frame.lineno or 1
    notes = "; ".join(getattr(error, "__notes__", []))
    return Problem(where, line, f"{what}: {type(error).__name__}: {error}" + (f" ({notes})" if notes else ""))
