"""The embedded launcher's view of its children, for `/readyz` under `make run`.

The launcher (deploy/local/supervisor.py) writes each child's state (up / restarting,
restarts so far, last exit) to a JSON file and names it in SALESOPS_SUPERVISOR_STATUS
for the gateway it starts. Production sets no such variable: there Kubernetes restarts
pods and `/readyz` is the backends' health alone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kit.config import deployment_environment, env_str

STATUS_ENV = "SALESOPS_SUPERVISOR_STATUS"
SHOWN = ("state", "restarts", "last_exit", "last_exit_time", "crash_looping", "restart_in_seconds")


def status_path() -> Path | None:
    raw = env_str(STATUS_ENV, "")
    if not raw or deployment_environment() != "embedded":
        return None
    return Path(raw)


def supervised_children(path: Path | None) -> dict[str, dict[str, Any]] | None:
    """Per child what an operator needs; None without a launcher (or when its file is unreadable)."""
    if path is None:
        return None
    try:
        status = json.loads(path.read_text())
        children = dict(status["children"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    shown: dict[str, dict[str, Any]] = {}
    for name, child in children.items():
        if isinstance(child, dict):
            shown[str(name)] = {key: child[key] for key in SHOWN if key in child}
    return shown
