"""Experiments run by ``figures/runs.py``: one module per experiment, each with a ``SIZES`` table and
``run(ctx, **row) -> Measurement`` (see common.py); gpt.py and digits.py are the models and data they share.

The experiment modules import torch (and sklearn, transformers) at the top: runs.py imports them only after it has
found torch. Importing this package, or common.py, stays cheap.
"""
