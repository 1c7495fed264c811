"""python -m gateway: serve the REST gateway (127.0.0.1:8080 by default)."""

from __future__ import annotations

import uvicorn

from gateway.app import create_app
from kit.config import env_int, env_str
from kit.telemetry import setup_logging, setup_tracing


def main() -> None:
    setup_logging(
        "gateway", env_str("SALESOPS_LOG_LEVEL", "INFO").upper(), env_str("SALESOPS_LOG_FORMAT", "json")
    )
    setup_tracing("gateway")
    uvicorn.run(
        create_app(),
        host=env_str("SALESOPS_GATEWAY_HOST", "127.0.0.1"),
        port=env_int("SALESOPS_GATEWAY_PORT", 8080),
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
    )


if __name__ == "__main__":
    main()
