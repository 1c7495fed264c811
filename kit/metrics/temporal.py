"""The Temporal SDK's own worker metrics, bridged into this process's `/metrics`.

temporalio's Rust core can serve Prometheus itself (``PrometheusConfig``), but on a port
of its own; a pod would then need two scrape ports. Instead the core writes into a
``MetricBuffer`` that :meth:`TemporalMetrics.run` drains every second, and this collector
serves what it accumulated with the SDK's names (prefix ``temporal_``) and attributes
(namespace, task_queue, workflow_type, activity_type, ...: bounded by the code deployed).

Counters arrive as deltas and gauges as values; histogram observations are bucketed here
(durations in seconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.metrics_core import Metric
from prometheus_client.registry import REGISTRY, Collector
from temporalio.runtime import (
    BUFFERED_METRIC_KIND_COUNTER,
    BUFFERED_METRIC_KIND_HISTOGRAM,
    MetricBuffer,
    MetricBufferDurationFormat,
    Runtime,
    TelemetryConfig,
)

BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
Labels = tuple[tuple[str, str], ...]


@dataclass
class _Histogram:
    buckets: list[int] = field(default_factory=lambda: [0] * len(BUCKETS))
    total: float = 0.0
    count: int = 0

    def observe(self, value: float) -> None:
        index = bisect_left(BUCKETS, value)
        if index < len(BUCKETS):
            self.buckets[index] += 1
        self.total += value
        self.count += 1


@dataclass
class _Family:
    name: str
    doc: str
    kind: int
    values: dict[Labels, float] = field(default_factory=dict)
    histograms: dict[Labels, _Histogram] = field(default_factory=dict)


def _labels(attributes: Any) -> Labels:
    return tuple(sorted((str(k), str(v)) for k, v in dict(attributes).items()))


class TemporalMetrics(Collector):
    def __init__(self, buffer_size: int = 100_000, interval: float = 1.0) -> None:
        self.buffer = MetricBuffer(buffer_size, duration_format=MetricBufferDurationFormat.SECONDS)
        self.interval = interval
        self._families: dict[str, _Family] = {}
        self._lock = threading.Lock()  # the scrape runs in the endpoint's thread
        self._stop = asyncio.Event()

    def runtime(self) -> Runtime:
        return Runtime(telemetry=TelemetryConfig(metrics=self.buffer))

    def drain(self) -> int:
        updates = self.buffer.retrieve_updates()
        with self._lock:
            for update in updates:
                metric = update.metric
                family = self._families.get(metric.name)
                if family is None:
                    family = self._families[metric.name] = _Family(
                        metric.name, metric.description or metric.name, metric.kind
                    )
                labels = _labels(update.attributes)
                if family.kind == BUFFERED_METRIC_KIND_COUNTER:
                    family.values[labels] = family.values.get(labels, 0.0) + update.value
                elif family.kind == BUFFERED_METRIC_KIND_HISTOGRAM:
                    family.histograms.setdefault(labels, _Histogram()).observe(float(update.value))
                else:
                    family.values[labels] = float(update.value)
        return len(updates)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            families = [(f, dict(f.values), dict(f.histograms)) for f in self._families.values()]
        for family, values, histograms in families:
            if family.kind == BUFFERED_METRIC_KIND_COUNTER:
                base = family.name.removesuffix("_total")
                metric = Metric(base, family.doc, "counter")
                for labels, value in values.items():
                    metric.add_sample(base + "_total", dict(labels), value)
            elif family.kind == BUFFERED_METRIC_KIND_HISTOGRAM:
                metric = Metric(family.name, family.doc, "histogram")
                for labels, hist in histograms.items():
                    cumulative = 0
                    for bound, count in zip(BUCKETS, hist.buckets, strict=True):
                        cumulative += count
                        metric.add_sample(
                            family.name + "_bucket", {**dict(labels), "le": str(bound)}, cumulative
                        )
                    metric.add_sample(family.name + "_bucket", {**dict(labels), "le": "+Inf"}, hist.count)
                    metric.add_sample(family.name + "_count", dict(labels), hist.count)
                    metric.add_sample(family.name + "_sum", dict(labels), hist.total)
            else:
                metric = Metric(family.name, family.doc, "gauge")
                for labels, value in values.items():
                    metric.add_sample(family.name, dict(labels), value)
            yield metric

    async def run(self) -> None:
        while not self._stop.is_set():
            self.drain()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.interval)
        self.drain()

    async def stop(self) -> None:
        self._stop.set()


_installed: TemporalMetrics | None = None


def install() -> TemporalMetrics:
    """Make the SDK's default runtime report into this process's registry (before any client connects)."""
    global _installed
    if _installed is None:
        _installed = TemporalMetrics()
        Runtime.set_default(_installed.runtime(), error_if_already_set=False)
        REGISTRY.register(_installed)
    return _installed


__all__ = ["TemporalMetrics", "install"]
