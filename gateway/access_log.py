"""The access log line of each request, as `logging` would write it, without its machinery.

A LogRecord built and passed through `Logger.handle` (filters, every logger up to the root, the
handler's lock, its format and flush) was about a third of the gateway's own Python per request
(in process, WhoAmI: ~35 us of ~100). When logging is set up the standard way (kit.telemetry:
one StreamHandler with the JSON formatter on the root, no filter or other handler on the way,
which is checked on every line since tests and operators may change it), the line is the
formatter's own `JsonFormatter.line` written to that stream under the handler's lock: the same
bytes. Any other set-up gets a LogRecord through `Logger.handle`, as before.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from kit.telemetry import JsonFormatter

access_log = logging.getLogger("salesops.gateway.access")
_FORMAT = "%s %s %d"


def _plain_handler() -> logging.StreamHandler[Any] | None:
    """The root's one JSON StreamHandler, when it is the only place the access line goes."""
    logger: logging.Logger | None = access_log
    root = logging.getLogger()
    while logger is not None and logger is not root:
        if logger.filters or logger.handlers or not logger.propagate:
            return None
        logger = logger.parent
    if logger is None or root.filters or len(root.handlers) != 1:
        return None
    if logging.getLogRecordFactory() is not logging.LogRecord:  # one adds fields (OTel's) or redacts
        return None
    handler = root.handlers[0]
    if (
        type(handler) is not logging.StreamHandler
        or handler.filters
        or type(handler.formatter) is not JsonFormatter
        or handler.level > logging.INFO
    ):
        return None
    return handler


def write(method: str, path: str, status: int, extra: dict[str, Any]) -> None:
    """One INFO line "METHOD path status" with `extra`'s fields, when INFO is on for it."""
    if not access_log.isEnabledFor(logging.INFO):
        return
    handler = _plain_handler()
    if handler is None:
        _record(method, path, status, extra)
        return
    formatter: JsonFormatter = handler.formatter  # type: ignore[assignment]
    try:
        line = formatter.line(
            time.time(), "INFO", access_log.name, _FORMAT % (method, path, status), extra.items()
        )
        with handler.lock:  # type: ignore[union-attr]
            handler.stream.write(line + handler.terminator)
            handler.stream.flush()
    except RecursionError:
        raise
    except Exception:
        handler.handleError(_make(method, path, status, extra))  # as StreamHandler.emit does


def _make(method: str, path: str, status: int, extra: dict[str, Any]) -> logging.LogRecord:
    # Logger.info without its caller lookup (a walk up the stack): no format prints it.
    return access_log.makeRecord(
        access_log.name,
        logging.INFO,
        __file__,
        0,
        _FORMAT,
        (method, path, status),
        None,
        "RequestIdMiddleware.__call__",
        extra,
    )


def _record(method: str, path: str, status: int, extra: dict[str, Any]) -> None:
    access_log.handle(_make(method, path, status, extra))


__all__ = ["access_log", "write"]
