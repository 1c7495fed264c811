"""Which streams exist, derived from the generated stubs rather than kept by hand.

A service produces events exactly when its contract has both
`salesops.<area>.v1.<area>_service_pb2` and `salesops.<area>.v1.events_pb2`
(`common` holds only the shared envelope); its stream is `service_stream(<area>)`. A new service with an events.proto is
picked up by every consumer that asks here, with no list to update.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from collections.abc import Collection

from kit.events.relay import service_stream

ROOT_PACKAGE = "salesops"


def _has(module: str) -> bool:
    return importlib.util.find_spec(f"{ROOT_PACKAGE}.{module}") is not None


def service_areas() -> list[str]:
    """Areas with a service contract (`<area>.v1.<area>_service_pb2`), sorted."""
    root = importlib.import_module(ROOT_PACKAGE)
    areas = [m.name for m in pkgutil.iter_modules(root.__path__) if m.ispkg]
    return sorted(a for a in areas if _has(f"{a}.v1.{a}_service_pb2"))


def producer_areas() -> list[str]:
    """Service areas whose contract declares events (`<area>.v1.events_pb2`), sorted."""
    return [a for a in service_areas() if _has(f"{a}.v1.events_pb2")]


def producer_streams(*, exclude: Collection[str] = ()) -> list[str]:
    """The streams of every producing area except `exclude` (typically the consumer itself)."""
    return [service_stream(a) for a in producer_areas() if a not in exclude]


__all__ = ["producer_areas", "producer_streams", "service_areas"]
