"""The garbage collector is paused while a build runs, and back as it was afterwards, whatever happens."""
import gc

import pytest

from ankideck import build, compile, load_config
from ankideck.collector import collector_paused
from ankideck.workers import worker_pool


@pytest.fixture(autouse=True)
def _collector_on():
    assert gc.isenabled()
    yield
    gc.enable()


def test_the_collector_is_paused_inside_the_block_and_back_after_it():
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_the_collector_is_back_after_an_error():
    with pytest.raises(KeyError), collector_paused():
        raise KeyError("x")
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off():
    gc.disable()
    with collector_paused():
        pass
    assert not gc.isenabled()


def _collector_enabled() -> bool:
    return gc.isenabled()


def test_workers_forked_while_it_is_paused_collect_their_own_cycles():
    with collector_paused(), worker_pool(1) as pool:
        assert pool.submit(_collector_enabled).result()


def test_a_build_compiles_with_the_collector_paused_and_leaves_it_on(project, monkeypatch):
    seen = []
    compile_file = compile.compile_file

    def spying(job):
        seen.append(gc.isenabled())
        return compile_file(job)

    monkeypatch.setattr(compile, "compile_file", spying)
    build(load_config(), now=1_000_000, progress=False)
    assert seen and not any(seen)
    assert gc.isenabled()
