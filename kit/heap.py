"""The garbage collector's settings for a long-running server process."""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000


def tune_gc() -> None:
    """Leave the startup heap (modules, protobuf descriptors, routes, the ORM's mappers) out of every
    later collection, and collect the young generation less often.

    A request allocates its objects and frees them by reference count (it makes next to no cyclic
    garbage), yet with the default threshold (700) a collection ran every few requests and walked
    whatever was in flight, and every full collection walked the whole startup heap again: a few
    percent of a server's CPU per call. Called once, after the process has started serving.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, 10, 10)


__all__ = ["YOUNG_THRESHOLD", "tune_gc"]
