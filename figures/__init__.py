"""Figure registry: the NAME in a card's ``![alt](fig:NAME)`` -> how to draw it (see NAMES.md).

Importing this module must stay cheap: it only builds Figure records. numpy and matplotlib are imported by the plot
modules, and those are imported only when a figure has to be rendered.
"""

from pathlib import Path

from ankideck import Figure


def _diagram(
    name: str, grid: tuple[int, int] = (1, 1), aspect: float = 0.62, module: str = "diagrams"
) -> tuple[str, Figure]:
    """A computed diagram; its plot function in ``module`` (diagrams.py) is the name with '-' -> '_'."""
    return name, Figure(f"{__name__}.{module}:{name.replace('-', '_')}", grid=grid, aspect=aspect)


FIGURES: dict[str, Figure] = dict(
    [
        _diagram("activations", grid=(2, 1), aspect=1.25),
        _diagram("ce-vs-mse", grid=(2, 1), aspect=1.15),
        _diagram("softmax-temperature", aspect=0.7),
        _diagram("l1-l2-geometry", grid=(2, 2), aspect=1.05),
        _diagram("lr-schedules", grid=(3, 1), aspect=1.6),
        _diagram("init-spread", grid=(2, 1), aspect=1.25),
        _diagram("norm-axes", grid=(2, 2), aspect=1.05),
        _diagram("focal-loss", aspect=0.75),
        _diagram("attention-masks", grid=(3, 2), aspect=1.45),
        _diagram("mha-gqa-mqa", grid=(2, 1), aspect=1.3),
        _diagram("crf-trellis", aspect=0.8),
        _diagram("rope", grid=(3, 1), aspect=1.6),
        _diagram("gpt-pipeline", aspect=1.2),
        _diagram("moe-routing", grid=(2, 1), aspect=1.2),
        _diagram("large-vocab-softmax", grid=(2, 1), aspect=1.25),
        # part 4 (AIGC), in diagrams_aigc.py
        _diagram("noise-schedules", grid=(2, 1), aspect=1.3, module="diagrams_aigc"),
        _diagram("forward-process", aspect=0.95, module="diagrams_aigc"),
        _diagram("score-field", aspect=1.0, module="diagrams_aigc"),
        _diagram("latent-diffusion", aspect=1.25, module="diagrams_aigc"),
        _diagram("dit-adaln-zero", aspect=1.5, module="diagrams_aigc"),
        _diagram("cfg-geometry", aspect=1.0, module="diagrams_aigc"),
        _diagram("controlnet", aspect=1.05, module="diagrams_aigc"),
        # guide questions of parts 1-3 (issue 10), in diagrams_guide.py
        _diagram("bn-train-eval", grid=(2, 1), aspect=1.15, module="diagrams_guide"),
        _diagram("label-targets", grid=(3, 1), aspect=1.3, module="diagrams_guide"),
        _diagram("ce-gradient", grid=(2, 1), aspect=1.05, module="diagrams_guide"),
        _diagram("neg-log", aspect=0.8, module="diagrams_guide"),
        _diagram("sigmoid-softmax-boundaries", grid=(3, 1), aspect=2.0, module="diagrams_guide"),
        _diagram("lr-loss-surface", aspect=1.0, module="diagrams_guide"),
        _diagram("receptive-fields", aspect=0.72, module="diagrams_guide"),
        _diagram("word2vec-windows", grid=(2, 1), aspect=0.95, module="diagrams_guide"),
        _diagram("qkv-projections", grid=(2, 2), aspect=1.0, module="diagrams_guide"),
        _diagram("icl-vs-finetune", aspect=1.0, module="diagrams_guide"),
        _diagram("prompt-vs-prefix", grid=(2, 1), aspect=1.25, module="diagrams_guide"),
        _diagram("project-story", aspect=1.25, module="diagrams_guide"),
        _diagram("followup-ladder", aspect=1.0, module="diagrams_guide"),
    ]
)

# Measured figures (run-*) live in measured.py, written from committed data. Import it only when it exists, and
# without catching ImportError, so that a broken measured.py fails loudly instead of silently dropping figures.
if (Path(__file__).with_name("measured.py")).is_file():
    from .measured import MEASURED

    if clash := FIGURES.keys() & MEASURED.keys():
        raise ValueError(f"figure names registered twice (diagrams and measured): {sorted(clash)}")
    FIGURES.update(MEASURED)
