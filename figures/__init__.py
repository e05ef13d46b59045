"""Figure registry: the NAME in a card's ``![alt](fig:NAME)`` -> how to draw it (see NAMES.md).

One rule for every figure: NAME is drawn by the function ``NAME`` with '-' -> '_' in its module (diagrams*.py for
computed diagrams, measured*.py for the ``run-*`` figures of measured data), and no NAME is registered twice.

Importing this module must stay cheap: it only builds Figure records. numpy and matplotlib are imported by the plot
modules, and those are imported only when a figure has to be rendered.
"""

from ankideck import Figure


def _figure(name: str, module: str, data=(), grid=(1, 1), aspect=0.62) -> tuple[str, Figure]:
    """NAME, drawn by ``module``'s function of the same name ('-' -> '_') from figures/data/<stem>.json per stem."""
    plot = f"{__name__}.{module}:{name.replace('-', '_')}"
    return name, Figure(plot, data=tuple(f"{stem}.json" for stem in data), grid=grid, aspect=aspect)


def _diagram(name: str, grid=(1, 1), aspect=0.62, module: str = "diagrams") -> tuple[str, Figure]:
    """A computed diagram (no data)."""
    return _figure(name, module, grid=grid, aspect=aspect)


def _measured(name: str, data: list[str], grid=(1, 1), aspect=0.62, module: str = "measured") -> tuple[str, Figure]:
    """A measured figure: ``data`` are experiment names (figures/runs.py), whose data files it plots; drawn in
    ``module`` (measured.py, or a measured_<topic>.py that imports the shared helpers from it)."""
    return _figure(name, module, data, grid=grid, aspect=aspect)


def _registry(entries: list[tuple[str, Figure]]) -> dict[str, Figure]:
    names = [name for name, _ in entries]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ValueError(f"figure names registered twice: {', '.join(twice)}")
    return dict(entries)


FIGURES: dict[str, Figure] = _registry(
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
        # part 5 (LLM systems, alignment, RAG, multimodal), in diagrams_llm.py
        _diagram("roofline", aspect=0.85, module="diagrams_llm"),
        _diagram("speculative-decoding", aspect=1.0, module="diagrams_llm"),
        _diagram("paged-attention", aspect=0.95, module="diagrams_llm"),
        _diagram("batching-timeline", grid=(2, 1), aspect=1.0, module="diagrams_llm"),
        _diagram("pipeline-bubble", grid=(2, 1), aspect=1.0, module="diagrams_llm"),
        _diagram("zero-memory", aspect=0.8, module="diagrams_llm"),
        _diagram("rlhf-dataflows", aspect=1.15, module="diagrams_llm"),
        _diagram("flashattention-tiling", aspect=0.95, module="diagrams_llm"),
        _diagram("rag-pipeline", aspect=1.1, module="diagrams_llm"),
        _diagram("clip-similarity", aspect=1.15, module="diagrams_llm"),
        _diagram("vit-patching", aspect=0.85, module="diagrams_llm"),
        _diagram("scaling-frontiers", aspect=0.85, module="diagrams_llm"),
        _diagram("tp-layout", grid=(2, 1), aspect=1.2, module="diagrams_llm"),
        _diagram("parallel-3d-grid", aspect=1.15, module="diagrams_llm"),
        _diagram("dense-vs-sparse", aspect=1.45, module="diagrams_llm"),
        _diagram("react-loop", aspect=1.35, module="diagrams_llm"),
        _diagram("llava-qformer", aspect=1.35, module="diagrams_llm"),
        # measured (run-*), plotted in measured.py from the data figures/runs.py wrote to figures/data/
        _measured("run-bert-heads", ["bert_attention"], grid=(2, 2), aspect=1.08),
        _measured("run-bert-targets", ["bert_attention"], aspect=0.8),
        _measured("run-warmup", ["gpt_warmup"], grid=(2, 2), aspect=1.05),
        _measured("run-gpt-attention", ["gpt_attention"], grid=(2, 2), aspect=1.1),
        _measured("run-init", ["init_spread"], grid=(2, 2), aspect=1.0),
        _measured("run-distillation", ["distillation"], grid=(2, 1), aspect=1.2),
        _measured("run-imbalance", ["imbalance"], grid=(2, 1), aspect=1.25),
        _measured("run-l1-l2", ["l1_l2"], grid=(2, 1), aspect=1.2),
        _measured("run-moe", ["moe_balance"], grid=(2, 1), aspect=1.2),
        _measured("run-adaptive-softmax", ["adaptive_softmax"], grid=(2, 1), aspect=1.15),
        _measured("run-attention-cost", ["attention_cost"], grid=(3, 1), aspect=1.6),
        # part 4 (AIGC), issue 11
        _measured("run-ddpm-2d-steps", ["ddpm_2d"], grid=(2, 1), aspect=0.95),
        _measured("run-ddpm-2d-process", ["ddpm_2d"], grid=(2, 4), aspect=0.62),
        _measured("run-diffusion-loss", ["ddpm_2d", "cfg_digits"], grid=(2, 1), aspect=0.8),
        _measured("run-cfg-digits", ["cfg_digits"], grid=(2, 1), aspect=0.9),
        _measured("run-cfg-digits-samples", ["cfg_digits"], grid=(2, 1), aspect=1.1),
        # part 5.2 (inference, issue 12), in measured_decoding.py
        _measured("run-spec-decoding", ["llm_decoding"], grid=(2, 1), aspect=1.05, module="measured_decoding"),
        _measured("run-spec-tv", ["llm_decoding"], aspect=0.7, module="measured_decoding"),
        _measured("run-decoding-sweep", ["llm_decoding"], grid=(2, 1), aspect=0.9, module="measured_decoding"),
        # part 5.2 (serving, issue 12), in measured_serving.py
        _measured("run-quantization", ["quantization"], grid=(2, 1), aspect=0.92, module="measured_serving"),
        _measured("run-quant-outliers", ["quantization"], grid=(2, 1), aspect=0.9, module="measured_serving"),
        _measured("run-prefill-decode", ["prefill_decode"], aspect=0.75, module="measured_serving"),
        # part 5.4 (issue 13)
        _measured("run-scaling-mini", ["scaling_mini"], grid=(2, 1), aspect=0.95, module="measured_scaling"),
        # parts 5.4 / 5.5 on the deck's own text (issue 13), in measured_retrieval.py
        _measured("run-bpe-deck", ["bpe_deck"], grid=(2, 1), aspect=0.85, module="measured_retrieval"),
        _measured("run-retrieval-deck", ["retrieval_deck"], grid=(2, 1), aspect=0.75, module="measured_retrieval"),
        _measured("run-infonce-temperature", ["retrieval_deck"], grid=(2, 1), aspect=0.85,
                  module="measured_retrieval"),
        _measured("run-retrieval-pca", ["retrieval_deck"], grid=(2, 1), aspect=1.1, module="measured_retrieval"),
    ]
)
