"""What the manifests promise, checked on every rendered workload of every overlay.

Probes, requests and limits, non-root with a read-only root filesystem (and /tmp an
emptyDir), all capabilities dropped, seccomp RuntimeDefault, no service account token,
a PodDisruptionBudget per Deployment, spread over nodes, a termination grace longer than
the runtime's own drain, default-deny NetworkPolicies with internet egress for notify
and integration only, no plaintext secret in a ConfigMap or an env value, no `latest`
image, and production never migrating on start.
"""

from __future__ import annotations

import inspect
import re
from datetime import timedelta
from typing import Any

import pytest

from deploy.k8s import generate
from kit import runtime, temporal
from kit.config import SERVICE_PORTS, SERVICES
from kit.grpc.health import LIVENESS
from tests.deploy.conftest import Obj, Rendered, pod_labels, pod_spec

SECRETISH = re.compile(
    r"SECRET|PASSWORD|PASSWD|TOKEN|_KEY$|_KEYS$|PRIVATE|DATABASE_URL|REDIS_URL|DSN|CREDENTIAL"
)
CREDENTIALS_IN_URL = re.compile(r"://[^/@\s:]+:[^/@\s]+@")
INTERNET_SERVICES = {"notify", "integration"}


def containers(workload: Obj) -> list[Obj]:
    spec = pod_spec(workload)
    return [*spec.get("initContainers", []), *spec["containers"]]


def salesops_component(workload: Obj) -> str | None:
    labels = pod_labels(workload)
    if labels.get("app.kubernetes.io/part-of") != "salesops":
        return None
    return labels["app.kubernetes.io/component"]


def test_every_container_has_requests_and_limits(overlay: Rendered) -> None:
    for workload in overlay.workloads():
        for container in containers(workload):
            resources = container.get("resources", {})
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(kind, {})), (workload["metadata"]["name"], kind)


def test_every_deployment_has_readiness_and_liveness_probes(overlay: Rendered) -> None:
    for deployment in overlay.of_kind("Deployment"):
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            assert "readinessProbe" in container and "livenessProbe" in container, deployment["metadata"][
                "name"
            ]


def test_service_apis_probe_grpc_health_on_their_port(overlay: Rendered) -> None:
    for service in SERVICES:
        (container,) = pod_spec(overlay.get("Deployment", f"{service}-api"))["containers"]
        grpc_port = next(p["containerPort"] for p in container["ports"] if p["name"] == "grpc")
        assert grpc_port == SERVICE_PORTS[service]
        # Native gRPC probes: readiness is grpc.health.v1 Check on the overall ("") status (the
        # dependencies); startup and liveness ask the LIVENESS name (alive and not wedged only).
        assert container["readinessProbe"]["grpc"] == {"port": grpc_port}, service
        for probe in ("startupProbe", "livenessProbe"):
            assert container[probe]["grpc"] == {"port": grpc_port, "service": LIVENESS}, (service, probe)
        # Liveness outlasts a dependency blip that readiness reports.
        live, ready = container["livenessProbe"], container["readinessProbe"]
        assert (
            live["periodSeconds"] * live["failureThreshold"]
            > ready["periodSeconds"] * ready["failureThreshold"]
        )


def test_every_pod_runs_non_root_read_only_without_capabilities(overlay: Rendered) -> None:
    for workload in overlay.workloads():
        name = workload["metadata"]["name"]
        spec = pod_spec(workload)
        pod_security = spec["securityContext"]
        assert pod_security["runAsNonRoot"] is True, name
        assert pod_security["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec["automountServiceAccountToken"] is False, name
        assert not spec.get("hostNetwork") and not spec.get("hostPID") and not spec.get("hostIPC"), name
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for container in containers(workload):
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, name
            assert security["readOnlyRootFilesystem"] is True, name
            assert security["runAsNonRoot"] is True, name
            assert security["capabilities"] == {"drop": ["ALL"]}, name
            assert security["seccompProfile"] == {"type": "RuntimeDefault"}, name
            assert not security.get("privileged"), name
            tmp = [m for m in container.get("volumeMounts", []) if m["mountPath"] == "/tmp"]
            assert len(tmp) == 1 and "emptyDir" in volumes[tmp[0]["name"]], f"{name}: /tmp is not an emptyDir"


def test_salesops_pods_use_the_tokenless_service_account(overlay: Rendered) -> None:
    account = overlay.get("ServiceAccount", "salesops")
    assert account["automountServiceAccountToken"] is False
    assert not overlay.of_kind("Role") and not overlay.of_kind("RoleBinding")
    for workload in overlay.workloads():
        if salesops_component(workload):
            assert pod_spec(workload)["serviceAccountName"] == "salesops", workload["metadata"]["name"]


def test_a_disruption_budget_covers_every_deployment(overlay: Rendered) -> None:
    budgets = overlay.of_kind("PodDisruptionBudget")
    for deployment in overlay.of_kind("Deployment"):
        labels = pod_labels(deployment)
        matching = [b for b in budgets if b["spec"]["selector"]["matchLabels"].items() <= labels.items()]
        assert len(matching) == 1, deployment["metadata"]["name"]
        (budget,) = matching
        # maxUnavailable 1: drains proceed at one replica too, and never take two at once.
        assert budget["spec"].get("maxUnavailable") == 1, budget["metadata"]["name"]


def test_salesops_deployments_spread_over_nodes(overlay: Rendered) -> None:
    for deployment in overlay.of_kind("Deployment"):
        if not salesops_component(deployment):
            continue
        constraints = pod_spec(deployment)["topologySpreadConstraints"]
        by_key = {c["topologyKey"]: c for c in constraints}
        host = by_key["kubernetes.io/hostname"]
        assert host["whenUnsatisfiable"] == "DoNotSchedule"
        assert host["labelSelector"]["matchLabels"].items() <= pod_labels(deployment).items()
        assert "topology.kubernetes.io/zone" in by_key


def _drain_seconds(config: dict[str, str], container: Obj, component: str) -> float:
    """The runtime's longest orderly stop (kit/runtime.py `serve`'s finally block)."""
    pre_stop = float(container.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0))
    grpc_grace = float(config.get("SALESOPS_GRPC_GRACE_SECONDS", "10"))
    shutdown: timedelta = inspect.signature(temporal.build_worker).parameters["graceful_shutdown"].default
    worker_grace = shutdown.total_seconds()
    loop_grace = runtime.STOP_GRACE_SECONDS  # a loop gets this long to finish its current item
    if component == "api":
        return pre_stop + grpc_grace + loop_grace
    return pre_stop + worker_grace + loop_grace


def test_termination_grace_outlasts_the_drain(overlay: Rendered) -> None:
    config = overlay.config()
    checked = 0
    for deployment in overlay.of_kind("Deployment"):
        component = salesops_component(deployment)
        if component not in ("api", "worker"):
            continue
        (container,) = pod_spec(deployment)["containers"]
        grace = pod_spec(deployment)["terminationGracePeriodSeconds"]
        drain = _drain_seconds(config, container, component)
        assert grace > drain + 5, f"{deployment['metadata']['name']}: grace {grace} s, drain up to {drain} s"
        checked += 1
    assert checked == 2 * len(SERVICES)


def test_network_policies_deny_by_default_and_allow_dns(overlay: Rendered) -> None:
    policies = {p["metadata"]["name"]: p for p in overlay.of_kind("NetworkPolicy")}
    deny = policies["default-deny"]["spec"]
    assert deny["podSelector"] == {} and sorted(deny["policyTypes"]) == ["Egress", "Ingress"]
    assert "ingress" not in deny and "egress" not in deny
    dns = policies["allow-dns"]["spec"]
    assert dns["podSelector"] == {}
    assert {(p["protocol"], p["port"]) for rule in dns["egress"] for p in rule["ports"]} == {
        ("UDP", 53),
        ("TCP", 53),
    }


def _selects(policy: Obj, labels: dict[str, str]) -> bool:
    return bool(policy["spec"]["podSelector"].get("matchLabels", {}).items() <= labels.items())


def _internet_ports(policies: list[Obj], labels: dict[str, str]) -> set[int | str]:
    """Ports on which `labels`' pods may reach any address (the internet), DNS aside."""
    ports: set[int | str] = set()
    for policy in policies:
        if not _selects(policy, labels):
            continue
        for rule in policy["spec"].get("egress", []):
            # No `to` is every destination; so is an ipBlock of the whole address space.
            reaches_internet = not rule.get("to") or any(
                peer.get("ipBlock", {}).get("cidr") in ("0.0.0.0/0", "::/0") for peer in rule["to"]
            )
            if reaches_internet:
                ports |= {p["port"] for p in rule.get("ports", [{"port": "any"}])}
    return ports - {53}  # name resolution (allow-dns) is checked on its own


def test_only_notify_and_integration_reach_the_internet(overlay: Rendered) -> None:
    policies = overlay.of_kind("NetworkPolicy")
    for workload in overlay.workloads():
        labels = pod_labels(workload)
        internet = _internet_ports(policies, labels)
        service = labels.get("app.kubernetes.io/name")
        if service in INTERNET_SERVICES and salesops_component(workload) in ("api", "worker"):
            assert internet == {443, 25, 465, 587, 2525}, workload["metadata"]["name"]
        else:
            assert not internet, f"{workload['metadata']['name']} may reach the internet on {internet}"


def test_gateway_reaches_services_and_services_accept_only_the_gateway(overlay: Rendered) -> None:
    policies = overlay.of_kind("NetworkPolicy")
    gateway = pod_labels(overlay.get("Deployment", "gateway"))
    for service in SERVICES:
        api = pod_labels(overlay.get("Deployment", f"{service}-api"))
        port = SERVICE_PORTS[service]
        sources = [
            peer
            for policy in policies
            if _selects(policy, api)
            for rule in policy["spec"].get("ingress", [])
            if any(p["port"] <= port <= p.get("endPort", p["port"]) for p in rule.get("ports", []))
            for peer in rule.get("from", [{}])
        ]
        # A peer without a pod selector (no `from`, an ipBlock, a namespace) admits more than the gateway.
        assert sources and all(
            set(peer) == {"podSelector"}
            and len(peer["podSelector"].get("matchLabels", {})) > 0
            and peer["podSelector"]["matchLabels"].items() <= gateway.items()
            for peer in sources
        ), f"{service}: gRPC open to more than the gateway: {sources}"
        assert any(
            _selects(policy, gateway)
            and any(
                any(p["port"] <= port <= p.get("endPort", p["port"]) for p in rule.get("ports", []))
                and any(
                    peer.get("podSelector", {}).get("matchLabels", {}).items() <= api.items()
                    for peer in rule["to"]
                )
                for rule in policy["spec"].get("egress", [])
            )
            for policy in policies
        ), f"gateway cannot reach {service}"


def test_services_reach_postgres_redis_and_temporal(overlay: Rendered) -> None:
    policies = overlay.of_kind("NetworkPolicy")
    for workload in overlay.workloads():
        if salesops_component(workload) in ("api", "worker"):
            reachable: set[int] = set()
            for policy in policies:
                if _selects(policy, pod_labels(workload)):
                    for rule in policy["spec"].get("egress", []):
                        reachable |= {p["port"] for p in rule.get("ports", [])}
            assert {5432, 6379, 7233} <= reachable, workload["metadata"]["name"]


def _env_literals(workload: Obj) -> list[tuple[str, str]]:
    return [
        (e["name"], str(e["value"])) for c in containers(workload) for e in c.get("env", []) if "value" in e
    ]


def test_no_plaintext_secret_in_config_maps_or_env(overlay: Rendered) -> None:
    assert not overlay.of_kind("Secret"), "a Secret is committed: create it in the cluster instead (README)"
    pairs: list[tuple[str, str, str]] = []
    for config_map in overlay.of_kind("ConfigMap"):
        pairs += [(config_map["metadata"]["name"], k, str(v)) for k, v in config_map.get("data", {}).items()]
    for workload in overlay.workloads():
        pairs += [(workload["metadata"]["name"], k, v) for k, v in _env_literals(workload)]
    for where, key, value in pairs:
        assert not SECRETISH.search(key.upper()), f"{where}: {key} must come from a Secret, not a literal"
        assert not CREDENTIALS_IN_URL.search(value), f"{where}: {key} carries credentials"
    # The secrets the code needs are referenced by name from the Secret.
    refs = {
        e["valueFrom"]["secretKeyRef"]["key"]
        for w in overlay.workloads()
        for c in containers(w)
        for e in c.get("env", [])
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    expected = {"SALESOPS_JWT_SECRET", "SALESOPS_SECRETS_KEY", "SALESOPS_REDIS_URL"}
    expected |= {f"SALESOPS_{s.upper()}_DATABASE_URL" for s in SERVICES}
    assert expected <= refs


def test_a_pod_gets_only_its_own_database_url(overlay: Rendered) -> None:
    for workload in overlay.workloads():
        service = pod_labels(workload).get("app.kubernetes.io/name")
        names = {e["name"] for c in containers(workload) for e in c.get("env", [])}
        urls = {n for n in names if n.endswith("_DATABASE_URL")}
        if salesops_component(workload) in ("api", "worker", "migrate"):
            assert urls == {f"SALESOPS_{str(service).upper()}_DATABASE_URL"}, workload["metadata"]["name"]
        else:
            assert not urls, workload["metadata"]["name"]


def test_images_are_pinned_never_latest(overlay: Rendered) -> None:
    for workload in overlay.workloads():
        for container in containers(workload):
            image: str = container["image"]
            if "@sha256:" in image:
                continue
            name, _, tag = image.rpartition(":")
            assert name and "/" not in tag, f"{workload['metadata']['name']}: {image} has no tag"
            assert tag != "latest", f"{workload['metadata']['name']}: {image}"


def test_production_pulls_the_released_image(production: Rendered) -> None:
    images = {c["image"] for w in production.workloads() for c in containers(w)}
    assert len(images) == 1
    (image,) = images
    assert re.fullmatch(r"[a-z0-9.-]+(/[a-z0-9._-]+)+:[0-9]+\.[0-9]+\.[0-9]+", image), image


def test_production_never_migrates_on_start(overlay: Rendered) -> None:
    config = overlay.config()
    assert config["SALESOPS_ENV"] == "production"
    assert config["SALESOPS_MIGRATE_ON_START"] == "false"
    for workload in overlay.workloads():
        for container in containers(workload):
            assert "SALESOPS_MIGRATE_ON_START" not in {e["name"] for e in container.get("env", [])}
            command = [*container.get("command", []), *container.get("args", [])]
            runs_migrations = "kit.migrations" in command
            assert runs_migrations == (workload["kind"] == "Job"), workload["metadata"]["name"]


def test_metrics_port_and_scrape_annotations_on_every_salesops_pod(overlay: Rendered) -> None:
    config = overlay.config()
    assert config["SALESOPS_METRICS_PORT"] == str(generate.METRICS_PORT)
    assert config["SALESOPS_METRICS_HOST"] == "0.0.0.0"
    for deployment in overlay.of_kind("Deployment"):
        if not salesops_component(deployment):
            continue
        annotations: dict[str, Any] = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/port"] == str(generate.METRICS_PORT)
        (container,) = pod_spec(deployment)["containers"]
        assert {"name": "metrics", "containerPort": generate.METRICS_PORT, "protocol": "TCP"} in container[
            "ports"
        ]


@pytest.mark.parametrize("service", sorted(INTERNET_SERVICES))
def test_internet_label_is_on_both_roles_of(service: str, overlay: Rendered) -> None:
    for role in ("api", "worker"):
        labels = pod_labels(overlay.get("Deployment", f"{service}-{role}"))
        assert labels.get("salesops.io/egress") == "internet"
