"""The `/metrics` HTTP endpoint of a process (prometheus-client's server, in a daemon thread).

A port that cannot be bound (another process holds it) is logged and the process goes on
without metrics: losing observability must never take a service down.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from threading import Thread
from wsgiref.simple_server import WSGIServer

from prometheus_client import start_http_server

from kit.config import metrics_host, metrics_port

log = logging.getLogger("salesops.metrics")


@dataclass
class MetricsEndpoint:
    server: WSGIServer
    thread: Thread

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def serve_metrics(port: int | None = None, host: str | None = None) -> MetricsEndpoint | None:
    """Serve the default registry on `port` (default `SALESOPS_METRICS_PORT`); None when off or taken."""
    port = metrics_port() if port is None else port
    if not port:
        return None
    host = host or metrics_host()
    try:
        server, thread = start_http_server(port, addr=host)
    except OSError as exc:
        log.warning("metrics endpoint not started on %s:%s (%s); running without it", host, port, exc)
        return None
    log.info("metrics on http://%s:%s/metrics", host, port)
    return MetricsEndpoint(server, thread)


__all__ = ["MetricsEndpoint", "serve_metrics"]
