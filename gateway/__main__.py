"""python -m gateway: serve the REST gateway (127.0.0.1:8080 by default)."""

from __future__ import annotations

import logging
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from gateway.app import create_app
from gateway.bounds import BoundedHttpToolsProtocol
from kit.auth import require_production_ready
from kit.config import env_int, env_str
from kit.heap import tune_gc
from kit.telemetry import setup_logging, setup_tracing

# How uvicorn serves the gateway, here and in the tests: client addresses come from
# SALESOPS_GATEWAY_TRUSTED_PROXIES only (gateway.bounds); no `server: uvicorn` header
# telling a scanner which server (and which of its known bugs) it is talking to.
SERVE_OPTIONS: dict[str, Any] = {
    "http": BoundedHttpToolsProtocol,
    "proxy_headers": False,
    "server_header": False,
    "log_config": None,
    "access_log": False,
}


def _setup() -> None:
    # Neither log format (kit.telemetry) writes a record's thread or process: not looked up for
    # every record (a getpid syscall and two lookups of the access log line of each request).
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    setup_logging(
        "gateway", env_str("SALESOPS_LOG_LEVEL", "INFO").upper(), env_str("SALESOPS_LOG_FORMAT", "json")
    )
    setup_tracing("gateway")


def worker_app() -> ASGIApp:
    """App factory for each worker process (they start fresh: logging and tracing set up again)."""
    _setup()
    app = create_app()
    tune_gc()
    return app


def main() -> None:
    require_production_ready()  # refuse, before any worker starts, to serve with the dev secret in production
    workers = max(1, env_int("SALESOPS_GATEWAY_WORKERS", 1))
    options = {
        "host": env_str("SALESOPS_GATEWAY_HOST", "127.0.0.1"),
        "port": env_int("SALESOPS_GATEWAY_PORT", 8080),
        "loop": "uvloop",
        **SERVE_OPTIONS,
    }
    if workers == 1:
        _setup()
        app = create_app()
        tune_gc()
        uvicorn.run(app, **options)  # type: ignore[arg-type]
    else:
        # Several processes on one socket: each opens its own channels and Redis pool in its loop.
        _setup()
        uvicorn.run("gateway.__main__:worker_app", factory=True, workers=workers, **options)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
