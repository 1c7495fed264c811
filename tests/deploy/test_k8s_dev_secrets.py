"""The dev overlay's create-secrets.sh makes a Secret with every key the manifests reference.

No cluster here: the script runs with a `kubectl` on PATH that passes every command to
the real kubectl (`create ... --dry-run=client -o yaml` works offline) except `apply`,
whose input it keeps, so the test reads exactly the Secret that would be applied.
"""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path

import yaml  # type: ignore[import-untyped]
from sqlalchemy.engine import make_url

from kit import secrets
from kit.auth import AuthConfig
from kit.config import SERVICES
from tests.deploy.conftest import K8S, Rendered, kubectl, pod_spec

SCRIPT = K8S / "overlays" / "dev" / "create-secrets.sh"


def run_script(tmp_path: Path, name: str) -> dict[str, str]:
    capture = tmp_path / f"{name}.yaml"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    wrapper = bin_dir / "kubectl"
    wrapper.write_text(
        "#!/bin/sh\n"
        'for arg in "$@"; do\n'
        '  if [ "$arg" = apply ]; then cat >> "$CAPTURE"; echo --- >> "$CAPTURE"; exit 0; fi\n'
        "done\n"
        f'exec {kubectl()} "$@"\n'
    )
    wrapper.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "CAPTURE": str(capture)}
    done = subprocess.run(["sh", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    applied = [o for o in yaml.safe_load_all(capture.read_text()) if o]
    assert [o["kind"] for o in applied] == ["Namespace", "Secret"]
    secret = applied[1]
    assert (secret["metadata"]["name"], secret["metadata"]["namespace"]) == ("salesops-secrets", "salesops")
    return {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}


def test_dev_secret_holds_every_referenced_key_with_usable_values(tmp_path: Path, dev: Rendered) -> None:
    values = run_script(tmp_path, "first")
    referenced = {
        e["valueFrom"]["secretKeyRef"]["key"]
        for w in dev.workloads()
        for c in pod_spec(w)["containers"]
        for e in c.get("env", [])
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    assert referenced <= set(values), referenced - set(values)

    production_env = {"SALESOPS_ENV": "production", **values}
    AuthConfig.from_env(production_env).check_environment("production")  # not the dev secret, long enough
    secrets.require_key(production_env)  # a real Fernet key
    for service in SERVICES:
        url = make_url(values[f"SALESOPS_{service.upper()}_DATABASE_URL"])
        assert (url.host, url.port, url.database) == ("postgres", 5432, service)
        assert url.password == values["POSTGRES_PASSWORD"]
    assert values["SALESOPS_REDIS_URL"] == "redis://redis:6379/0"

    again = run_script(tmp_path, "second")
    assert again["SALESOPS_JWT_SECRET"] != values["SALESOPS_JWT_SECRET"]  # fresh random values each time
