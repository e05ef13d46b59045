"""When the cyclic garbage collector runs during a build.

A build is a short process that makes millions of containers (every note's fields and rows, every cache entry) and
almost no reference cycles. Each collection the allocations trigger walks all of the containers still alive, which
costs about a fifth of a build that edits one card of 10,000, to free nothing. So the build pauses the collector;
worker processes, which may inherit the pause, turn it back on (matplotlib's figures are full of cycles), and freeze
what they inherited instead (workers.py).
"""
from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """No automatic collections inside the block; the collector's earlier state after it. Cycles made inside are
    not lost: the first collection after the block frees them."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
