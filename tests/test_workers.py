"""The build's worker pool: the initializer runs, and what a worker inherits is frozen out of the collector's way."""
import gc
import os

from ankideck.workers import worker_pool

_started: list[str] = []


def _remember(label: str) -> None:
    _started.append(label)


def _worker_state() -> tuple[int, list[str], int]:
    return gc.get_freeze_count(), list(_started), os.getpid()


def test_a_worker_runs_its_initializer_then_freezes_what_it_inherited():
    assert gc.get_freeze_count() == 0, "the parent itself is left alone"
    with worker_pool(1, initializer=_remember, initargs=("figures",)) as pool:
        frozen, started, pid = pool.submit(_worker_state).result()
    assert pid != os.getpid()
    assert started == ["figures"]
    assert frozen > 1000, "the modules the worker inherited (or imported at start) are frozen"
    assert gc.get_freeze_count() == 0 and _started == []


def test_a_worker_without_an_initializer_is_frozen_too():
    with worker_pool(1) as pool:
        frozen, started, _ = pool.submit(_worker_state).result()
    assert frozen > 1000 and started == []
