"""The Kubernetes manifests, rendered once per test session with `kubectl kustomize`.

Without kubectl the manifest tests skip, saying why; with SALESOPS_TEST_REQUIRE_KUBECTL=1
(CI, `.ci/run`) a missing kubectl fails them instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
OVERLAYS = ("production", "dev")
REQUIRE_KUBECTL = os.environ.get("SALESOPS_TEST_REQUIRE_KUBECTL", "") == "1"

Obj = dict[str, Any]


def kubectl() -> str:
    found = shutil.which("kubectl")
    if found is None:
        if REQUIRE_KUBECTL:
            pytest.fail(
                "kubectl is not on PATH and SALESOPS_TEST_REQUIRE_KUBECTL=1: the manifest checks must run"
            )
        pytest.skip("kubectl is not on PATH: `kubectl kustomize` renders the manifests these tests check")
    return found


def kustomize(path: Path) -> tuple[list[Obj], str]:
    """Objects `kubectl kustomize <path>` renders, and what it said on stderr."""
    done = subprocess.run([kubectl(), "kustomize", str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"kubectl kustomize {path} failed:\n{done.stderr}"
    return [obj for obj in yaml.safe_load_all(done.stdout) if obj], done.stderr


@dataclass
class Rendered:
    name: str
    objects: list[Obj]

    def of_kind(self, kind: str) -> list[Obj]:
        return [o for o in self.objects if o["kind"] == kind]

    def get(self, kind: str, name: str) -> Obj:
        found = [o for o in self.of_kind(kind) if o["metadata"]["name"] == name]
        assert len(found) == 1, f"{self.name}: {len(found)} {kind} named {name}"
        return found[0]

    def workloads(self) -> list[Obj]:
        """Everything that runs pods: Deployments and Jobs."""
        return [o for o in self.objects if o["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job")]

    def salesops(self, kind: str) -> list[Obj]:
        return [
            o
            for o in self.of_kind(kind)
            if o["metadata"]["labels"].get("app.kubernetes.io/part-of") == "salesops"
        ]

    def config(self) -> dict[str, str]:
        (config,) = [
            c for c in self.of_kind("ConfigMap") if c["metadata"]["name"].startswith("salesops-config")
        ]
        return dict(config["data"])


_CACHE: dict[str, Rendered] = {}


def render_overlay(name: str) -> Rendered:
    if name not in _CACHE:
        objects, _ = kustomize(K8S / "overlays" / name)
        _CACHE[name] = Rendered(name, objects)
    return _CACHE[name]


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> Iterator[Rendered]:
    yield render_overlay(request.param)


@pytest.fixture
def production() -> Rendered:
    return render_overlay("production")


@pytest.fixture
def dev() -> Rendered:
    return render_overlay("dev")


def pod_spec(workload: Obj) -> Obj:
    spec: Obj = workload["spec"]["template"]["spec"]
    return spec


def pod_labels(workload: Obj) -> dict[str, str]:
    labels: dict[str, str] = workload["spec"]["template"]["metadata"].get("labels", {})
    return labels
