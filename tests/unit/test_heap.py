"""kit.heap.tune_gc: the startup heap leaves the collector's generations, young collections get rarer."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from kit.heap import YOUNG_THRESHOLD, tune_gc


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_startup_objects_are_frozen_and_young_collections_rarer(restored_gc: None) -> None:
    startup = [object() for _ in range(100)]
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    tune_gc()
    assert gc.get_freeze_count() >= len(startup)
    assert gc.get_threshold()[0] == YOUNG_THRESHOLD
    # Objects made after the tuning are collected as usual.
    cycle: list[object] = []
    cycle.append(cycle)
    del cycle
    assert gc.collect() >= 1
