"""The service processes' garbage-collector settings."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from botstream.core.gctune import GEN0_THRESHOLD, tune_gc


@pytest.fixture
def restore_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.set_threshold(*thresholds)
    gc.unfreeze()


def test_raises_the_young_threshold_and_keeps_the_older_ratios(restore_gc: None) -> None:
    gc.set_threshold(700, 10, 10)
    assert tune_gc() == (GEN0_THRESHOLD, 10, 10)
    assert gc.get_threshold() == (GEN0_THRESHOLD, 10, 10)


def test_freezes_what_exists_at_start_up(restore_gc: None) -> None:
    gc.unfreeze()
    built_at_start = [{"n": i} for i in range(100)]
    tune_gc(1000)
    assert gc.get_freeze_count() >= len(built_at_start)
    assert gc.get_threshold()[0] == 1000


def test_cyclic_garbage_is_still_collected(restore_gc: None) -> None:
    tune_gc()

    class Node:
        other: object = None

    a, b = Node(), Node()
    a.other, b.other = b, a
    del a, b
    assert gc.collect() >= 2
