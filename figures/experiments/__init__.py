"""Experiments run by ``figures/runs.py``: one module per experiment, each with ``run(ctx) -> dict``.

Heavy imports (torch, sklearn, transformers) live inside the functions, so importing this package is cheap.
"""
