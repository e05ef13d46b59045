"""Worker processes for the build's parallel stages (compiling card files, drawing figures)."""
from __future__ import annotations

import gc
from concurrent.futures import ProcessPoolExecutor


def worker_pool(workers: int, initializer=None, initargs: tuple = ()) -> ProcessPoolExecutor:
    """A process pool whose workers, once started, freeze what they inherited from the parent out of the garbage
    collector's reach. A worker allocates hundreds of thousands of objects per job; unfrozen, the collections those
    trigger walk every inherited object too (the libraries the parent imported for the workers to share), and
    touching them copies the parent's memory pages into the worker. The workers' own cycles are still collected,
    even when the parent paused its collector (collector.py) before they were forked."""
    return ProcessPoolExecutor(workers, initializer=_start, initargs=(initializer, initargs))


def _start(initializer, initargs: tuple) -> None:
    if initializer is not None:
        initializer(*initargs)
    gc.freeze()
    gc.enable()
