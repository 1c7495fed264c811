"""The suite builds its own configuration: what the caller's shell exports does not reach the tests.

`test_the_suite_sees_only_its_own_configuration` checks the environment a test (and a process
it starts) sees; the second test runs it in a fresh pytest under a hostile shell: a production
SALESOPS_ENV, another JWT secret, an unreachable OTLP collector and Redis.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from kit.auth import AuthConfig
from kit.config import Settings, redis_url
from tests.conftest import PINNED_ENV, TEST_CONTROL_PREFIX

REPO = Path(__file__).resolve().parents[2]
HOSTILE = {
    "SALESOPS_ENV": "production",
    "SALESOPS_JWT_SECRET": "something-else",
    "SALESOPS_JWT_MAX_LIFETIME": "1m",
    "SALESOPS_GRPC_REFLECTION": "false",
    "SALESOPS_LEADS_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
    "REDIS_URL": "redis://127.0.0.1:1/0",
    "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1",
    "OTEL_TRACES_EXPORTER": "otlp",
}


def _configuration(environ: dict[str, str] | os._Environ[str]) -> dict[str, str]:
    return {
        k: v
        for k, v in environ.items()
        if (k.startswith(("SALESOPS_", "OTEL_")) or k == "REDIS_URL")
        and not k.startswith(TEST_CONTROL_PREFIX)
    }


def test_the_suite_sees_only_its_own_configuration() -> None:
    assert _configuration(os.environ) == PINNED_ENV
    config = AuthConfig.from_env()
    assert config.uses_dev_secret and config.environment == "embedded"
    settings = Settings.from_env("leads")
    assert settings.database_url.startswith("sqlite") and settings.grpc.reflection
    assert redis_url() == "redis://127.0.0.1:6379/0"
    script = "import json, os; print(json.dumps(dict(os.environ)))"
    child = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert _configuration(json.loads(child.stdout)) == PINNED_ENV


def test_a_hostile_shell_does_not_reach_the_suite() -> None:
    env = {**os.environ, **HOSTILE}
    probe = f"{Path(__file__).relative_to(REPO)}::test_the_suite_sees_only_its_own_configuration"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", probe],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "1 passed" in run.stdout
